//! One run of a job, start to end: take the job's lock (skip when it is held), write the
//! `running` row, do the action under its hard timeout, write the outcome, and alert when the
//! failure streak reaches the job's `failure_alert`. A failure is caught here and recorded; it
//! never reaches the scheduler loop.

use std::sync::Arc;
use std::time::Duration;

use clawdia_core::{Alert, AuditEvent, Severity, TurnOrigin, TurnRequest};
use clawdia_sandbox::{Limits, Mechanism, Network, Policy};

use crate::db::{RunEnd, Status};
use crate::job::{Action, Heartbeat, Job, Task};
use crate::lock::{self, Busy};
use crate::maintenance;
use crate::process::{self, HostCommand};
use crate::{Context, now_ms};

/// Bytes of output kept in the history.
pub const OUTPUT_TAIL_BYTES: usize = 4096;

/// How a run went, as `clawdia cron run` prints it.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub run_id: Option<i64>,
    pub status: Status,
    pub exit_code: Option<i32>,
    pub output: String,
    pub cost_usd: f64,
    pub session: Option<String>,
    /// Fire time minus due time (scheduled runs), milliseconds.
    pub jitter_ms: Option<i64>,
}

/// Why a run was triggered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
    CatchUp,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Schedule => "schedule",
            Trigger::Manual => "manual",
            Trigger::CatchUp => "catch_up",
        }
    }
}

/// Runs `job` now. `due_ms` is when it was due (scheduled runs).
pub async fn run_job(context: &Arc<Context>, job: &Job, trigger: Trigger, due_ms: Option<i64>) -> Report {
    let started = now_ms();
    let jitter_ms = due_ms.map(|due| started - due);
    let skip = |reason: String| {
        if let Err(error) = context.db.record_skip(&job.name, trigger.as_str(), due_ms, now_ms(), &reason) {
            tracing::warn!(job = %job.name, %error, "cannot record a skipped run");
        }
        Report {
            run_id: None,
            status: Status::Skipped,
            exit_code: None,
            output: reason,
            cost_usd: 0.0,
            session: None,
            jitter_ms,
        }
    };
    if let Action::AgentTurn { heartbeat: Some(beat), .. } = &job.action
        && trigger != Trigger::Manual
        && let Some(reason) = heartbeat_blocked(context, job, beat, started)
    {
        return skip(reason);
    }
    let ttl = i64::try_from(job.timeout_seconds.saturating_mul(1000)).unwrap_or(i64::MAX / 2)
        + i64::try_from(context.settings.kill_grace.as_millis()).unwrap_or(0)
        + 60_000;
    let guard = match lock::acquire(
        &context.db,
        context.audit.as_ref(),
        &lock::job_lock(&job.name),
        &context.holder,
        started,
        Some(ttl),
    ) {
        Ok(Ok(guard)) => guard,
        Ok(Err(busy)) => {
            let reason = match busy {
                Busy::Alive(_) => "the previous run is still going".to_string(),
                other => other.to_string(),
            };
            return skip(format!("not started: {reason}"));
        }
        Err(error) => return skip(format!("not started: {error}")),
    };
    let run_id =
        match context.db.start_run(&job.name, trigger.as_str(), due_ms, started, &context.holder.host) {
            Ok(id) => id,
            Err(error) => return skip(format!("not started: {error}")),
        };
    let end = execute(context, job, run_id).await;
    let streak = match context.db.finish_run(run_id, &job.name, &end, now_ms()) {
        Ok(streak) => streak,
        Err(error) => {
            tracing::warn!(job = %job.name, %error, "cannot record a run's end");
            0
        }
    };
    drop(guard);
    if end.status.is_failure()
        && let Some(threshold) = job.failure_alert
        && streak >= threshold
        && streak % threshold == 0
    {
        alert(context, job, streak, &end.output_tail).await;
    }
    Report {
        run_id: Some(run_id),
        status: end.status,
        exit_code: end.exit_code,
        output: end.output_tail,
        cost_usd: end.cost_usd,
        session: end.session,
        jitter_ms,
    }
}

fn failed(message: String) -> RunEnd {
    RunEnd {
        status: Status::Failed,
        exit_code: None,
        output_tail: message,
        cost_usd: 0.0,
        tokens: 0,
        session: None,
    }
}

