//! The web UI's Control answers (`clawdia_server::web::Console`): agents with today's usage
//! against their budgets, sessions (with search) and transcripts, the owner's notifications,
//! the audit log, cron jobs (list, history, run now, pause and resume), the brain (search, a
//! page, uploads), MCP servers, skills and `doctor` — each from the running gateway's own
//! stores, as JSON in the shapes `docs/web-protocol.md` lists.

use std::path::PathBuf;
use std::sync::Arc;

use clawdia_core::{SessionStore as _, Severity};
use clawdia_server::web::control::UploadTarget;
use clawdia_server::web::{Console, ConsoleError, ConsoleRequest};
use serde_json::{Value, json};

/// What the answers are read from: the gateway's runtime, shared.
pub struct RuntimeConsole {
    runtime: Arc<clawdia_runtime::Runtime>,
    cron: Arc<clawdia_sched::Context>,
}

impl RuntimeConsole {
    pub fn new(runtime: Arc<clawdia_runtime::Runtime>) -> RuntimeConsole {
        let cron = clawdia_runtime::sched::context(&runtime);
        RuntimeConsole { runtime, cron }
    }
}

fn failed(error: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Failed(error.to_string())
}

/// Runs `work` on the blocking pool (SQLite reads).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ConsoleError> + Send + 'static,
) -> Result<T, ConsoleError> {
    tokio::task::spawn_blocking(work).await.map_err(|_| failed("the request stopped unexpectedly"))?
}

/// Midnight UTC today, in Unix milliseconds.
/// `[channels.telegram]`, or the answer that there is no bot.
fn telegram_config(
    runtime: &clawdia_runtime::Runtime,
) -> Result<&clawdia_config::TelegramConfig, ConsoleError> {
    runtime
        .config
        .channels
        .telegram
        .as_ref()
        .ok_or_else(|| ConsoleError::NotFound("no Telegram bot is configured ([channels.telegram])".into()))
}

fn today_ms() -> i64 {
    let now = clawdia_core::time::now_ms();
    now - now.rem_euclid(86_400_000)
}

