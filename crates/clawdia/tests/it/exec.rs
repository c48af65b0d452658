//! `exec` end to end: the mock model calls `exec`, the real binary runs the command in its
//! sandbox (re-executing itself as the helper), and the model reads the result. The home lives
//! under the target dir, not `/tmp`, so the hidden `secrets/` is hidden by the sandbox's mask,
//! not by its private `/tmp`. Plus `clawdia doctor`'s sandbox report.

use std::path::Path;

use crate::support::*;

fn sandbox_home(extra: &str) -> Home {
    Home::with_agent_extra_in(extra, Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// The text of the last tool result the model was sent.
fn last_tool_result(home: &Home) -> String {
    let requests = home.mock.requests();
    let last = requests.last().expect("the model was called");
    let messages = last.body["messages"].as_array().expect("messages").clone();
    let content = &messages.last().expect("a message")["content"];
    let blocks = content.as_array().cloned().unwrap_or_default();
    blocks
        .iter()
        .filter(|block| block["type"] == "tool_result")
        .map(|block| match &block["content"] {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_model_runs_a_command_in_the_sandbox_and_reads_the_result() {
    // The default (bubblewrap where installed) and the built-in sandbox.
    for extra in ["", "sandbox = \"builtin\"\n"] {
        let home = sandbox_home(extra);
        let token = home.token();
        let command = "echo made > made-by-exec.txt; cat ../../secrets/gateway-token; \
                       echo key=${CLAWDIA_TEST_KEY:-unset}; touch ../../escaped; echo done; exit 3";
        let arguments = serde_json::json!({ "command": command }).to_string();
        home.mock.push(Reply::tool_calls(vec![("exec", arguments.as_str())]));
        home.mock.push(Reply::text("The command ran."));
        let out = home.run(&["chat", "-m", "run it"]);
        assert!(out.status.success(), "{extra}: {}", stderr(&out));
        assert!(stdout(&out).contains("The command ran."), "{}", stdout(&out));
        let result = last_tool_result(&home);
        assert!(result.contains("exit code 3"), "{extra}: {result}");
        assert!(result.contains("done"), "{extra}: {result}");
        assert!(result.contains("key=unset"), "{extra}: the gateway's environment leaked: {result}");
        assert!(!result.contains(&token), "{extra}: the gateway token leaked: {result}");
        assert!(!result.contains("test-key"));
        // The stored result masks registered secrets, so a leak would show as the mask.
        assert!(!result.contains("[redacted]"), "{extra}: a secret reached the sandbox: {result}");
        let made = std::fs::read_to_string(home.workspace().join("made-by-exec.txt")).unwrap();
        assert_eq!(made, "made\n", "{extra}");
        assert!(!home.path().join("escaped").exists(), "{extra}: wrote outside the workspace");
    }
}

#[test]
fn exec_reaches_an_allowlisted_host_through_the_egress_proxy_and_nothing_else() {
    // A server on the host's loopback: reachable only because the entry names its address.
    let port = http_upstream("from the host\n");
    for extra in ["", "sandbox = \"builtin\"\n"] {
        let home = sandbox_home(&format!("{extra}[agents.main.exec]\negress = [\"127.0.0.1:{port}\"]\n"));
        let command = format!(
            "NO_PROXY= no_proxy= curl -sS http://127.0.0.1:{port}/; \
             curl -sS -o /dev/null -w 'elsewhere %{{http_code}}\\n' http://example.com/"
        );
        let arguments = serde_json::json!({ "command": command }).to_string();
        home.mock.push(Reply::tool_calls(vec![("exec", arguments.as_str())]));
        home.mock.push(Reply::text("Fetched."));
        let out = home.run(&["chat", "-m", "fetch it"]);
        assert!(out.status.success(), "{extra}: {}", stderr(&out));
        let offered = home.mock.requests()[0].body.to_string();
        assert!(
            offered.contains(&format!("only to 127.0.0.1:{port}")),
            "{extra}: the exec description: {offered}"
        );
        let result = last_tool_result(&home);
        assert!(result.contains("from the host\n"), "{extra}: {result}");
        assert!(result.contains("elsewhere 403\n"), "{extra}: {result}");
        assert!(
            result.contains(
                "[egress proxy refused 1 request(s): GET http://example.com:80/: example.com:80 is not on"
            ),
            "{extra}: {result}"
        );
    }
}

#[test]
fn a_command_that_outlives_its_timeout_is_killed_and_the_model_is_told() {
    let home = sandbox_home("[agents.main.exec]\ntimeout_seconds = 1\n");
    let arguments = serde_json::json!({ "command": "echo started; sleep 60" }).to_string();
    home.mock.push(Reply::tool_calls(vec![("exec", arguments.as_str())]));
    home.mock.push(Reply::text("It timed out."));
    let started = std::time::Instant::now();
    let out = home.run(&["chat", "-m", "run it"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    let result = last_tool_result(&home);
    assert!(
        result.contains("timed out after 1s: the command and everything it started were killed"),
        "{result}"
    );
    assert!(result.contains("started"), "{result}");
}

#[test]
fn doctor_names_the_sandbox_and_fails_for_sandbox_off() {
    let home = sandbox_home("");
    let out = home.run(&["doctor"]);
    let text = stdout(&out);
    assert!(
        text.contains("ok    sandbox: bubblewrap works") || text.contains("ok    sandbox: built-in works"),
        "{text}"
    );
    assert!(text.contains("ok    agent `main`: exec runs in the"), "{text}");
    let off = sandbox_home("sandbox = \"off\"\n");
    let out = off.run(&["doctor"]);
    assert!(!out.status.success());
    let text = stdout(&out);
    assert!(
        text.contains("FAIL  agent `main`: sandbox = \"off\": exec runs commands on this machine with the gateway's rights"),
        "{text}"
    );
}

/// `host_exec` end to end: host commands run outside the sandbox only for allowlisted senders
/// and argument patterns, with a credential injected from a secret reference and masked in
/// what the model reads; refusals reach the model as errors and `clawdia status` as audit events.
#[test]
fn elevated_host_commands_run_only_for_allowlisted_senders_with_credentials_masked() {
    let home = sandbox_home("");
    let marker = home.path().join("host-made");
    let config = std::fs::read_to_string(home.path().join("clawdia.toml")).unwrap();
    let config = format!(
        "{config}\n[agents.main.elevated]\nsenders = [\"cli\", \"api:alice\"]\n\
         [[agents.main.elevated.commands]]\npath = \"/usr/bin/env\"\n\
         env = {{ DEPLOY_TOKEN = {{ env = \"CLAWDIA_TEST_KEY\" }} }}\n\
         [[agents.main.elevated.commands]]\npath = \"/usr/bin/touch\"\nargs = [\"*/host-made\"]\n"
    );
    std::fs::write(home.path().join("clawdia.toml"), config).unwrap();

    // The owner at the terminal: both commands run on the host (the marker is outside the
    // workspace, where the sandbox could never write).
    let env_call = serde_json::json!({ "program": "/usr/bin/env" }).to_string();
    let touch_call =
        serde_json::json!({ "program": "/usr/bin/touch", "args": [marker.to_str().unwrap()] }).to_string();
    home.mock.push(Reply::tool_calls(vec![("host_exec", env_call.as_str())]));
    home.mock.push(Reply::tool_calls(vec![("host_exec", touch_call.as_str())]));
    home.mock.push(Reply::text("Done on the host."));
    let out = home.run(&["chat", "-m", "deploy"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(marker.exists(), "the allowlisted host command did not run");
    let requests = home.mock.requests();
    let env_result = requests[1].body["messages"].to_string();
    assert!(env_result.contains("DEPLOY_TOKEN=[DEPLOY_TOKEN redacted]"), "{env_result}");
    assert!(!env_result.contains("test-key"), "the credential reached the model");

    // Over the API: an unlisted sender is refused before anything runs, a listed one is not.
    std::fs::remove_file(&marker).unwrap();
    let gateway = home.up();
    let token = home.token();
    home.mock.push(Reply::tool_calls(vec![("host_exec", touch_call.as_str())]));
    home.mock.push(Reply::text("Refused."));
    let (status, body) = http(
        gateway.addr,
        "POST",
        "/v1/turns",
        Some(&token),
        r#"{"message":"deploy","session":"from-bob","sender":"bob"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(!marker.exists(), "a refused sender's host command ran");
    assert!(last_tool_result(&home).contains("sender `api:bob` may not run host commands"));
    home.mock.push(Reply::tool_calls(vec![("host_exec", touch_call.as_str())]));
    home.mock.push(Reply::text("Ran."));
    let (status, body) = http(
        gateway.addr,
        "POST",
        "/v1/turns",
        Some(&token),
        r#"{"message":"deploy","session":"from-alice","sender":"alice"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(marker.exists(), "an allowlisted API sender's host command did not run");
    drop(gateway);
    let status = stdout(&home.run(&["status"]));
    assert!(status.contains("elevated_refused"), "{status}");
}
