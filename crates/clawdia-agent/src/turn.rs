//! One turn: load (and repair) the session, then alternate model calls and tool rounds until
//! the model answers without tool calls, a cap is hit, or an error ends it.
//!
//! Storage order keeps the crash invariants: the user message is stored together with the
//! first complete model reply; an assistant message with tool calls is stored before the tools
//! run and their results right after, so a kill in between leaves orphans that the store
//! repairs on the next load. Nothing partial is ever stored.

use std::collections::HashMap;

use std::sync::atomic::{AtomicBool, Ordering};

use clawdia_core::{
    Attempt, AuditEvent, ChatRequest, DeltaSink, Message, ModelDelta, ModelError, ModelRef, Severity,
    ToolCall, TurnContext, TurnError, TurnEvent, TurnEvents, TurnOrigin, TurnOutcome, TurnRequest, Usage,
};
use futures_util::future::join_all;

use crate::metrics::Metrics;
use crate::{Agent, Agents, dispatch, now_ms, prompt, trust};

/// An identical tool call (same name and arguments) this many times in one turn ends the turn.
const MAX_IDENTICAL_CALLS: u32 = 3;

/// How many earlier user exchanges of the session a light turn (the heartbeat) shows the model.
const LIGHT_EXCHANGES: usize = 3;

/// Forwards model deltas to the turn's caller, remembering whether the caller holds text of
/// an attempt that has not been discarded (so a failed call can say the reply was cut off).
struct Forward<'a> {
    events: &'a dyn TurnEvents,
    shown: AtomicBool,
}

impl DeltaSink for Forward<'_> {
    fn delta(&self, delta: ModelDelta) {
        if let ModelDelta::Text(text) = delta {
            self.shown.store(true, Ordering::Relaxed);
            self.events.event(TurnEvent::TextDelta { text });
        }
    }

    fn discard(&self, failed: &ModelRef, next: &ModelRef) {
        self.shown.store(false, Ordering::Relaxed);
        self.events.event(TurnEvent::Discard {
            reason: format!("{failed} failed mid-reply; trying the fallback model {next}"),
        });
    }
}

/// What the caller is told when the model chain gave no reply.
fn chain_failure(error: &ModelError, attempts: &[Attempt], cut_off: bool) -> String {
    // The last model actually asked (entries skipped while cooling down asked nobody).
    let asked = attempts
        .iter()
        .rev()
        .find(|attempt| !matches!(attempt.failure.as_deref(), Some("cooling_down" | "unknown_provider")));
    match asked.filter(|_| cut_off) {
        Some(last) => format!(
            "the reply from {} was cut off mid-stream ({error}) and no fallback model was left to try",
            last.model
        ),
        None => format!("every model failed: {error}"),
    }
}

pub(crate) fn build_system_prompt(agent: &Agent, boundary: &str, now: i64) -> String {
    let files = agent.prompt.files_section(&agent.spec.workspace, agent.spec.prompt_limits, now);
    prompt::system_prompt(
        &agent.spec.name,
        &clawdia_core::time::utc_date(now),
        &trust::prompt_rule(boundary),
        &files,
    )
}

/// Forgets the turn's offered tools when the turn ends, however it ends.
struct OfferedGuard<'a> {
    hub: &'a crate::subagents::Hub,
    session: &'a str,
}

impl Drop for OfferedGuard<'_> {
    fn drop(&mut self) {
        self.hub.turn_ended(self.session);
    }
}

fn store_error(error: clawdia_core::StoreError) -> TurnError {
    TurnError::Session(error.to_string())
}

