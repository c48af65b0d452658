//! The request broker end to end through the binary: a user agent's `request_elevation` lands
//! in the inbox, the administrator agent assesses it, the owner is asked (the alert carries the
//! request, the assessment and the exact commands), `clawdia broker approve` runs the commands
//! through the administrator's allowlist once, and the outcome reaches the requesting session as
//! a verified bridge message (never as the owner's words). Denied requests run nothing; a file
//! dropped into the inbox by something other than Clawdia is taken too; a malformed one is
//! rejected and audited; a command off the allowlist fails without running.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Home, Reply, stderr, stdout, wait_until};

fn broker_home() -> Home {
    Home::with_agent_extra(
        "\n[agents.main.tools]\nallow = [\"fs\", \"request_elevation\"]\n\n\
         [agents.admin]\nmodel = \"mock/admin\"\n\n\
         [agents.admin.elevated]\nsenders = []\n\
         [[agents.admin.elevated.commands]]\npath = \"/usr/bin/touch\"\nargs = [\"*/marker-*\"]\n\n\
         [broker]\nadmin_agent = \"admin\"\n",
    )
}

fn alerts(home: &Home) -> String {
    std::fs::read_to_string(home.path().join("logs/alerts.log")).unwrap_or_default()
}

fn list(home: &Home) -> Vec<Value> {
    let out = home.run(&["broker", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str::<Value>(&stdout(&out)).unwrap().as_array().unwrap().clone()
}

fn elevation_in(home: &Home, status: &str) -> Option<Value> {
    list(home).into_iter().find(|row| row["kind"] == "elevation" && row["status"] == status)
}

#[test]
fn an_elevation_request_is_assessed_asked_approved_run_once_and_reported_over_the_bridge() {
    let home = broker_home();
    let _gateway = home.up();
    let marker = home.path().join("marker-approved");
    let request = serde_json::json!({
        "action": "create the marker file",
        "reason": "the deploy checks for it",
        "commands": [["/usr/bin/touch", marker.to_str().unwrap()]],
        "urgency": "high",
    })
    .to_string();
    home.mock.push(Reply::tool_calls(vec![("request_elevation", request.as_str())]));
    home.mock.push(Reply::text("I asked the administrator."));
    home.mock.push_for("admin", Reply::text("Low risk: it creates one empty file."));
    let out = home.run(&["chat", "-m", "please get the marker created", "--session", "s-asker"]);
    assert!(out.status.success(), "{}", stderr(&out));

    // The owner is asked with the request, the assessment and the exact command.
    assert!(wait_until(Duration::from_secs(20), || alerts(&home).contains("Low risk")), "{}", alerts(&home));
    let alert = alerts(&home);
    assert!(alert.contains("create the marker file") && alert.contains("/usr/bin/touch"), "{alert}");
    let row = elevation_in(&home, "awaiting_operator").expect("a request awaiting the operator");
    let id = row["id"].as_str().unwrap().to_string();
    assert!(!marker.exists(), "a command ran before the owner decided");
    // The administrator read the request inside trust markers (it came from an agent).
    let assessed = home
        .mock
        .requests()
        .iter()
        .find(|r| r.body["model"] == "admin")
        .map(|r| r.body["messages"].to_string())
        .unwrap_or_default();
    assert!(assessed.contains("create the marker file") && assessed.contains("<<<untrusted"), "{assessed}");

    home.mock.push(Reply::text("Thanks, the marker is there now."));
    let out = home.run(&["broker", "approve", &id, "--note", "go ahead"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("approved; the commands ran"), "{}", stdout(&out));
    assert!(marker.exists(), "the approved command did not run");
    // Decided once.
    let again = home.run(&["broker", "approve", &id]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("already"), "{}", stderr(&again));
    let shown = stdout(&home.run(&["broker", "show", &id]));
    assert!(shown.contains("status:     done") && shown.contains("note:       go ahead"), "{shown}");

    // The report reached the asking session as a bridge message, not as the owner.
    let reported = wait_until(Duration::from_secs(20), || {
        home.mock
            .requests()
            .iter()
            .any(|r| r.body["messages"].to_string().contains("Bridge message from the administrator"))
    });
    assert!(reported, "no report reached the session");
    let last = home.mock.requests().last().unwrap().body["messages"].to_string();
    assert!(last.contains("please get the marker created"), "the report went to another session: {last}");
    assert!(last.contains("<<<untrusted") && last.contains("done"), "{last}");
}

#[test]
fn denied_foreign_malformed_and_off_allowlist_requests_run_nothing() {
    let home = broker_home();
    let gateway = home.up();
    let inbox = home.path().join("state/broker/inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    // Dropped by something other than Clawdia (no agent, no session).
    let denied_marker = home.path().join("marker-denied");
    let foreign = serde_json::json!({
        "action": "touch the denied marker",
        "reason": "a cron script wants it",
        "commands": [["/usr/bin/touch", denied_marker.to_str().unwrap()]],
    });
    home.mock.push_for("admin", Reply::text("Assessment one."));
    std::fs::write(inbox.join(".partial-write"), "{").unwrap();
    std::fs::write(inbox.join("cafe01.json"), foreign.to_string()).unwrap();
    assert!(wait_until(Duration::from_secs(20), || elevation_in(&home, "awaiting_operator").is_some()));
    assert!(!inbox.join("cafe01.json").exists(), "the inbox file was not taken");
    let out = home.run(&["broker", "deny", "cafe01", "--note", "not today"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("denied; nothing ran"), "{}", stdout(&out));
    assert!(!denied_marker.exists());

    // A command off the allowlist: approved, but it fails without running.
    let off = serde_json::json!({
        "action": "remove a file",
        "reason": "cleanup",
        "commands": [["/bin/rm", "-f", "/tmp/whatever"]],
    });
    home.mock.push_for("admin", Reply::text("Assessment two."));
    // Written in two steps, as a writer that does not rename into place does: a half-written
    // file is left alone until it is finished, not rejected.
    {
        use std::io::Write as _;
        let text = off.to_string();
        let (first, rest) = text.split_at(text.len() / 2);
        let mut file = std::fs::File::create(inbox.join("beef02.json")).unwrap();
        file.write_all(first.as_bytes()).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(1_500));
        file.write_all(rest.as_bytes()).unwrap();
    }
    assert!(wait_until(Duration::from_secs(20), || {
        list(&home).iter().any(|row| row["id"] == "beef02" && row["status"] == "awaiting_operator")
    }));
    assert!(!inbox.join("rejected/beef02.json").exists(), "a half-written file was rejected");
    let out = home.run(&["broker", "approve", "beef02"]);
    assert!(!out.status.success());
    let shown = stdout(&home.run(&["broker", "show", "beef02"]));
    assert!(
        shown.contains("status:     failed") && shown.contains("not on this agent's allowlist"),
        "{shown}"
    );

    // Malformed: rejected, moved aside, audited.
    std::fs::write(inbox.join("bad03.json"), r#"{"action": "x", "reason": "y", "sudo": true}"#).unwrap();
    assert!(wait_until(Duration::from_secs(20), || inbox.join("rejected/bad03.json").exists()));
    let (code, audit) =
        crate::support::http(gateway.addr, "GET", "/v1/audit?min_severity=7", Some(&home.token()), "");
    assert_eq!(code, 200, "{audit}");
    assert!(audit.contains("elevation_rejected") && audit.contains("bad03.json"), "{audit}");
    assert!(inbox.join(".partial-write").exists(), "a hidden partial file was taken");
}

/// Stores a request in `state` as if the gateway had stopped there.
fn store_request(home: &Home, id: &str, state: &str, marker: &std::path::Path) {
    let filed = serde_json::json!({
        "action": format!("touch {id}"), "reason": "test", "urgency": "normal",
        "commands": [["/usr/bin/touch", marker.to_str().unwrap()]], "agent": "main", "session": "s-restart",
    })
    .to_string();
    let script = "import sqlite3,sys\ndb=sqlite3.connect(sys.argv[1])\ndb.execute(\"INSERT INTO elevations (id, status, filed, created_at, updated_at, expires_at) VALUES (?, ?, ?, 0, 0, 9999999999999)\", (sys.argv[2], sys.argv[3], sys.argv[4]))\ndb.commit()\n";
    let db = home.path().join("state/broker.db");
    let status = std::process::Command::new("python3")
        .args(["-c", script, db.to_str().unwrap(), id, state, &filed])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn after_a_restart_an_approved_request_runs_and_one_cut_off_while_running_is_never_run_again() {
    let home = broker_home();
    let gateway = home.up();
    assert!(gateway.terminate().success());
    let cut_off = home.path().join("marker-cut-off");
    let approved = home.path().join("marker-approved-before-restart");
    store_request(&home, "dead01", "executing", &cut_off);
    store_request(&home, "dead02", "approved", &approved);
    let _gateway = home.up();
    let settled = wait_until(Duration::from_secs(20), || {
        let rows = list(&home);
        let state = |id: &str| {
            rows.iter().find(|r| r["id"] == id).map(|r| r["status"].as_str().unwrap_or("").to_string())
        };
        state("dead01").as_deref() == Some("failed") && state("dead02").as_deref() == Some("done")
    });
    assert!(settled, "{:?}", list(&home));
    assert!(approved.exists(), "the approved request did not run after the restart");
    assert!(!cut_off.exists(), "a request cut off while running ran again");
    let shown = stdout(&home.run(&["broker", "show", "dead01"]));
    assert!(shown.contains("not run again"), "{shown}");
}

#[test]
fn the_owner_answers_in_their_own_words_questions_are_answered_changes_confirmed_and_nothing_unclear_approves()
 {
    let home = broker_home();
    let _gateway = home.up();
    let inbox = home.path().join("state/broker/inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let first = home.path().join("marker-first");
    let second = home.path().join("marker-second");
    let request = serde_json::json!({
        "action": "create two markers",
        "reason": "the deploy wants both",
        "commands": [["/usr/bin/touch", first.to_str().unwrap()], ["/usr/bin/touch", second.to_str().unwrap()]],
    });
    home.mock.push_for("admin", Reply::text("Low risk."));
    std::fs::write(inbox.join("feed01.json"), request.to_string()).unwrap();
    assert!(wait_until(Duration::from_secs(20), || elevation_in(&home, "awaiting_operator").is_some()));
    let reply = |text: &str| {
        let out = home.run(&["broker", "reply", "feed01", text]);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out)
    };

    // A question: read by the administrator, answered, and the request keeps waiting.
    home.mock.push_for("admin", Reply::text("{\"meaning\": \"question\"}"));
    home.mock.push_for("admin", Reply::text("It creates two empty files in the home folder, nothing else."));
    let answered = reply("what would this touch?");
    assert!(answered.contains("Read as a question; request feed01 is awaiting_operator"), "{answered}");
    assert!(answered.contains("two empty files"), "{answered}");
    assert!(wait_until(Duration::from_secs(10), || alerts(&home).contains("about your question")));

    // A model answer that is not a clear reading never approves.
    home.mock.push_for("admin", Reply::text("Sure, sounds good to me!"));
    home.mock.push_for("admin", Reply::text("Please say yes or no."));
    let unclear = reply("hmm, fine I guess, whatever you think");
    assert!(unclear.contains("Read as a question"), "{unclear}");
    assert!(!first.exists() && !second.exists());

    // "Only the first part": the commands change and are put to the owner again first.
    let only_first =
        serde_json::json!({"meaning": "modify", "commands": [["/usr/bin/touch", first.to_str().unwrap()]]});
    home.mock.push_for("admin", Reply::text(only_first.to_string()));
    let changed = reply("only the first part");
    assert!(changed.contains("Read as a change") && changed.contains("once you confirm"), "{changed}");
    assert!(!first.exists(), "a change ran before it was confirmed");
    let shown = stdout(&home.run(&["broker", "show", "feed01"]));
    assert!(shown.contains("marker-first") && !shown.contains("marker-second"), "{shown}");

    // A plain "yes" is read without a model and runs exactly the changed commands.
    let asked_before = home.mock.requests().len();
    let yes = reply("Yes.");
    assert!(yes.contains("Read as approve; request feed01 is done"), "{yes}");
    assert_eq!(home.mock.requests().len(), asked_before, "a one-word reply went to a model");
    assert!(first.exists() && !second.exists(), "not exactly the confirmed commands ran");

    // "No, not on Fridays" on another request: denied, nothing runs.
    home.mock.push_for("admin", Reply::text("Fine."));
    let third = home.path().join("marker-third");
    let another = serde_json::json!({"action": "touch a third", "reason": "r", "commands": [["/usr/bin/touch", third.to_str().unwrap()]]});
    std::fs::write(inbox.join("feed02.json"), another.to_string()).unwrap();
    assert!(wait_until(Duration::from_secs(20), || {
        list(&home).iter().any(|row| row["id"] == "feed02" && row["status"] == "awaiting_operator")
    }));
    home.mock.push_for("admin", Reply::text("{\"meaning\": \"deny\"}"));
    let out = home.run(&["broker", "reply", "feed02", "no, not on Fridays"]);
    assert!(stdout(&out).contains("Read as deny; request feed02 is denied"), "{}", stdout(&out));
    assert!(!third.exists());
    // A decided request takes no more replies.
    let late = home.run(&["broker", "reply", "feed02", "yes"]);
    assert!(!late.status.success() && stderr(&late).contains("already"), "{}", stderr(&late));
}

#[test]
fn a_request_nobody_decides_expires_and_the_asking_session_is_told() {
    let home = broker_home();
    let config = home.path().join("clawdia.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("admin_agent = \"admin\"", "admin_agent = \"admin\"\nttl = \"2s\""))
        .unwrap();
    let _gateway = home.up();
    let marker = home.path().join("marker-expired");
    let request = serde_json::json!({
        "action": "create the expiring marker", "reason": "r",
        "commands": [["/usr/bin/touch", marker.to_str().unwrap()]],
    })
    .to_string();
    home.mock.push(Reply::tool_calls(vec![("request_elevation", request.as_str())]));
    home.mock.push(Reply::text("Asked."));
    home.mock.push_for("admin", Reply::text("Assessment."));
    home.mock.push(Reply::text("Understood, it expired."));
    let out = home.run(&["chat", "-m", "make the marker", "--session", "s-expiring"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        wait_until(Duration::from_secs(30), || elevation_in(&home, "expired").is_some()),
        "{:?}",
        list(&home)
    );
    let id = elevation_in(&home, "expired").unwrap()["id"].as_str().unwrap().to_string();
    let late = home.run(&["broker", "approve", &id]);
    assert!(!late.status.success(), "an expired request was approved");
    assert!(!marker.exists());
    let told = wait_until(Duration::from_secs(20), || {
        home.mock.requests().last().is_some_and(|r| {
            let text = r.body["messages"].to_string();
            text.contains("Bridge message from the administrator") && text.contains("expired")
        })
    });
    assert!(told, "the asking session was not told");
}
