//! The single tool-dispatch point. Every tool call the model makes comes through `dispatch`,
//! which checks the agent's policy before anything runs, parses the arguments, runs the tool
//! under a time cap, audits security-relevant failures, and wraps the result in trust markers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use clawdia_core::{AuditEvent, Message, Severity, Tool, ToolCall, ToolContext, ToolError, ToolProgress};
use futures_util::future::join_all;

use crate::metrics::Metrics;
use crate::turn::Scope;
use crate::{Agent, Agents, trust};

/// The longest any single tool call may run before it is abandoned.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs one tool call and returns its result message (always one; failures are error results).
pub(crate) async fn dispatch(
    agents: &Agents,
    agent: &Agent,
    scope: Scope<'_>,
    call: &ToolCall,
    progress: Option<ToolProgress>,
) -> Message {
    Metrics::add(&agents.metrics.tool_calls, 1);
    let result = run(agents, agent, scope, call, progress).await;
    let (content, is_error) = match result {
        Ok(text) => (text, false),
        Err(error) => (format!("error: {error}"), true),
    };
    let source = format!("tool:{}", call.name);
    Message::ToolResult {
        call_id: call.id.clone(),
        name: call.name.clone(),
        content: trust::wrap(scope.boundary, &source, &content),
        is_error,
    }
}

async fn run(
    agents: &Agents,
    agent: &Agent,
    scope: Scope<'_>,
    call: &ToolCall,
    progress: Option<ToolProgress>,
) -> Result<String, ToolError> {
    let name = agent.spec.name.as_str();
    let session_id = scope.session_id;
    let tools_allow = scope.tools_allow;
    // Built-in tools first, then the turn's run-time tools, then the sources asked afresh (a
    // server restarted since the turn began may list a tool the turn has not seen).
    let mut from_source = false;
    let tool: Arc<dyn Tool> = match agent.tools.get(&call.name) {
        Some(tool) => tool.clone(),
        None => {
            from_source = true;
            let mut unavailable = Vec::new();
            let found = match scope.extra.get(&call.name) {
                Some(tool) => Some(tool.clone()),
                None => {
                    let (mut tools, failed) = source_tools(agents, agent, session_id, tools_allow).await;
                    unavailable = failed;
                    tools.remove(&call.name)
                }
            };
            let Some(tool) = found else {
                agents.audit.record(
                    AuditEvent::new(
                        "tool_unknown",
                        Severity::WARNING,
                        format!("agent `{name}` called `{}`, which is not one of its tools", call.name),
                    )
                    .agent(name)
                    .session(session_id),
                );
                // A granted server that cannot start right now is worth telling the model.
                let note = if unavailable.is_empty() {
                    String::new()
                } else {
                    format!(" (unavailable right now: {})", unavailable.join("; "))
                };
                return Err(ToolError::NotFound(format!(
                    "there is no tool named `{}` for agent `{name}`{note}",
                    call.name
                )));
            };
            tool
        }
    };
    let narrowed_out = tools_allow
        .is_some_and(|list| !list.iter().any(|entry| *entry == call.name || entry == tool.group()))
        || (scope.write_globs.is_some() && tool.group() == crate::subagents::GROUP);
    let refused = if from_source {
        agent.spec.policy.denies(&call.name, tool.group())
    } else {
        !agent.spec.policy.allows(&call.name, tool.group())
    };
    if narrowed_out || refused {
        Metrics::add(&agents.metrics.tool_denials, 1);
        agents.audit.record(
            AuditEvent::new(
                "tool_denied",
                Severity::WARNING,
                format!("agent `{name}` may not use tool `{}` (group `{}`)", call.name, tool.group()),
            )
            .agent(name)
            .session(session_id),
        );
        return Err(ToolError::Refused(format!("tool `{}` is not allowed for agent `{name}`", call.name)));
    }
    let arguments: serde_json::Value = if call.arguments.trim().is_empty() {
        serde_json::Value::Object(Default::default())
    } else {
        serde_json::from_str(&call.arguments)
            .map_err(|e| ToolError::InvalidArguments(format!("arguments are not valid JSON: {e}")))?
    };
    if !arguments.is_object() {
        return Err(ToolError::InvalidArguments("arguments must be a JSON object".into()));
    }
    let mut context = ToolContext::new(name, session_id, agent.spec.workspace.clone(), scope.origin);
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
        agents.audit.record(
            AuditEvent::new(kind, Severity::WARNING, format!("tool `{}`: {error}", call.name))
                .agent(name)
                .session(session_id),
        );
    }
    outcome
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