#[async_trait::async_trait]
impl Console for RuntimeConsole {
    async fn answer(&self, request: ConsoleRequest) -> Result<Value, ConsoleError> {
        let runtime = self.runtime.clone();
        match request {
            ConsoleRequest::Agents => blocking(move || agents(&runtime)).await,
            ConsoleRequest::Sessions { agent, query, limit } => {
                blocking(move || sessions(&runtime, agent.as_deref(), query.as_deref(), limit)).await
            }
            ConsoleRequest::Session { id } => blocking(move || session(&runtime, &id)).await,
            ConsoleRequest::Notifications { limit } => {
                blocking(move || {
                    let alerts = runtime.recent_alerts(limit).map_err(failed)?;
                    Ok(Value::Array(
                        alerts
                            .iter()
                            .map(|queued| {
                                let alert = &queued.alert;
                                json!({
                                    "id": queued.id, "at": queued.created_ms, "kind": alert.kind,
                                    "severity": alert.severity.0, "title": alert.title, "body": alert.body,
                                    "agent": alert.agent, "approval": alert.approval,
                                })
                            })
                            .collect(),
                    ))
                })
                .await
            }
            ConsoleRequest::Audit { min_severity, limit } => {
                blocking(move || {
                    let records =
                        runtime.store.recent_audit(Severity(min_severity), limit).map_err(failed)?;
                    Ok(Value::Array(
                        records
                            .iter()
                            .map(|record| {
                                let event = &record.event;
                                json!({
                                    "id": record.id, "at": record.at, "kind": event.kind,
                                    "severity": event.severity.0, "message": event.detail,
                                    "agent": event.agent, "session": event.session,
                                })
                            })
                            .collect(),
                    ))
                })
                .await
            }
            ConsoleRequest::Cron => blocking(move || cron_jobs(&runtime)).await,
            ConsoleRequest::CronRuns { name, limit } => {
                blocking(move || {
                    runtime.cron.job(&name).map_err(|e| ConsoleError::NotFound(e.to_string()))?;
                    let runs = runtime.cron.history(&name, limit).map_err(failed)?;
                    Ok(Value::Array(runs.iter().map(run_json).collect()))
                })
                .await
            }
            ConsoleRequest::CronRun { name } => {
                let lookup = runtime.clone();
                let owned = name.clone();
                let job = blocking(move || {
                    lookup.cron.job(&owned).map_err(|e| ConsoleError::NotFound(e.to_string()))
                })
                .await?
                .job;
                let report =
                    clawdia_sched::run_job(&self.cron, &job, clawdia_sched::Trigger::Manual, None).await;
                let run = match report.run_id {
                    Some(id) => {
                        blocking(move || {
                            let runs = runtime.cron.history(&name, 20).map_err(failed)?;
                            Ok(runs.iter().find(|run| run.id == id).map(run_json))
                        })
                        .await?
                    }
                    None => None,
                };
                Ok(json!({
                    "status": report.status.as_str(),
                    "exit_code": report.exit_code,
                    "output": report.output,
                    "session": report.session,
                    "run": run,
                }))
            }
            ConsoleRequest::CronEnable { name, enabled } => {
                blocking(move || {
                    runtime.cron.set_enabled(&name, enabled).map_err(|error| match error {
                        clawdia_sched::SchedError::NotFound(_) => ConsoleError::NotFound(error.to_string()),
                        clawdia_sched::SchedError::Invalid(_) => ConsoleError::Invalid(error.to_string()),
                        other => failed(other),
                    })?;
                    Ok(Value::Null)
                })
                .await
            }
            ConsoleRequest::BrainSearch { query, limit } => {
                let search = clawdia_brain::Query::new(query, limit);
                let result = runtime.brain.search(&search).await.map_err(failed)?;
                Ok(Value::Array(
                    result
                        .hits
                        .iter()
                        .filter(|hit| !hit.expanded)
                        .map(|hit| {
                            json!({"slug": hit.slug, "title": hit.title, "snippet": hit.snippet, "score": hit.score})
                        })
                        .collect(),
                ))
            }
            ConsoleRequest::BrainPage { slug } => {
                let owned = slug.clone();
                let view = runtime
                    .brain
                    .blocking(move |db| clawdia_brain::ops::page_or_hint(db, &owned))
                    .await
                    .map_err(failed)?;
                match view {
                    Ok(page) => serde_json::to_value(&page).map_err(failed),
                    Err(hint) => Err(ConsoleError::NotFound(hint.to_string())),
                }
            }
            ConsoleRequest::Mcp => Ok(Value::Array(crate::mcp::servers_json(&runtime.config))),
            ConsoleRequest::Skills => {
                let home = runtime.config.home.clone();
                let agents: Vec<(String, PathBuf)> = runtime
                    .config
                    .agents
                    .values()
                    .map(|agent| (agent.name.clone(), agent.workspace.clone()))
                    .collect();
                blocking(move || {
                    let skills = clawdia_skills::Skills::new(Some(home.join("skills")));
                    let mut out = Vec::new();
                    for (agent, workspace) in agents {
                        let catalog = skills.catalog(&workspace);
                        let listed = crate::skills::as_json(&catalog);
                        if let Some(entries) = listed.get("skills").and_then(Value::as_array) {
                            for entry in entries {
                                let mut entry = entry.clone();
                                if let Value::Object(map) = &mut entry {
                                    map.insert("agent".into(), json!(agent));
                                    let state = if map.get("eligible") == Some(&json!(true)) {
                                        "ready"
                                    } else {
                                        "not eligible"
                                    };
                                    map.insert("state".into(), json!(state));
                                }
                                out.push(entry);
                            }
                        }
                    }
                    Ok(Value::Array(out))
                })
                .await
            }
            ConsoleRequest::TelegramPairings => {
                if runtime.config.channels.telegram.is_none() {
                    return Ok(json!({"configured": false, "requests": []}));
                }
                let pairings = clawdia_telegram::Telegram::open_pairings(&clawdia_runtime::state_dir(
                    &runtime.config.home,
                ))
                .await
                .map_err(failed)?;
                Ok(json!({"configured": true, "requests": pairings}))
            }
            ConsoleRequest::TelegramPair { code } => {
                let config = telegram_config(&runtime)?;
                let paired = clawdia_telegram::Telegram::pair(
                    config,
                    &clawdia_runtime::state_dir(&runtime.config.home),
                    &code,
                )
                .await
                .map_err(|error| match error {
                    clawdia_telegram::TelegramError::UnknownCode(_) => {
                        ConsoleError::NotFound(error.to_string())
                    }
                    other => failed(other),
                })?;
                Ok(
                    json!({"user_id": paired.user_id, "who": paired.who, "told": paired.told.is_ok(), "note": paired.told.err()}),
                )
            }
            ConsoleRequest::Doctor => {
                let checks = crate::doctor::checks(runtime.config.home.clone()).await;
                Ok(Value::Array(
                    checks
                        .into_iter()
                        .map(|check| json!({"check": check.check, "status": check.status, "detail": check.detail}))
                        .collect(),
                ))
            }
            ConsoleRequest::Upload { agent, to, name, bytes } => {
                upload(&runtime, &agent, to, &name, &bytes).await
            }
        }
    }
}

fn agents(runtime: &clawdia_runtime::Runtime) -> Result<Value, ConsoleError> {
    use clawdia_core::Gateway as _;
    let since = today_ms();
    let mut out = Vec::new();
    for info in runtime.agents.agents() {
        let (tokens, cost) = runtime.store.usage_since(&info.name, since).map_err(failed)?;
        let config = runtime.config.agents.get(&info.name);
        let models: Vec<String> =
            std::iter::once(&info.model).chain(&info.fallbacks).map(ToString::to_string).collect();
        out.push(json!({
            "name": info.name,
            "workspace": config.map(|c| c.workspace.display().to_string()),
            "models": models,
            "tools": info.tools,
            "usage_today": {"tokens": tokens, "cost_usd": cost},
            "budget": {
                "daily_usd": config.and_then(|c| c.budget.daily_usd),
                "daily_tokens": config.and_then(|c| c.budget.daily_tokens),
            },
        }));
    }
    Ok(Value::Array(out))
}

