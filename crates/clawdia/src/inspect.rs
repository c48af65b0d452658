//! Read-mostly commands: `status`, `agents list`, and `sessions list|show|export|import|repair`.
//! They open the state databases directly (WAL lets them run beside a live gateway).

use std::io::Write;
use std::path::{Path, PathBuf};

use clawdia_core::time::rfc3339_utc;
use clawdia_core::{Message, SessionStore, Severity};
use clawdia_store::Store;

use crate::{Outcome, SessionsCommand, load_config};

fn open_store(home: &Path) -> Result<Store, crate::Failure> {
    let dir = clawdia_runtime::state_dir(home);
    Store::open(&dir).map_err(|e| crate::Failure::from(format!("cannot open {}: {e}", dir.display())))
}

pub async fn status(home: PathBuf) -> Outcome {
    println!("home:     {}", home.display());
    let config = match clawdia_config::load(&home) {
        Ok(config) => {
            println!("config:   ok ({} providers, {} agents)", config.providers.len(), config.agents.len());
            Some(config)
        }
        Err(error) => {
            println!("config:   error: {error}");
            None
        }
    };
    match clawdia_runtime::remote::find(&home).await {
        Some(addr) => {
            println!("gateway:  running at http://{addr}");
            components(config.as_ref(), addr).await;
        }
        None => {
            let where_ =
                config.as_ref().map(|c| format!(" (configured for {}:{})", c.gateway.bind, c.gateway.port));
            println!("gateway:  not running{}", where_.unwrap_or_default());
        }
    }
    if let Some(config) = &config {
        for agent in config.agents.values() {
            let mut chain = vec![agent.model.to_string()];
            chain.extend(agent.fallbacks.iter().map(|m| m.to_string()));
            println!("agent:    {} -> {}", agent.name, chain.join(" -> "));
        }
    }
    let store = open_store(&home)?;
    let sessions = store.list(None, 100_000)?;
    println!("sessions: {}", sessions.len());
    if let Some(config) = &config
        && let Ok(approvals) = clawdia_runtime::approvals::open(config)
    {
        let now = clawdia_core::time::now_ms();
        let waiting: Vec<String> = approvals
            .list(true, 1000)?
            .into_iter()
            .filter(|approval| approval.expires_at > now)
            .map(|approval| format!("{} ({})", approval.id, approval.summary()))
            .collect();
        match waiting.len() {
            0 => println!("approvals: none waiting"),
            n => println!("approvals: {n} waiting for you (`clawdia broker list`): {}", waiting.join("; ")),
        }
    }
    let events = store.recent_audit(Severity::HIGH, 10)?;
    if events.is_empty() {
        println!("audit:    no high-severity events");
    } else {
        println!("audit:    recent high-severity events:");
        for record in events {
            let event = record.event;
            let agent = event.agent.map(|a| format!(" agent={a}")).unwrap_or_default();
            println!(
                "  {} [{}] {}{agent}: {}",
                rfc3339_utc(record.at),
                event.severity.0,
                event.kind,
                event.detail
            );
        }
    }
    Ok(())
}

/// The running gateway's components, one line each (`GET /v1/status`), or why they cannot be
/// shown.
async fn components(config: Option<&clawdia_config::Config>, addr: std::net::SocketAddr) {
    let Some(config) = config else {
        println!("daemon:   components unknown (the config does not load, so neither does the token)");
        return;
    };
    let status = match clawdia_runtime::gateway_token(config, addr.ip()) {
        Ok(token) => clawdia_runtime::remote::status(addr, &token).await,
        Err(error) => Err(error.to_string()),
    };
    match status {
        Err(error) => println!("daemon:   components unknown: {error}"),
        Ok(status) => {
            println!(
                "daemon:   pid {}, version {}, up {}",
                status.pid,
                status.version,
                uptime(status.uptime_secs)
            );
            for component in status.components {
                let mut line =
                    format!("  {:<12} {:<10} since {}", component.name, component.state, component.since);
                if component.restarts > 0 {
                    line.push_str(&format!(", {} restarts", component.restarts));
                }
                if let Some((attempt, at)) = &component.next_try {
                    line.push_str(&format!(", restart {attempt} at {at}"));
                }
                if let Some(error) = &component.error {
                    line.push_str(&format!(", last error: {error}"));
                }
                println!("{line}");
            }
        }
    }
}

