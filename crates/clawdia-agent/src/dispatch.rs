//! The single tool-dispatch point. Every tool call the model makes comes through `dispatch`,
//! which asks the turn's gate before anything runs (and audits the decision with its reason),
//! files an approval request instead of running when the gate asks the owner, parses the
//! arguments, runs the tool under a time cap, audits security-relevant failures, and wraps the
//! result in trust markers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use clawdia_core::{AuditEvent, Message, Severity, Tool, ToolCall, ToolContext, ToolError, ToolProgress};
use futures_util::future::join_all;

use crate::gate::Decision;
use crate::metrics::Metrics;
use crate::turn::Scope;
use crate::{Agent, Agents, ondemand, trust};

/// The longest any single tool call may run before it is abandoned.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// What the dispatch point made of one call: its result message (always one; failures and
/// refusals are error results), and the approval request filed when the gate asked the owner.
pub(crate) struct Dispatched {
    pub message: Message,
    pub approval: Option<String>,
}

/// Runs one tool call and returns its result message.
pub(crate) async fn dispatch(
    agents: &Agents,
    agent: &Agent,
    scope: Scope<'_>,
    call: &ToolCall,
    progress: Option<ToolProgress>,
) -> Dispatched {
    Metrics::add(&agents.metrics.tool_calls, 1);
    let (result, approval) = match run(agents, agent, scope, call, progress).await {
        Ran::Done(result) => (result, None),
        Ran::Asked { id, text } => (Ok(text), Some(id)),
    };
    let (content, is_error) = match result {
        Ok(text) => (text, false),
        Err(error) => (format!("error: {error}"), true),
    };
    let source = format!("tool:{}", call.name);
    let message = Message::ToolResult {
        call_id: call.id.clone(),
        name: call.name.clone(),
        content: trust::wrap(scope.boundary, &source, &content),
        is_error,
    };
    Dispatched { message, approval }
}

enum Ran {
    Done(Result<String, ToolError>),
    /// Not run: approval request `id` waits for the owner; `text` tells the model.
    Asked {
        id: String,
        text: String,
    },
}

/// The tool named by `call`: built-in tools first, then the turn's run-time tools, then the
/// sources asked afresh (a server restarted since the turn began may list a tool the turn has
/// not seen). `Err` is the refusal for an unknown tool, audited. The flag: from a source.
async fn find_tool(
    agents: &Agents,
    agent: &Agent,
    scope: Scope<'_>,
    call: &ToolCall,
) -> Result<(Arc<dyn Tool>, bool), ToolError> {
    if let Some(tool) = agent.tools.get(&call.name) {
        return Ok((tool.clone(), false));
    }
    let name = agent.spec.name.as_str();
    let mut unavailable = Vec::new();
    let found = match scope.extra.get(&call.name) {
        Some(tool) => Some(tool.clone()),
        None => {
            let narrowed = scope.gate.narrowing.tools_allow.as_deref();
            let (mut tools, failed) = source_tools(agents, agent, scope.session_id, narrowed).await;
            unavailable = failed;
            tools.remove(&call.name)
        }
    };
    if let Some(tool) = found {
        return Ok((tool, true));
    }
    agents.audit.record(
        AuditEvent::new(
            "tool_unknown",
            Severity::WARNING,
            format!("agent `{name}` called `{}`, which is not one of its tools", call.name),
        )
        .agent(name)
        .session(scope.session_id),
    );
    // A granted server that cannot start right now is worth telling the model.
    let note = if unavailable.is_empty() {
        String::new()
    } else {
        format!(" (unavailable right now: {})", unavailable.join("; "))
    };
    Err(ToolError::NotFound(format!("there is no tool named `{}` for agent `{name}`{note}", call.name)))
}

