//! The brain's operations as JSON-in, text-out calls with their argument schemas: one
//! implementation behind both the agent tools (`tools`) and the MCP server (`mcp`).
//!
//! Results are JSON text: agents and MCP clients both read JSON well, and a test can parse it.

use clawdia_core::time::{parse_when, rfc3339_utc};
use serde_json::{Value, json};

use crate::brain::{Brain, Query};
use crate::db::{FactInput, FactQuery, SearchMode, TakeInput, TimelineInput, TimelineQuery};

/// The operations, in the order they are listed.
pub const OPS: [&str; 9] = [
    "query",
    "search",
    "get_page",
    "find_experts",
    "put_page",
    "add_fact",
    "add_take",
    "timeline",
    "add_timeline",
];

/// One line on what each operation does.
pub fn description(op: &str) -> &'static str {
    match op {
        "query" => {
            "Ask the knowledge brain: hybrid full-text + semantic search over notes, code and past conversations, with facts valid at `as_of`."
        }
        "search" => "Search the brain with a chosen mode (hybrid, fulltext, vector) and slug-prefix filters.",
        "get_page" => "Read one brain page by slug: its text, links, backlinks, facts and timeline.",
        "find_experts" => "The people and pages most linked to a topic.",
        "put_page" => "Create or replace a markdown page in the brain ([[wikilinks]] become links).",
        "add_fact" => {
            "Record a dated fact (subject, predicate, object). A newer conflicting fact closes the older one's validity."
        }
        "add_take" => {
            "Record a take: a claim someone holds (an opinion, a judgement), with a weight from 0 to 1. The same active claim by the same holder is not recorded twice."
        }
        "timeline" => "List timeline entries, optionally for one page and a date range.",
        "add_timeline" => "Add a dated timeline entry, optionally to a page.",
        _ => "",
    }
}

/// The JSON Schema of each operation's arguments.
pub fn schema(op: &str) -> Value {
    let date = json!({"type": "string", "description": "YYYY-MM-DD, YYYY-MM or RFC 3339"});
    let (properties, required): (Value, &[&str]) = match op {
        "query" => (
            json!({"query": {"type": "string"}, "k": {"type": "integer", "minimum": 1, "maximum": 50}, "as_of": date}),
            &["query"],
        ),
        "search" => (
            json!({
                "query": {"type": "string"},
                "k": {"type": "integer", "minimum": 1, "maximum": 100},
                "mode": {"type": "string", "enum": ["hybrid", "fulltext", "vector"]},
                "include": {"type": "array", "items": {"type": "string"}, "description": "only slugs with these prefixes"},
                "exclude": {"type": "array", "items": {"type": "string"}, "description": "never slugs with these prefixes"}
            }),
            &["query"],
        ),
        "get_page" => (json!({"slug": {"type": "string"}}), &["slug"]),
        "find_experts" => (
            json!({"topic": {"type": "string"}, "k": {"type": "integer", "minimum": 1, "maximum": 50}}),
            &["topic"],
        ),
        "put_page" => (
            json!({"slug": {"type": "string"}, "body": {"type": "string", "description": "markdown, optional YAML frontmatter"}, "title": {"type": "string"}}),
            &["slug", "body"],
        ),
        "add_fact" => (
            json!({
                "subject": {"type": "string"}, "predicate": {"type": "string"}, "object": {"type": "string"},
                "valid_from": date, "valid_until": date, "source": {"type": "string", "description": "slug of the page it came from"}
            }),
            &["subject", "predicate", "object"],
        ),
        "add_take" => (
            json!({
                "claim": {"type": "string"}, "holder": {"type": "string", "description": "who holds it, e.g. owner or a person's name"},
                "weight": {"type": "number", "minimum": 0, "maximum": 1, "description": "confidence, default 0.5"},
                "since": date, "slug": {"type": "string", "description": "the page it is about"},
                "supersedes": {"type": "integer", "description": "id of an earlier take this one replaces"}
            }),
            &["claim", "holder"],
        ),
        "timeline" => (
            json!({"slug": {"type": "string"}, "from": date, "to": date, "limit": {"type": "integer", "minimum": 1, "maximum": 500}}),
            &[],
        ),
        "add_timeline" => {
            (json!({"at": date, "text": {"type": "string"}, "slug": {"type": "string"}}), &["at", "text"])
        }
        _ => (json!({}), &[]),
    };
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

fn string<'a>(args: &'a Value, key: &str) -> Result<&'a str, String> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("`{key}` (a non-empty string) is required"))
}

fn optional_string<'a>(args: &'a Value, key: &str) -> Option<&'a str> {
    args.get(key).and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

fn count(args: &Value, key: &str, default: usize, max: usize) -> usize {
    args.get(key).and_then(Value::as_u64).map(|n| n as usize).unwrap_or(default).clamp(1, max)
}

fn when(args: &Value, key: &str) -> Result<Option<i64>, String> {
    match optional_string(args, key) {
        None => Ok(None),
        Some(text) => parse_when(text)
            .map(Some)
            .ok_or_else(|| format!("`{key}`: `{text}` is not a date (YYYY-MM-DD, YYYY-MM or RFC 3339)")),
    }
}

