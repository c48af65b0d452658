//! The scheduler end to end through the real binary: `cron add|list|run|history|rm|unlock` on a
//! temporary home, exec jobs on the host and in the sandbox, an agent job against the mock LLM
//! (with its tools narrowed), sandboxed jobs with and without an egress allowlist, and jobs
//! firing inside `clawdia up`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

const HOST_JOBS: &str = "[cron]\nallow_host_jobs = true\nkill_grace_seconds = 1\n";

fn ok(home: &Home, args: &[&str]) -> String {
    let out = home.run(args);
    assert!(out.status.success(), "{args:?} failed: {}{}", stdout(&out), stderr(&out));
    stdout(&out)
}

/// Waits up to 60 s for `condition`.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn add_list_run_history_rm_through_the_binary() {
    let home = Home::with_agent_extra(HOST_JOBS);
    let added = ok(
        &home,
        &[
            "cron",
            "add",
            "hello",
            "--every",
            "1h",
            "--host",
            "--exec",
            "echo hi from cron; pwd",
            "--timeout",
            "30",
        ],
    );
    assert_eq!(added.trim(), "added job `hello`: every 1h");
    ok(
        &home,
        &[
            "cron",
            "add",
            "nightly",
            "--cron",
            "30 2 * * *",
            "--tz",
            "Europe/Berlin",
            "--host",
            "--exec",
            "exit 4",
            "--failure-alert",
            "1",
        ],
    );
    let list = ok(&home, &["cron", "list"]);
    assert!(
        list.contains("hello  [cli]  every 1h  exec (host) \"echo hi from cron; pwd\"  timeout 30s"),
        "{list}"
    );
    assert!(list.contains("nightly  [cli]  cron \"30 2 * * *\" Europe/Berlin"), "{list}");

    let run = ok(&home, &["cron", "run", "hello"]);
    assert!(run.starts_with("job `hello`: ok, exit 0\n"), "{run}");
    assert!(run.contains("hi from cron") && run.contains("workspaces/cron"), "{run}");

    let failed = home.run(&["cron", "run", "nightly"]);
    assert_eq!(failed.status.code(), Some(1));
    assert!(stdout(&failed).starts_with("job `nightly`: failed, exit 4"), "{}", stdout(&failed));
    assert_eq!(stderr(&failed), "clawdia: error: job `nightly` failed\n");
    // failure_alert = 1: the first failure is a high-severity audit event `clawdia status` shows.
    let status = ok(&home, &["status"]);
    assert!(status.contains("job_failing") && status.contains("nightly"), "{status}");

    let history = ok(&home, &["cron", "history", "hello"]);
    assert!(history.contains(" manual ok exit 0 "), "{history}");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&home, &["cron", "history", "nightly", "--json"])).unwrap();
    assert_eq!(json[0]["status"], "failed");
    assert_eq!(json[0]["exit_code"], 4);

    assert_eq!(ok(&home, &["cron", "rm", "hello"]).trim(), "removed job `hello`");
    assert!(!ok(&home, &["cron", "list"]).contains("hello"));
    let again = home.run(&["cron", "rm", "hello"]);
    assert_eq!(stderr(&again), "clawdia: error: no job named `hello`\n");
}

