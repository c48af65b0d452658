//! `clawdia chat`: one turn (`-m`) or a REPL. When a gateway for this home is running the turn
//! goes through its HTTP API (so it shares the gateway's session locks and provider
//! cooldowns); otherwise the gateway is built in-process for the duration of the command.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use clawdia_core::{Gateway, TurnEvent, TurnOrigin, TurnRequest, Usage};
use clawdia_runtime::Runtime;

use crate::{Failure, Outcome, load_config};

/// Where turns run.
enum Backend {
    Remote { addr: std::net::SocketAddr, token: String },
    Local(Box<Runtime>),
}

/// What one turn produced, as printed by `--json`.
#[derive(Default)]
struct Summary {
    session: Option<String>,
    text: String,
    usage: Usage,
    cost_usd: f64,
    model: Option<String>,
    error: Option<String>,
    fallback_from: Vec<String>,
}

pub async fn run(
    home: PathBuf,
    agent: String,
    session: Option<String>,
    message: Option<String>,
    json: bool,
) -> Outcome {
    let config = load_config(&home)?;
    crate::warn_about(&config, false);
    if config.agents.is_empty() {
        return Err(Failure::config(format!("no agents are configured: {}", crate::ADD_AGENT_HINT)));
    }
    if !config.agents.contains_key(&agent) {
        let known: Vec<&str> = config.agents.keys().map(String::as_str).collect();
        return Err(Failure::config(format!("no agent named `{agent}` (configured: {})", known.join(", "))));
    }
    if let Some(agent_config) = config.agents.get(&agent) {
        clawdia_runtime::offline::check_chain(&config, agent_config)?;
    }
    let backend = match clawdia_runtime::remote::find(&home).await {
        Some(addr) => {
            let token = clawdia_runtime::gateway_token(&config, addr.ip())?;
            Backend::Remote { addr, token }
        }
        None => Backend::Local(Box::new(clawdia_runtime::build(config).map_err(Failure::config)?)),
    };
    match message {
        Some(message) => {
            let summary = turn(&backend, &agent, session, &message, !json).await;
            if json {
                let value = serde_json::json!({
                    "agent": agent,
                    "session": summary.session,
                    "text": summary.text,
                    "model": summary.model,
                    "usage": summary.usage,
                    "cost_usd": summary.cost_usd,
                    "error": summary.error,
                });
                println!("{value}");
            }
            match summary.error {
                Some(error) => Err(Failure::from(error)),
                None => Ok(()),
            }
        }
        None => repl(&backend, &agent, session).await,
    }
}

async fn repl(backend: &Backend, agent: &str, mut session: Option<String>) -> Outcome {
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        eprintln!("Chatting with `{agent}`. /new starts a new session, /exit or Ctrl-D leaves.");
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            eprint!("you> ");
            let _ = std::io::stderr().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/new" => {
                session = None;
                eprintln!("(new session)");
                continue;
            }
            _ => {}
        }
        let summary = turn(backend, agent, session.clone(), line, true).await;
        if let Some(error) = &summary.error {
            eprintln!("clawdia: error: {error}");
        }
        if summary.session.is_some() {
            session = summary.session;
        }
    }
    Ok(())
}

/// Runs one turn, streaming text to stdout when `print` is set.
async fn turn(
    backend: &Backend,
    agent: &str,
    session: Option<String>,
    message: &str,
    print: bool,
) -> Summary {
    let summary = Mutex::new(Summary::default());
    let on_event = |event: TurnEvent| {
        let mut s = summary.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            TurnEvent::Started { session, .. } => s.session = Some(session),
            TurnEvent::TextDelta { text } => {
                if print {
                    print!("{text}");
                    let _ = std::io::stdout().flush();
                }
                s.text.push_str(&text);
            }
            // "<model> failed mid-reply; trying the fallback model <next>"; when no model is
            // left there is no discard and the turn's error says the reply was cut off.
            TurnEvent::Discard { reason } => {
                if print && !s.text.is_empty() {
                    println!();
                    eprintln!("[{reason}]");
                }
                s.text.clear();
            }
            TurnEvent::Fallback { from, reason, .. } => s.fallback_from.push(format!("{from} ({reason})")),
            TurnEvent::Retry { .. } => {}
            TurnEvent::ToolStart { name, .. } => {
                if print {
                    eprintln!("[tool {name}]");
                }
            }
            TurnEvent::ToolOutput { text, .. } => {
                if print {
                    eprint!("{text}");
                }
            }
            TurnEvent::ToolEnd { .. } => {}
            TurnEvent::ApprovalRequested { id, tool, .. } => {
                if print {
                    eprintln!("[`{tool}` waits for the owner's approval: clawdia broker approve {id}]");
                }
            }
            TurnEvent::Error { message } => s.error = Some(message),
            TurnEvent::End { usage, cost_usd, model } => {
                s.usage = usage;
                s.cost_usd = cost_usd;
                s.model = model;
            }
        }
    };
    match backend {
        Backend::Remote { addr, token } => {
            if let Err(error) =
                clawdia_runtime::remote::turn(*addr, token, agent, session.as_deref(), message, on_event)
                    .await
            {
                summary.lock().unwrap_or_else(|e| e.into_inner()).error = Some(error);
            }
        }
        Backend::Local(runtime) => {
            let request = TurnRequest {
                from_owner: true,
                agent: agent.to_string(),
                session,
                message: message.to_string(),
                origin: TurnOrigin::Cli,
                sender: None,
                history: Vec::new(),
                tools_allow: None,
                context: clawdia_core::TurnContext::Full,
                options: Default::default(),
            };
            if let Err(error) = runtime.agents.run_turn(request, &on_event).await {
                summary.lock().unwrap_or_else(|e| e.into_inner()).error = Some(error.to_string());
            }
        }
    }
    let mut summary = summary.into_inner().unwrap_or_else(|e| e.into_inner());
    // What this command prints of a failure (the error line, `--json`, the fallback note) has
    // every secret this process knows masked; a remote gateway masked its own already.
    summary.error = summary.error.map(clawdia_core::redact::redact_string);
    summary.fallback_from =
        summary.fallback_from.into_iter().map(clawdia_core::redact::redact_string).collect();
    if print {
        if !summary.text.is_empty() {
            println!();
        }
        if !summary.fallback_from.is_empty() && summary.error.is_none() {
            eprintln!(
                "[answered by fallback model {} after: {}]",
                summary.model.as_deref().unwrap_or("?"),
                summary.fallback_from.join(", ")
            );
        }
    }
    summary
}