fn strings(args: &Value, key: &str) -> Vec<String> {
    args.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

fn date_text(ms: Option<i64>) -> Value {
    ms.map(|ms| Value::String(rfc3339_utc(ms))).unwrap_or(Value::Null)
}

/// Runs `op` with `args` on behalf of `writer` (the source recorded for pages it writes).
pub async fn call(brain: &Brain, op: &str, args: &Value, writer: &str) -> Result<String, String> {
    let value = match op {
        "query" | "search" => {
            let mut query =
                Query::new(string(args, "query")?, count(args, "k", if op == "query" { 5 } else { 10 }, 100));
            if op == "query" {
                query.as_of = when(args, "as_of")?;
                query.expand_graph = 2;
            } else {
                query.mode = match optional_string(args, "mode") {
                    None | Some("hybrid") => SearchMode::Hybrid,
                    Some("fulltext") => SearchMode::FullText,
                    Some("vector") => SearchMode::Vector,
                    Some(other) => {
                        return Err(format!("`mode`: `{other}` is not one of hybrid, fulltext, vector"));
                    }
                };
                query.include = strings(args, "include");
                query.exclude = strings(args, "exclude");
            }
            let result = brain.search(&query).await.map_err(|e| e.to_string())?;
            let hits: Vec<Value> = result
                .hits
                .iter()
                .map(|h| json!({"slug": h.slug, "title": h.title, "score": h.score, "snippet": h.snippet, "source": h.source, "expanded": h.expanded}))
                .collect();
            let facts: Vec<Value> = result.facts.iter().map(fact_json).collect();
            json!({"hits": hits, "facts": facts, "notice": result.notice})
        }
        "get_page" => {
            let slug = string(args, "slug")?.to_string();
            let page = brain.blocking(move |db| db.get_page(&slug)).await.map_err(|e| e.to_string())?;
            match page {
                None => return Err(format!("no page `{}`", string(args, "slug")?)),
                Some(view) => serde_json::to_value(&view).map_err(|e| e.to_string())?,
            }
        }
        "find_experts" => {
            let topic = string(args, "topic")?.to_string();
            let k = count(args, "k", 5, 50);
            let experts =
                brain.blocking(move |db| db.find_experts(&topic, k)).await.map_err(|e| e.to_string())?;
            serde_json::to_value(&experts).map_err(|e| e.to_string())?
        }
        "put_page" => {
            let slug = normalize_slug(string(args, "slug")?)?;
            let body = args.get("body").and_then(Value::as_str).ok_or("`body` (a string) is required")?;
            let outcome = brain
                .put_markdown(&slug, optional_string(args, "title"), body, writer)
                .await
                .map_err(|e| e.to_string())?;
            json!({"slug": slug, "changed": outcome.changed, "chunks": outcome.chunks})
        }
        "add_fact" => {
            let fact = FactInput {
                subject: string(args, "subject")?.to_string(),
                predicate: string(args, "predicate")?.to_string(),
                object: string(args, "object")?.to_string(),
                valid_from: when(args, "valid_from")?,
                valid_until: when(args, "valid_until")?,
                source_slug: optional_string(args, "source").map(String::from),
            };
            let outcome = brain.blocking(move |db| db.add_fact(&fact)).await.map_err(|e| e.to_string())?;
            json!({"id": outcome.id, "closed": outcome.closed, "unchanged": outcome.unchanged})
        }
        "add_take" => {
            let weight = match args.get("weight") {
                None | Some(Value::Null) => 0.5,
                Some(value) => value.as_f64().ok_or("`weight` must be a number from 0 to 1")?,
            };
            let take = TakeInput {
                claim: string(args, "claim")?.to_string(),
                holder: string(args, "holder")?.to_string(),
                weight,
                since: when(args, "since")?,
                page_slug: optional_string(args, "slug").map(normalize_slug).transpose()?,
                supersedes: args.get("supersedes").and_then(Value::as_i64),
            };
            let id = brain.blocking(move |db| db.add_take(&take)).await.map_err(|e| e.to_string())?;
            json!({"id": id})
        }
        "timeline" => {
            let query = TimelineQuery {
                page_slug: optional_string(args, "slug").map(String::from),
                from: when(args, "from")?,
                to: when(args, "to")?,
                limit: count(args, "limit", 50, 500),
            };
            let entries = brain.blocking(move |db| db.timeline(&query)).await.map_err(|e| e.to_string())?;
            serde_json::to_value(&entries).map_err(|e| e.to_string())?
        }
        "add_timeline" => {
            let entry = TimelineInput {
                page_slug: optional_string(args, "slug").map(String::from),
                at: when(args, "at")?.ok_or("`at` is required")?,
                text: string(args, "text")?.to_string(),
                source: Some(writer.to_string()),
            };
            let id = brain.blocking(move |db| db.add_timeline(&entry)).await.map_err(|e| e.to_string())?;
            json!({"id": id})
        }
        other => return Err(format!("unknown brain operation `{other}`")),
    };
    serde_json::to_string_pretty(&value).map_err(|e| e.to_string())
}

fn fact_json(fact: &crate::db::Fact) -> Value {
    json!({
        "subject": fact.subject, "predicate": fact.predicate, "object": fact.object,
        "valid_from": date_text(Some(fact.valid_from)), "valid_until": date_text(fact.valid_until),
    })
}

/// Slugs written by agents and MCP clients: each `/` segment slugified; no empty segments.
pub fn normalize_slug(slug: &str) -> Result<String, String> {
    let segments: Vec<String> = slug.split('/').map(crate::types::slugify).collect();
    if segments.iter().any(String::is_empty) {
        return Err(format!("`{slug}` is not a valid slug (use e.g. people/alice)"));
    }
    Ok(segments.join("/"))
}

/// Facts as of a date, for `query --as-of` in the CLI.
pub fn facts_query(subject: Option<String>, as_of: Option<i64>) -> FactQuery {
    FactQuery { subject, predicate: None, as_of, known_at: None, include_history: false }
}
