//! The MCP client against real servers: `@modelcontextprotocol/server-everything` and
//! `@modelcontextprotocol/server-filesystem` from npm (installed by `scripts/test.sh` into
//! `$HOME/.cache/clawdia/npm`, or `CLAWDIA_TEST_NPM`), and a tiny misbehaving server
//! (`tests/fixtures/fake-mcp-server.js`) for hangs and crashes. Every server runs in the real
//! sandbox. Without node or the npm packages a test prints why it is skipped; under `CI` that
//! is a failure.
//!
//! Homes live under the target dir, not `/tmp`: the sandbox's private `/tmp` would hide them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawdia_config::{McpServerConfig, Sandbox};
use clawdia_core::{AuditEvent, AuditSink, ToolSource};
use clawdia_mcp::{Launch, McpError, McpServer, McpSource};

const HELPER: &str = env!("CARGO_BIN_EXE_clawdia-mcp-sandbox-helper");

fn skip_or_fail(what: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} must work in CI: {why}");
    }
    println!("skipped {what}: {why}");
}

/// The npm install folder holding the reference servers, if they are installed.
fn npm_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("CLAWDIA_TEST_NPM") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/clawdia/npm"),
    };
    dir.join("node_modules/@modelcontextprotocol").is_dir().then_some(dir)
}

fn node_available() -> bool {
    ["/usr/bin/node", "/usr/local/bin/node"].iter().any(|p| Path::new(p).exists())
}

/// `dist/index.js` of the npm server `package`, or a printed skip.
fn npm_server(package: &str) -> Option<String> {
    if !node_available() {
        skip_or_fail(package, "node is not installed (apt install nodejs npm)");
        return None;
    }
    let Some(dir) = npm_dir() else {
        skip_or_fail(package, "the npm servers are not installed (bash scripts/test.sh installs them)");
        return None;
    };
    let script = dir.join("node_modules/@modelcontextprotocol").join(package).join("dist/index.js");
    if !script.exists() {
        skip_or_fail(package, &format!("{} is missing", script.display()));
        return None;
    }
    Some(script.display().to_string())
}

fn fake_server() -> Option<String> {
    if !node_available() {
        skip_or_fail("the fake MCP server", "node is not installed (apt install nodejs)");
        return None;
    }
    Some(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-mcp-server.js").to_string())
}

#[derive(Default)]
struct Audit(std::sync::Mutex<Vec<AuditEvent>>);

impl AuditSink for Audit {
    fn record(&self, event: AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Audit {
    fn kinds(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|e| e.kind.clone()).collect()
    }
}

/// A home under the target dir with `secrets/key` and a `shared/` folder.
struct Home {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("secrets")).unwrap();
        std::fs::write(root.join("secrets/key"), "the-secret-value").unwrap();
        std::fs::create_dir_all(root.join("shared")).unwrap();
        std::fs::write(root.join("shared/note.txt"), "a note for the agent").unwrap();
        Home { _dir: dir, root }
    }

    fn config(&self, name: &str, script: &str, args: &[&str]) -> McpServerConfig {
        let mut all = vec![script.to_string()];
        all.extend(args.iter().map(|a| a.to_string()));
        McpServerConfig {
            name: name.into(),
            command: "node".into(),
            args: all,
            env: Vec::new(),
            agents: vec!["main".into()],
            timeout: Duration::from_secs(20),
            sandbox: Sandbox::Auto,
            egress: Vec::new(),
            dir: self.root.join("mcp").join(name),
            memory_bytes: 32 << 30,
            cpu_seconds: 3600,
            processes: 256,
            open_files: 1024,
            file_size_bytes: 256 << 20,
        }
    }

    fn server(&self, config: McpServerConfig, audit: &Arc<Audit>) -> Arc<McpServer> {
        let launch = Launch {
            helper: HELPER.into(),
            hidden: vec![self.root.join("secrets"), self.root.join("state")],
            cache_dir: Some(self.root.join("state/mcp")),
        };
        McpServer::new(config, launch, Some(audit.clone() as Arc<dyn AuditSink>))
    }
}

fn args(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    value.as_object().unwrap().clone()
}

/// Host pids whose command line is exactly `argv`.
fn host_processes(argv: &[&str]) -> Vec<u32> {
    let wanted: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted))
        .collect()
}

