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
    ToolCall, TurnContext, TurnError, TurnEvent, TurnEvents, TurnOutcome, TurnRequest, Usage,
};
use futures_util::future::join_all;

use crate::gate::{Gate, Narrowing};
use crate::metrics::Metrics;
use crate::{Agent, Agents, dispatch, now_ms, ondemand, prompt, trust};

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
    let stored = open_session(agents, agent, session_id)?;
    events.event(TurnEvent::Started { session: session_id.to_string(), agent: agent.spec.name.clone() });
    let boundary = stored.meta.boundary.clone();
    let (system, narrowing, write_globs) = plan(agents, agent, session_id, &request, &boundary);
    let gate =
        Gate { agent, narrowing: &narrowing, origin: request.origin, sender: request.sender.as_deref() };
    // Run-time tools (MCP servers granted to the agent), listed now: a server starts on the
    // first turn that can use it.
    let (extra, _) =
        dispatch::source_tools(agents, agent, session_id, narrowing.tools_allow.as_deref()).await;
    let on_demand = ondemand::candidates(agent, &gate, &extra);
    let offered = offered_tools(agent, &gate, &extra);
    let allowed = offered.iter().map(|spec| spec.name.clone());
    agents
        .hub
        .turn_started(session_id, allowed.chain(on_demand.iter().map(|t| t.spec().name.clone())).collect());
    let _offered_guard = OfferedGuard { hub: &agents.hub, session: session_id };
    let (mut transcript, mut pending) = seed_transcript(stored.messages, &request, &boundary);
    let scope = Scope {
        session_id,
        boundary: &boundary,
        gate: &gate,
        write_globs: write_globs.as_ref(),
        sender: request.sender.as_deref(),
        extra: &extra,
        approved: None,
    };
    let mut tally = Tally::default();
    let mut seen_calls: HashMap<(String, String), u32> = HashMap::new();
    let mut iteration = 0u32;
    let final_text = loop {
        if iteration >= agent.spec.max_tool_iterations {
            let note = format!(
                "I stopped after {iteration} rounds of tool calls, the limit for this agent (max_tool_iterations)."
            );
            finish_with_note(agents, session_id, &mut pending, &note, events)?;
            break note;
        }
        iteration += 1;
        check_budget(agents, agent, session_id)?;
        let chat = ChatRequest {
            model: String::new(),
            system: system.clone(),
            messages: transcript.clone(),
            tools: with_loaded(&offered, &on_demand, &transcript),
            max_tokens: request.options.max_tokens.unwrap_or(agent.spec.max_tokens),
            temperature: request.options.temperature.or(agent.spec.temperature),
            stop: request.options.stop.clone(),
            stream: true,
        };
        let (text, tool_calls) = call_model(agents, agent, session_id, chat, &mut tally, events).await?;
        let assistant = Message::Assistant { text: text.clone(), tool_calls: tool_calls.clone() };
        transcript.push(assistant.clone());
        pending.push(assistant);
        agents.store.append(session_id, &pending).map_err(store_error)?;
        pending.clear();
        if tool_calls.is_empty() {
            break text;
        }
        let round = run_tools(agents, agent, scope, &tool_calls, &mut seen_calls, events).await;
        transcript.extend(round.results.iter().cloned());
        agents.store.append(session_id, &round.results).map_err(store_error)?;
        if let Some(note) = round.stop_note(agents, agent, session_id) {
            finish_with_note(agents, session_id, &mut pending, &note, events)?;
            break note;
        }
    };
    if tally.used_fallback {
        Metrics::add(&agents.metrics.fallbacks, 1);
    }
    events.event(TurnEvent::End {
        usage: tally.usage,
        cost_usd: tally.cost_usd,
        model: tally.final_model.as_ref().map(|m| m.to_string()),
    });
    Ok(TurnOutcome {
        session_id: session_id.to_string(),
        text: final_text,
        usage: tally.usage,
        cost_usd: tally.cost_usd,
        model: tally.final_model,
        attempts: tally.attempts,
        used_fallback: tally.used_fallback,
        hit_max_tokens: tally.last_stop == Some(clawdia_core::StopReason::MaxTokens),
    })
}

/// What a turn's model calls added up to.
#[derive(Default)]
struct Tally {
    usage: Usage,
    cost_usd: f64,
    attempts: Vec<Attempt>,
    final_model: Option<ModelRef>,
    used_fallback: bool,
    /// Why the last model call stopped.
    last_stop: Option<clawdia_core::StopReason>,
}

