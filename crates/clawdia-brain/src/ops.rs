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
                "since": {"type": "string", "description": "when it became true: YYYY-MM-DD, YYYY-MM or RFC 3339 (default now)"},
                "valid_from": {"type": "string", "description": "the same as `since` (give one of them)"},
                "valid_until": date, "source": {"type": "string", "description": "slug of the page it came from"}
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

/// Checks `args` against an operation's schema (as `schema` writes them): an object with only
/// the listed properties, the required ones present, each of its type, integers and numbers
/// within their bounds, strings among their `enum`. A `null` counts as not given. The error
/// names the argument and what it must be.
pub fn check_args(op: &str, schema: &Value, args: &Value) -> Result<(), String> {
    let Some(args) = args.as_object() else {
        return Err(format!("`{op}` takes an object of named arguments"));
    };
    let properties = schema["properties"].as_object().cloned().unwrap_or_default();
    for (key, value) in args {
        let Some(property) = properties.get(key) else {
            let mut known: Vec<&str> = properties.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(format!("unknown argument `{key}` for `{op}` (it takes {})", known.join(", ")));
        };
        if !value.is_null() {
            check_value(key, property, value)?;
        }
    }
    for required in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if args.get(required).is_none_or(Value::is_null) {
            return Err(format!("`{required}` is required for `{op}`"));
        }
    }
    Ok(())
}

fn check_value(key: &str, property: &Value, value: &Value) -> Result<(), String> {
    let bounds = |what: &str| match (property["minimum"].as_f64(), property["maximum"].as_f64()) {
        (Some(min), Some(max)) => format!("{what} from {min} to {max}"),
        (Some(min), None) => format!("{what} of at least {min}"),
        (None, Some(max)) => format!("{what} of at most {max}"),
        (None, None) => what.to_string(),
    };
    let in_bounds = |number: f64| {
        property["minimum"].as_f64().is_none_or(|min| number >= min)
            && property["maximum"].as_f64().is_none_or(|max| number <= max)
    };
    let ok = match property["type"].as_str() {
        Some("string") => value.as_str().is_some_and(|text| {
            property["enum"].as_array().is_none_or(|allowed| allowed.iter().any(|a| a.as_str() == Some(text)))
        }),
        Some("integer") => {
            let integer = value.as_i64().map(|n| n as f64).or_else(|| value.as_u64().map(|n| n as f64));
            integer.is_some_and(in_bounds)
        }
        Some("number") => value.as_f64().is_some_and(|n| n.is_finite() && in_bounds(n)),
        Some("array") => value.as_array().is_some_and(|items| items.iter().all(Value::is_string)),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    let expected = match property["type"].as_str() {
        Some("string") => match property["enum"].as_array() {
            Some(allowed) => {
                let names: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
                format!("one of {}", names.join(", "))
            }
            None => "a string".to_string(),
        },
        Some("integer") => bounds("an integer"),
        Some("number") => bounds("a number"),
        Some("array") => "an array of strings".to_string(),
        _ => "valid".to_string(),
    };
    Err(format!("`{key}` must be {expected}, got {}", clip(&value.to_string(), 60)))
}

/// The first `limit` characters of `text`, with `...` when cut.
fn clip(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((index, _)) => format!("{}...", &text[..index]),
        None => text.to_string(),
    }
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

/// A fact's start: `since` (the contract's name) or `valid_from` (its older spelling); both
/// may be given only when they agree.
fn since(args: &Value) -> Result<Option<i64>, String> {
    match (when(args, "since")?, when(args, "valid_from")?) {
        (Some(a), Some(b)) if a != b => {
            Err("`since` and `valid_from` name the same date; give one of them".to_string())
        }
        (a, b) => Ok(a.or(b)),
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

/// Runs `op` with `args` on behalf of `writer` (the source recorded for pages it writes), after
/// checking the arguments against the operation's schema (`check_args`).
pub async fn call(brain: &Brain, op: &str, args: &Value, writer: &str) -> Result<String, String> {
    if !OPS.contains(&op) {
        return Err(format!("unknown brain operation `{op}`"));
    }
    check_args(op, &schema(op), args)?;
    run(brain, op, args, writer).await
}

/// Runs `op` with arguments already checked against the schema the caller offered.
pub(crate) async fn run(brain: &Brain, op: &str, args: &Value, writer: &str) -> Result<String, String> {
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
            let page = brain.blocking(move |db| page_or_hint(db, &slug)).await.map_err(|e| e.to_string())?;
            serde_json::to_value(&page?).map_err(|e| e.to_string())?
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
                valid_from: since(args)?,
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

/// The page `slug`, or the one-line error for a slug that names none, with a "did you mean"
/// when some page is close (`Db::similar_slugs`): `no page `rust-borrowing`; did you mean
/// `notes/rust-borrowing`?`.
pub fn page_or_hint(
    db: &crate::db::Db,
    slug: &str,
) -> Result<Result<crate::db::PageView, String>, crate::db::BrainError> {
    if let Some(page) = db.get_page(slug)? {
        return Ok(Ok(page));
    }
    let similar = db.similar_slugs(slug, 5)?;
    let quoted: Vec<String> = similar.iter().map(|slug| format!("`{slug}`")).collect();
    let hint = match quoted.as_slice() {
        [] => String::new(),
        [one] => format!("; did you mean {one}?"),
        many => format!("; did you mean one of {}?", many.join(", ")),
    };
    Ok(Err(format!("no page `{slug}`{hint}")))
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