async fn execute(context: &Arc<Context>, job: &Job, run_id: i64) -> RunEnd {
    let timeout = Duration::from_secs(job.timeout_seconds);
    match &job.action {
        Action::Exec { command, host: true, .. } => {
            if !context.settings.allow_host_jobs {
                return failed(
                    "host jobs are not allowed: set `allow_host_jobs = true` in [cron] (or drop `host`)"
                        .into(),
                );
            }
            exec_host(context, command, timeout, run_id).await
        }
        Action::Exec { command, host: false, egress } => {
            exec_sandboxed(context, command, egress, timeout).await
        }
        Action::AgentTurn { agent, prompt, session, heartbeat } => {
            agent_turn(context, job, agent, prompt, session.clone(), heartbeat.as_ref(), timeout).await
        }
        Action::Maintenance { task } => {
            match tokio::time::timeout(timeout, maintenance::run_task(context, *task)).await {
                Ok(Ok(done)) => {
                    report_to_owner(context, *task, &done.report);
                    RunEnd {
                        status: Status::Ok,
                        exit_code: None,
                        output_tail: process::tail_of(&done.report, OUTPUT_TAIL_BYTES),
                        cost_usd: done.cost_usd,
                        tokens: done.tokens,
                        session: None,
                    }
                }
                Ok(Err(done)) => RunEnd {
                    cost_usd: done.cost_usd,
                    tokens: done.tokens,
                    ..failed(process::tail_of(&done.report, OUTPUT_TAIL_BYTES))
                },
                Err(_) => RunEnd {
                    status: Status::Timeout,
                    ..failed(format!("timed out after {}s", timeout.as_secs()))
                },
            }
        }
    }
}

fn exit_status(code: Option<i32>, signal: Option<i32>, timed_out: bool) -> Status {
    if timed_out {
        Status::Timeout
    } else if code == Some(0) && signal.is_none() {
        Status::Ok
    } else {
        Status::Failed
    }
}

async fn exec_host(context: &Arc<Context>, command: &str, timeout: Duration, run_id: i64) -> RunEnd {
    let workspace = &context.settings.workspace;
    if let Err(error) = std::fs::create_dir_all(workspace) {
        return failed(format!("cannot create {}: {error}", workspace.display()));
    }
    let spec = HostCommand {
        command,
        cwd: workspace,
        env: vec![("HOME".into(), workspace.to_string_lossy().into_owned())],
        timeout,
        kill_grace: context.settings.kill_grace,
        tail_bytes: OUTPUT_TAIL_BYTES,
        run_id: format!("{}-{run_id}-{}", std::process::id(), now_ms()),
    };
    match process::run_host(spec).await {
        Ok(outcome) => {
            let mut output = outcome.output_tail;
            if outcome.timed_out {
                output.push_str(&format!(
                    "\n[timed out after {}s: the command and everything it started were killed]",
                    timeout.as_secs()
                ));
            }
            RunEnd {
                status: exit_status(outcome.exit_code, outcome.signal, outcome.timed_out),
                exit_code: outcome.exit_code.or(outcome.signal.map(|s| 128 + s)),
                output_tail: output,
                cost_usd: 0.0,
                tokens: 0,
                session: None,
            }
        }
        Err(error) => failed(format!("cannot start the command: {error}")),
    }
}

async fn exec_sandboxed(
    context: &Arc<Context>,
    command: &str,
    egress: &[String],
    timeout: Duration,
) -> RunEnd {
    let settings = &context.settings;
    let mechanism = match settings.sandbox {
        clawdia_sandbox::Choice::Off => Ok(Mechanism::Unsandboxed),
        choice => clawdia_sandbox::detect_cached(&settings.helper).await.select(choice),
    };
    let mechanism = match mechanism {
        Ok(mechanism) => mechanism,
        Err(error) => return failed(format!("not run: {error}")),
    };
    if let Err(error) = std::fs::create_dir_all(&settings.workspace) {
        return failed(format!("cannot create {}: {error}", settings.workspace.display()));
    }
    let mut policy = Policy::new(settings.workspace.clone());
    policy.hidden = settings.hidden.clone();
    policy.network = Network::allowing(egress);
    policy.limits = Limits::default();
    policy.timeout = timeout;
    policy.kill_grace = settings.kill_grace;
    policy.output_cap = 64 * 1024;
    match clawdia_sandbox::run(&mechanism, &policy, command, |_| {}).await {
        Ok(outcome) => {
            let mut output = process::tail_of(&outcome.output, OUTPUT_TAIL_BYTES);
            if outcome.timed_out {
                output.push_str(&format!(
                    "\n[timed out after {}s: the command and everything it started were killed]",
                    timeout.as_secs()
                ));
            }
            RunEnd {
                status: exit_status(outcome.exit_code, outcome.signal, outcome.timed_out),
                exit_code: outcome.exit_code,
                output_tail: output,
                cost_usd: 0.0,
                tokens: 0,
                session: None,
            }
        }
        Err(error) => failed(format!("not run: {error}")),
    }
}

