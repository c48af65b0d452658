//! Tools offered on demand. A tool that says it is rarely used (`Tool::on_demand`: the brain's
//! writers, `cron`) does not send its schema with every model call; the model is offered
//! `tool_search` instead, whose description names them. Searching loads the matching tools: they
//! are offered from the next model call on, and for the rest of the session (what was loaded is
//! read back from the transcript: the session's `tool_search` calls and calls to such tools).
//! Searching reveals only tools the gate offers, so it grants nothing; a call to an on-demand tool
//! that was never loaded still goes through the gate like any other.
//!
//! A turn whose `tools_allow` names a tool explicitly (the dream's distillers, a cron job) gets
//! that tool offered directly.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use clawdia_core::{Message, Tool, ToolSpec};

use crate::Agent;
use crate::gate::Gate;

/// The name the model calls.
pub const TOOL_SEARCH: &str = "tool_search";

/// At most this many tools load per search.
const MAX_RESULTS: usize = 5;

/// The on-demand tools the gate offers this turn, by name (not including explicitly named ones).
pub(crate) fn candidates<'a>(
    agent: &'a Agent,
    gate: &Gate<'_>,
    extra: &'a HashMap<String, Arc<dyn Tool>>,
) -> Vec<&'a Arc<dyn Tool>> {
    let mut found: Vec<&Arc<dyn Tool>> = agent
        .tools
        .values()
        .map(|tool| (tool, false))
        .chain(extra.values().map(|tool| (tool, true)))
        .filter(|(tool, from_source)| {
            let name = &tool.spec().name;
            tool.on_demand() && !gate.names_explicitly(name) && gate.offers(name, tool.group(), *from_source)
        })
        .map(|(tool, _)| tool)
        .collect();
    found.sort_by(|a, b| a.spec().name.cmp(&b.spec().name));
    found
}

/// The `tool_search` tool as offered, naming the tools it can load.
pub(crate) fn spec(waiting: &[&Arc<dyn Tool>]) -> ToolSpec {
    let names: Vec<&str> = waiting.iter().map(|tool| tool.spec().name.as_str()).collect();
    ToolSpec {
        name: TOOL_SEARCH.to_string(),
        description: format!(
            "Load more tools: {}. Give a name or what you need; matching tools can be called from your next step.",
            names.join(", ")
        ),
        parameters: serde_json::json!({
            "type": "object",
            "properties": {"query": {"type": "string"}},
            "required": ["query"]
        }),
    }
}

/// The candidates matching `query`: an exact name, else every tool whose name or description
/// holds a word of the query (3+ letters); a blank query matches all. At most `MAX_RESULTS`.
pub(crate) fn search<'a>(candidates: &[&'a Arc<dyn Tool>], query: &str) -> Vec<&'a Arc<dyn Tool>> {
    let query = query.trim().to_lowercase();
    if let Some(exact) = candidates.iter().find(|tool| tool.spec().name == query) {
        return vec![*exact];
    }
    let words: Vec<&str> =
        query.split(|c: char| !c.is_alphanumeric() && c != '_').filter(|w| w.len() >= 3).collect();
    candidates
        .iter()
        .filter(|tool| {
            let spec = tool.spec();
            let text = format!("{} {}", spec.name, spec.description).to_lowercase();
            words.is_empty() || words.iter().any(|word| text.contains(word))
        })
        .take(MAX_RESULTS)
        .copied()
        .collect()
}

/// What `tool_search` answers the model.
pub(crate) fn answer(found: &[&Arc<dyn Tool>], candidates: &[&Arc<dyn Tool>], query: &str) -> String {
    if found.is_empty() {
        let names: Vec<&str> = candidates.iter().map(|tool| tool.spec().name.as_str()).collect();
        return format!("No tool matches `{query}`. On demand: {}.", names.join(", "));
    }
    let lines: Vec<String> =
        found.iter().map(|tool| format!("- {}: {}", tool.spec().name, tool.spec().description)).collect();
    format!("Loaded; you can call these now:\n{}", lines.join("\n"))
}

/// The on-demand tools the session has loaded: those its `tool_search` calls found and those
/// it called.
pub(crate) fn loaded(transcript: &[Message], candidates: &[&Arc<dyn Tool>]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let calls = transcript.iter().filter_map(|message| match message {
        Message::Assistant { tool_calls, .. } => Some(tool_calls),
        _ => None,
    });
    for call in calls.flatten() {
        if call.name == TOOL_SEARCH {
            let query = serde_json::from_str::<serde_json::Value>(&call.arguments)
                .ok()
                .and_then(|value| value["query"].as_str().map(String::from))
                .unwrap_or_default();
            names.extend(search(candidates, &query).iter().map(|tool| tool.spec().name.clone()));
        } else if candidates.iter().any(|tool| tool.spec().name == call.name) {
            names.insert(call.name.clone());
        }
    }
    names
}
