//! `clawdia broker`: the requests awaiting the owner — today the tool gate's approval requests.
//! `list` and `show` read `state/broker.db` directly (safe beside a running gateway); `approve`
//! and `deny` go through the running gateway when there is one (so the call runs with its MCP
//! servers and session locks), else the gateway is built in-process for the command.

use std::path::PathBuf;

use clawdia_core::elevation::{Elevation, ElevationStatus};
use clawdia_core::{Approval, ApprovalStatus, Decision, TurnEvent};
use clawdia_runtime::elevation::Elevations;

use crate::{BrokerCommand, Failure, Outcome, load_config};

pub async fn run(home: PathBuf, command: BrokerCommand) -> Outcome {
    let config = load_config(&home)?;
    match command {
        BrokerCommand::List { json, pending, limit } => {
            let store = clawdia_runtime::approvals::open(&config).map_err(Failure::config)?;
            let mut list = store.list(pending, limit)?;
            let elevations = elevations(&home, pending, limit)?;
            // The broker's own requests show their finer state.
            let finer: std::collections::HashMap<String, &'static str> =
                elevations.iter().map(|e| (e.id.clone(), e.status.as_str())).collect();
            list.extend(elevations.iter().map(Elevations::as_approval));
            list.sort_by_key(|approval| std::cmp::Reverse(approval.created_at));
            list.truncate(limit);
            let status = |approval: &Approval| -> &'static str {
                match finer.get(&approval.id) {
                    Some(state) if approval.kind == clawdia_runtime::elevation::KIND => state,
                    _ => status_now(approval),
                }
            };
            if json {
                let rows: Vec<serde_json::Value> = list
                    .iter()
                    .map(|approval| {
                        let mut row = as_json(approval);
                        row["status"] = serde_json::json!(status(approval));
                        row
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else if list.is_empty() {
                println!("No requests{}.", if pending { " waiting" } else { "" });
            } else {
                println!("{:<10} {:<17} {:<12} {:<20} SUMMARY", "ID", "STATUS", "AGENT", "CREATED (UTC)");
                for approval in &list {
                    println!(
                        "{:<10} {:<17} {:<12} {:<20} {}",
                        approval.id,
                        status(approval),
                        approval.agent,
                        short_time(approval.created_at),
                        approval.summary()
                    );
                }
            }
            Ok(())
        }
        BrokerCommand::Show { id } => {
            let broker = clawdia_store::Broker::open(&clawdia_runtime::state_dir(&home))?;
            if let Some(elevation) = broker.elevation(&id)? {
                print_elevation(&elevation);
                return Ok(());
            }
            let store = clawdia_runtime::approvals::open(&config).map_err(Failure::config)?;
            let approval =
                store.get(&id)?.ok_or_else(|| format!("no request `{id}` (see `clawdia broker list`)"))?;
            print_request(&approval);
            Ok(())
        }
        BrokerCommand::Approve { id, note } => decide(home, config, id, true, note).await,
        BrokerCommand::Deny { id, note } => decide(home, config, id, false, note).await,
        BrokerCommand::Reply { id, text } => {
            let outcome = match clawdia_runtime::remote::find(&home).await {
                Some(addr) => {
                    let token = clawdia_runtime::gateway_token(&config, addr.ip())?;
                    clawdia_runtime::remote::reply(addr, &token, &id, &text).await?
                }
                None => {
                    let runtime = clawdia_runtime::build(config).map_err(Failure::config)?;
                    runtime.gateway.operator_reply(&id, &text).await?
                }
            };
            let reading = match &outcome.reading {
                clawdia_core::elevation::Reading::Approve => "approve",
                clawdia_core::elevation::Reading::Deny => "deny",
                clawdia_core::elevation::Reading::Question => "a question",
                clawdia_core::elevation::Reading::Modify { .. } => "a change",
            };
            println!("Read as {reading}; request {id} is {}.", outcome.status.as_str());
            println!("{}", outcome.message);
            Ok(())
        }
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
            let decided = runtime.gateway.decide(&id, Decision { approve, note }, &ignore).await?;
            match decided.turn {
                None => (decided.approval, None, None),
                Some(Ok(outcome)) => (decided.approval, Some(outcome.text), None),
                Some(Err(error)) => (decided.approval, None, Some(error.to_string())),
            }
        }
    };
    let elevation = approval.kind == clawdia_runtime::elevation::KIND;
    let what = match approval.status {
        ApprovalStatus::Done if elevation => "approved; the commands ran".to_string(),
        ApprovalStatus::Failed if elevation => format!(
            "approved, but the commands failed: {}",
            approval.result.as_deref().map(clawdia_core::one_line).unwrap_or_default()
        ),
        ApprovalStatus::Denied if elevation => "denied; nothing ran".to_string(),
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

/// The broker's elevation requests, newest first.
fn elevations(home: &std::path::Path, pending: bool, limit: usize) -> Result<Vec<Elevation>, Failure> {
    let broker = clawdia_store::Broker::open(&clawdia_runtime::state_dir(home))?;
    let statuses: &[ElevationStatus] = if pending {
        &[ElevationStatus::Received, ElevationStatus::Assessing, ElevationStatus::AwaitingOperator]
    } else {
        &[]
    };
    Ok(broker.elevations(statuses, limit)?)
}

fn print_elevation(elevation: &Elevation) {
    println!("Request {} (elevation)", elevation.id);
    println!("  status:     {}", elevation.status.as_str());
    println!(
        "  asked by:   {} (session {})",
        elevation.filed.agent.as_deref().unwrap_or("outside Clawdia"),
        elevation.filed.session.as_deref().unwrap_or("-")
    );
    println!("  action:     {}", elevation.filed.action);
    println!("  reason:     {}", elevation.filed.reason);
    println!("  urgency:    {}", elevation.filed.urgency.as_str());
    for line in elevation.command_lines() {
        println!("  command:    {line}");
    }
    println!("  created:    {}", clawdia_core::time::rfc3339_utc(elevation.created_at));
    println!("  expires:    {}", clawdia_core::time::rfc3339_utc(elevation.expires_at));
    if let Some(assessment) = &elevation.assessment {
        println!("  assessment: {}", assessment.replace('\n', "\n              "));
    }
    if let Some(note) = &elevation.note {
        println!("  note:       {note}");
    }
    if let Some(result) = &elevation.result {
        println!("  result:     {}", result.replace('\n', "\n              "));
    }
    if elevation.status == ElevationStatus::AwaitingOperator {
        println!(
            "Decide with `clawdia broker approve {0}` or `clawdia broker deny {0}` (--note TEXT).",
            elevation.id
        );
    }
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