fn sessions(
    runtime: &clawdia_runtime::Runtime,
    agent: Option<&str>,
    query: Option<&str>,
    limit: usize,
) -> Result<Value, ConsoleError> {
    let listed = match query {
        Some(query) => runtime.store.search_sessions(agent, query, limit),
        None => runtime.store.list(agent, limit),
    }
    .map_err(failed)?;
    let ids: Vec<&str> = listed.iter().map(|meta| meta.id.as_str()).collect();
    let titles = runtime.store.session_titles(&ids).map_err(failed)?;
    Ok(Value::Array(
        listed
            .iter()
            .zip(titles)
            .map(|(meta, (_, title))| {
                json!({
                    "id": meta.id, "agent": meta.agent, "created_at": meta.created_at,
                    "updated_at": meta.updated_at, "message_count": meta.message_count, "title": title,
                })
            })
            .collect(),
    ))
}

fn session(runtime: &clawdia_runtime::Runtime, id: &str) -> Result<Value, ConsoleError> {
    let meta = runtime
        .store
        .session(id)
        .map_err(failed)?
        .ok_or_else(|| ConsoleError::NotFound(format!("no session `{id}`")))?;
    let messages = runtime.store.messages(id).map_err(failed)?;
    Ok(json!({
        "id": meta.id, "agent": meta.agent, "created_at": meta.created_at, "updated_at": meta.updated_at,
        "messages": messages,
    }))
}

fn run_json(run: &clawdia_sched::Run) -> Value {
    json!({
        "id": run.id, "trigger": run.trigger, "started_at": run.started_ms, "finished_at": run.ended_ms,
        "status": run.status.as_str(), "exit_code": run.exit_code, "output": run.output_tail,
        "cost_usd": run.cost_usd, "session": run.session,
    })
}

fn cron_jobs(runtime: &clawdia_runtime::Runtime) -> Result<Value, ConsoleError> {
    let jobs = runtime.cron.jobs().map_err(failed)?;
    let mut out = Vec::new();
    for stored in &jobs {
        let job = &stored.job;
        let (kind, agent) = match &job.action {
            clawdia_sched::Action::Exec { .. } => ("exec", None),
            clawdia_sched::Action::AgentTurn { agent, .. } => ("agent_turn", Some(agent.clone())),
            clawdia_sched::Action::Maintenance { .. } => ("maintenance", None),
        };
        let last = runtime.cron.history(&job.name, 1).map_err(failed)?;
        out.push(json!({
            "name": job.name,
            "schedule": job.schedule.describe(),
            "kind": kind,
            "agent": agent,
            "what": clawdia_sched::list_line(stored),
            "enabled": job.enabled,
            "next_run_at": if job.enabled { stored.next_due_ms } else { None },
            "failing": stored.consecutive_failures,
            "last_run": last.first().map(run_json),
        }));
    }
    Ok(Value::Array(out))
}

/// A file name from a browser as one safe path component, or why it cannot be one.
fn safe_name(name: &str) -> Result<String, ConsoleError> {
    clawdia_core::uploads::safe_name(name)
        .ok_or_else(|| ConsoleError::Invalid(format!("`{name}` is not a usable file name")))
}

async fn upload(
    runtime: &Arc<clawdia_runtime::Runtime>,
    agent: &str,
    to: UploadTarget,
    name: &str,
    bytes: &[u8],
) -> Result<Value, ConsoleError> {
    let config = runtime
        .config
        .agents
        .get(agent)
        .ok_or_else(|| ConsoleError::NotFound(format!("no agent `{agent}`")))?;
    let name = safe_name(name)?;
    match to {
        UploadTarget::Workspace => {
            let dir = config.workspace.join("uploads");
            let bytes = bytes.to_vec();
            let workspace = config.workspace.clone();
            blocking(move || {
                let path = clawdia_core::uploads::save_new(&dir, &name, &bytes).map_err(failed)?;
                let shown = path.strip_prefix(&workspace).unwrap_or(&path).display().to_string();
                Ok(json!({"path": shown}))
            })
            .await
        }
        UploadTarget::Brain => {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                ConsoleError::Invalid(
                    "the brain takes text (markdown or plain text); this file is not UTF-8 text".into(),
                )
            })?;
            let stem = name.rsplit_once('.').map_or(name.as_str(), |(stem, _)| stem);
            let slug: String = stem
                .to_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
                .split('-')
                .filter(|part| !part.is_empty())
                .collect::<Vec<_>>()
                .join("-");
            if slug.is_empty() {
                return Err(ConsoleError::Invalid(format!("`{name}` gives no page name")));
            }
            let slug = format!("uploads/{slug}");
            runtime.brain.put_markdown(&slug, Some(stem), text, "upload").await.map_err(failed)?;
            Ok(json!({"slug": slug}))
        }
    }
}
