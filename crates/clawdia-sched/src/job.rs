//! What a job is: its name, schedule, action (a shell command, an agent turn, the heartbeat or
//! a maintenance task), and its per-job limits. The same `Job` comes from `[cron.jobs.NAME]` in
//! the config, from `clawdia cron add` and from the `cron` agent tool, and is stored as JSON in
//! `cron.db`, so all three behave the same.

use serde::{Deserialize, Serialize};

use crate::SchedError;
use crate::schedule::Schedule;

/// What to do after downtime when runs were missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Run once at startup if the most recent missed run is within the grace window, else skip.
    #[default]
    Once,
    /// Never run missed runs; wait for the next due time.
    Skip,
}

/// Where a job was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `clawdia.toml` (`[cron.jobs.NAME]`, the heartbeat, maintenance templates): managed by
    /// the config, not removable from the CLI.
    Config,
    /// `clawdia cron add` or the `cron` agent tool.
    Cli,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Cli => "cli",
        }
    }
}

/// The built-in maintenance tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// High-severity audit events and failed jobs of the last day.
    DailyDigest,
    /// Prune old sandboxes, temp files, logs and run history; report what went.
    WeeklyPrune,
    /// VACUUM / ANALYZE / integrity check of the state databases, brain optimize, and the
    /// secrets due for rotation.
    MonthlyOptimize,
    /// The dream cycle (`[brain.dream]`): new transcripts distilled into the brain.
    Dream,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::DailyDigest => "daily-digest",
            Task::WeeklyPrune => "weekly-prune",
            Task::MonthlyOptimize => "monthly-optimize",
            Task::Dream => "dream",
        }
    }
}

/// The heartbeat's extra settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// Local `HH:MM-HH:MM` window in the schedule's zone when it may run (`None`: always).
    pub active_hours: Option<(u16, u16)>,
    pub tz: String,
    /// The heartbeat's own daily caps, counted from its run history.
    pub daily_tokens: Option<u64>,
    pub daily_usd: Option<f64>,
    /// A reply containing this token is not delivered.
    pub ok_token: String,
}

/// What a job does when it fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A shell command (`/bin/sh -c`), in the sandbox unless `host` (which the owner must allow).
    Exec {
        command: String,
        #[serde(default)]
        host: bool,
        /// `host:port` entries the sandboxed command may reach through the egress proxy
        /// (`clawdia_sandbox::egress`); empty: no network.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        egress: Vec<String>,
    },
    /// A prompt to an agent; a new session each run unless `session` names one.
    AgentTurn {
        agent: String,
        prompt: String,
        #[serde(default)]
        session: Option<String>,
        #[serde(default)]
        heartbeat: Option<Heartbeat>,
    },
    /// A built-in maintenance task.
    Maintenance { task: Task },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Exec { .. } => "exec",
            Action::AgentTurn { heartbeat: Some(_), .. } => "heartbeat",
            Action::AgentTurn { .. } => "agentTurn",
            Action::Maintenance { .. } => "maintenance",
        }
    }
}

/// One scheduled job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub name: String,
    pub schedule: Schedule,
    pub action: Action,
    /// Hard cap on one run, in seconds; the whole process tree (or the turn) is killed after it.
    pub timeout_seconds: u64,
    /// For agent turns: the only tools (names or groups) the turn may use, within the agent's
    /// own policy. `None`: the agent's policy alone.
    #[serde(default)]
    pub tools_allow: Option<Vec<String>>,
    /// After this many consecutive failures, alert (audit at high severity + the hook command).
    #[serde(default)]
    pub failure_alert: Option<u32>,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub catch_up: CatchUp,
}

fn yes() -> bool {
    true
}

/// The default hard cap of a run when none is given.
pub const DEFAULT_TIMEOUT_SECONDS: u64 = 600;

impl Job {
    /// Checks the parts serde cannot: the name, the schedule, the action's text.
    pub fn validate(&self) -> Result<(), SchedError> {
        check_name(&self.name)?;
        self.schedule.compile(0)?;
        if self.timeout_seconds == 0 {
            return Err(SchedError::Invalid("timeout must be at least 1 second".into()));
        }
        if self.failure_alert == Some(0) {
            return Err(SchedError::Invalid("failure alert must be at least 1".into()));
        }
        match &self.action {
            Action::Exec { command, .. } if command.trim().is_empty() => {
                Err(SchedError::Invalid("the command is empty".into()))
            }
            Action::Exec { host: true, egress, .. } if !egress.is_empty() => Err(SchedError::Invalid(
                "an egress allowlist applies to sandboxed commands; a host command is not confined".into(),
            )),
            Action::Exec { egress, .. } => {
                for entry in egress {
                    clawdia_sandbox::egress::EgressRule::parse(entry).map_err(SchedError::Invalid)?;
                }
                Ok(())
            }
            Action::AgentTurn { prompt, agent, .. } if prompt.trim().is_empty() || agent.is_empty() => {
                Err(SchedError::Invalid("an agent job needs an agent and a prompt".into()))
            }
            _ => Ok(()),
        }
    }
}

impl Job {
    /// Checks a job being added now for what would make every run of it fail or never happen,
    /// so the owner hears it at once instead of from the run history: a host command while
    /// `[cron] allow_host_jobs` is off, a sandboxed command when the configured sandbox does
    /// not work on this machine (probed once per process), a one-off time already past. Each
    /// error is one line naming the problem and the fix.
    pub async fn check_runnable(&self, settings: &crate::Settings, now_ms: i64) -> Result<(), SchedError> {
        if let Schedule::At { at_ms } = self.schedule
            && at_ms <= now_ms
        {
            return Err(SchedError::Invalid(format!(
                "the one-off time {} is already past (now {}): give a future time",
                clawdia_core::time::rfc3339_utc(at_ms),
                clawdia_core::time::rfc3339_utc(now_ms)
            )));
        }
        match &self.action {
            Action::Exec { host: true, .. } if !settings.allow_host_jobs => Err(SchedError::Invalid(
                "host jobs are not allowed: set `allow_host_jobs = true` in [cron] of clawdia.toml, or drop --host \
                 to run the command in the sandbox"
                    .into(),
            )),
            Action::Exec { host: false, .. } if settings.sandbox != clawdia_sandbox::Choice::Off => {
                let probe = clawdia_sandbox::detect_cached(&settings.helper).await;
                match probe.select(settings.sandbox) {
                    Ok(_) => Ok(()),
                    Err(error) => Err(SchedError::Invalid(format!(
                        "the command cannot run in the sandbox: {}",
                        clawdia_core::text::one_line(&error.to_string())
                    ))),
                }
            }
            _ => Ok(()),
        }
    }
}

/// Job names: `[a-z0-9][a-z0-9_.-]{0,63}`.
pub fn check_name(name: &str) -> Result<(), SchedError> {
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest_ok =
        bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'));
    if first_ok && rest_ok && name.len() <= 64 {
        return Ok(());
    }
    Err(SchedError::Invalid(format!(
        "`{name}`: job names are 1-64 lowercase letters, digits, `_`, `-` or `.`, starting with a letter or digit"
    )))
}
