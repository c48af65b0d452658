//! MCP servers end to end through the real binary (which is also the sandbox helper): the mock
//! model calls `everything__echo` and reads the answer; an agent without the grant is neither
//! offered nor allowed the tool (`*` notwithstanding), and the refusal is audited; the
//! filesystem server reads in the home but the sandbox keeps `secrets/` from it; a hung call
//! times out and the next call gets a fresh server; `clawdia mcp list|probe`.
//!
//! The servers come from npm (`bash scripts/test.sh` installs them in
//! `$HOME/.cache/clawdia/npm`, or `CLAWDIA_TEST_NPM`); without node or them a test prints a
//! skip, which under `CI` is a failure. Homes live under the target dir (not the sandbox's
//! private `/tmp`).

use std::path::{Path, PathBuf};

use crate::support::*;

const FAKE_SERVER: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../clawdia-mcp/tests/fixtures/fake-mcp-server.js");

fn skip_or_fail(what: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} must work in CI: {why}");
    }
    println!("skipped {what}: {why}");
}

fn node() -> bool {
    let found = ["/usr/bin/node", "/usr/local/bin/node"].iter().any(|p| Path::new(p).exists());
    if !found {
        skip_or_fail("MCP end-to-end tests", "node is not installed (apt install nodejs npm)");
    }
    found
}

/// `dist/index.js` of an npm reference server, or a printed skip.
fn npm_server(package: &str) -> Option<String> {
    if !node() {
        return None;
    }
    let dir = match std::env::var_os("CLAWDIA_TEST_NPM") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/clawdia/npm"),
    };
    let script = dir.join("node_modules/@modelcontextprotocol").join(package).join("dist/index.js");
    if !script.exists() {
        skip_or_fail(package, &format!("{} is missing (bash scripts/test.sh installs it)", script.display()));
        return None;
    }
    Some(script.display().to_string())
}

/// A home under the target dir whose config ends with `extra` (more agents, `[mcp]` tables).
fn home_with(extra: &str) -> Home {
    Home::with_agent_extra_in(extra, Path::new(env!("CARGO_TARGET_TMPDIR")))
}

fn everything_table(script: &str, agents: &str) -> String {
    format!(
        "\n[mcp.servers.everything]\ncommand = \"node\"\nargs = [{script:?}, \"stdio\"]\nagents = {agents}\n"
    )
}

/// The tool names offered in the model request `index`.
fn offered(home: &Home, index: usize) -> Vec<String> {
    home.mock.requests()[index].body["tools"]
        .as_array()
        .map(|tools| tools.iter().map(|t| t["name"].as_str().unwrap_or_default().to_string()).collect())
        .unwrap_or_default()
}

/// The tool results sent in model request `index`, as JSON text.
fn results(home: &Home, index: usize) -> String {
    let requests = home.mock.requests();
    let messages = requests[index].body["messages"].as_array().cloned().unwrap_or_default();
    messages.last().map(|m| m["content"].to_string()).unwrap_or_default()
}

