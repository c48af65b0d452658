//! The built-in maintenance templates the owner enables in `[cron.maintenance]`, and the
//! secret-rotation reminder:
//!
//! - daily: a digest of the last day's high-severity audit events and failed jobs;
//! - weekly: prune files older than `prune_days` in the home's `logs/` and `tmp/`, old sandbox
//!   scratch folders in the system temp folder, and run history older than `history_days`;
//! - monthly: `VACUUM`, `ANALYZE` and `PRAGMA integrity_check` of cron.db and (through
//!   `Housekeeping`, which the runtime supplies) the other state databases and the brain, plus
//!   the secrets whose rotation is due;
//! - the dream cycle (`[brain.dream]`, job `brain.dream`), run through `Housekeeping::dream`.
//!
//! The scheduler knows no other database: the audit log, sessions and the brain are reached
//! through the `Housekeeping` trait the composition root implements.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use clawdia_config::SecretRotation;

use crate::Context;
use crate::job::{Action, CatchUp, Job, Task};
use crate::now_ms;
use crate::schedule::Schedule;

/// What maintenance needs from the rest of the gateway.
#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// High-severity audit events at or after `since_ms`, one line each, oldest first.
    fn high_severity_events(&self, since_ms: i64) -> Result<Vec<String>, String>;
    /// Optimizes the other state databases and the brain; one report line per database.
    async fn optimize_databases(&self) -> Result<Vec<String>, String>;
    /// Runs the dream cycle once. `Err` carries the report when any part failed.
    async fn dream(&self) -> Result<TaskDone, TaskDone>;
}

/// A maintenance task's report and what it spent on models.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskDone {
    pub report: String,
    pub tokens: u64,
    pub cost_usd: f64,
}

impl From<String> for TaskDone {
    fn from(report: String) -> TaskDone {
        TaskDone { report, tokens: 0, cost_usd: 0.0 }
    }
}

/// The maintenance jobs the config enables (`Source::Config` jobs named `maintenance.*`).
pub fn template_jobs(config: &clawdia_config::MaintenanceConfig) -> Vec<Job> {
    let (hour, minute) = config.time;
    let job = |task: Task, expr: String| Job {
        name: format!("maintenance.{}", task.name()),
        schedule: Schedule::Cron { expr, tz: config.tz.clone() },
        action: Action::Maintenance { task },
        timeout_seconds: 3600,
        tools_allow: None,
        failure_alert: Some(1),
        enabled: true,
        catch_up: CatchUp::Once,
    };
    let mut jobs = Vec::new();
    if config.daily {
        jobs.push(job(Task::DailyDigest, format!("{minute} {hour} * * *")));
    }
    if config.weekly {
        jobs.push(job(Task::WeeklyPrune, format!("{minute} {hour} * * 0")));
    }
    if config.monthly {
        jobs.push(job(Task::MonthlyOptimize, format!("{minute} {hour} 1 * *")));
    }
    jobs
}

/// Runs a maintenance task; its report (and spend), or why it failed.
pub async fn run_task(context: &Arc<Context>, task: Task) -> Result<TaskDone, TaskDone> {
    match task {
        Task::DailyDigest => daily_digest(context).map(TaskDone::from).map_err(TaskDone::from),
        Task::WeeklyPrune => weekly_prune(context).map(TaskDone::from).map_err(TaskDone::from),
        Task::MonthlyOptimize => monthly_optimize(context).await.map(TaskDone::from).map_err(TaskDone::from),
        Task::Dream => match &context.housekeeping {
            Some(housekeeping) => housekeeping.dream().await,
            None => Err(TaskDone::from("the dream cycle is not available here".to_string())),
        },
    }
}

/// The nightly dream job (`brain.dream`), when `[brain.dream] enabled`.
pub fn dream_job(config: &clawdia_config::DreamConfig) -> Option<Job> {
    config.enabled.then(|| Job {
        name: "brain.dream".to_string(),
        schedule: Schedule::Cron { expr: config.schedule.clone(), tz: config.tz.clone() },
        action: Action::Maintenance { task: Task::Dream },
        timeout_seconds: config.timeout.as_secs().max(1),
        tools_allow: None,
        failure_alert: Some(1),
        enabled: true,
        catch_up: CatchUp::Once,
    })
}

fn daily_digest(context: &Context) -> Result<String, String> {
    let since = now_ms() - 86_400_000;
    let mut report = String::from("Daily digest (last 24 hours)\n");
    match &context.housekeeping {
        Some(housekeeping) => {
            let events = housekeeping.high_severity_events(since)?;
            report.push_str(&format!("High-severity audit events: {}\n", events.len()));
            for event in events.iter().rev().take(50) {
                report.push_str(&format!("  {event}\n"));
            }
        }
        None => report.push_str("High-severity audit events: not available here\n"),
    }
    let failures = context.db.failures_since(since).map_err(|e| e.to_string())?;
    report.push_str(&format!("Failed job runs: {}\n", failures.len()));
    for run in failures.iter().rev().take(50) {
        let first_line = run.output_tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        report.push_str(&format!(
            "  {} {} {} {first_line}\n",
            clawdia_core::time::rfc3339_utc(run.started_ms),
            run.job,
            run.status.as_str()
        ));
    }
    Ok(report)
}