/// `1d 2h`, `3h 4m`, `5m 6s`, `7s`.
fn uptime(secs: u64) -> String {
    let (days, hours, minutes, seconds) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds}s"),
        (0, 0, _) => format!("{minutes}m {seconds}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

pub fn agents(home: &Path) -> Outcome {
    let config = load_config(home)?;
    for agent in config.agents.values() {
        let mut chain = vec![agent.model.to_string()];
        chain.extend(agent.fallbacks.iter().map(|m| m.to_string()));
        println!("{}", agent.name);
        println!("  models:    {}", chain.join(" -> "));
        println!(
            "  tools:     allow [{}] deny [{}]",
            agent.tools.allow.join(", "),
            agent.tools.deny.join(", ")
        );
        println!("  workspace: {}", agent.workspace.display());
        let budget = match (agent.budget.daily_tokens, agent.budget.daily_usd) {
            (None, None) => "unlimited".to_string(),
            (tokens, usd) => format!(
                "{}{}",
                tokens.map(|t| format!("{t} tokens/day ")).unwrap_or_default(),
                usd.map(|u| format!("${u}/day")).unwrap_or_default()
            ),
        };
        println!("  budget:    {}", budget.trim());
    }
    Ok(())
}

pub fn sessions(home: &Path, command: SessionsCommand) -> Outcome {
    let store = open_store(home)?;
    match command {
        SessionsCommand::List { agent, limit } => {
            let list = store.list(agent.as_deref(), limit)?;
            if list.is_empty() {
                println!("no sessions");
            }
            for meta in list {
                println!(
                    "{}  {:<12} {:>5} messages  updated {}",
                    meta.id,
                    meta.agent,
                    meta.message_count,
                    rfc3339_utc(meta.updated_at)
                );
            }
        }
        SessionsCommand::Show { id } => {
            let meta = store.session(&id)?.ok_or_else(|| format!("no session `{id}`"))?;
            println!("session {} (agent {}, created {})", meta.id, meta.agent, rfc3339_utc(meta.created_at));
            for stored in store.messages(&id)? {
                let at = rfc3339_utc(stored.at);
                match stored.message {
                    Message::User { text } => println!("\n[{at}] user:\n{text}"),
                    Message::Assistant { text, tool_calls } => {
                        println!("\n[{at}] assistant:");
                        if !text.is_empty() {
                            println!("{text}");
                        }
                        for call in tool_calls {
                            println!("-> {}({}) [{}]", call.name, call.arguments, call.id);
                        }
                    }
                    Message::ToolResult { call_id, name, content, is_error } => {
                        let label = if is_error { "error" } else { "result" };
                        let shown: String = content.chars().take(2000).collect();
                        println!("\n[{at}] {name} {label} [{call_id}]:\n{shown}");
                    }
                }
            }
        }
        SessionsCommand::Export { id, output } => {
            if store.session(&id)?.is_none() {
                return Err(format!("no session `{id}`").into());
            }
            let lines = match output {
                Some(path) => {
                    let mut file =
                        std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    let lines = store.export_jsonl(&id, &mut file)?;
                    file.flush()?;
                    eprintln!("wrote {lines} lines to {}", path.display());
                    lines
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut lock = stdout.lock();
                    let lines = store.export_jsonl(&id, &mut lock)?;
                    lock.flush()?;
                    lines
                }
            };
            let _ = lines;
        }
        SessionsCommand::Import { path, agent } => {
            let config = load_config(home)?;
            if !config.agents.contains_key(&agent) {
                return Err(crate::Failure::config(format!("no agent named `{agent}`")));
            }
            let report = store.import_openclaw_jsonl(&agent, &path, &clawdia_core::random::hex(8)?)?;
            println!("imported {} messages into session {}", report.imported, report.session_id);
            if report.repaired > 0 {
                println!("added {} synthetic results for tool calls without one", report.repaired);
            }
            for (line, reason) in &report.skipped_lines {
                eprintln!("skipped {}:{line}: {reason}", path.display());
            }
        }
        SessionsCommand::Repair => {
            let problems = store.integrity_check()?;
            let mut repaired = 0;
            for meta in store.list(None, usize::MAX >> 1)? {
                repaired += store.open(&meta.agent, &meta.id, &meta.boundary)?.repaired;
            }
            println!("repaired {repaired} orphaned tool call(s)");
            let remaining = store.integrity_check()?;
            for problem in &remaining {
                println!("problem: {problem}");
            }
            if !remaining.is_empty() {
                return Err(format!(
                    "{} problem(s) remain (found {} before repair)",
                    remaining.len(),
                    problems.len()
                )
                .into());
            }
            println!("databases ok");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn uptime_shows_the_two_largest_units() {
        let shown: Vec<String> =
            [7, 65, 3 * 3600 + 4 * 60 + 5, 2 * 86_400 + 3 * 3600 + 59].map(super::uptime).into();
        assert_eq!(shown, ["7s", "1m 5s", "3h 4m", "2d 3h"]);
    }
}