/// Step 1: the session, loaded (and repaired: a repair is audited).
fn open_session(
    agents: &Agents,
    agent: &Agent,
    session_id: &str,
) -> Result<clawdia_core::StoredSession, TurnError> {
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
    Ok(stored)
}

/// Step 2: the system prompt and how skills narrow the turn (audited), plus where the triggered
/// skills confine writes.
fn plan(
    agents: &Agents,
    agent: &Agent,
    session_id: &str,
    request: &TurnRequest,
    boundary: &str,
) -> (String, Narrowing, Option<std::sync::Arc<[String]>>) {
    let name = agent.spec.name.as_str();
    let mut system = if request.context.is_light() {
        // The heartbeat gets its checklist; no other workspace file reaches a light turn.
        let files = match request.context {
            TurnContext::Heartbeat => {
                agent.prompt.heartbeat_section(&agent.spec.workspace, agent.spec.prompt_limits)
            }
            _ => String::new(),
        };
        prompt::system_prompt(
            name,
            &clawdia_core::time::utc_date(now_ms()),
            &trust::prompt_rule(boundary),
            &files,
        )
    } else {
        build_system_prompt(agent, boundary, now_ms())
    };
    if let Some(extra) = request.options.system.as_deref().map(str::trim).filter(|text| !text.is_empty()) {
        // The caller holds the owner's token: its instructions are the owner's, unwrapped.
        system.push_str("\n\n## Instructions for this conversation\n\n");
        system.push_str(extra);
    }
    let mut narrowing = Narrowing { tools_allow: request.tools_allow.clone(), ..Narrowing::default() };
    let mut write_globs = None;
    let Some(router) = agents.skills.as_ref().filter(|_| !request.context.is_light()) else {
        return (system, narrowing, write_globs);
    };
    let audit = |kind: &str, severity: Severity, detail: String| {
        agents.audit.record(AuditEvent::new(kind, severity, detail).agent(name).session(session_id));
    };
    let routed = router.route(name, &agent.spec.workspace, &request.message);
    if !routed.prompt.is_empty() {
        system.push_str("\n\n");
        system.push_str(&routed.prompt);
    }
    if let Some(globs) = &routed.write_globs {
        // The triggered skills declared where they write: file writes go there only.
        write_globs = Some(globs.clone().into());
        narrowing.write_confined = true;
        let allowed = if globs.is_empty() { "nowhere".to_string() } else { globs.join(", ") };
        audit(
            "skill_writes",
            Severity::INFO,
            format!(
                "skill(s) {} declare their writes: workspace writes confined to {allowed} this turn",
                routed.names.join(", ")
            ),
        );
    }
    if routed.read_only || routed.declared_read_only {
        // An untrusted skill is in play, or the triggered skills all declare they change
        // nothing: only tools that change nothing, and only those the turn could use anyway.
        let narrowed: Vec<String> = clawdia_core::READ_ONLY_TOOLS
            .iter()
            .filter(|tool| {
                let group = agent.tools.get(**tool).map(|t| t.group()).unwrap_or_default();
                narrowing
                    .tools_allow
                    .as_ref()
                    .is_none_or(|list| list.iter().any(|e| e == *tool || e == group))
            })
            .map(|tool| tool.to_string())
            .collect();
        let (kind, why) = if routed.read_only {
            ("untrusted_skill", "untrusted skill(s)")
        } else {
            ("read_only_skill", "skill(s) declaring `mutating: false`")
        };
        let why = format!("{why} {} routed in: read-only tools this turn", routed.names.join(", "));
        audit(kind, Severity::NOTICE, why.clone());
        narrowing.tools_allow = Some(narrowed);
        narrowing.why = Some(why);
    }
    (system, narrowing, write_globs)
}

/// The tools of one model call: the turn's offered tools, the on-demand tools the session has
/// loaded, and `tool_search` while some are left to load; sorted by name.
fn with_loaded(
    offered: &[clawdia_core::ToolSpec],
    on_demand: &[&std::sync::Arc<dyn clawdia_core::Tool>],
    transcript: &[Message],
) -> Vec<clawdia_core::ToolSpec> {
    let loaded = ondemand::loaded(transcript, on_demand);
    let (now, waiting): (Vec<&std::sync::Arc<dyn clawdia_core::Tool>>, Vec<_>) =
        on_demand.iter().copied().partition(|tool| loaded.contains(&tool.spec().name));
    let mut tools: Vec<clawdia_core::ToolSpec> = offered.to_vec();
    tools.extend(now.iter().map(|tool| tool.spec().clone()));
    if !waiting.is_empty() {
        tools.push(ondemand::spec(&waiting));
    }
    tools.sort_by(|a, b| a.name.cmp(&b.name));
    tools
}