#[tokio::test]
async fn everything_lists_its_tools_lazily_and_echo_round_trips() {
    let Some(script) = npm_server("server-everything") else { return };
    let home = Home::new();
    let audit = Arc::new(Audit::default());
    let server = home.server(home.config("everything", &script, &["stdio"]), &audit);
    assert!(!server.status().await.running, "nothing starts before first use");
    let source = McpSource::new(server.clone());
    assert_eq!(source.name(), "mcp:everything");
    let tools = source.tools().await.unwrap();
    let names: Vec<String> = tools.iter().map(|t| t.spec().name.clone()).collect();
    assert!(names.contains(&"everything__echo".to_string()), "{names:?}");
    assert!(names.contains(&"everything__get-sum".to_string()), "{names:?}");
    let echo = tools.iter().find(|t| t.spec().name == "everything__echo").unwrap();
    assert_eq!(echo.group(), "mcp:everything");
    assert_eq!(echo.spec().parameters["properties"]["message"]["type"], "string", "the server's schema");
    let context = clawdia_core::ToolContext::new("main", "s1", &home.root, clawdia_core::TurnOrigin::Cli);
    let result = echo.call(&context, serde_json::json!({"message": "hi there"})).await.unwrap();
    assert_eq!(result, "Echo: hi there");
    let sum = tools.iter().find(|t| t.spec().name == "everything__get-sum").unwrap();
    let result = sum.call(&context, serde_json::json!({"a": 2, "b": 40})).await.unwrap();
    assert!(result.contains("42"), "{result}");
    // Listed once per start: asking again does not restart or re-list.
    source.tools().await.unwrap();
    let status = server.status().await;
    assert!(status.running);
    assert_eq!(status.starts, 1);
    let cached = clawdia_mcp::read_cache(&home.root.join("state/mcp"), "everything").unwrap();
    assert!(cached.tools.iter().any(|t| t.name == "echo" && !t.description.is_empty()));
    // A protocol error (bad arguments) is an error result and leaves the server running.
    let bad = server.call("get-sum", args(serde_json::json!({"a": "x"}))).await.unwrap_err();
    assert!(matches!(bad, McpError::Protocol { .. } | McpError::ToolFailed { .. }), "{bad:?}");
    assert!(server.status().await.running);
    server.stop().await;
    assert!(!server.status().await.running);
}

#[tokio::test]
async fn the_filesystem_server_reads_its_folder_but_not_secrets_and_writes_nothing_outside() {
    let Some(script) = npm_server("server-filesystem") else { return };
    let mut mechanisms = vec![Sandbox::Bwrap, Sandbox::Builtin];
    if clawdia_sandbox::find_bwrap().is_none() {
        skip_or_fail("bubblewrap", "`bwrap` is not on PATH");
        mechanisms.remove(0);
    }
    for sandbox in mechanisms {
        let home = Home::new();
        let audit = Arc::new(Audit::default());
        // The server is allowed the whole home: only the sandbox stands between it and secrets/.
        let root = home.root.display().to_string();
        let mut config = home.config("files", &script, &[&root]);
        config.sandbox = sandbox;
        let server = home.server(config, &audit);
        let read = |path: PathBuf| {
            let server = server.clone();
            async move { server.call("read_text_file", args(serde_json::json!({"path": path}))).await }
        };
        let note = read(home.root.join("shared/note.txt")).await.unwrap();
        assert_eq!(note, "a note for the agent", "{sandbox:?}");
        let secret = read(home.root.join("secrets/key")).await;
        let shown = format!("{secret:?}");
        assert!(secret.is_err(), "{sandbox:?}: {shown}");
        assert!(!shown.contains("the-secret-value"), "{sandbox:?}: {shown}");
        let outside = server
            .call(
                "write_file",
                args(serde_json::json!({"path": home.root.join("shared/new.txt"), "content": "x"})),
            )
            .await;
        assert!(outside.is_err(), "{sandbox:?}: {outside:?}");
        assert!(!home.root.join("shared/new.txt").exists(), "{sandbox:?}: wrote outside its folder");
        let own = home.root.join("mcp/files/own.txt");
        server.call("write_file", args(serde_json::json!({"path": own, "content": "mine"}))).await.unwrap();
        assert_eq!(std::fs::read_to_string(&own).unwrap(), "mine", "{sandbox:?}");
        server.stop().await;
    }
    // The control: with `sandbox = "off"` the same server does read the secret, so what kept it
    // out above was the sandbox, not the server.
    let home = Home::new();
    let root = home.root.display().to_string();
    let mut config = home.config("files", &script, &[&root]);
    config.sandbox = Sandbox::Off;
    let server = home.server(config, &Arc::new(Audit::default()));
    let secret =
        server.call("read_text_file", args(serde_json::json!({"path": home.root.join("secrets/key")})));
    assert_eq!(secret.await.unwrap(), "the-secret-value");
    server.stop().await;
}