#[test]
fn bad_cron_input_is_a_one_line_usage_error() {
    let home = Home::new();
    for (args, expected) in [
        (
            vec!["cron", "add", "x", "--every", "soon", "--exec", "true"],
            "clawdia: error: `soon` is not a duration (e.g. 30s, 5m, 1h30m, 2d)\n",
        ),
        (
            vec!["cron", "add", "x", "--exec", "true"],
            "clawdia: error: give exactly one of --cron, --every or --at\n",
        ),
        (
            vec!["cron", "add", "x", "--cron", "* * *", "--exec", "true"],
            "clawdia: error: `* * *`: a cron expression has 5 fields (minute hour day month weekday) or 6 (seconds first)\n",
        ),
        (
            vec!["cron", "add", "x", "--every", "1m", "--agent", "ghost", "--prompt", "hi"],
            "clawdia: error: unknown agent `ghost` (configured: main)\n",
        ),
        (
            vec!["cron", "add", "X", "--every", "1m", "--exec", "true"],
            "clawdia: error: `X`: job names are 1-64 lowercase letters, digits, `_`, `-` or `.`, starting with a letter or digit\n",
        ),
        (
            vec!["cron", "add", "x", "--cron", "0 9 * * *", "--tz", "Mars/Base", "--exec", "true"],
            "clawdia: error: unknown time zone `Mars/Base` (use an IANA name such as Europe/Berlin)\n",
        ),
    ] {
        let out = home.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(stderr(&out), expected, "{args:?}");
    }
    ok(&home, &["cron", "add", "x", "--every", "1m", "--exec", "true"]);
    let dup = home.run(&["cron", "add", "x", "--every", "1m", "--exec", "true"]);
    assert_eq!(stderr(&dup), "clawdia: error: a job named `x` already exists\n");
    // Host jobs need the owner's permission: without it `add` refuses and stores nothing.
    let out = home.run(&["cron", "add", "h", "--every", "1m", "--host", "--exec", "echo never"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "clawdia: error: host jobs are not allowed: set `allow_host_jobs = true` in [cron] of clawdia.toml, \
         or drop --host to run the command in the sandbox\n"
    );
    assert!(home.run(&["cron", "run", "h"]).status.code() != Some(0), "`h` was not added");
    // A job added while they were allowed still refuses to run once they are not.
    let allowed = Home::with_agent_extra(HOST_JOBS);
    ok(&allowed, &["cron", "add", "h", "--every", "1m", "--host", "--exec", "echo never"]);
    let config = std::fs::read_to_string(allowed.path().join("clawdia.toml")).unwrap();
    std::fs::write(allowed.path().join("clawdia.toml"), config.replace("allow_host_jobs = true", ""))
        .unwrap();
    let out = allowed.run(&["cron", "run", "h"]);
    assert!(
        stdout(&out).contains("allow_host_jobs") && !stdout(&out).contains("never\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn cron_add_refuses_a_past_time_and_a_command_no_sandbox_can_run() {
    let home = Home::new();
    // A one-off time: the future is accepted, the past refused with nothing stored.
    ok(&home, &["cron", "add", "later", "--at", "2999-01-01T09:00:00Z", "--exec", "true"]);
    let out = home.run(&["cron", "add", "gone", "--at", "2001-02-03T04:05:06Z", "--exec", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let error = stderr(&out);
    assert!(
        error.starts_with("clawdia: error: the one-off time 2001-02-03T04:05:06")
            && error.contains("give a future time"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
    let listed = ok(&home, &["cron", "list"]);
    assert!(listed.contains("later") && !listed.contains("gone"), "{listed}");
    // A sandboxed command when the configured sandbox cannot work here (bubblewrap asked for,
    // `bwrap` not on PATH): refused at once, naming the fix. The same job with bubblewrap found is
    // accepted.
    let bwrap = Home::with_agent_extra("[cron]\nsandbox = \"bwrap\"\n");
    let out = bwrap
        .command(&["cron", "add", "boxed", "--every", "1h", "--exec", "true"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let error = stderr(&out);
    assert!(
        error.starts_with(
            "clawdia: error: the command cannot run in the sandbox: no sandbox is available: bubblewrap does not work here:"
        ) && error.contains("fix:"),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
    if bwrap_on_path() {
        ok(&bwrap, &["cron", "add", "boxed", "--every", "1h", "--exec", "true"]);
    }
    // Host jobs and agent jobs need no sandbox check.
    let out = bwrap
        .command(&["cron", "add", "turn", "--every", "1h", "--agent", "main", "--prompt", "hi"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// Whether `bwrap` is installed where this machine's PATH finds it.
fn bwrap_on_path() -> bool {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|dir| dir.join("bwrap").is_file())
}

#[test]
fn an_agent_job_runs_a_turn_against_the_model_with_narrowed_tools() {
    let home = Home::new();
    ok(
        &home,
        &[
            "cron",
            "add",
            "brief",
            "--every",
            "1d",
            "--agent",
            "main",
            "--prompt",
            "Write my morning brief",
            "--tools-allow",
            "read",
        ],
    );
    home.mock.push(Reply::text("Your brief: nothing urgent.").usage(300, 40));
    let run = ok(&home, &["cron", "run", "brief"]);
    assert!(run.starts_with("job `brief`: ok, session "), "{run}");
    assert!(run.contains("Your brief: nothing urgent."), "{run}");
    let requests = home.mock.requests();
    assert_eq!(requests.len(), 1);
    let tools: Vec<String> = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(tools, ["read"], "tools_allow narrows the turn");
    assert!(requests[0].body["messages"].to_string().contains("Write my morning brief"));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&home, &["cron", "history", "brief", "--json"])).unwrap();
    assert_eq!(json[0]["tokens"], 340);
    // The turn is an ordinary session of the agent.
    let session = json[0]["session"].as_str().unwrap().to_string();
    assert!(ok(&home, &["sessions", "show", &session]).contains("nothing urgent"));
}

#[test]
fn a_sandboxed_exec_job_runs_in_the_cron_workspace_and_cannot_read_secrets() {
    let home = Home::with_agent_extra_in("", Path::new(env!("CARGO_TARGET_TMPDIR")));
    let token = home.token();
    ok(
        &home,
        &[
            "cron",
            "add",
            "boxed",
            "--every",
            "1h",
            "--exec",
            "echo made > made.txt; cat ../../secrets/gateway-token; echo key=${CLAWDIA_TEST_KEY:-unset}; touch ../../escaped; echo done",
        ],
    );
    let out = home.run(&["cron", "run", "boxed"]);
    let text = stdout(&out);
    assert!(text.contains("done") && text.contains("key=unset"), "{text}{}", stderr(&out));
    assert!(!text.contains(&token), "the token leaked: {text}");
    assert_eq!(std::fs::read_to_string(home.path().join("workspaces/cron/made.txt")).unwrap(), "made\n");
    assert!(!home.path().join("escaped").exists());
}

#[test]
fn a_sandboxed_exec_job_reaches_its_egress_allowlist_and_nothing_else() {
    let allowed = http_upstream("from the host\n");
    let other = http_upstream("must not arrive\n");
    let home = Home::with_agent_extra_in("", Path::new(env!("CARGO_TARGET_TMPDIR")));
    let fetch = format!(
        "export NO_PROXY= no_proxy=; curl -sS http://127.0.0.1:{allowed}/job; \
         curl -sS -o /dev/null -w 'other %{{http_code}}\\n' http://127.0.0.1:{other}/job"
    );
    let entry = format!("127.0.0.1:{allowed}");
    ok(&home, &["cron", "add", "net", "--every", "1h", "--egress", &entry, "--exec", &fetch]);
    ok(&home, &["cron", "add", "closed", "--every", "1h", "--exec", &fetch]);
    let listed = ok(&home, &["cron", "list"]);
    assert!(listed.contains(&format!("(egress {entry})")), "{listed}");
    let text = stdout(&home.run(&["cron", "run", "net"]));
    assert!(text.contains("from the host\n") && text.contains("other 403\n"), "{text}");
    assert!(
        text.contains(&format!("[egress proxy refused 1 request(s): GET http://127.0.0.1:{other}/job")),
        "{text}"
    );
    // Without an allowlist the job has no network at all.
    let text = stdout(&home.run(&["cron", "run", "closed"]));
    assert!(!text.contains("from the host") && !text.contains("egress proxy"), "{text}");
    assert!(text.contains("other 000"), "curl could not connect: {text}");
    // The allowlist is for sandboxed commands only, and its entries are checked.
    for (args, expected) in [
        (
            vec!["cron", "add", "x", "--every", "1m", "--egress", "https://x.org", "--exec", "true"],
            "clawdia: error: egress entry `https://x.org`: write HOST or HOST:PORT, not a URL\n",
        ),
        (
            vec![
                "cron", "add", "x", "--every", "1m", "--egress", "x.org", "--agent", "main", "--prompt", "hi",
            ],
            "clawdia: error: --egress applies to --exec jobs\n",
        ),
        (
            vec!["cron", "add", "x", "--every", "1m", "--host", "--egress", "x.org", "--exec", "true"],
            "clawdia: error: an egress allowlist applies to sandboxed commands; a host command is not confined\n",
        ),
    ] {
        let out = home.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with(expected), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_second_run_waits_for_the_lock_and_unlock_clears_it() {
    let home = Home::with_agent_extra(HOST_JOBS);
    ok(
        &home,
        &[
            "cron",
            "add",
            "slow",
            "--every",
            "1h",
            "--host",
            "--exec",
            "touch started; sleep 60",
            "--timeout",
            "120",
        ],
    );
    let mut first =
        home.command(&["cron", "run", "slow"]).stdout(std::process::Stdio::null()).spawn().unwrap();
    let started = home.path().join("workspaces/cron/started");
    eventually("the first run to start", || started.exists());
    let second = home.run(&["cron", "run", "slow"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stdout(&second).contains("skipped") && stdout(&second).contains("still going"),
        "{}",
        stdout(&second)
    );
    let cleared = ok(&home, &["cron", "unlock", "slow"]);
    assert!(cleared.starts_with("cleared lock `job:slow` (held by PID "), "{cleared}");
    assert!(home.run(&["cron", "unlock", "slow"]).status.code() == Some(1));
    let _ = first.kill();
    let _ = first.wait();
}

#[test]
fn the_gateway_fires_config_jobs_and_jobs_added_from_the_cli() {
    let extra = format!(
        "{HOST_JOBS}[cron.jobs.tick]\nevery = \"1s\"\nhost = true\nexec = \"echo tick >> ticks.txt\"\n"
    );
    let home = Home::with_agent_extra(&extra);
    let list = ok(&home, &["cron", "list"]);
    assert!(list.contains("tick  [config]  every 1s"), "{list}");
    let refused = home.run(&["cron", "rm", "tick"]);
    assert!(stderr(&refused).contains("is defined in clawdia.toml"), "{}", stderr(&refused));
    let ticks = home.path().join("workspaces/cron/ticks.txt");
    let lines = |path: &Path| std::fs::read_to_string(path).map(|t| t.lines().count()).unwrap_or(0);
    let gateway = home.up();
    eventually("two scheduled ticks", || lines(&ticks) >= 2);
    // A job added from the CLI while the gateway runs is picked up.
    ok(&home, &["cron", "add", "late", "--every", "1s", "--host", "--exec", "echo late >> late.txt"]);
    let late = home.path().join("workspaces/cron/late.txt");
    eventually("the CLI job to fire in the gateway", || lines(&late) >= 1);
    assert!(gateway.terminate().success());
    let history = ok(&home, &["cron", "history", "tick"]);
    assert!(history.contains(" schedule ok exit 0 "), "{history}");
}

#[test]
fn the_cron_tool_is_off_by_default_and_manages_jobs_when_allowed() {
    let home = Home::new();
    home.mock.push(Reply::text("hi"));
    ok(&home, &["chat", "-m", "hello"]);
    let offered = home.mock.requests()[0].body["tools"].to_string();
    assert!(!offered.contains("\"cron\""), "cron is not allowed by default: {offered}");

    let home = Home::with_agent_extra("[agents.main.tools]\nallow = [\"cron\"]\n");
    let add = serde_json::json!({"action": "add", "name": "water", "every": "2h", "prompt": "Remind me to drink water"});
    let host =
        serde_json::json!({"action": "add", "name": "sneaky", "every": "1h", "exec": "id", "host": true});
    home.mock.push(Reply::tool_calls(vec![
        ("cron", add.to_string().as_str()),
        ("cron", host.to_string().as_str()),
    ]));
    home.mock.push(Reply::text("Scheduled."));
    ok(&home, &["chat", "-m", "remind me to drink water every two hours"]);
    let list = ok(&home, &["cron", "list"]);
    assert!(list.contains("water  [cli]  every 2h  agent main: \"Remind me to drink water\""), "{list}");
    // The tool has no `host` switch: an agent's command jobs always run in the sandbox.
    assert!(list.contains("sneaky  [cli]  every 1h  exec \"id\""), "{list}");
    let remove = serde_json::json!({"action": "remove", "name": "water"});
    home.mock.push(Reply::tool_calls(vec![("cron", remove.to_string().as_str())]));
    home.mock.push(Reply::text("Removed."));
    ok(&home, &["chat", "-m", "stop the water reminder"]);
    assert!(!ok(&home, &["cron", "list"]).contains("water"));
}

#[test]
fn maintenance_templates_report_and_list_secrets_due_for_rotation() {
    let extra = "[providers.old]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\
                 api_key = { env = \"OLD_KEY\", rotated_at = \"2020-01-01\", rotate_every_days = 90 }\n\
                 [cron.maintenance]\ndaily = true\nweekly = true\nmonthly = true\n";
    let home = Home::with_agent_extra(extra);
    let list = ok(&home, &["cron", "list"]);
    for name in ["maintenance.daily-digest", "maintenance.weekly-prune", "maintenance.monthly-optimize"] {
        assert!(list.contains(&format!("{name}  [config]")), "{list}");
    }
    let monthly = ok(&home, &["cron", "run", "maintenance.monthly-optimize"]);
    assert!(monthly.contains("cron.db: VACUUM, ANALYZE, integrity ok"), "{monthly}");
    assert!(monthly.contains("sessions.db: VACUUM, ANALYZE, integrity ok"), "{monthly}");
    assert!(monthly.contains("audit.db: VACUUM, ANALYZE, integrity ok"), "{monthly}");
    assert!(monthly.contains("brain.db: "), "{monthly}");
    assert!(
        monthly.contains(
            "providers.old.api_key (env OLD_KEY): rotated 2020-01-01, every 90 days, due 2020-03-31"
        ),
        "{monthly}"
    );
    // An old log file goes in the weekly prune; a fresh one stays.
    let logs = home.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(logs.join("old.log"), "old").unwrap();
    std::fs::write(logs.join("new.log"), "new").unwrap();
    let old = std::fs::File::options().write(true).open(logs.join("old.log")).unwrap();
    old.set_modified(std::time::SystemTime::now() - Duration::from_secs(30 * 86_400)).unwrap();
    let weekly = ok(&home, &["cron", "run", "maintenance.weekly-prune"]);
    assert!(weekly.contains(&format!("{}: 1 files, 3 bytes removed", logs.display())), "{weekly}");
    assert!(!logs.join("old.log").exists() && logs.join("new.log").exists());
    // The daily digest lists yesterday's high-severity events and failed jobs.
    ok(&home, &["cron", "add", "broken", "--every", "1h", "--exec", "exit 1", "--failure-alert", "1"]);
    let _ = home.run(&["cron", "run", "broken"]);
    let daily = ok(&home, &["cron", "run", "maintenance.daily-digest"]);
    assert!(daily.contains("High-severity audit events: 1") && daily.contains("job_failing"), "{daily}");
    assert!(daily.contains("Failed job runs: 1") && daily.contains(" broken failed"), "{daily}");
}
