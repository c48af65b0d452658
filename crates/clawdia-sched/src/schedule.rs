//! When a job is due: a cron expression (5 fields, or 6 with seconds first) evaluated in a time
//! zone, a fixed interval (`every 90s`, `every 1h30m`), or one moment (`at 2026-12-24T18:00`).
//!
//! Cron expressions are evaluated by croner on jiff's zoned times, which read the system time
//! zone database (`/usr/share/zoneinfo`). Across daylight-saving changes a fixed-time job (e.g.
//! `30 2 * * *`) whose wall time falls in a spring-forward gap runs once, right after the gap,
//! and one whose wall time repeats on a fall-back night runs once, at the first occurrence;
//! interval patterns (`*/15 * * * *`) follow real elapsed time. An `every` interval is anchored
//! at the job's creation, so restarts do not shift it.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::SchedError;

/// A schedule as the owner wrote it (stored as JSON in `cron.db`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// A cron expression in a time zone (`UTC` when none was given).
    Cron { expr: String, tz: String },
    /// Every `every_ms`, counted from the job's anchor.
    Every { every_ms: u64 },
    /// Once, at this moment (Unix milliseconds).
    At { at_ms: i64 },
}

/// A schedule ready to compute due times (the expression parsed, the zone loaded).
#[derive(Debug, Clone)]
pub enum Compiled {
    Cron { cron: Box<Cron>, tz: TimeZone },
    Every { every_ms: i64, anchor_ms: i64 },
    At { at_ms: i64 },
}

impl Schedule {
    /// A cron expression with an optional IANA zone (`Europe/Berlin`); checked now.
    pub fn cron(expr: &str, tz: Option<&str>) -> Result<Schedule, SchedError> {
        let schedule = Schedule::Cron { expr: expr.trim().to_string(), tz: tz.unwrap_or("UTC").to_string() };
        schedule.compile(0)?;
        Ok(schedule)
    }

    /// `90s`, `5m`, `1h30m`, `2d`, `500ms` (an optional leading `every ` is accepted).
    pub fn every(text: &str) -> Result<Schedule, SchedError> {
        let duration = parse_duration(text.trim().trim_start_matches("every").trim())?;
        if duration < Duration::from_millis(100) {
            return Err(SchedError::Invalid(format!("`{text}`: an interval must be at least 100ms")));
        }
        Ok(Schedule::Every { every_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX) })
    }

    /// RFC 3339 (`2026-12-24T18:00:00Z`, `...+01:00`), or a civil time `2026-12-24T18:00[:SS]`
    /// (also with a space) in zone `tz` (UTC when none).
    pub fn at(text: &str, tz: Option<&str>) -> Result<Schedule, SchedError> {
        Ok(Schedule::At { at_ms: parse_datetime(text, tz)? })
    }

    /// Parses the expression and loads the zone. `anchor_ms` anchors an `every` schedule.
    pub fn compile(&self, anchor_ms: i64) -> Result<Compiled, SchedError> {
        match self {
            Schedule::Cron { expr, tz } => {
                let fields = expr.split_whitespace().count();
                if !(5..=6).contains(&fields) && !expr.starts_with('@') {
                    return Err(SchedError::Invalid(format!(
                        "`{expr}`: a cron expression has 5 fields (minute hour day month weekday) or 6 (seconds first)"
                    )));
                }
                let cron = CronParser::builder()
                    .seconds(Seconds::Optional)
                    .build()
                    .parse(expr)
                    .map_err(|e| SchedError::Invalid(format!("`{expr}`: {e}")))?;
                Ok(Compiled::Cron { cron: Box::new(cron), tz: zone(tz)? })
            }
            Schedule::Every { every_ms } => Ok(Compiled::Every {
                every_ms: i64::try_from(*every_ms).unwrap_or(i64::MAX).max(1),
                anchor_ms,
            }),
            Schedule::At { at_ms } => Ok(Compiled::At { at_ms: *at_ms }),
        }
    }

    /// How `cron list` shows it.
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cron { expr, tz } => format!("cron \"{expr}\" {tz}"),
            Schedule::Every { every_ms } => format!("every {}", format_duration(*every_ms)),
            Schedule::At { at_ms } => format!("at {}", clawdia_core::time::rfc3339_utc(*at_ms)),
        }
    }
}

impl Compiled {
    /// The first due time strictly after `after_ms`, or `None` when there is none (an `at` in
    /// the past, a cron expression that never matches).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match self {
            Compiled::Cron { cron, tz } => {
                let start = Timestamp::from_millisecond(after_ms).ok()?.to_zoned(tz.clone());
                let next = cron.find_next_occurrence(&start, false).ok()?;
                let ms = next.timestamp().as_millisecond();
                // croner works in whole seconds; never return the same instant again.
                if ms <= after_ms {
                    let start = Timestamp::from_millisecond(after_ms + 1000).ok()?.to_zoned(tz.clone());
                    return cron
                        .find_next_occurrence(&start, true)
                        .ok()
                        .map(|z| z.timestamp().as_millisecond());
                }
                Some(ms)
            }
            Compiled::Every { every_ms, anchor_ms } => {
                if after_ms < *anchor_ms {
                    return Some(*anchor_ms);
                }
                let periods = (after_ms - anchor_ms) / every_ms + 1;
                Some(anchor_ms + periods * every_ms)
            }
            Compiled::At { at_ms } => (*at_ms > after_ms).then_some(*at_ms),
        }
    }
}

fn zone(name: &str) -> Result<TimeZone, SchedError> {
    if name.eq_ignore_ascii_case("utc") {
        return Ok(TimeZone::UTC);
    }
    TimeZone::get(name).map_err(|_| {
        SchedError::Invalid(format!("unknown time zone `{name}` (use an IANA name such as Europe/Berlin)"))
    })
}

/// `1h30m`, `90s`, `2d`, `500ms`, `1w`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, SchedError> {
    let bad = || SchedError::Invalid(format!("`{text}` is not a duration (e.g. 30s, 5m, 1h30m, 2d)"));
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    let mut total_ms: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit_ms = match &rest[..unit_len] {
            "ms" => 1,
            "s" | "sec" => 1000,
            "m" | "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total_ms = number.checked_mul(unit_ms).and_then(|ms| total_ms.checked_add(ms)).ok_or_else(bad)?;
    }
    Ok(Duration::from_millis(total_ms))
}

/// `1h30m` style text for milliseconds.
pub fn format_duration(ms: u64) -> String {
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let mut seconds = ms / 1000;
    let mut out = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            out.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    if out.is_empty() { "0s".to_string() } else { out }
}

/// RFC 3339, or a civil date-time in `tz`.
pub fn parse_datetime(text: &str, tz: Option<&str>) -> Result<i64, SchedError> {
    let text = text.trim();
    if let Some(ms) = clawdia_core::time::parse_rfc3339(text) {
        return Ok(ms);
    }
    let civil: jiff::civil::DateTime = text.replacen(' ', "T", 1).parse().map_err(|_| {
        SchedError::Invalid(format!(
            "`{text}` is not a date and time (e.g. 2026-12-24T18:00, or 2026-12-24T18:00:00+01:00)"
        ))
    })?;
    let zone = zone(tz.unwrap_or("UTC"))?;
    let zoned = civil
        .to_zoned(zone)
        .map_err(|e| SchedError::Invalid(format!("`{text}` does not exist in that time zone: {e}")))?;
    Ok(zoned.timestamp().as_millisecond())
}
