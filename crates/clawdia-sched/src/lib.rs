//! The scheduler: jobs on cron expressions (with a time zone, correct across DST changes),
//! intervals and one-off times; `exec` jobs (shell commands, sandboxed unless the owner allows
//! host jobs) and `agentTurn` jobs (a prompt through the `Gateway` seam, so budgets and tool
//! policy apply, narrowed by the job's `tools_allow`); per-job hard timeouts, failure alerts,
//! catch-up after downtime; the heartbeat; maintenance templates; the `cron` agent tool. Jobs,
//! run history and locks live in `state/cron.db`.
//!
//! No wedges: every host command leads its own process group, its descendants are tracked, and
//! at the end its whole tree is killed (`process`); the gateway is a child subreaper so escaped
//! grandchildren come back to it. Locks (`lock`) record host, boot, PID and PID start time and
//! are taken over only from a provably dead holder on this host.
//!
//! Architecture invariant: a capability crate. It depends on clawdia-core, clawdia-config and
//! clawdia-sandbox only; agent turns arrive through `Gateway`, other databases and the brain
//! through the `Housekeeping` trait the runtime implements.

pub mod db;
pub mod job;
pub mod lock;
pub mod maintenance;
pub mod process;
pub mod procfs;
pub mod runner;
pub mod schedule;
pub mod scheduler;
pub mod tool;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clawdia_config::{Config, CronAction, CronSchedule, SecretRotation};
use clawdia_core::{AuditSink, Gateway, Notifier};

pub use db::{CronDb, Run, Status, StoredJob};
pub use job::{Action, CatchUp, Heartbeat, Job, Source, Task};
pub use lock::Holder;
pub use maintenance::{Housekeeping, TaskDone};
pub use runner::{Report, Trigger, run_job};
pub use schedule::Schedule;
pub use tool::CronTool;

/// A scheduler failure, one line naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchedError {
    #[error("{0}")]
    Invalid(String),
    #[error("no job named `{0}`")]
    NotFound(String),
    #[error("a job named `{0}` already exists")]
    Exists(String),
    #[error("cron.db: {0}")]
    Db(String),
}

/// The scheduler's settings, from `[cron]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub home: PathBuf,
    /// The working folder of `exec` jobs.
    pub workspace: PathBuf,
    pub allow_host_jobs: bool,
    pub sandbox: clawdia_sandbox::Choice,
    /// The binary that serves as the sandbox helper (the running `clawdia`).
    pub helper: PathBuf,
    /// Paths sandboxed jobs must not see.
    pub hidden: Vec<PathBuf>,
    pub kill_grace: Duration,
    pub catch_up_grace: Duration,
    pub failure_hook: Option<String>,
    pub history_days: u64,
    pub prune_days: u64,
    pub secret_rotation: Vec<SecretRotation>,
    /// On shutdown, how long runs in progress may go on (no new run starts) before they are
    /// cancelled and marked interrupted: the gateway's `drain_secs`.
    pub drain: Duration,
}

impl Settings {
    pub fn from_config(config: &Config, helper: PathBuf) -> Settings {
        let cron = &config.cron;
        Settings {
            home: config.home.clone(),
            workspace: cron.workspace.clone(),
            allow_host_jobs: cron.allow_host_jobs,
            sandbox: match cron.sandbox {
                clawdia_config::Sandbox::Auto => clawdia_sandbox::Choice::Auto,
                clawdia_config::Sandbox::Bwrap => clawdia_sandbox::Choice::Bubblewrap,
                clawdia_config::Sandbox::Builtin => clawdia_sandbox::Choice::Builtin,
                clawdia_config::Sandbox::Off => clawdia_sandbox::Choice::Off,
            },
            helper,
            hidden: vec![config.home.join("secrets"), config.home.join("state")],
            kill_grace: cron.kill_grace,
            catch_up_grace: cron.catch_up_grace,
            failure_hook: cron.failure_hook.clone(),
            history_days: cron.history_days,
            prune_days: cron.maintenance.prune_days,
            secret_rotation: config.secret_rotation.clone(),
            drain: config.gateway.drain,
        }
    }
}

/// What a run needs: the database, the audit log, the owner's outbox, the agents, and the
/// settings.
pub struct Context {
    pub db: Arc<CronDb>,
    pub audit: Arc<dyn AuditSink>,
    /// Where alerts for the owner go: failing jobs, heartbeat messages, maintenance and dream
    /// reports, secrets due for rotation.
    pub notifier: Arc<dyn Notifier>,
    /// Runs agent turns; `None` where no agents exist (agent jobs then fail with that reason).
    pub gateway: Option<Arc<dyn Gateway>>,
    pub housekeeping: Option<Arc<dyn Housekeeping>>,
    pub settings: Settings,
    pub holder: Holder,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    clawdia_core::time::now_ms()
}