async fn agent_turn(
    context: &Arc<Context>,
    job: &Job,
    agent: &str,
    prompt: &str,
    session: Option<String>,
    heartbeat: Option<&Heartbeat>,
    timeout: Duration,
) -> RunEnd {
    let Some(gateway) = context.gateway.as_ref() else {
        return failed("agent jobs need the gateway's agents, which are not available here".into());
    };
    let request = TurnRequest {
        from_owner: true,
        agent: agent.to_string(),
        session,
        message: prompt.to_string(),
        origin: TurnOrigin::Scheduler,
        // `cron:<job>` to policies that name senders.
        sender: Some(job.name.clone()),
        history: Vec::new(),
        tools_allow: job.tools_allow.clone(),
        context: match heartbeat {
            Some(_) => clawdia_core::TurnContext::Heartbeat,
            None => clawdia_core::TurnContext::Full,
        },
        options: Default::default(),
    };
    let session_seen = std::sync::Mutex::new(None::<String>);
    let events = |event: clawdia_core::TurnEvent| {
        if let clawdia_core::TurnEvent::Started { session, .. } = event {
            *session_seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(session);
        }
    };
    let result = tokio::time::timeout(timeout, gateway.run_turn(request, &events)).await;
    let session = session_seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match result {
        Err(_) => RunEnd {
            status: Status::Timeout,
            exit_code: None,
            output_tail: format!("timed out after {}s: the turn was cancelled", timeout.as_secs()),
            cost_usd: 0.0,
            tokens: 0,
            session,
        },
        Ok(Err(error)) => RunEnd { session, ..failed(error.to_string()) },
        Ok(Ok(outcome)) => {
            let tokens = outcome.usage.input_tokens
                + outcome.usage.output_tokens
                + outcome.usage.cache_read_tokens
                + outcome.usage.cache_write_tokens;
            let mut text = outcome.text;
            if let Some(beat) = heartbeat {
                if text.contains(&beat.ok_token) {
                    text = format!("(nothing to report: {})", beat.ok_token);
                } else {
                    // The message goes to the owner (the outbox's routes), and stays in the audit
                    // log (`clawdia status`) and the run history.
                    context.audit.record(
                        AuditEvent::new("heartbeat_message", Severity::NOTICE, process::tail_of(&text, 1000))
                            .agent(agent)
                            .session(&outcome.session_id),
                    );
                    context.notifier.notify(
                        Alert::new(
                            "heartbeat",
                            Severity::NOTICE,
                            format!("Heartbeat: a message from agent `{agent}`"),
                            text.trim(),
                        )
                        .agent(agent),
                    );
                }
            }
            RunEnd {
                status: Status::Ok,
                exit_code: None,
                output_tail: process::tail_of(&text, OUTPUT_TAIL_BYTES),
                cost_usd: outcome.cost_usd,
                tokens,
                session: Some(outcome.session_id),
            }
        }
    }
}