#[tokio::test]
async fn a_hung_call_times_out_kills_the_tree_and_the_next_call_restarts_it() {
    let Some(script) = fake_server() else { return };
    let home = Home::new();
    let audit = Arc::new(Audit::default());
    let mut config = home.config("fake", &script, &[]);
    config.timeout = Duration::from_secs(2);
    let server = home.server(config, &audit);
    assert_eq!(server.call("echo", args(serde_json::json!({"text": "a"}))).await.unwrap(), "fake: a");
    let pgid = server.status().await.pgid.unwrap();
    let seconds = format!("{}", 300_000 + std::process::id() % 1000);
    let started = Instant::now();
    let error = server.call("hang", args(serde_json::json!({"seconds": seconds}))).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(error, McpError::Timeout { seconds: 2, .. }), "{error:?}");
    assert!(error.to_string().contains("timed out after 2s"), "{error}");
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(6), "{took:?}");
    assert!(!clawdia_sandbox::group_alive(pgid), "the server's process group is gone");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !host_processes(&["sleep", &seconds]).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(host_processes(&["sleep", &seconds]).is_empty(), "the grandchild survived the kill");
    assert!(audit.kinds().contains(&"mcp_timeout".to_string()), "{:?}", audit.kinds());
    // The next call starts a fresh server.
    assert_eq!(server.call("echo", args(serde_json::json!({"text": "b"}))).await.unwrap(), "fake: b");
    let status = server.status().await;
    assert_eq!(status.starts, 2);
    assert_ne!(status.pgid, Some(pgid));
}

#[tokio::test]
async fn a_crash_is_an_error_result_with_the_servers_last_words_then_a_restart() {
    let Some(script) = fake_server() else { return };
    let home = Home::new();
    let audit = Arc::new(Audit::default());
    let server = home.server(home.config("fake", &script, &[]), &audit);
    let error = server.call("crash", args(serde_json::json!({}))).await.unwrap_err();
    assert!(matches!(error, McpError::Crashed { .. }), "{error:?}");
    let shown = error.to_string();
    assert!(shown.contains("crashing on purpose"), "{shown}");
    assert!(!shown.contains('\n'), "one line: {shown}");
    assert!(audit.kinds().contains(&"mcp_crashed".to_string()), "{:?}", audit.kinds());
    assert_eq!(server.call("echo", args(serde_json::json!({"text": "again"}))).await.unwrap(), "fake: again");
    assert_eq!(server.status().await.starts, 2);
    // A tool that reports an error is an error for the model, not a crash.
    let failed = server.call("fail", args(serde_json::json!({}))).await.unwrap_err();
    assert_eq!(failed, McpError::ToolFailed { message: "it went wrong".into() });
    assert!(server.status().await.running);
}

/// A server on the host's loopback answering every request with `body`; returns its port.
async fn upstream(body: &'static str) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_server_reaches_its_egress_allowlist_and_nothing_else() {
    let Some(script) = fake_server() else { return };
    let home = Home::new();
    let audit = Arc::new(Audit::default());
    let allowed = upstream("hello from the host").await;
    let other = upstream("this must not arrive").await;
    let fetch = |port: u16| args(serde_json::json!({"url": format!("http://127.0.0.1:{port}/data")}));
    let mut config = home.config("fake", &script, &[]);
    config.egress = vec![format!("127.0.0.1:{allowed}")];
    let server = home.server(config, &audit);
    assert_eq!(server.call("fetch", fetch(allowed)).await.unwrap(), "200 hello from the host");
    let refused = server.call("fetch", fetch(other)).await.unwrap();
    assert!(
        refused.starts_with("403 ")
            && refused.contains(&format!("127.0.0.1:{other} is not on this sandbox's egress allowlist")),
        "{refused}"
    );
    // The result also says the sandbox refused it, and what is allowed.
    assert!(
        refused
            .contains(&format!("\n[egress proxy refused 1 request(s): GET http://127.0.0.1:{other}/data: "))
            && refused.ends_with(&format!("; allowed: 127.0.0.1:{allowed}]")),
        "{refused}"
    );
    // Still served on later calls, which carry no stale note: the proxy lives as long as the server.
    assert_eq!(server.call("fetch", fetch(allowed)).await.unwrap(), "200 hello from the host");
    server.stop().await;
    // Without an allowlist there is no network at all: not even the host's loopback.
    let closed = home.server(home.config("closed", &script, &[]), &audit);
    assert_eq!(closed.call("fetch", fetch(allowed)).await.unwrap(), "error ECONNREFUSED");
    closed.stop().await;
}

