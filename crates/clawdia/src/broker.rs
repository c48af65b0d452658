//! `clawdia broker`: the requests awaiting the owner — today the tool gate's approval requests.
//! `list` and `show` read `state/broker.db` directly (safe beside a running gateway); `approve`
//! and `deny` go through the running gateway when there is one (so the call runs with its MCP
//! servers and session locks), else the gateway is built in-process for the command.

use std::path::PathBuf;

use clawdia_core::{Approval, ApprovalStatus, Decision, Gateway, TurnEvent};

use crate::{BrokerCommand, Failure, Outcome, load_config};

pub async fn run(home: PathBuf, command: BrokerCommand) -> Outcome {
    let config = load_config(&home)?;
    match command {
        BrokerCommand::List { json, pending, limit } => {
            let store = clawdia_runtime::approvals::open(&config).map_err(Failure::config)?;
            let list = store.list(pending, limit)?;
            if json {
                let rows: Vec<serde_json::Value> = list.iter().map(as_json).collect();
                println!("{}", serde_json::Value::Array(rows));
            } else if list.is_empty() {
                println!("No requests{}.", if pending { " waiting" } else { "" });
            } else {
                println!("{:<10} {:<9} {:<12} {:<20} SUMMARY", "ID", "STATUS", "AGENT", "CREATED (UTC)");
                for approval in &list {
                    println!(
                        "{:<10} {:<9} {:<12} {:<20} {}",
                        approval.id,
                        status_now(approval),
                        approval.agent,
                        short_time(approval.created_at),
                        approval.summary()
                    );
                }
            }
            Ok(())
        }
        BrokerCommand::Show { id } => {
            let store = clawdia_runtime::approvals::open(&config).map_err(Failure::config)?;
            let approval =
                store.get(&id)?.ok_or_else(|| format!("no request `{id}` (see `clawdia broker list`)"))?;
            print_request(&approval);
            Ok(())
        }
        BrokerCommand::Approve { id, note } => decide(home, config, id, true, note).await,
        BrokerCommand::Deny { id, note } => decide(home, config, id, false, note).await,
    }
}

async fn decide(
    home: PathBuf,
    config: clawdia_config::Config,
    id: String,
    approve: bool,
    note: Option<String>,
) -> Outcome {
    let (approval, reply, turn_error) = match clawdia_runtime::remote::find(&home).await {
        Some(addr) => {
            let token = clawdia_runtime::gateway_token(&config, addr.ip())?;
            clawdia_runtime::remote::decide(addr, &token, &id, approve, note.as_deref()).await?
        }
        None => {
            let runtime = clawdia_runtime::build(config).map_err(Failure::config)?;
            let ignore = |_event: TurnEvent| {};
            let decided = runtime.agents.decide(&id, Decision { approve, note }, &ignore).await?;
            match decided.turn {
                None => (decided.approval, None, None),
                Some(Ok(outcome)) => (decided.approval, Some(outcome.text), None),
                Some(Err(error)) => (decided.approval, None, Some(error.to_string())),
            }
        }
    };
    let what = match approval.status {
        ApprovalStatus::Done => format!("approved; `{}` ran", approval.tool),
        ApprovalStatus::Failed => format!(
            "approved, but `{}` failed: {}",
            approval.tool,
            approval.result.as_deref().map(clawdia_core::one_line).unwrap_or_default()
        ),
        ApprovalStatus::Denied => format!("denied; `{}` was not run", approval.tool),
        other => other.as_str().to_string(),
    };
    println!("Request {}: {what}.", approval.id);
    if let Some(reply) = reply {
        println!("{} (session {}): {reply}", approval.agent, approval.session);
    }
    if let Some(error) = turn_error {
        return Err(Failure::from(format!(
            "the agent could not continue session {}: {error}",
            approval.session
        )));
    }
    if approval.status == ApprovalStatus::Failed {
        return Err(Failure::from(format!("request {} failed", approval.id)));
    }
    Ok(())
}

/// The status as it stands now: a pending request past its TTL is expired even before the
/// gateway's sweep records it.
fn status_now(approval: &Approval) -> &'static str {
    if approval.status == ApprovalStatus::Pending && approval.expires_at <= clawdia_core::time::now_ms() {
        return ApprovalStatus::Expired.as_str();
    }
    approval.status.as_str()
}

fn short_time(ms: i64) -> String {
    let full = clawdia_core::time::rfc3339_utc(ms);
    full.get(..19).unwrap_or(&full).replace('T', " ")
}

fn as_json(approval: &Approval) -> serde_json::Value {
    let time = |ms: Option<i64>| ms.map(clawdia_core::time::rfc3339_utc);
    serde_json::json!({
        "id": approval.id,
        "kind": approval.kind,
        "status": status_now(approval),
        "agent": approval.agent,
        "session": approval.session,
        "summary": approval.summary(),
        "tool": approval.tool,
        "arguments": approval.arguments,
        "reason": approval.reason,
        "sender": clawdia_core::sender_id(approval.origin, approval.sender.as_deref()),
        "created_at": clawdia_core::time::rfc3339_utc(approval.created_at),
        "expires_at": clawdia_core::time::rfc3339_utc(approval.expires_at),
        "decided_at": time(approval.decided_at),
        "note": approval.note,
        "result": approval.result,
    })
}

fn print_request(approval: &Approval) {
    let sender = clawdia_core::sender_id(approval.origin, approval.sender.as_deref());
    println!("Request {} ({})", approval.id, approval.kind);
    println!("  status:     {}", status_now(approval));
    println!("  agent:      {} (session {}, started by {sender})", approval.agent, approval.session);
    println!("  tool:       {}", approval.tool);
    println!("  arguments:  {}", clawdia_core::redact::redact(&approval.arguments));
    println!("  why asked:  {}", approval.reason);
    println!("  created:    {}", clawdia_core::time::rfc3339_utc(approval.created_at));
    println!("  expires:    {}", clawdia_core::time::rfc3339_utc(approval.expires_at));
    if let Some(at) = approval.decided_at {
        println!("  decided:    {}", clawdia_core::time::rfc3339_utc(at));
    }
    if let Some(note) = &approval.note {
        println!("  note:       {note}");
    }
    if let Some(result) = &approval.result {
        println!("  result:     {}", clawdia_core::one_line(result));
    }
    if status_now(approval) == "pending" {
        println!(
            "Decide with `clawdia broker approve {0}` or `clawdia broker deny {0}` (--note TEXT).",
            approval.id
        );
    }
}