fn weekly_prune(context: &Context) -> Result<String, String> {
    let settings = &context.settings;
    let max_age = Duration::from_secs(settings.prune_days.saturating_mul(86_400));
    let mut report = String::from("Weekly prune\n");
    for dir in [settings.home.join("logs"), settings.home.join("tmp"), settings.workspace.join("tmp")] {
        let (files, bytes) = prune_older(&dir, max_age, |_| true);
        report.push_str(&format!("  {}: {files} files, {bytes} bytes removed\n", dir.display()));
    }
    let temp = std::env::temp_dir();
    let (files, bytes) = prune_older(&temp, max_age, |name| name.starts_with("clawdia-sandbox-"));
    report.push_str(&format!(
        "  old sandboxes in {}: {files} entries, {bytes} bytes removed\n",
        temp.display()
    ));
    let history_cutoff =
        now_ms() - i64::try_from(settings.history_days.saturating_mul(86_400_000)).unwrap_or(i64::MAX);
    let pruned = context.db.prune_runs(history_cutoff, 20).map_err(|e| e.to_string())?;
    report.push_str(&format!(
        "  run history older than {} days: {pruned} runs removed\n",
        settings.history_days
    ));
    Ok(report)
}

async fn monthly_optimize(context: &Arc<Context>) -> Result<String, String> {
    let mut report = String::from("Monthly maintenance\n");
    let _guard = match crate::lock::acquire(
        &context.db,
        context.audit.as_ref(),
        "brain-maintenance",
        &context.holder,
        now_ms(),
        Some(6 * 3_600_000),
    ) {
        Ok(Ok(guard)) => Some(guard),
        Ok(Err(busy)) => return Err(format!("not run: {busy}")),
        Err(error) => return Err(error.to_string()),
    };
    let verdict = context.db.optimize().map_err(|e| e.to_string())?;
    report.push_str(&format!("  cron.db: VACUUM, ANALYZE, integrity {verdict}\n"));
    let mut healthy = verdict == "ok";
    if let Some(housekeeping) = &context.housekeeping {
        for line in housekeeping.optimize_databases().await? {
            healthy &= !line.contains("integrity: not ok");
            report.push_str(&format!("  {line}\n"));
        }
    }
    let due = due_secrets(&context.settings.secret_rotation, now_ms());
    if due.is_empty() {
        report.push_str("Secrets due for rotation: none\n");
    } else {
        report.push_str(&format!("Secrets due for rotation: {}\n", due.len()));
        for line in &due {
            report.push_str(&format!("  {line}\n"));
        }
        context.audit.record(clawdia_core::AuditEvent::new(
            "secret_rotation_due",
            clawdia_core::Severity::WARNING,
            format!("{} secret(s) due for rotation: {}", due.len(), due.join("; ")),
        ));
        context.notifier.notify(clawdia_core::Alert::new(
            "secret_rotation_due",
            clawdia_core::Severity::WARNING,
            format!("{} secret(s) due for rotation", due.len()),
            due.join("\n"),
        ));
    }
    if !healthy {
        return Err(report + "an integrity check failed");
    }
    Ok(report)
}

/// The secrets whose rotation is due at `now_ms`, one line each.
pub fn due_secrets(secrets: &[SecretRotation], now_ms: i64) -> Vec<String> {
    secrets
        .iter()
        .filter_map(|secret| {
            let due_ms = secret.rotated_at_ms + i64::from(secret.every_days) * 86_400_000;
            (due_ms <= now_ms).then(|| {
                let overdue_days = (now_ms - due_ms) / 86_400_000;
                format!(
                    "{} ({}): rotated {}, every {} days, due {} ({overdue_days} days ago)",
                    secret.key,
                    secret.reference,
                    secret.rotated_at,
                    secret.every_days,
                    clawdia_core::time::utc_date(due_ms)
                )
            })
        })
        .collect()
}

/// Removes entries of `dir` (files, or whole folders) whose modification time is older than
/// `max_age` and whose name passes `select`; returns (entries, bytes).
fn prune_older(dir: &Path, max_age: Duration, select: impl Fn(&str) -> bool) -> (u64, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return (0, 0) };
    let now = SystemTime::now();
    let (mut count, mut bytes) = (0, 0);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !select(&name) {
            continue;
        }
        let Ok(meta) = entry.path().symlink_metadata() else { continue };
        let old =
            meta.modified().ok().and_then(|m| now.duration_since(m).ok()).is_some_and(|age| age > max_age);
        if !old {
            continue;
        }
        let size = if meta.is_dir() { dir_size(&entry.path()) } else { meta.len() };
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(entry.path())
        } else {
            std::fs::remove_file(entry.path())
        };
        if removed.is_ok() {
            count += 1;
            bytes += size;
        }
    }
    (count, bytes)
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.path().symlink_metadata() {
            Ok(meta) if meta.is_dir() => dir_size(&e.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}