#[tokio::test]
async fn a_server_killed_between_calls_restarts_transparently() {
    let Some(script) = fake_server() else { return };
    let home = Home::new();
    let audit = Arc::new(Audit::default());
    let server = home.server(home.config("fake", &script, &[]), &audit);
    server.call("echo", args(serde_json::json!({"text": "1"}))).await.unwrap();
    let pgid = server.status().await.pgid.unwrap();
    nix_kill(pgid);
    // (The leader stays a zombie until the client looks, so there is no group to watch.)
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Either the death is noticed before the call (a transparent restart) or during it (one
    // error result); the call after that always works.
    let first = server.call("echo", args(serde_json::json!({"text": "2"}))).await;
    if let Err(error) = &first {
        assert!(matches!(error, McpError::Crashed { .. }), "{error:?}");
        server.call("echo", args(serde_json::json!({"text": "3"}))).await.unwrap();
    }
    assert_eq!(server.status().await.starts, 2);
    assert!(audit.kinds().contains(&"mcp_crashed".to_string()), "{:?}", audit.kinds());
}

fn nix_kill(pgid: i32) {
    // SAFETY: sends SIGKILL to a process group this test started; no memory is touched.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
}

#[tokio::test]
async fn a_server_that_cannot_start_backs_off_with_a_one_line_error() {
    if fake_server().is_none() {
        return;
    }
    let home = Home::new();
    let audit = Arc::new(Audit::default());
    let mut config = home.config("broken", "/nonexistent/server.js", &[]);
    config.timeout = Duration::from_secs(5);
    let server = home.server(config, &audit);
    let first = server.call("echo", serde_json::Map::new()).await.unwrap_err();
    let shown = first.to_string();
    assert!(matches!(first, McpError::Start { .. }), "{first:?}");
    assert!(shown.contains("Cannot find module") || shown.contains("nonexistent"), "{shown}");
    assert!(!shown.contains('\n'), "{shown}");
    // The first failure is retried at once; the second holds the next start back.
    let second = server.call("echo", serde_json::Map::new()).await.unwrap_err();
    assert!(matches!(second, McpError::Start { .. }), "{second:?}");
    let third = server.call("echo", serde_json::Map::new()).await.unwrap_err();
    assert!(matches!(third, McpError::Backoff { seconds: 1, .. }), "{third:?}");
    assert_eq!(audit.kinds().iter().filter(|k| *k == "mcp_start_failed").count(), 2);
    let source = McpSource::new(server.clone());
    let listed = source.tools().await.err().unwrap_or_default();
    assert!(listed.contains("starts again in"), "{listed}");
}

#[tokio::test]
async fn concurrent_calls_share_one_start_and_one_hang_is_one_failure() {
    let Some(script) = fake_server() else { return };
    let home = Home::new();
    let audit = Arc::new(Audit::default());
    let mut config = home.config("fake", &script, &[]);
    config.timeout = Duration::from_secs(2);
    let server = home.server(config, &audit);
    // Ten first calls at once: one start, ten answers.
    let calls = (0..10).map(|i| {
        let server = server.clone();
        async move { server.call("echo", args(serde_json::json!({"text": i.to_string()}))).await }
    });
    let answers = futures_util::future::join_all(calls).await;
    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.unwrap(), format!("fake: {i}"));
    }
    assert_eq!(server.status().await.starts, 1, "concurrent first calls start the server once");
    // Three hung calls: all fail, the server is killed and counted once.
    let hangs = (0..3).map(|_| {
        let server = server.clone();
        async move { server.call("hang", serde_json::Map::new()).await }
    });
    let failed = futures_util::future::join_all(hangs).await;
    assert!(failed.iter().all(Result::is_err), "{failed:?}");
    let kinds = audit.kinds();
    let failures = kinds.iter().filter(|k| *k == "mcp_timeout" || *k == "mcp_crashed").count();
    assert_eq!(failures, 1, "{kinds:?}");
    assert_eq!(server.status().await.failures, 1);
    assert_eq!(server.call("echo", args(serde_json::json!({"text": "ok"}))).await.unwrap(), "fake: ok");
}

#[tokio::test]
async fn a_server_killed_during_a_call_is_an_error_at_once_not_after_the_timeout() {
    let Some(script) = fake_server() else { return };
    let home = Home::new();
    let audit = Arc::new(Audit::default());
    let mut config = home.config("fake", &script, &[]);
    config.timeout = Duration::from_secs(60);
    let server = home.server(config, &audit);
    server.call("echo", args(serde_json::json!({"text": "up"}))).await.unwrap();
    let pgid = server.status().await.pgid.unwrap();
    let killer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        nix_kill(pgid);
    });
    let started = Instant::now();
    let error = server.call("hang", serde_json::Map::new()).await.unwrap_err();
    killer.await.unwrap();
    assert!(matches!(error, McpError::Crashed { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(audit.kinds().contains(&"mcp_crashed".to_string()), "{:?}", audit.kinds());
    assert_eq!(server.call("echo", args(serde_json::json!({"text": "back"}))).await.unwrap(), "fake: back");
    assert_eq!(server.status().await.starts, 2);
}
