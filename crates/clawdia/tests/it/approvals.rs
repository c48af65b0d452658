//! The gate's approvals end to end through the real binary: a `write` the owner must approve
//! is filed, not run; `clawdia broker list/show` show it; `approve` runs the stored call and the
//! agent continues; a request is decided once; `deny` never runs it; requests survive a gateway
//! killed with SIGKILL, and a running gateway applies the decision over its API.

use std::time::Duration;

use crate::support::*;

const ASK_WRITE: &str = "[agents.main.tools]\nask = [\"write\"]\n";

fn ask_write(home: &Home, file: &str, content: &str) -> String {
    let arguments = serde_json::json!({ "path": file, "content": content }).to_string();
    home.mock.push(Reply::tool_calls(vec![("write", arguments.as_str())]));
    let out = home.run(&["chat", "-m", &format!("write {file}")]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Waiting for the owner's approval"), "{}", stdout(&out));
    assert!(!home.workspace().join(file).exists(), "the write waits for the owner");
    let list = home.run(&["broker", "list", "--json", "--pending"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let rows: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["summary"].as_str().unwrap_or("").contains(file))
        .unwrap_or_else(|| panic!("{rows}"))
        .clone();
    assert_eq!(
        (row["kind"].as_str(), row["status"].as_str(), row["agent"].as_str()),
        (Some("tool_call"), Some("pending"), Some("main"))
    );
    assert!(row["created_at"].as_str().unwrap().ends_with('Z'), "{row}");
    row["id"].as_str().unwrap().to_string()
}

#[test]
fn an_approved_call_runs_once_as_asked_and_a_denied_one_never_runs() {
    let home = Home::with_agent_extra(ASK_WRITE);
    let id = ask_write(&home, "approved.txt", "hello from the agent");
    let status = stdout(&home.run(&["status"]));
    assert!(status.contains("approvals: 1 waiting for you") && status.contains(&id), "{status}");
    let show = home.run(&["broker", "show", &id]);
    assert!(
        stdout(&show).contains("hello from the agent") && stdout(&show).contains("tools.ask"),
        "{}",
        stdout(&show)
    );

    home.mock.push(Reply::text("Written, thanks."));
    let out = home.run(&["broker", "approve", &id, "--note", "fine"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("`write` ran") && stdout(&out).contains("Written, thanks."),
        "{}",
        stdout(&out)
    );
    let written = std::fs::read_to_string(home.workspace().join("approved.txt")).unwrap();
    assert_eq!(written, "hello from the agent");
    // The agent was told in its own session, with the owner's approval and the result.
    let told = home.mock.requests().last().unwrap().body.to_string();
    assert!(told.contains("approved your `write` call"), "{told}");

    // Decided once: a replay is refused, and the file is not written again.
    std::fs::remove_file(home.workspace().join("approved.txt")).unwrap();
    let again = home.run(&["broker", "approve", &id]);
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("already done"), "{}", stderr(&again));
    assert!(!home.workspace().join("approved.txt").exists());

    let denied = ask_write(&home, "denied.txt", "nope");
    home.mock.push(Reply::text("Understood."));
    let out = home.run(&["broker", "deny", &denied, "--note", "not that file"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("denied"), "{}", stdout(&out));
    assert!(!home.workspace().join("denied.txt").exists());
    let all = home.run(&["broker", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&all)).unwrap();
    let statuses: Vec<&str> =
        rows.as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["denied", "done"]);
    let unknown = home.run(&["broker", "approve", "ffffffff"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no request `ffffffff`"), "{}", stderr(&unknown));
}

#[test]
fn requests_survive_a_killed_gateway_and_a_running_one_applies_the_decision() {
    let home = Home::with_agent_extra(&format!("{ASK_WRITE}\n[alerts]\nroutes = [\"log\"]\n"));
    let gateway = home.up();
    let token = home.token();
    // Through the running gateway (`chat` finds it).
    let id = ask_write(&home, "survivor.txt", "still here");
    // The owner hears of it through the outbox.
    let alerts = home.path().join("logs/alerts.log");
    let alerted = wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&alerts)
            .is_ok_and(|log| log.contains("approval_request") && log.contains(&id))
    });
    assert!(alerted, "{:?}", std::fs::read_to_string(&alerts));
    let (status, _) = http(gateway.addr, "GET", "/v1/approvals", None, "");
    assert_eq!(status, 401);
    let (status, body) = http(gateway.addr, "GET", "/v1/approvals?pending=true", Some(&token), "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&id) && body.contains("survivor.txt"), "{body}");
    gateway.kill9();

    let gateway = home.up();
    let (_, body) = http(gateway.addr, "GET", "/v1/approvals?pending=true", Some(&token), "");
    assert!(body.contains(&id), "the request outlived the gateway: {body}");
    home.mock.push(Reply::text("Done it."));
    let out = home.run(&["broker", "approve", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Done it."), "{}", stdout(&out));
    assert_eq!(std::fs::read_to_string(home.workspace().join("survivor.txt")).unwrap(), "still here");
    // The gateway applied it: a second decision over the API is a conflict.
    let (status, body) = http(gateway.addr, "POST", &format!("/v1/approvals/{id}/deny"), Some(&token), "{}");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("already done"), "{body}");
}