pub(crate) async fn run(
    agents: &Agents,
    agent: &Agent,
    session_id: &str,
    request: TurnRequest,
    events: &dyn TurnEvents,
) -> Result<TurnOutcome, TurnError> {
    let name = agent.spec.name.as_str();
    let stored = agents.store.open(name, session_id, &clawdia_core::random::hex(8)?).map_err(store_error)?;
    if stored.repaired > 0 {
        agents.audit.record(
            AuditEvent::new(
                "session_repaired",
                Severity::NOTICE,
                format!("{} orphaned tool call(s) got a synthetic error result", stored.repaired),
            )
            .agent(name)
            .session(session_id),
        );
    }
    events.event(TurnEvent::Started { session: session_id.to_string(), agent: name.to_string() });
    let boundary = stored.meta.boundary.clone();
    let system = if request.context.is_light() {
        // The heartbeat gets its checklist; no other workspace file reaches a light turn.
        prompt::system_prompt(
            name,
            &clawdia_core::time::utc_date(now_ms()),
            &trust::prompt_rule(&boundary),
            &match request.context {
                TurnContext::Heartbeat => {
                    agent.prompt.heartbeat_section(&agent.spec.workspace, agent.spec.prompt_limits)
                }
                _ => String::new(),
            },
        )
    } else {
        build_system_prompt(agent, &boundary, now_ms())
    };
    let mut tools_allow = request.tools_allow.clone();
    let mut write_globs: Option<std::sync::Arc<[String]>> = None;
    let mut system = system;
    let options = request.options.clone();
    if let Some(extra) = options.system.as_deref().map(str::trim).filter(|text| !text.is_empty()) {
        // The caller holds the owner's token: its instructions are the owner's, unwrapped.
        system.push_str("\n\n## Instructions for this conversation\n\n");
        system.push_str(extra);
    }
    if let Some(router) = agents.skills.as_ref().filter(|_| !request.context.is_light()) {
        let routed = router.route(name, &agent.spec.workspace, &request.message);
        if !routed.prompt.is_empty() {
            system.push_str("\n\n");
            system.push_str(&routed.prompt);
        }
        if let Some(globs) = &routed.write_globs {
            // The triggered skills declared where they write: file writes go there only.
            write_globs = Some(globs.clone().into());
            let allowed = if globs.is_empty() { "nowhere".to_string() } else { globs.join(", ") };
            agents.audit.record(
                AuditEvent::new(
                    "skill_writes",
                    Severity::INFO,
                    format!(
                        "skill(s) {} declare their writes: workspace writes confined to {allowed} this turn",
                        routed.names.join(", ")
                    ),
                )
                .agent(name)
                .session(session_id),
            );
        }
        if routed.read_only || routed.declared_read_only {
            // An untrusted skill is in play, or the triggered skills all declare they change
            // nothing: only tools that change nothing, and only those the turn could use anyway.
            let narrowed: Vec<String> = clawdia_core::READ_ONLY_TOOLS
                .iter()
                .filter(|tool| {
                    let group = agent.tools.get(**tool).map(|t| t.group()).unwrap_or_default();
                    tools_allow.as_ref().is_none_or(|list| list.iter().any(|e| e == *tool || e == group))
                })
                .map(|tool| tool.to_string())
                .collect();
            let (kind, why) = if routed.read_only {
                ("untrusted_skill", "untrusted skill(s)")
            } else {
                ("read_only_skill", "skill(s) declaring `mutating: false`")
            };
            agents.audit.record(
                AuditEvent::new(
                    kind,
                    Severity::NOTICE,
                    format!("{why} {} routed in: read-only tools this turn", routed.names.join(", ")),
                )
                .agent(name)
                .session(session_id),
            );
            tools_allow = Some(narrowed);
        }
    }
    // Run-time tools (MCP servers granted to the agent), listed now: a server starts on the
    // first turn that can use it.
    let (extra, _) = dispatch::source_tools(agents, agent, session_id, tools_allow.as_deref()).await;
    let mut offered: Vec<clawdia_core::ToolSpec> = agent
        .allowed_specs
        .iter()
        .chain(
            extra
                .values()
                .filter(|tool| !agent.spec.policy.denies(&tool.spec().name, tool.group()))
                .map(|tool| tool.spec()),
        )
        // A child would not inherit the turn's write confinement, so a confined turn has none.
        .filter(|spec| write_globs.is_none() || !crate::subagents::TOOL_NAMES.contains(&spec.name.as_str()))
        .filter(|spec| match &tools_allow {
            None => true,
            Some(list) => {
                let group = agent
                    .tools
                    .get(&spec.name)
                    .or_else(|| extra.get(&spec.name))
                    .map(|t| t.group())
                    .unwrap_or_default();
                list.iter().any(|entry| *entry == spec.name || entry == group)
            }
        })
        .cloned()
        .collect();
    offered.sort_by(|a, b| a.name.cmp(&b.name));
    agents.hub.turn_started(session_id, offered.iter().map(|spec| spec.name.clone()).collect());
    let _offered_guard = OfferedGuard { hub: &agents.hub, session: session_id };
    let mut transcript = stored.messages;
    // A light turn shows the model only the last few exchanges of the session.
    if request.context.is_light() {
        let users: Vec<usize> = transcript
            .iter()
            .enumerate()
            .filter(|(_, m)| matches!(m, Message::User { .. }))
            .map(|(i, _)| i)
            .collect();
        if users.len() > LIGHT_EXCHANGES {
            transcript.drain(..users[users.len() - LIGHT_EXCHANGES]);
        }
    }
    let mut pending = Vec::new();
    if transcript.is_empty() && !request.history.is_empty() {
        pending.extend(request.history.iter().cloned());
        transcript.extend(request.history);
    }
    let user = Message::user(request.message);
    transcript.push(user.clone());
    pending.push(user);

    let mut usage = Usage::default();
    let mut cost_usd = 0.0;
    let mut attempts = Vec::new();
    let mut final_model = None;
    let mut used_fallback = false;
    let mut seen_calls: HashMap<(String, String), u32> = HashMap::new();
    let final_text;
    let mut iteration = 0u32;
    loop {
        if iteration >= agent.spec.max_tool_iterations {
            let note = format!(
                "I stopped after {iteration} rounds of tool calls, the limit for this agent (max_tool_iterations)."
            );
            finish_with_note(agents, session_id, &mut pending, &note, events)?;
            final_text = note;
            break;
        }
        iteration += 1;
        check_budget(agents, agent, session_id)?;
        let chat = ChatRequest {
            model: String::new(),
            system: system.clone(),
            messages: transcript.clone(),
            tools: offered.clone(),
            max_tokens: options.max_tokens.unwrap_or(agent.spec.max_tokens),
            temperature: options.temperature.or(agent.spec.temperature),
            stop: options.stop.clone(),
            stream: true,
        };
        let forward = Forward { events, shown: AtomicBool::new(false) };
        let outcome = agents.models.complete(&agent.spec.chain, chat, &forward).await;
        record_attempts(agents, name, session_id, &outcome.attempts, events);
        let (model, response) = match outcome.result {
            Ok(ok) => ok,
            Err(error) => {
                let cut_off = forward.shown.load(Ordering::Relaxed);
                let message = chain_failure(&error, &outcome.attempts, cut_off);
                attempts.extend(outcome.attempts);
                return Err(TurnError::ModelsFailed { message, attempts, retry_after: outcome.retry_after });
            }
        };
        attempts.extend(outcome.attempts);
        if model != agent.spec.chain[0] {
            used_fallback = true;
        }
        let call_cost = (agents.pricer)(&model, &response.usage);
        agents
            .store
            .record_usage(name, session_id, &model, &response.usage, call_cost)
            .map_err(store_error)?;
        Metrics::add(&agents.metrics.input_tokens, response.usage.input_tokens);
        Metrics::add(&agents.metrics.output_tokens, response.usage.output_tokens);
        Metrics::add(&agents.metrics.cost_micro_usd, (call_cost * 1e6) as u64);
        usage.add(&response.usage);
        cost_usd += call_cost;
        final_model = Some(model);

        let Message::Assistant { text, tool_calls } = response.message else {
            return Err(TurnError::Session("the model reply was not an assistant message".into()));
        };
        let assistant = Message::Assistant { text: text.clone(), tool_calls: tool_calls.clone() };
        transcript.push(assistant.clone());
        pending.push(assistant);
        agents.store.append(session_id, &pending).map_err(store_error)?;
        pending.clear();
        if tool_calls.is_empty() {
            final_text = text;
            break;
        }

        let mut repeated: Option<String> = None;
        let runs = tool_calls.iter().map(|call| {
            let count = seen_calls.entry((call.name.clone(), call.arguments.clone())).or_insert(0);
            *count += 1;
            let skip = *count >= MAX_IDENTICAL_CALLS;
            if skip {
                repeated = Some(call.name.clone());
            }
            let scope = Scope {
                session_id,
                boundary: &boundary,
                tools_allow: tools_allow.as_deref(),
                write_globs: write_globs.as_ref(),
                origin: request.origin,
                sender: request.sender.as_deref(),
                extra: &extra,
            };
            run_one(agents, agent, scope, call, skip, events)
        });
        let runs: Vec<_> = runs.collect();
        let results = join_all(runs).await;
        transcript.extend(results.iter().cloned());
        agents.store.append(session_id, &results).map_err(store_error)?;
        if let Some(tool) = repeated {
            agents.audit.record(
                AuditEvent::new(
                    "tool_loop",
                    Severity::NOTICE,
                    format!("identical `{tool}` call repeated {MAX_IDENTICAL_CALLS} times; turn stopped"),
                )
                .agent(name)
                .session(session_id),
            );
            let note = format!(
                "I stopped because the same `{tool}` call was repeated {MAX_IDENTICAL_CALLS} times without progress."
            );
            finish_with_note(agents, session_id, &mut pending, &note, events)?;
            final_text = note;
            break;
        }
    }
    if used_fallback {
        Metrics::add(&agents.metrics.fallbacks, 1);
    }
    events.event(TurnEvent::End { usage, cost_usd, model: final_model.as_ref().map(|m| m.to_string()) });
    Ok(TurnOutcome {
        session_id: session_id.to_string(),
        text: final_text,
        usage,
        cost_usd,
        model: final_model,
        attempts,
        used_fallback,
    })
}

