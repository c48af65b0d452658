//! `[cron]`: the scheduler's settings, jobs, heartbeats and maintenance templates. This stage
//! checks the structure (exactly one schedule, exactly one action, an agent that exists, times
//! and ranges); the scheduler parses the cron expressions, intervals and dates themselves, and
//! its errors name the same `cron.jobs.NAME` key.

use std::collections::BTreeMap;
use std::time::Duration;

use toml::Spanned;

use crate::error::ConfigError;
use crate::raw::{self, defaults};
use crate::validate::Context;
use crate::{
    AgentConfig, CronAction, CronConfig, CronJobConfig, CronSchedule, HeartbeatConfig, MaintenanceConfig,
    Sandbox,
};

pub(crate) fn validate(
    context: &Context,
    raw: raw::RawCron,
    agents: &BTreeMap<String, AgentConfig>,
) -> Result<CronConfig, ConfigError> {
    let seconds = |value: Option<Spanned<u64>>, key: &str, default: u64| {
        context.positive(value, &["cron", key], default).map(Duration::from_secs)
    };
    let default_timeout =
        seconds(raw.default_timeout_seconds, "default_timeout_seconds", defaults::CRON_TIMEOUT_SECS)?;
    let kill_grace = match raw.kill_grace_seconds {
        None => Duration::from_secs(defaults::CRON_KILL_GRACE_SECS),
        Some(value) => Duration::from_secs(value.into_inner()),
    };
    let catch_up_grace = match raw.catch_up_grace_seconds {
        None => Duration::from_secs(defaults::CRON_CATCH_UP_GRACE_SECS),
        Some(value) => Duration::from_secs(value.into_inner()),
    };
    let workspace = match raw.workspace {
        None => context.path(defaults::CRON_WORKSPACE),
        Some(path) if path.get_ref().trim().is_empty() => {
            return Err(context.error(path.span(), &["cron", "workspace"], "must not be empty"));
        }
        Some(path) => context.path(path.get_ref()),
    };
    let failure_hook = match raw.failure_hook {
        Some(hook) if hook.get_ref().trim().is_empty() => {
            return Err(context.error(hook.span(), &["cron", "failure_hook"], "must not be empty"));
        }
        hook => hook.map(Spanned::into_inner),
    };
    let mut jobs = Vec::new();
    for (name, raw_job) in raw.jobs {
        jobs.push(job(context, &name, raw_job, agents, default_timeout.as_secs())?);
    }
    let mut heartbeats = Vec::new();
    for (agent, raw_beat) in raw.heartbeat {
        if let Some(beat) = heartbeat(context, &agent, raw_beat, agents)? {
            heartbeats.push(beat);
        }
    }
    Ok(CronConfig {
        enabled: raw.enabled.unwrap_or(true),
        allow_host_jobs: raw.allow_host_jobs.unwrap_or(false),
        sandbox: match raw.sandbox.map(Spanned::into_inner) {
            None | Some(raw::SandboxKind::Auto) => Sandbox::Auto,
            Some(raw::SandboxKind::Bwrap) => Sandbox::Bwrap,
            Some(raw::SandboxKind::Builtin) => Sandbox::Builtin,
            Some(raw::SandboxKind::Off) => Sandbox::Off,
        },
        workspace,
        default_timeout,
        kill_grace,
        catch_up_grace,
        failure_hook,
        history_days: context.positive(
            raw.history_days,
            &["cron", "history_days"],
            defaults::CRON_HISTORY_DAYS,
        )?,
        jobs,
        heartbeats,
        maintenance: maintenance(context, raw.maintenance)?,
    })
}

fn job(
    context: &Context,
    name: &str,
    raw: Spanned<raw::RawJob>,
    agents: &BTreeMap<String, AgentConfig>,
    default_timeout: u64,
) -> Result<CronJobConfig, ConfigError> {
    let span = raw.span();
    let key = |field: &str| -> Vec<String> {
        let mut key = vec!["cron".to_string(), "jobs".to_string(), name.to_string()];
        if !field.is_empty() {
            key.push(field.to_string());
        }
        key
    };
    let error = |span: std::ops::Range<usize>, field: &str, message: &str| {
        let key = key(field);
        let key: Vec<&str> = key.iter().map(String::as_str).collect();
        context.error(span, &key, message)
    };
    let valid_name = name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'.'));
    if !valid_name {
        return Err(error(span, "", "job names are 1-64 lowercase letters, digits, `_`, `-` or `.`"));
    }
    let raw = raw.into_inner();
    let tz = raw.tz.map(Spanned::into_inner);
    let schedule = match (raw.cron, raw.every, raw.at) {
        (Some(expr), None, None) => CronSchedule::Cron { expr: expr.into_inner(), tz },
        (None, Some(every), None) => {
            if tz.is_some() {
                return Err(error(every.span(), "tz", "`tz` applies to `cron` and `at`, not `every`"));
            }
            CronSchedule::Every(every.into_inner())
        }
        (None, None, Some(at)) => CronSchedule::At { at: at.into_inner(), tz },
        _ => return Err(error(span, "", "give exactly one of `cron`, `every` or `at`")),
    };
    let action = match (raw.exec, raw.agent, raw.prompt) {
        (Some(command), None, None) => {
            if command.get_ref().trim().is_empty() {
                return Err(error(command.span(), "exec", "must not be empty"));
            }
            let host = raw.host.unwrap_or(false);
            if host && raw.egress.as_ref().is_some_and(|entries| !entries.is_empty()) {
                return Err(error(
                    span,
                    "egress",
                    "`egress` applies to sandboxed jobs; a `host` job is not confined",
                ));
            }
            let egress = crate::egress::entries(context, raw.egress, &["cron", "jobs", name, "egress"])?;
            CronAction::Exec { command: command.into_inner(), host, egress }
        }
        (None, Some(agent), Some(prompt)) => {
            if !agents.contains_key(agent.get_ref()) {
                let known = agents.keys().cloned().collect::<Vec<_>>().join(", ");
                let message = format!("unknown agent `{}` (configured: {known})", agent.get_ref());
                return Err(error(agent.span(), "agent", &message));
            }
            if prompt.get_ref().trim().is_empty() {
                return Err(error(prompt.span(), "prompt", "must not be empty"));
            }
            if raw.host.is_some() {
                return Err(error(span, "host", "`host` applies to `exec` jobs"));
            }
            if raw.egress.is_some() {
                let message = "`egress` applies to `exec` jobs (an agent's commands use its own \
                               [agents.NAME.exec] egress)";
                return Err(error(span, "egress", message));
            }
            CronAction::AgentTurn {
                agent: agent.into_inner(),
                prompt: prompt.into_inner(),
                session: raw.session.map(Spanned::into_inner),
            }
        }
        _ => return Err(error(span, "", "give exactly one of `exec`, or `agent` with `prompt`")),
    };
    let timeout_seconds = match raw.timeout_seconds {
        None => default_timeout,
        Some(value) if *value.get_ref() >= 1 => value.into_inner(),
        Some(value) => return Err(error(value.span(), "timeout_seconds", "must be at least 1")),
    };
    let failure_alert = match raw.failure_alert {
        None => None,
        Some(value) if *value.get_ref() >= 1 => Some(value.into_inner()),
        Some(value) => return Err(error(value.span(), "failure_alert", "must be at least 1")),
    };
    Ok(CronJobConfig {
        name: name.to_string(),
        schedule,
        action,
        timeout_seconds,
        tools_allow: raw.tools_allow,
        failure_alert,
        enabled: raw.enabled.unwrap_or(true),
        skip_missed: raw.catch_up == Some(raw::CatchUpKind::Skip),
    })
}