/// Every job the config defines: `[cron.jobs.*]`, the enabled heartbeats (`heartbeat.AGENT`),
/// the enabled maintenance templates (`maintenance.*`) and the dream cycle (`brain.dream`). Schedule errors name the key.
pub fn config_jobs(config: &Config) -> Result<Vec<Job>, SchedError> {
    let cron = &config.cron;
    let mut jobs = Vec::new();
    for job in &cron.jobs {
        let key = |error: SchedError| SchedError::Invalid(format!("cron.jobs.{}: {error}", job.name));
        let schedule = match &job.schedule {
            CronSchedule::Cron { expr, tz } => Schedule::cron(expr, tz.as_deref()),
            CronSchedule::Every(every) => Schedule::every(every),
            CronSchedule::At { at, tz } => Schedule::at(at, tz.as_deref()),
        }
        .map_err(key)?;
        let action = match &job.action {
            CronAction::Exec { command, host, egress } => {
                Action::Exec { command: command.clone(), host: *host, egress: egress.clone() }
            }
            CronAction::AgentTurn { agent, prompt, session } => Action::AgentTurn {
                agent: agent.clone(),
                prompt: prompt.clone(),
                session: session.clone(),
                heartbeat: None,
            },
        };
        let job = Job {
            name: job.name.clone(),
            schedule,
            action,
            timeout_seconds: job.timeout_seconds,
            tools_allow: job.tools_allow.clone(),
            failure_alert: job.failure_alert,
            enabled: job.enabled,
            catch_up: if job.skip_missed { CatchUp::Skip } else { CatchUp::Once },
        };
        job.validate().map_err(key)?;
        jobs.push(job);
    }
    for beat in &cron.heartbeats {
        let key = |error: SchedError| SchedError::Invalid(format!("cron.heartbeat.{}: {error}", beat.agent));
        let schedule = Schedule::every(&beat.every).map_err(key)?;
        schedule::parse_datetime("2000-01-01T00:00", Some(&beat.tz)).map_err(key)?;
        jobs.push(Job {
            name: format!("heartbeat.{}", beat.agent),
            schedule,
            action: Action::AgentTurn {
                agent: beat.agent.clone(),
                prompt: beat.prompt.clone(),
                session: Some(beat.session.clone()),
                heartbeat: Some(Heartbeat {
                    active_hours: beat.active_hours,
                    tz: beat.tz.clone(),
                    daily_tokens: beat.daily_tokens,
                    daily_usd: beat.daily_usd,
                    ok_token: beat.ok_token.clone(),
                }),
            },
            timeout_seconds: cron.default_timeout.as_secs().min(600),
            tools_allow: beat.tools_allow.clone(),
            failure_alert: Some(3),
            enabled: true,
            catch_up: CatchUp::Skip,
        });
    }
    for job in maintenance::template_jobs(&cron.maintenance) {
        job.schedule.compile(0).map_err(|e| SchedError::Invalid(format!("cron.maintenance: {e}")))?;
        jobs.push(job);
    }
    if let Some(job) = maintenance::dream_job(&config.brain.dream) {
        let key = |e: SchedError| SchedError::Invalid(format!("brain.dream.schedule: {e}"));
        let schedule =
            Schedule::cron(&config.brain.dream.schedule, Some(&config.brain.dream.tz)).map_err(key)?;
        jobs.push(Job { schedule, ..job });
    }
    Ok(jobs)
}

/// Opens `state/cron.db` and makes its config jobs match the config.
pub fn open(config: &Config) -> Result<Arc<CronDb>, SchedError> {
    let db = CronDb::open(&config.home.join("state"))?;
    db.sync_config_jobs(&config_jobs(config)?, now_ms())?;
    Ok(Arc::new(db))
}

/// One line of `cron list`.
pub fn list_line(stored: &StoredJob) -> String {
    let job = &stored.job;
    let what = match &job.action {
        Action::Exec { command, host, egress } => {
            let place = if *host { " (host)" } else { "" };
            let network =
                if egress.is_empty() { String::new() } else { format!(" (egress {})", egress.join(", ")) };
            format!("exec{place}{network} {command:?}")
        }
        Action::AgentTurn { agent, prompt, heartbeat, .. } => {
            let kind = if heartbeat.is_some() { "heartbeat" } else { "agent" };
            format!("{kind} {agent}: {:?}", prompt.chars().take(60).collect::<String>())
        }
        Action::Maintenance { task } => format!("maintenance {}", task.name()),
    };
    let next = match (job.enabled, stored.next_due_ms) {
        (false, _) => "disabled".to_string(),
        (true, Some(at)) => format!("next {}", clawdia_core::time::rfc3339_utc(at)),
        (true, None) => "next: when the gateway runs".to_string(),
    };
    format!(
        "{}  [{}]  {}  {}  timeout {}s  {}{}",
        job.name,
        stored.source.as_str(),
        job.schedule.describe(),
        what,
        job.timeout_seconds,
        next,
        if stored.consecutive_failures > 0 {
            format!("  failing x{}", stored.consecutive_failures)
        } else {
            String::new()
        }
    )
}

#[cfg(test)]
mod tests;