/// Whether the audit database (or its WAL) holds `needle`.
fn audited(home: &Home, needle: &str) -> bool {
    ["state/audit.db", "state/audit.db-wal"].iter().any(|file| {
        std::fs::read(home.path().join(file))
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

#[test]
fn the_model_calls_an_mcp_tool_and_reads_the_result() {
    let Some(script) = npm_server("server-everything") else { return };
    let home = home_with(&everything_table(&script, "[\"main\"]"));
    home.mock.push(Reply::tool_calls(vec![("everything__echo", r#"{"message":"hello from the model"}"#)]));
    home.mock.push(Reply::text("The server echoed."));
    let out = home.run(&["chat", "-m", "echo something"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("The server echoed."), "{}", stdout(&out));
    let tools = offered(&home, 0);
    assert!(tools.contains(&"everything__echo".to_string()), "{tools:?}");
    let echo = home.mock.requests()[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "everything__echo")
        .cloned()
        .unwrap();
    assert_eq!(
        echo["input_schema"]["properties"]["message"]["type"], "string",
        "the server's schema: {echo}"
    );
    let result = results(&home, 1);
    assert!(result.contains("Echo: hello from the model"), "{result}");
    assert!(result.contains("source=tool:everything__echo"), "in trust markers: {result}");
    // The server's own folder was created; its tools were cached for `mcp list`.
    assert!(home.path().join("mcp/everything").is_dir());
    let list = home.run(&["mcp", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    assert!(stdout(&list).contains("everything__echo"), "{}", stdout(&list));
}

#[test]
fn an_agent_without_the_grant_cannot_see_or_call_mcp_tools() {
    let Some(script) = npm_server("server-everything") else { return };
    // `other` allows `*` and is still not granted; `main` is granted but denies the tool.
    let extra = format!(
        "[agents.main.tools]\ndeny = [\"everything__get-sum\"]\n\n[agents.other]\nmodel = \"mock/primary\"\n\
         [agents.other.tools]\nallow = [\"*\"]\n{}",
        everything_table(&script, "[\"main\"]")
    );
    let home = home_with(&extra);
    home.mock.push(Reply::tool_calls(vec![("everything__echo", r#"{"message":"sneaky"}"#)]));
    home.mock.push(Reply::text("refused"));
    let out = home.run(&["chat", "-a", "other", "-m", "try it"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(offered(&home, 0).iter().all(|t| !t.starts_with("everything__")), "{:?}", offered(&home, 0));
    let result = results(&home, 1);
    assert!(result.contains("no tool named `everything__echo` for agent `other`"), "{result}");
    assert!(!result.contains("Echo: sneaky"), "{result}");
    assert!(!home.path().join("mcp/everything").exists(), "nothing started for an ungranted agent");
    assert!(audited(&home, "tool_unknown"), "the refusal is in the audit log");
    // The granted agent's deny list still applies.
    home.mock.push(Reply::tool_calls(vec![("everything__get-sum", r#"{"a":1,"b":2}"#)]));
    home.mock.push(Reply::text("denied"));
    let out = home.run(&["chat", "-m", "add"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let tools = offered(&home, 2);
    assert!(
        tools.contains(&"everything__echo".to_string())
            && !tools.contains(&"everything__get-sum".to_string())
    );
    assert!(results(&home, 3).contains("not allowed for agent `main`"), "{}", results(&home, 3));
    assert!(audited(&home, "tool_denied"));
}

#[test]
fn the_filesystem_server_reads_the_workspace_but_the_sandbox_hides_secrets() {
    let Some(script) = npm_server("server-filesystem") else { return };
    let home = home_with("");
    let root = home.path().canonicalize().unwrap();
    let config = std::fs::read_to_string(home.path().join("clawdia.toml")).unwrap();
    let table = format!(
        "\n[mcp.servers.files]\ncommand = \"node\"\nargs = [{script:?}, {root:?}]\nagents = [\"main\"]\n",
        root = root.display().to_string()
    );
    std::fs::write(home.path().join("clawdia.toml"), config + &table).unwrap();
    std::fs::write(home.workspace().join("notes.txt"), "milk, eggs").unwrap();
    let token = home.token();
    let notes =
        serde_json::json!({"path": home.workspace().canonicalize().unwrap().join("notes.txt")}).to_string();
    let secret = serde_json::json!({"path": root.join("secrets/gateway-token")}).to_string();
    home.mock
        .push(Reply::tool_calls(vec![("files__read_text_file", &notes), ("files__read_text_file", &secret)]));
    home.mock.push(Reply::text("read"));
    let out = home.run(&["chat", "-m", "read both"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let result = results(&home, 1);
    assert!(result.contains("milk, eggs"), "{result}");
    assert!(!result.contains(&token), "the sandbox let the server read secrets/: {result}");
    assert!(result.contains("\"is_error\":true"), "{result}");
}

#[test]
fn a_hung_call_times_out_and_the_next_call_gets_a_fresh_server() {
    if !node() {
        return;
    }
    let table = format!(
        "\n[mcp.servers.fake]\ncommand = \"node\"\nargs = [{FAKE_SERVER:?}]\nagents = [\"main\"]\ntimeout_seconds = 2\n"
    );
    let home = home_with(&table);
    home.mock.push(Reply::tool_calls(vec![("fake__hang", "{}")]));
    home.mock.push(Reply::tool_calls(vec![("fake__echo", r#"{"text":"still here"}"#)]));
    home.mock.push(Reply::text("recovered"));
    let started = std::time::Instant::now();
    let out = home.run(&["chat", "-m", "hang then echo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("recovered"));
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    let hung = results(&home, 1);
    assert!(hung.contains("timed out after 2s") && hung.contains("\"is_error\":true"), "{hung}");
    assert!(results(&home, 2).contains("fake: still here"), "{}", results(&home, 2));
    assert!(audited(&home, "mcp_timeout"));
}

#[test]
fn mcp_list_and_probe() {
    if !node() {
        return;
    }
    let table = format!(
        "\n[agents.docs]\nmodel = \"mock/primary\"\n\n[mcp.servers.fake]\ncommand = \"node\"\nargs = [{FAKE_SERVER:?}]\n\
         agents = [\"main\", \"docs\"]\n\n[mcp.servers.broken]\ncommand = \"/nonexistent/mcp-server\"\nagents = [\"docs\"]\n"
    );
    let home = home_with(&table);
    let list = home.run(&["mcp", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    assert!(text.contains("fake") && text.contains("agents   main, docs"), "{text}");
    assert!(text.contains("not listed yet"), "nothing was started: {text}");
    let probe = home.run(&["mcp", "probe", "fake"]);
    assert!(probe.status.success(), "{}", stderr(&probe));
    let text = stdout(&probe);
    assert!(text.contains("fake: started in") && text.contains("5 tools"), "{text}");
    assert!(text.contains("fake__echo  Echoes `text`."), "{text}");
    let json = home.run(&["mcp", "probe", "fake", "--json"]);
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("probe --json is JSON");
    assert_eq!(parsed["tools"][0]["name"], "fake__echo");
    assert_eq!(parsed["tools"][0]["input_schema"]["type"], "object");
    let list = home.run(&["mcp", "list", "--json"]);
    let parsed: serde_json::Value = serde_json::from_slice(&list.stdout).expect("list --json is JSON");
    let fake = parsed.as_array().unwrap().iter().find(|s| s["name"] == "fake").unwrap().clone();
    assert_eq!(fake["tools"].as_array().unwrap().len(), 5, "the probe's listing is cached: {fake}");
    // Errors: one line, exit 2 for a name not in the config, 1 for a server that cannot start.
    let missing = home.run(&["mcp", "probe", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert_eq!(
        stderr(&missing).trim(),
        "clawdia: error: no MCP server `nope` in the config (configured: broken, fake)"
    );
    let broken = home.run(&["mcp", "probe", "broken"]);
    assert_eq!(broken.status.code(), Some(1));
    let error = stderr(&broken);
    assert!(error.starts_with("clawdia: error: MCP server `broken` cannot start:"), "{error}");
    assert_eq!(error.trim().lines().count(), 1, "{error}");
    assert!(!error.contains("panicked"), "{error}");
    let doctor = stdout(&home.run(&["doctor"]));
    assert!(doctor.contains("MCP server `fake`: runs in the"), "{doctor}");
}

#[test]
fn a_server_written_as_the_interface_shows_it_starts_granted_to_no_agent() {
    // `command`, `args`, `env` only, as INTERFACES.md writes it: the config loads, `mcp list`
    // says nobody is granted the server and how to grant it, and `config check` passes.
    let table = "\n[mcp.servers.files]\ncommand = \"npx\"\nargs = [\"-y\", \"server-files\"]\nenv = { LEVEL = \"warn\" }\n\n\
                 [mcp.servers.granted]\ncommand = \"node\"\nagents = [\"main\"]\n";
    let home = home_with(table);
    let check = home.run(&["config", "check"]);
    assert!(check.status.success(), "{}", stderr(&check));
    let list = home.run(&["mcp", "list"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let text = stdout(&list);
    assert!(
        text.contains(
            "  agents   none: no agent sees its tools (add agents = [\"main\"] to [mcp.servers.files])"
        ),
        "{text}"
    );
    assert!(text.contains("  agents   main\n"), "a granted server still lists its agents: {text}");
    let json: serde_json::Value =
        serde_json::from_slice(&home.run(&["mcp", "list", "--json"]).stdout).unwrap();
    let files = json.as_array().unwrap().iter().find(|s| s["name"] == "files").unwrap().clone();
    assert_eq!(files["agents"], serde_json::json!([]), "{files}");
}

/// Host pids whose working directory is `dir` (a sandboxed server's is its own folder).
fn processes_in(dir: &Path) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
        .collect()
}

#[test]
fn the_gateway_starts_a_server_on_first_use_and_stops_it_on_exit() {
    if !node() {
        return;
    }
    let table =
        format!("\n[mcp.servers.fake]\ncommand = \"node\"\nargs = [{FAKE_SERVER:?}]\nagents = [\"main\"]\n");
    let home = home_with(&table);
    let gateway = home.up();
    let folder = home.path().canonicalize().unwrap().join("mcp/fake");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!folder.exists(), "nothing starts with the gateway");
    home.mock.push(Reply::tool_calls(vec![("fake__echo", r#"{"text":"via the gateway"}"#)]));
    home.mock.push(Reply::text("done"));
    let out = home.run(&["chat", "-m", "echo"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(results(&home, 1).contains("fake: via the gateway"), "{}", results(&home, 1));
    assert!(!processes_in(&folder).is_empty(), "the server keeps running in the gateway");
    // Warm: the next turn reuses it.
    home.mock.push(Reply::tool_calls(vec![("fake__echo", r#"{"text":"again"}"#)]));
    home.mock.push(Reply::text("done"));
    assert!(home.run(&["chat", "-m", "echo"]).status.success());
    assert!(results(&home, 3).contains("fake: again"));
    let cached = std::fs::read_to_string(home.path().join("state/mcp/fake.json")).unwrap();
    assert!(cached.contains("\"echo\""), "{cached}");
    assert!(gateway.terminate().success());
    assert!(
        wait_until(std::time::Duration::from_secs(5), || processes_in(&folder).is_empty()),
        "the server's tree ends with the gateway: {:?}",
        processes_in(&folder)
    );
}

/// `mcp:NAME` in `/v1/status`: (state, restarts, error).
fn mcp_state(gateway: &Gateway, token: &str, name: &str) -> Option<(String, u64, Option<String>)> {
    let (code, body) = http(gateway.addr, "GET", "/v1/status", Some(token), "");
    assert_eq!(code, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("status JSON");
    json["components"].as_array()?.iter().find(|c| c["name"] == format!("mcp:{name}")).map(|c| {
        (
            c["state"].as_str().unwrap_or_default().to_string(),
            c["restarts"].as_u64().unwrap_or(0),
            c["error"].as_str().map(str::to_string),
        )
    })
}

#[test]
fn the_daemon_shows_each_mcp_servers_state() {
    if !node() {
        return;
    }
    let table = format!(
        "\n[mcp.servers.fake]\ncommand = \"node\"\nargs = [{FAKE_SERVER:?}]\nagents = [\"main\"]\n\n\
         [mcp.servers.broken]\ncommand = \"/nonexistent/mcp-server\"\nagents = [\"main\"]\n"
    );
    let home = home_with(&table);
    let gateway = home.up();
    let token = home.token();
    // Servers start on first use: listed, not running.
    assert_eq!(mcp_state(&gateway, &token, "fake").map(|s| s.0).as_deref(), Some("stopped"));
    assert_eq!(mcp_state(&gateway, &token, "broken").map(|s| s.0).as_deref(), Some("stopped"));
    home.mock.push(Reply::tool_calls(vec![("fake__echo", r#"{"text":"hi"}"#)]));
    home.mock.push(Reply::text("echoed"));
    let body = r#"{"model":"main","messages":[{"role":"user","content":"echo hi"}]}"#;
    let (code, answer) = http(gateway.addr, "POST", "/v1/chat/completions", Some(&token), body);
    assert_eq!(code, 200, "{answer}");
    assert!(results(&home, 1).contains("fake: hi"), "{}", results(&home, 1));
    let mut last = None;
    let seen = wait_until(std::time::Duration::from_secs(10), || {
        last = Some((mcp_state(&gateway, &token, "fake"), mcp_state(&gateway, &token, "broken")));
        matches!(&last, Some((Some(fake), Some(broken))) if fake.0 == "running" && broken.0 == "failed")
    });
    assert!(seen, "states after a turn: {last:?}");
    let broken = mcp_state(&gateway, &token, "broken").expect("listed");
    assert!(broken.2.is_some_and(|error| !error.is_empty()), "the failure is shown");
    let status = stdout(&home.run(&["status"]));
    assert!(
        status.lines().any(|l| l.trim_start().starts_with("mcp:fake") && l.contains("running")),
        "{status}"
    );
    assert!(gateway.terminate().success());
}
