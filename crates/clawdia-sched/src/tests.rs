//! Unit tests: schedules (cron in a zone across DST, every, at), durations, /proc parsing,
//! active hours and secret rotation.

use crate::schedule::{Schedule, parse_duration};

fn ms(text: &str) -> i64 {
    clawdia_core::time::parse_rfc3339(text).unwrap_or_else(|| panic!("bad test time {text}"))
}

fn utc(ms: i64) -> String {
    clawdia_core::time::rfc3339_utc(ms)
}

/// The next `n` due times after `after`, in UTC text.
fn check(schedule: &Schedule, after: &str, expect: &[&str]) {
    let compiled = schedule.compile(0).unwrap();
    let mut at = ms(after);
    let mut got = Vec::new();
    for _ in 0..expect.len() {
        at = compiled.next_after(at).unwrap();
        got.push(utc(at));
    }
    assert_eq!(got, expect);
}

#[test]
fn cron_in_utc_five_and_six_fields() {
    check(
        &Schedule::cron("*/15 * * * *", None).unwrap(),
        "2026-03-01T10:07:00Z",
        &["2026-03-01T10:15:00.000Z", "2026-03-01T10:30:00.000Z"],
    );
    check(
        &Schedule::cron("30 0 9 * * *", None).unwrap(),
        "2026-03-01T09:00:29Z",
        &["2026-03-01T09:00:30.000Z", "2026-03-02T09:00:30.000Z"],
    );
}

#[test]
fn cron_spring_forward_gap_runs_once_after_the_gap() {
    // Europe/Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist that day.
    let compiled = Schedule::cron("30 2 * * *", Some("Europe/Berlin")).unwrap().compile(0).unwrap();
    let first = compiled.next_after(ms("2026-03-28T12:00:00Z")).unwrap();
    // 03:00 CEST (01:00 UTC), right after the gap, once.
    assert_eq!(utc(first), "2026-03-29T01:00:00.000Z");
    let second = compiled.next_after(first).unwrap();
    // The next day at 02:30 CEST = 00:30 UTC.
    assert_eq!(utc(second), "2026-03-30T00:30:00.000Z");
}

#[test]
fn cron_fall_back_repeat_runs_once() {
    // Europe/Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
    check(
        &Schedule::cron("30 2 * * *", Some("Europe/Berlin")).unwrap(),
        "2026-10-24T12:00:00Z",
        &[
            "2026-10-25T00:30:00.000Z", // 02:30 CEST, the first occurrence
            "2026-10-26T01:30:00.000Z", // next day 02:30 CET; not 01:30 UTC on the 25th
        ],
    );
    // Interval patterns follow real time through the repeated hour.
    check(
        &Schedule::cron("0 * * * *", Some("Europe/Berlin")).unwrap(),
        "2026-10-24T23:30:00Z",
        &["2026-10-25T00:00:00.000Z", "2026-10-25T01:00:00.000Z", "2026-10-25T02:00:00.000Z"],
    );
}

#[test]
fn every_is_anchored() {
    let schedule = Schedule::every("1h30m").unwrap();
    let anchor = ms("2026-01-01T00:00:00Z");
    let compiled = schedule.compile(anchor).unwrap();
    assert_eq!(utc(compiled.next_after(anchor).unwrap()), "2026-01-01T01:30:00.000Z");
    assert_eq!(utc(compiled.next_after(ms("2026-01-01T02:00:00Z")).unwrap()), "2026-01-01T03:00:00.000Z");
    assert_eq!(utc(compiled.next_after(anchor - 5).unwrap()), "2026-01-01T00:00:00.000Z");
}

#[test]
fn at_fires_once() {
    let schedule = Schedule::at("2026-12-24T18:00", Some("Europe/Berlin")).unwrap();
    let compiled = schedule.compile(0).unwrap();
    let at = compiled.next_after(ms("2026-12-01T00:00:00Z")).unwrap();
    assert_eq!(utc(at), "2026-12-24T17:00:00.000Z");
    assert_eq!(compiled.next_after(at), None);
    assert_eq!(
        Schedule::at("2026-12-24T18:00:00+02:00", None).unwrap(),
        Schedule::At { at_ms: ms("2026-12-24T16:00:00Z") }
    );
}

#[test]
fn bad_schedules_are_one_line_errors() {
    for (result, needle) in [
        (Schedule::cron("* * *", None), "5 fields"),
        (Schedule::cron("61 * * * *", None), "61"),
        (Schedule::cron("* * * * *", Some("Mars/Olympus")), "unknown time zone"),
        (Schedule::every("soon"), "not a duration"),
        (Schedule::every("10ms"), "at least 100ms"),
        (Schedule::at("tomorrow", None), "not a date"),
    ] {
        let error = result.unwrap_err().to_string();
        assert!(error.contains(needle) && !error.contains('\n'), "{error}");
    }
}

#[test]
fn durations() {
    assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
    assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
    assert_eq!(parse_duration("2d").unwrap().as_secs(), 172_800);
    assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
    assert!(parse_duration("1x").is_err());
    assert_eq!(crate::schedule::format_duration(5_400_000), "1h30m");
}

#[test]
fn proc_stat_with_odd_command_names() {
    let line = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
    let stat = crate::procfs::parse_stat(line).unwrap();
    assert_eq!(
        (stat.state, stat.ppid, stat.pgrp, stat.session, stat.start_time),
        ('S', 1, 1234, 1234, 987654)
    );
    let me = crate::procfs::stat(std::process::id() as i32).unwrap();
    assert!(me.start_time > 0);
}

#[test]
fn active_hours_wrap_midnight() {
    use crate::runner::within_hours;
    let at = ms("2026-06-01T21:30:00Z"); // 23:30 in Berlin (CEST)
    assert!(within_hours(at, "Europe/Berlin", 22 * 60, 6 * 60));
    assert!(!within_hours(at, "Europe/Berlin", 8 * 60, 22 * 60));
    assert!(within_hours(at, "UTC", 8 * 60, 22 * 60));
}

#[test]
fn secrets_due_for_rotation() {
    let secret = |key: &str, date: &str, days| clawdia_config::SecretRotation {
        key: key.into(),
        reference: "env KEY".into(),
        rotated_at: date.into(),
        rotated_at_ms: ms(&format!("{date}T00:00:00Z")),
        every_days: days,
    };
    let list =
        [secret("providers.a.api_key", "2026-01-01", 30), secret("providers.b.api_key", "2026-05-20", 90)];
    let due = crate::maintenance::due_secrets(&list, ms("2026-06-01T00:00:00Z"));
    assert_eq!(due.len(), 1, "{due:?}");
    assert!(
        due[0]
            .starts_with("providers.a.api_key (env KEY): rotated 2026-01-01, every 30 days, due 2026-01-31"),
        "{}",
        due[0]
    );
}
