//! Approval requests: what happens to a call the gate answered with "ask the owner".
//!
//! `file` stores the call exactly as the model made it (agent, session, call id, tool,
//! arguments) as a pending request, audits it and alerts the owner; the model gets a result
//! saying the call waits, and the turn ends after the round. `decide` applies the owner's
//! decision: a compare-and-set moves the request out of `pending` (so it is decided once), an
//! approved call is checked against the session's transcript — the session must hold this very
//! call with these very arguments — and runs through the same dispatch point with the stored
//! arguments, never re-generated; then the agent continues the session with the outcome.
//! `expire_due` does the same for requests nobody decided within the TTL, and records approved
//! calls that never reported back (the gateway stopped while they ran) as failed — never
//! running them again, since they may have taken effect.

use std::collections::HashMap;

use clawdia_core::{
    Alert, Approval, ApprovalError, ApprovalStatus, AuditEvent, Decided, Decision, Message, Severity,
    ToolCall, ToolError, Transition, TurnContext, TurnEvents, TurnOptions, TurnRequest,
};

use crate::gate::{Gate, Narrowing};
use crate::turn::Scope;
use crate::{Agent, Agents, dispatch, now_ms, trust};

/// Files an approval request for `call` and tells the owner. Returns its id and the text the
/// model gets instead of the call's result.
pub(crate) fn file(
    agents: &Agents,
    agent: &Agent,
    scope: Scope<'_>,
    call: &ToolCall,
    reason: &str,
) -> Result<(String, String), ToolError> {
    let name = agent.spec.name.as_str();
    let Some(store) = &agents.approvals else {
        return Err(ToolError::Refused(format!(
            "`{}` needs the owner's approval ({reason}) and this gateway keeps no approval requests",
            call.name
        )));
    };
    let id = clawdia_core::random::hex(4).map_err(|e| ToolError::Failed(e.to_string()))?;
    let now = now_ms();
    let ttl_ms = i64::try_from(agents.approval_ttl.as_millis()).unwrap_or(i64::MAX);
    let approval = Approval {
        id: id.clone(),
        kind: "tool_call".into(),
        status: ApprovalStatus::Pending,
        agent: name.to_string(),
        session: scope.session_id.to_string(),
        call_id: call.id.clone(),
        tool: call.name.clone(),
        arguments: call.arguments.clone(),
        origin: scope.gate.origin,
        sender: scope.sender.map(str::to_string),
        reason: reason.to_string(),
        created_at: now,
        expires_at: now.saturating_add(ttl_ms),
        decided_at: None,
        note: None,
        result: None,
    };
    store
        .create(&approval)
        .map_err(|e| ToolError::Failed(format!("the approval request could not be stored: {e}")))?;
    let sender = clawdia_core::sender_id(scope.gate.origin, scope.sender);
    agents.audit.record(
        AuditEvent::new(
            "approval_requested",
            Severity::NOTICE,
            format!(
                "request {id}: `{}` waits for the owner ({reason}); asked by {sender}",
                approval.summary()
            ),
        )
        .agent(name)
        .session(scope.session_id),
    );
    let arguments: String = clawdia_core::redact::redact(&call.arguments).chars().take(2_000).collect();
    let body = format!(
        "Agent `{name}` wants to run `{}` with:\n{arguments}\n\nWhy it asks: {reason}\nSession: {}\nStarted by: {sender}\nExpires: {}\n\nApprove: clawdia broker approve {id}\nDeny:    clawdia broker deny {id}",
        call.name,
        scope.session_id,
        clawdia_core::time::rfc3339_utc(approval.expires_at),
    );
    agents.notifier.notify(
        Alert::new(
            "approval_request",
            Severity::HIGH,
            format!("Approve `{}` for agent {name}? (request {id})", call.name),
            body,
        )
        .agent(name)
        .approval(&id),
    );
    let text = format!(
        "not run yet: calls to `{}` need the owner's approval. Request {id} is waiting for them; \
         once they decide, the outcome (and the call's result, if approved) comes to this session. \
         Do not repeat the call.",
        call.name
    );
    Ok((id, text))
}

fn store_error(error: clawdia_core::StoreError) -> ApprovalError {
    ApprovalError::Store(error.to_string())
}