/// Step 3: the tools the model is offered every call — the built-in and run-time tools the gate
/// does not deny, but for on-demand ones (see `ondemand`) — sorted by name.
fn offered_tools(
    agent: &Agent,
    gate: &Gate<'_>,
    extra: &HashMap<String, std::sync::Arc<dyn clawdia_core::Tool>>,
) -> Vec<clawdia_core::ToolSpec> {
    let mut offered: Vec<clawdia_core::ToolSpec> = agent
        .tools
        .values()
        .filter(|tool| gate.offers(&tool.spec().name, tool.group(), false))
        .chain(extra.values().filter(|tool| gate.offers(&tool.spec().name, tool.group(), true)))
        .filter(|tool| !tool.on_demand() || gate.names_explicitly(&tool.spec().name))
        .map(|tool| tool.spec().clone())
        .collect();
    offered.sort_by(|a, b| a.name.cmp(&b.name));
    offered
}

/// Step 4: the transcript the model sees and the messages not yet stored: the stored session
/// (only its last few exchanges for a light turn), or the caller's history for a new one, then
/// the user message — inside trust markers when it is not the owner's.
fn seed_transcript(
    mut transcript: Vec<Message>,
    request: &TurnRequest,
    boundary: &str,
) -> (Vec<Message>, Vec<Message>) {
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
        transcript.extend(request.history.iter().cloned());
    }
    let text = if request.from_owner {
        request.message.clone()
    } else {
        let source = clawdia_core::sender_id(request.origin, request.sender.as_deref());
        trust::wrap(boundary, &format!("message:{source}"), &request.message)
    };
    let user = Message::user(text);
    transcript.push(user.clone());
    pending.push(user);
    (transcript, pending)
}

/// Step 5: one run of the model chain, audited and counted; the reply's text and tool calls.
async fn call_model(
    agents: &Agents,
    agent: &Agent,
    session_id: &str,
    chat: ChatRequest,
    tally: &mut Tally,
    events: &dyn TurnEvents,
) -> Result<(String, Vec<ToolCall>), TurnError> {
    let name = agent.spec.name.as_str();
    let forward = Forward { events, shown: AtomicBool::new(false) };
    let outcome = agents.models.complete(&agent.spec.chain, chat, &forward).await;
    record_attempts(agents, name, session_id, &outcome.attempts, events);
    let (model, response) = match outcome.result {
        Ok(ok) => ok,
        Err(error) => {
            let cut_off = forward.shown.load(Ordering::Relaxed);
            let message = chain_failure(&error, &outcome.attempts, cut_off);
            tally.attempts.extend(outcome.attempts);
            return Err(TurnError::ModelsFailed {
                message,
                attempts: std::mem::take(&mut tally.attempts),
                retry_after: outcome.retry_after,
            });
        }
    };
    tally.attempts.extend(outcome.attempts);
    if model != agent.spec.chain[0] {
        tally.used_fallback = true;
    }
    let call_cost = (agents.pricer)(&model, &response.usage);
    agents.store.record_usage(name, session_id, &model, &response.usage, call_cost).map_err(store_error)?;
    Metrics::add(&agents.metrics.input_tokens, response.usage.input_tokens);
    Metrics::add(&agents.metrics.output_tokens, response.usage.output_tokens);
    Metrics::add(&agents.metrics.cost_micro_usd, (call_cost * 1e6) as u64);
    tally.usage.add(&response.usage);
    tally.cost_usd += call_cost;
    tally.final_model = Some(model);
    tally.last_stop = Some(response.stop_reason);
    match response.message {
        Message::Assistant { text, tool_calls } => Ok((text, tool_calls)),
        _ => Err(TurnError::Session("the model reply was not an assistant message".into())),
    }
}

/// What one round of tool calls came to.
struct Round {
    results: Vec<Message>,
    /// A tool whose identical call was repeated too often.
    repeated: Option<String>,
    /// Approval requests filed this round: (id, tool).
    asked: Vec<(String, String)>,
}