/// Why a heartbeat does not run now (outside its hours, over its own budget), if so.
fn heartbeat_blocked(context: &Context, job: &Job, beat: &Heartbeat, now: i64) -> Option<String> {
    if let Some((start, end)) = beat.active_hours
        && !within_hours(now, &beat.tz, start, end)
    {
        return Some(format!(
            "outside active hours {:02}:{:02}-{:02}:{:02} {}",
            start / 60,
            start % 60,
            end / 60,
            end % 60,
            beat.tz
        ));
    }
    if beat.daily_tokens.is_none() && beat.daily_usd.is_none() {
        return None;
    }
    let day_start = now.div_euclid(86_400_000) * 86_400_000;
    let (tokens, usd) = match context.db.spend_since(&job.name, day_start) {
        Ok(spend) => spend,
        Err(error) => return Some(format!("cannot read the heartbeat's spend: {error}")),
    };
    match (beat.daily_tokens, beat.daily_usd) {
        (Some(limit), _) if tokens >= limit => {
            Some(format!("heartbeat budget used: {tokens} of {limit} tokens today (UTC)"))
        }
        (_, Some(limit)) if usd >= limit => {
            Some(format!("heartbeat budget used: ${usd:.4} of ${limit:.2} today (UTC)"))
        }
        _ => None,
    }
}

/// Whether `now_ms` falls in the local window `[start, end)` (minutes after midnight) of zone
/// `tz`; a window with `end < start` wraps midnight.
pub fn within_hours(now_ms: i64, tz: &str, start: u16, end: u16) -> bool {
    let zone = if tz.eq_ignore_ascii_case("utc") {
        jiff::tz::TimeZone::UTC
    } else {
        jiff::tz::TimeZone::get(tz).unwrap_or(jiff::tz::TimeZone::UTC)
    };
    let Ok(timestamp) = jiff::Timestamp::from_millisecond(now_ms) else { return true };
    let local = timestamp.to_zoned(zone);
    let minute = u16::try_from(local.hour()).unwrap_or(0) * 60 + u16::try_from(local.minute()).unwrap_or(0);
    if start <= end { (start..end).contains(&minute) } else { minute >= start || minute < end }
}

/// A finished maintenance task's report goes to the owner: they scheduled it, so it is sent
/// whatever `alerts.min_severity` says (that threshold is for audit events).
fn report_to_owner(context: &Context, task: Task, report: &str) {
    let (kind, title) = match task {
        Task::Dream => ("dream_report", "Dream cycle report".to_string()),
        _ => (
            "maintenance_report",
            report.lines().next().map(str::trim).filter(|l| !l.is_empty()).unwrap_or(task.name()).to_string(),
        ),
    };
    context.notifier.notify(Alert::new(kind, Severity::INFO, title, report.trim_end()));
}

/// The failure alert: an audit event at high severity, an alert for the owner, and the owner's
/// hook command if any.
async fn alert(context: &Arc<Context>, job: &Job, streak: u32, output: &str) {
    let detail = format!(
        "job `{}` failed {streak} times in a row; last output: {}",
        job.name,
        process::tail_of(output.trim(), 300).replace('\n', " ")
    );
    context.audit.record(AuditEvent::new("job_failing", Severity::HIGH, detail));
    context.notifier.notify(Alert::new(
        "job_failing",
        Severity::HIGH,
        format!("Job `{}` failed {streak} times in a row", job.name),
        format!("Last output:\n{}", process::tail_of(output.trim(), 2000)),
    ));
    let Some(hook) = context.settings.failure_hook.clone() else { return };
    let workspace = &context.settings.workspace;
    let _ = std::fs::create_dir_all(workspace);
    let spec = HostCommand {
        command: &hook,
        cwd: workspace,
        env: vec![
            ("CLAWDIA_JOB".into(), job.name.clone()),
            ("CLAWDIA_FAILURES".into(), streak.to_string()),
            ("CLAWDIA_OUTPUT".into(), process::tail_of(output, 2000)),
        ],
        timeout: Duration::from_secs(30),
        kill_grace: Duration::from_secs(2),
        tail_bytes: 1000,
        run_id: format!("{}-alert-{}", std::process::id(), now_ms()),
    };
    match process::run_host(spec).await {
        Ok(outcome) if outcome.exit_code == Some(0) => {}
        Ok(outcome) => context.audit.record(AuditEvent::new(
            "failure_hook_failed",
            Severity::WARNING,
            format!(
                "the failure hook for job `{}` ended with {:?}: {}",
                job.name,
                outcome.exit_code,
                outcome.output_tail.trim()
            ),
        )),
        Err(error) => context.audit.record(AuditEvent::new(
            "failure_hook_failed",
            Severity::WARNING,
            format!("the failure hook for job `{}` could not start: {error}", job.name),
        )),
    }
}