/// Applies the owner's decision on request `id` (see the module doc).
pub(crate) async fn decide(
    agents: &Agents,
    id: &str,
    decision: Decision,
    events: &dyn TurnEvents,
) -> Result<Decided, ApprovalError> {
    let store = agents.approvals.as_ref().ok_or(ApprovalError::Unavailable)?;
    let approval =
        store.get(id).map_err(store_error)?.ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
    if approval.status != ApprovalStatus::Pending {
        return Err(ApprovalError::AlreadyDecided { id: id.to_string(), status: approval.status.as_str() });
    }
    let now = now_ms();
    if approval.expires_at <= now {
        expire(agents, approval, events).await;
        return Err(ApprovalError::Expired(id.to_string()));
    }
    let to = if decision.approve { ApprovalStatus::Approved } else { ApprovalStatus::Denied };
    let change = Transition {
        id,
        from: ApprovalStatus::Pending,
        to,
        at: now,
        note: decision.note.as_deref(),
        result: None,
    };
    if !store.transition(change).map_err(store_error)? {
        // Someone else decided first.
        let status = store.get(id).map_err(store_error)?.map(|a| a.status.as_str()).unwrap_or("gone");
        return Err(ApprovalError::AlreadyDecided { id: id.to_string(), status });
    }
    let note = decision.note.as_deref().map(str::trim).filter(|note| !note.is_empty());
    let with_note = note.map(|note| format!(" with the note: {note}")).unwrap_or_default();
    agents.audit.record(
        AuditEvent::new(
            if decision.approve { "approval_approved" } else { "approval_denied" },
            Severity::NOTICE,
            format!("request {id}: the owner {} `{}`{with_note}", to.as_str(), approval.summary()),
        )
        .agent(&approval.agent)
        .session(&approval.session),
    );
    let message = if decision.approve {
        match run_approved(agents, &approval).await {
            Ok(message) => message,
            Err(problem) => {
                let change = Transition {
                    id,
                    from: ApprovalStatus::Approved,
                    to: ApprovalStatus::Failed,
                    at: now_ms(),
                    note: None,
                    result: Some(&problem),
                };
                store.transition(change).map_err(store_error)?;
                agents.audit.record(
                    AuditEvent::new("approval_failed", Severity::WARNING, format!("request {id}: {problem}"))
                        .agent(&approval.agent)
                        .session(&approval.session),
                );
                let approval = store.get(id).map_err(store_error)?.unwrap_or(approval);
                return Ok(Decided { approval, turn: None });
            }
        }
    } else {
        format!(
            "The owner denied your `{}` call (request {id}){with_note}. It was not run. Do not try it again; \
             tell the user, and go on without it if you can.",
            approval.tool
        )
    };
    let turn = Some(continue_session(agents, &approval, message, events).await);
    let approval = store.get(id).map_err(store_error)?.unwrap_or(approval);
    Ok(Decided { approval, turn })
}

/// Runs the approved call — the stored one, checked against the session — and returns the
/// message that continues the session. Records `done` or `failed` with the result's start.
async fn run_approved(agents: &Agents, approval: &Approval) -> Result<String, String> {
    let agent = agents
        .agents
        .get(&approval.agent)
        .ok_or_else(|| format!("agent `{}` no longer exists; the call was not run", approval.agent))?;
    let lock = agents.session_lock(&approval.session);
    let dispatched = {
        let _guard = lock.lock().await;
        let boundary = clawdia_core::random::hex(8).map_err(|e| e.to_string())?;
        let stored =
            agents.store.open(&agent.spec.name, &approval.session, &boundary).map_err(|e| e.to_string())?;
        let call = stored
            .messages
            .iter()
            .filter_map(|message| match message {
                Message::Assistant { tool_calls, .. } => Some(tool_calls),
                _ => None,
            })
            .flatten()
            .find(|call| call.id == approval.call_id)
            .filter(|call| call.name == approval.tool && call.arguments == approval.arguments)
            .cloned()
            .ok_or_else(|| {
                format!(
                    "session `{}` holds no `{}` call {} with the approved arguments; the call was not run",
                    approval.session, approval.tool, approval.call_id
                )
            })?;
        let narrowing = Narrowing::default();
        let gate = Gate {
            agent,
            narrowing: &narrowing,
            origin: approval.origin,
            sender: approval.sender.as_deref(),
        };
        let (extra, _) = dispatch::source_tools(agents, agent, &approval.session, None).await;
        let extra: HashMap<_, _> = extra;
        let scope = Scope {
            session_id: &approval.session,
            boundary: &stored.meta.boundary,
            gate: &gate,
            write_globs: None,
            sender: approval.sender.as_deref(),
            extra: &extra,
            approved: Some(&approval.id),
        };
        let dispatched = dispatch::dispatch(agents, agent, scope, &call, None).await;
        (dispatched.message, stored.meta.boundary.clone())
    };
    agents.release_session_lock(&approval.session, lock);
    let (message, boundary) = dispatched;
    let Message::ToolResult { content, is_error, .. } = message else {
        return Err("the dispatch point gave no result".into());
    };
    let summary: String = trust::unwrap(&boundary, &content).chars().take(500).collect();
    let to = if is_error { ApprovalStatus::Failed } else { ApprovalStatus::Done };
    if let Some(store) = &agents.approvals {
        let change = Transition {
            id: &approval.id,
            from: ApprovalStatus::Approved,
            to,
            at: now_ms(),
            note: None,
            result: Some(&summary),
        };
        if let Err(error) = store.transition(change) {
            tracing::warn!(request = %approval.id, "cannot record the approved call's result: {error}");
        }
    }
    let how = if is_error { "It ran and failed" } else { "It ran" };
    Ok(format!(
        "The owner approved your `{}` call (request {}). {how}; its result:\n{content}\nContinue the task.",
        approval.tool, approval.id
    ))
}