/// The turn's state a tool call needs at the dispatch point.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub session_id: &'a str,
    pub boundary: &'a str,
    pub tools_allow: Option<&'a [String]>,
    /// Where the skills routed into the turn declared they write (see `RoutedSkills`).
    pub write_globs: Option<&'a std::sync::Arc<[String]>>,
    pub origin: TurnOrigin,
    pub sender: Option<&'a str>,
    /// The turn's run-time tools (from the agent's tool sources), by name.
    pub extra: &'a HashMap<String, std::sync::Arc<dyn clawdia_core::Tool>>,
}

async fn run_one(
    agents: &Agents,
    agent: &Agent,
    scope: Scope<'_>,
    call: &ToolCall,
    skip: bool,
    events: &dyn TurnEvents,
) -> Message {
    events.event(TurnEvent::ToolStart {
        id: call.id.clone(),
        name: call.name.clone(),
        arguments: call.arguments.clone(),
    });
    let result = if skip {
        Message::ToolResult {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content: format!(
                "error: not run: this identical call was already made {} times in this turn",
                MAX_IDENTICAL_CALLS - 1
            ),
            is_error: true,
        }
    } else {
        // Partial output travels through a channel: the tool's sink must be 'static, the turn's
        // event sink is borrowed. It is drained while the call runs and once more after.
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
        let progress: clawdia_core::ToolProgress = std::sync::Arc::new(move |text: &str| {
            let _ = sender.send(text.to_string());
        });
        let work = dispatch::dispatch(agents, agent, scope, call, Some(progress));
        tokio::pin!(work);
        let result = loop {
            tokio::select! {
                result = &mut work => break result,
                Some(text) = receiver.recv() => {
                    events.event(TurnEvent::ToolOutput { id: call.id.clone(), text });
                }
            }
        };
        while let Ok(text) = receiver.try_recv() {
            events.event(TurnEvent::ToolOutput { id: call.id.clone(), text });
        }
        result
    };
    if let Message::ToolResult { content, is_error, .. } = &result {
        // API clients see the result without the trust markers (the boundary is the model's).
        let summary: String = trust::unwrap(scope.boundary, content).chars().take(200).collect();
        events.event(TurnEvent::ToolEnd {
            id: call.id.clone(),
            name: call.name.clone(),
            is_error: *is_error,
            summary,
        });
    }
    result
}