fn heartbeat(
    context: &Context,
    agent: &str,
    raw: Spanned<raw::RawHeartbeat>,
    agents: &BTreeMap<String, AgentConfig>,
) -> Result<Option<HeartbeatConfig>, ConfigError> {
    let span = raw.span();
    if !agents.contains_key(agent) {
        let message = format!("unknown agent `{agent}`");
        return Err(context.error(span, &["cron", "heartbeat", agent], message));
    }
    let raw = raw.into_inner();
    let at = |field: &'static str| ["cron", "heartbeat", agent, field];
    let active_hours = match raw.active_hours {
        None => None,
        Some(text) => {
            let parsed = text.get_ref().split_once('-').and_then(|(a, b)| Some((clock(a)?, clock(b)?)));
            match parsed {
                Some((start, end)) if start != end => Some((minutes(start), minutes(end))),
                _ => {
                    let message = "must be `HH:MM-HH:MM` (e.g. 08:00-22:00), start and end different";
                    return Err(context.error(text.span(), &at("active_hours"), message));
                }
            }
        }
    };
    let daily_usd = match raw.daily_usd {
        Some(usd) => Some(context.usd(usd, &at("daily_usd"))?),
        None => None,
    };
    let text = |value: Option<Spanned<String>>, field: &'static str, default: &str| match value {
        Some(value) if value.get_ref().trim().is_empty() => {
            Err(context.error(value.span(), &at(field), "must not be empty"))
        }
        Some(value) => Ok(value.into_inner()),
        None => Ok(default.to_string()),
    };
    let beat = HeartbeatConfig {
        agent: agent.to_string(),
        every: text(raw.every, "every", defaults::HEARTBEAT_EVERY)?,
        prompt: text(raw.prompt, "prompt", defaults::HEARTBEAT_PROMPT)?,
        session: text(raw.session, "session", defaults::HEARTBEAT_SESSION)?,
        active_hours,
        tz: text(raw.tz, "tz", "UTC")?,
        daily_tokens: raw.daily_tokens,
        daily_usd,
        ok_token: text(raw.ok_token, "ok_token", defaults::HEARTBEAT_OK_TOKEN)?,
        tools_allow: raw.tools_allow,
    };
    Ok(raw.enabled.unwrap_or(false).then_some(beat))
}

fn maintenance(context: &Context, raw: raw::RawMaintenance) -> Result<MaintenanceConfig, ConfigError> {
    let time = match raw.time {
        None => clock(defaults::MAINTENANCE_TIME).unwrap_or((3, 30)),
        Some(text) => clock(text.get_ref()).ok_or_else(|| {
            context.error(text.span(), &["cron", "maintenance", "time"], "must be `HH:MM` (e.g. 03:30)")
        })?,
    };
    Ok(MaintenanceConfig {
        daily: raw.daily.unwrap_or(false),
        weekly: raw.weekly.unwrap_or(false),
        monthly: raw.monthly.unwrap_or(false),
        time,
        tz: raw.tz.map(Spanned::into_inner).unwrap_or_else(|| "UTC".to_string()),
        prune_days: context.positive(
            raw.prune_days,
            &["cron", "maintenance", "prune_days"],
            defaults::MAINTENANCE_PRUNE_DAYS,
        )?,
    })
}

/// `HH:MM` → (hour, minute); `24:00` is not a time.
fn clock(text: &str) -> Option<(u8, u8)> {
    let (hour, minute) = text.trim().split_once(':')?;
    let (hour, minute): (u8, u8) = (hour.parse().ok()?, minute.parse().ok()?);
    (hour < 24 && minute < 60 && text.trim().len() == 5).then_some((hour, minute))
}

fn minutes((hour, minute): (u8, u8)) -> u16 {
    u16::from(hour) * 60 + u16::from(minute)
}