/// The turn in which the agent learns what became of its request; the session's own origin
/// and sender, so the continuation has the rights the original turn had.
async fn continue_session(
    agents: &Agents,
    approval: &Approval,
    message: String,
    events: &dyn TurnEvents,
) -> Result<clawdia_core::TurnOutcome, clawdia_core::TurnError> {
    use clawdia_core::Gateway;
    let request = TurnRequest {
        agent: approval.agent.clone(),
        session: Some(approval.session.clone()),
        message,
        origin: approval.origin,
        sender: approval.sender.clone(),
        from_owner: true,
        history: Vec::new(),
        tools_allow: None,
        context: TurnContext::Full,
        options: TurnOptions::default(),
    };
    agents.run_turn(request, events).await
}

/// Records `approval` as expired (if it still is pending) and tells its session.
async fn expire(agents: &Agents, approval: Approval, events: &dyn TurnEvents) -> bool {
    let Some(store) = &agents.approvals else { return false };
    let change = Transition {
        id: &approval.id,
        from: ApprovalStatus::Pending,
        to: ApprovalStatus::Expired,
        at: now_ms(),
        note: None,
        result: None,
    };
    match store.transition(change) {
        Ok(true) => {}
        Ok(false) => return false,
        Err(error) => {
            tracing::warn!(request = %approval.id, "cannot expire a request: {error}");
            return false;
        }
    }
    agents.audit.record(
        AuditEvent::new(
            "approval_expired",
            Severity::NOTICE,
            format!("request {}: `{}` expired undecided; not run", approval.id, approval.summary()),
        )
        .agent(&approval.agent)
        .session(&approval.session),
    );
    let message = format!(
        "Your `{}` call (request {}) expired: the owner did not decide in time. It was not run; \
         tell the user, and do not repeat it unless they ask.",
        approval.tool, approval.id
    );
    if let Err(error) = continue_session(agents, &approval, message, events).await {
        tracing::warn!(request = %approval.id, "the agent could not be told its request expired: {error}");
    }
    true
}

/// An approved call reports back within the dispatch point's time cap; one that has not after
/// this long was cut off (the gateway or the CLI running it stopped).
const STRANDED_AFTER_MS: i64 = 5 * 60_000;

/// Records an approved call that never reported back as failed (it is never run again: it may
/// have taken effect) and tells its session.
async fn give_up(agents: &Agents, approval: Approval, events: &dyn TurnEvents) -> bool {
    let Some(store) = &agents.approvals else { return false };
    let problem = "the approved call did not report back (the gateway stopped while it ran); it may or may not have taken effect";
    let change = Transition {
        id: &approval.id,
        from: ApprovalStatus::Approved,
        to: ApprovalStatus::Failed,
        at: now_ms(),
        note: None,
        result: Some(problem),
    };
    match store.transition(change) {
        Ok(true) => {}
        Ok(false) => return false,
        Err(error) => {
            tracing::warn!(request = %approval.id, "cannot record a stranded request: {error}");
            return false;
        }
    }
    agents.audit.record(
        AuditEvent::new("approval_failed", Severity::WARNING, format!("request {}: {problem}", approval.id))
            .agent(&approval.agent)
            .session(&approval.session),
    );
    let message = format!(
        "Your approved `{}` call (request {}) did not report back: the gateway stopped while it ran, so it \
         may or may not have taken effect. Check before doing it again, and tell the user.",
        approval.tool, approval.id
    );
    if let Err(error) = continue_session(agents, &approval, message, events).await {
        tracing::warn!(request = %approval.id, "the agent could not be told its call was cut off: {error}");
    }
    true
}

/// Expires every pending request past its TTL and gives up on approved calls that never
/// reported back, telling each session; returns how many requests it settled.
pub(crate) async fn expire_due(agents: &Agents, events: &dyn TurnEvents) -> usize {
    let Some(store) = &agents.approvals else { return 0 };
    let mut settled = 0;
    match store.stranded(now_ms() - STRANDED_AFTER_MS) {
        Ok(stranded) => {
            for approval in stranded {
                if give_up(agents, approval, events).await {
                    settled += 1;
                }
            }
        }
        Err(error) => tracing::warn!("cannot look for stranded requests: {error}"),
    }
    let due = match store.due_to_expire(now_ms()) {
        Ok(due) => due,
        Err(error) => {
            tracing::warn!("cannot look for expired requests: {error}");
            return settled;
        }
    };
    for approval in due {
        if expire(agents, approval, events).await {
            settled += 1;
        }
    }
    settled
}