/// Ends a turn with an explanatory assistant message, stored and streamed.
fn finish_with_note(
    agents: &Agents,
    session_id: &str,
    pending: &mut Vec<Message>,
    note: &str,
    events: &dyn TurnEvents,
) -> Result<(), TurnError> {
    pending.push(Message::assistant(note));
    agents.store.append(session_id, pending).map_err(store_error)?;
    pending.clear();
    events.event(TurnEvent::TextDelta { text: note.to_string() });
    Ok(())
}

/// Counts and audits every attempt of one chain run and tells the caller what followed each
/// failure: a retry of the same model, a fallback to the next one, or nothing (the turn's error
/// then says what happened, and no fallback is claimed).
fn record_attempts(
    agents: &Agents,
    agent: &str,
    session_id: &str,
    attempts: &[clawdia_core::Attempt],
    events: &dyn TurnEvents,
) {
    Metrics::add(&agents.metrics.model_calls, attempts.len() as u64);
    for (index, attempt) in attempts.iter().enumerate() {
        let Some(reason) = &attempt.failure else { continue };
        Metrics::add(&agents.metrics.model_failures, 1);
        let failed =
            format!("{} failed ({reason}): {}", attempt.model, attempt.detail.as_deref().unwrap_or(""));
        let (kind, severity, detail) = match attempts.get(index + 1) {
            Some(next) if next.retry > 0 => {
                events.event(TurnEvent::Retry {
                    model: attempt.model.to_string(),
                    reason: reason.clone(),
                    attempt: next.retry,
                });
                (
                    "provider_retry",
                    Severity::NOTICE,
                    format!("{failed}; retry {} of the same model", next.retry),
                )
            }
            Some(next) => {
                events.event(TurnEvent::Fallback {
                    from: attempt.model.to_string(),
                    to: next.model.to_string(),
                    reason: reason.clone(),
                });
                ("provider_fallback", Severity::WARNING, format!("{failed}; falling back to {}", next.model))
            }
            None => ("provider_failed", Severity::WARNING, format!("{failed}; no fallback model left")),
        };
        agents.audit.record(AuditEvent::new(kind, severity, detail).agent(agent).session(session_id));
    }
}