impl Round {
    /// Why the turn ends after this round, as the note the user reads; audited.
    fn stop_note(&self, agents: &Agents, agent: &Agent, session_id: &str) -> Option<String> {
        if let Some(tool) = &self.repeated {
            agents.audit.record(
                AuditEvent::new(
                    "tool_loop",
                    Severity::NOTICE,
                    format!("identical `{tool}` call repeated {MAX_IDENTICAL_CALLS} times; turn stopped"),
                )
                .agent(&agent.spec.name)
                .session(session_id),
            );
            return Some(format!(
                "I stopped because the same `{tool}` call was repeated {MAX_IDENTICAL_CALLS} times without progress."
            ));
        }
        if self.asked.is_empty() {
            return None;
        }
        let list: Vec<String> =
            self.asked.iter().map(|(id, tool)| format!("`{tool}` (request {id})")).collect();
        Some(format!(
            "Waiting for the owner's approval of {}. I will continue once they decide (`clawdia broker approve ID` or `deny ID`).",
            list.join(", ")
        ))
    }
}

/// Step 6: the round's tool calls, run at once through the dispatch point (identical calls
/// past the limit are not run).
async fn run_tools(
    agents: &Agents,
    agent: &Agent,
    scope: Scope<'_>,
    tool_calls: &[ToolCall],
    seen_calls: &mut HashMap<(String, String), u32>,
    events: &dyn TurnEvents,
) -> Round {
    let mut repeated: Option<String> = None;
    let runs: Vec<_> = tool_calls
        .iter()
        .map(|call| {
            let count = seen_calls.entry((call.name.clone(), call.arguments.clone())).or_insert(0);
            *count += 1;
            let skip = *count >= MAX_IDENTICAL_CALLS;
            if skip {
                repeated = Some(call.name.clone());
            }
            run_one(agents, agent, scope, call, skip, events)
        })
        .collect();
    let mut results = Vec::new();
    let mut asked = Vec::new();
    for (call, (message, approval)) in tool_calls.iter().zip(join_all(runs).await) {
        results.push(message);
        if let Some(id) = approval {
            asked.push((id, call.name.clone()));
        }
    }
    Round { results, repeated, asked }
}

/// The turn's state a tool call needs at the dispatch point.
#[derive(Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub session_id: &'a str,
    pub boundary: &'a str,
    /// The turn's gate: the agent's policy and the turn's narrowing.
    pub gate: &'a Gate<'a>,
    /// Where the skills routed into the turn declared they write (see `RoutedSkills`).
    pub write_globs: Option<&'a std::sync::Arc<[String]>>,
    pub sender: Option<&'a str>,
    /// The turn's run-time tools (from the agent's tool sources), by name.
    pub extra: &'a HashMap<String, std::sync::Arc<dyn clawdia_core::Tool>>,
    /// The approval request the owner approved, when this call runs because of it.
    pub approved: Option<&'a str>,
}

async fn run_one(
    agents: &Agents,
    agent: &Agent,
    scope: Scope<'_>,
    call: &ToolCall,
    skip: bool,
    events: &dyn TurnEvents,
) -> (Message, Option<String>) {
    events.event(TurnEvent::ToolStart {
        id: call.id.clone(),
        name: call.name.clone(),
        arguments: call.arguments.clone(),
    });
    let (result, approval) = if skip {
        let result = Message::ToolResult {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content: format!(
                "error: not run: this identical call was already made {} times in this turn",
                MAX_IDENTICAL_CALLS - 1
            ),
            is_error: true,
        };
        (result, None)
    } else {
        // Partial output travels through a channel: the tool's sink must be 'static, the turn's
        // event sink is borrowed. It is drained while the call runs and once more after.
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
        let progress: clawdia_core::ToolProgress = std::sync::Arc::new(move |text: &str| {
            let _ = sender.send(text.to_string());
        });
        let work = dispatch::dispatch(agents, agent, scope, call, Some(progress));
        tokio::pin!(work);
        let dispatched = loop {
            tokio::select! {
                dispatched = &mut work => break dispatched,
                Some(text) = receiver.recv() => {
                    events.event(TurnEvent::ToolOutput { id: call.id.clone(), text });
                }
            }
        };
        while let Ok(text) = receiver.try_recv() {
            events.event(TurnEvent::ToolOutput { id: call.id.clone(), text });
        }
        (dispatched.message, dispatched.approval)
    };
    if let Some(id) = &approval {
        events.event(TurnEvent::ApprovalRequested {
            id: id.clone(),
            tool: call.name.clone(),
            reason: format!("calls to `{}` need the owner's approval", call.name),
        });
    }
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
    (result, approval)
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