async fn run(
    agents: &Agents,
    agent: &Agent,
    scope: Scope<'_>,
    call: &ToolCall,
    progress: Option<ToolProgress>,
) -> Ran {
    let name = agent.spec.name.as_str();
    let session_id = scope.session_id;
    if call.name == ondemand::TOOL_SEARCH && !agent.tools.contains_key(&call.name) {
        let candidates = ondemand::candidates(agent, scope.gate, scope.extra);
        if !candidates.is_empty() {
            // Reveals only what the gate offers: it grants nothing, so it needs no decision.
            let query = serde_json::from_str::<serde_json::Value>(&call.arguments)
                .ok()
                .and_then(|value| value["query"].as_str().map(String::from))
                .unwrap_or_default();
            let found = ondemand::search(&candidates, &query);
            return Ran::Done(Ok(ondemand::answer(&found, &candidates, &query)));
        }
    }
    let (tool, from_source) = match find_tool(agents, agent, scope, call).await {
        Ok(found) => found,
        Err(error) => return Ran::Done(Err(error)),
    };
    let audit = |kind: &str, severity: Severity, detail: String| {
        agents.audit.record(AuditEvent::new(kind, severity, detail).agent(name).session(session_id));
    };
    match scope.gate.decide(&call.name, tool.group(), from_source) {
        Decision::Deny(reason) => {
            Metrics::add(&agents.metrics.tool_denials, 1);
            // A host command asked for by someone not allowed one is worth the owner's attention.
            let (kind, severity) = if tool.group() == crate::gate::ELEVATED_GROUP {
                ("elevated_refused", Severity::HIGH)
            } else {
                ("tool_denied", Severity::WARNING)
            };
            audit(kind, severity, format!("`{}` refused: {reason}", call.name));
            return Ran::Done(Err(ToolError::Refused(format!(
                "tool `{}` is not allowed for agent `{name}`: {reason}",
                call.name
            ))));
        }
        Decision::Ask(reason) if scope.approved.is_none() => {
            return match crate::approvals::file(agents, agent, scope, call, &reason) {
                Ok((id, text)) => Ran::Asked { id, text },
                Err(error) => Ran::Done(Err(error)),
            };
        }
        Decision::Ask(reason) => {
            let id = scope.approved.unwrap_or_default();
            audit(
                "tool_allowed",
                Severity::NOTICE,
                format!("`{}` runs: the owner approved request {id} ({reason})", call.name),
            );
        }
        Decision::Allow(reason) => {
            audit("tool_allowed", Severity::INFO, format!("`{}` runs: {reason}", call.name))
        }
    }
    let arguments: serde_json::Value = if call.arguments.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        match serde_json::from_str(&call.arguments) {
            Ok(value) => value,
            Err(e) => {
                return Ran::Done(Err(ToolError::InvalidArguments(format!(
                    "arguments are not valid JSON: {e}"
                ))));
            }
        }
    };
    if !arguments.is_object() {
        return Ran::Done(Err(ToolError::InvalidArguments("arguments must be a JSON object".into())));
    }
    let mut context = ToolContext::new(name, session_id, agent.spec.workspace.clone(), scope.gate.origin);
    context.sender = scope.sender.map(str::to_string);
    context.progress = progress;
    context.write_globs = scope.write_globs.cloned();
    let outcome = match tokio::time::timeout(TOOL_TIMEOUT, tool.call(&context, arguments)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(ToolError::Timeout(TOOL_TIMEOUT.as_secs())),
    };
    if let Err(error) = &outcome
        && error.is_security_event()
    {
        let kind = if matches!(error, ToolError::PathEscape(_)) { "path_escape" } else { "tool_refused" };
        audit(kind, Severity::WARNING, format!("tool `{}`: {error}", call.name));
    }
    Ran::Done(outcome)
}

/// The run-time tools of `agent`'s sources, by name, and `name: reason` of each source that
/// failed: every source asked at once; one that fails is audited and skipped (the turn goes on
/// without its tools). Names that clash with a built-in
/// tool are left out; denied ones stay (the model is not offered them, and a call is refused
/// and audited like any denied tool). With `tools_allow` (a narrowed
/// turn), sources are asked only when the list names something that is not built in.
pub(crate) async fn source_tools(
    agents: &Agents,
    agent: &Agent,
    session_id: &str,
    tools_allow: Option<&[String]>,
) -> (HashMap<String, Arc<dyn Tool>>, Vec<String>) {
    let mut found = HashMap::new();
    let mut failed = Vec::new();
    if agent.sources.is_empty() {
        return (found, failed);
    }
    if let Some(list) = tools_allow {
        let built_in =
            |entry: &String| agent.tools.values().any(|t| t.spec().name == *entry || t.group() == entry);
        if list.iter().all(built_in) {
            return (found, failed);
        }
    }
    let name = agent.spec.name.as_str();
    let listed = join_all(agent.sources.iter().map(|source| source.tools())).await;
    for (source, listed) in agent.sources.iter().zip(listed) {
        match listed {
            Ok(tools) => {
                for tool in tools {
                    let tool_name = tool.spec().name.clone();
                    if agent.tools.contains_key(&tool_name) {
                        continue;
                    }
                    found.insert(tool_name, tool);
                }
            }
            Err(error) => {
                agents.audit.record(
                    AuditEvent::new(
                        "tool_source_failed",
                        Severity::WARNING,
                        format!("`{}` offers no tools this turn: {error}", source.name()),
                    )
                    .agent(name)
                    .session(session_id),
                );
                failed.push(format!("{}: {error}", source.name()));
            }
        }
    }
    (found, failed)
}