/// Refuses the model call when the agent is over a daily cap (UTC day).
fn check_budget(agents: &Agents, agent: &Agent, session_id: &str) -> Result<(), TurnError> {
    let budget = agent.spec.budget;
    if budget.daily_tokens.is_none() && budget.daily_usd.is_none() {
        return Ok(());
    }
    let day_start = now_ms().div_euclid(86_400_000) * 86_400_000;
    let (tokens, usd) = agents.store.usage_since(&agent.spec.name, day_start).map_err(store_error)?;
    let over = match (budget.daily_tokens, budget.daily_usd) {
        (Some(limit), _) if tokens >= limit => Some(format!("{tokens} of {limit} tokens")),
        (_, Some(limit)) if usd >= limit => Some(format!("${usd:.4} of ${limit:.2}")),
        _ => None,
    };
    let Some(used) = over else { return Ok(()) };
    let message = format!(
        "agent `{}` has used its daily budget ({used} today, UTC); no model was called. It resets at 00:00 UTC.",
        agent.spec.name
    );
    Metrics::add(&agents.metrics.budget_blocks, 1);
    agents.audit.record(
        AuditEvent::new("budget_block", Severity::HIGH, message.clone())
            .agent(&agent.spec.name)
            .session(session_id),
    );
    Err(TurnError::BudgetExceeded(message))
}
