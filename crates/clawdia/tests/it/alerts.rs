//! Alerts for the owner end to end through the real binary: a cron job failing inside
//! `clawdia up` with `failure_alert = 1` reaches the hook (the alert JSON on its stdin) and
//! `logs/alerts.log`; an alert a CLI command raises while no gateway runs waits in the outbox
//! and goes out when one starts; an audit event at or above `min_severity` (an HTTP auth failure)
//! becomes an alert; a route without its channel is a one-line config error.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// A home whose alerts go to the log and to a hook script recording its stdin in `got.jsonl`
/// (and its first argument in `arg`) inside `hook_dir`.
fn home_with_hook(hook_dir: &Path, jobs: &str) -> Home {
    let hook = hook_dir.join("notify.sh");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\ncat >> {d}/got.jsonl\nprintf '%s' \"$1\" > {d}/arg\n", d = hook_dir.display()),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    Home::with_agent_extra(&format!(
        "[cron]\nallow_host_jobs = true\nkill_grace_seconds = 1\n{jobs}\n[alerts]\nroutes = [\"log\", \"hook\"]\nhook = [\"{}\", \"--from-clawdia\"]\n",
        hook.display()
    ))
}

#[test]
fn a_failing_job_in_the_gateway_reaches_the_hook_and_the_alert_log() {
    let hook_dir = tempfile::tempdir().unwrap();
    let jobs = "[cron.jobs.broken]\nevery = \"1s\"\nhost = true\nexec = \"echo disk full; exit 4\"\nfailure_alert = 1\n";
    let home = home_with_hook(hook_dir.path(), jobs);
    let got = hook_dir.path().join("got.jsonl");
    let log = home.path().join("logs/alerts.log");
    let gateway = home.up();
    eventually("the hook to receive the alert", || !json_lines(&got).is_empty());
    eventually("the alert log line", || !json_lines(&log).is_empty());
    assert!(gateway.terminate().success());

    let hooked = &json_lines(&got)[0];
    assert_eq!(hooked["kind"], "job_failing");
    assert_eq!(hooked["severity"], 10);
    assert_eq!(hooked["title"], "Job `broken` failed 1 times in a row");
    assert!(hooked["body"].as_str().unwrap().contains("disk full"), "{hooked}");
    assert!(hooked["id"].as_str().unwrap().starts_with("alert-"), "{hooked}");
    assert_eq!(std::fs::read_to_string(hook_dir.path().join("arg")).unwrap(), "--from-clawdia");
    // The same alert, by id, in the log; every alert the hook got is there once.
    let logged = json_lines(&log);
    let id = |value: &serde_json::Value| value["id"].as_str().unwrap().to_string();
    assert_eq!(id(&logged[0]), id(hooked));
    let mut hooked_ids: Vec<String> = json_lines(&got).iter().map(id).collect();
    let mut logged_ids: Vec<String> = logged.iter().map(id).collect();
    hooked_ids.sort();
    logged_ids.sort();
    let unique = {
        let mut ids = logged_ids.clone();
        ids.dedup();
        ids
    };
    assert_eq!(unique, logged_ids, "an alert was logged twice");
    assert!(hooked_ids.iter().all(|id| logged_ids.contains(id)), "{hooked_ids:?} vs {logged_ids:?}");
    assert_eq!(std::fs::metadata(&log).unwrap().permissions().mode() & 0o777, 0o600);
    // The job's failure is still an audit event as before.
    let status = home.run(&["status"]);
    assert!(stdout(&status).contains("job_failing"), "{}", stdout(&status));
}

#[test]
fn an_alert_raised_by_a_cli_command_waits_for_the_gateway() {
    let hook_dir = tempfile::tempdir().unwrap();
    let jobs = "[cron.jobs.nightly]\ncron = \"0 3 1 1 *\"\nhost = true\nexec = \"echo quota exceeded; exit 2\"\nfailure_alert = 1\n";
    let home = home_with_hook(hook_dir.path(), jobs);
    let got = hook_dir.path().join("got.jsonl");
    let log = home.path().join("logs/alerts.log");
    let run = home.run(&["cron", "run", "nightly"]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    // No gateway runs: the alert is queued, not delivered.
    std::thread::sleep(Duration::from_millis(500));
    assert!(json_lines(&got).is_empty() && json_lines(&log).is_empty());
    assert!(home.path().join("state/outbox.db").exists());

    let gateway = home.up();
    eventually("the queued alert to reach the hook", || json_lines(&got).len() == 1);
    eventually("and the log", || json_lines(&log).len() == 1);
    assert!(gateway.terminate().success());
    let hooked = &json_lines(&got)[0];
    assert_eq!(
        (hooked["kind"].as_str(), hooked["id"].clone()),
        (Some("job_failing"), json_lines(&log)[0]["id"].clone())
    );
    assert!(hooked["body"].as_str().unwrap().contains("quota exceeded"), "{hooked}");
}

#[test]
fn a_route_without_its_channel_is_a_one_line_config_error() {
    let home = Home::with_agent_extra("[alerts]\nroutes = [\"log\", \"email\"]\n");
    let out = home.run(&["cron", "list"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let error = stderr(&out);
    assert!(
        error.contains("alerts.routes: route `email` needs the mail channel ([channels.email]) and the owner's address ([owner] email)"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
    // Positive control: the same home with the routes it has works.
    let fixed = std::fs::read_to_string(home.path().join("clawdia.toml"))
        .unwrap()
        .replace("\"log\", \"email\"", "\"log\"");
    std::fs::write(home.path().join("clawdia.toml"), fixed).unwrap();
    assert!(home.run(&["cron", "list"]).status.success());
}

#[test]
fn audit_events_at_or_above_min_severity_reach_the_owner() {
    // auth_failure is a WARNING (7): an alert only because min_severity is lowered to 7.
    let home = Home::with_agent_extra("[alerts]\nmin_severity = 7\n");
    let log = home.path().join("logs/alerts.log");
    let gateway = home.up();
    // Positive control: an authenticated request raises nothing.
    let (status, _) = http(gateway.addr, "GET", "/v1/models", Some(&home.token()), "");
    assert_eq!(status, 200);
    let (status, _) = http(gateway.addr, "GET", "/v1/models", Some("not-the-token"), "");
    assert_eq!(status, 401);
    eventually("the auth failure alert", || !json_lines(&log).is_empty());
    std::thread::sleep(Duration::from_millis(300));
    assert!(gateway.terminate().success());
    let logged = json_lines(&log);
    let kinds: Vec<&str> = logged.iter().filter_map(|line| line["kind"].as_str()).collect();
    assert_eq!(kinds, ["auth_failure"], "{logged:?}");
    assert_eq!(logged[0]["severity"], 7);
    assert!(
        logged[0]["title"].as_str().unwrap().starts_with("auth failure: wrong bearer token from 127.0.0.1"),
        "{}",
        logged[0]
    );
}
