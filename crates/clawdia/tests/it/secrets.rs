//! Secret values never leave the gateway: a provider that echoes the API key in its error body
//! (the mock's `echo_credentials` mode: the key, the whole bearer header, the key in a proxy's
//! Basic credentials) gets its error through to the client — status, provider name, its own
//! words — with the key masked in the JSON error, the SSE error event, the `/v1/turns` error
//! event, the log, audit.db and `clawdia chat`; and no error names the internal provider URL.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;

const KEY: &str = "sk-leak-9c1f4e7a2b6d8035e1";

/// Standard base64, to know the Basic-credentials form the mock echoes.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let padded = [group[0], group.get(1).copied().unwrap_or(0), group.get(2).copied().unwrap_or(0)];
        let bits = (u32::from(padded[0]) << 16) | (u32::from(padded[1]) << 8) | u32::from(padded[2]);
        for (index, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            out.push(if index <= group.len() {
                char::from(ALPHABET[((bits >> shift) & 0x3f) as usize])
            } else {
                '='
            });
        }
    }
    out
}

/// The forms of the key a leak could take: as sent, and the middle of its Basic form (the
/// part that holds only key bytes).
fn leaks(text: &str) -> Vec<String> {
    let basic = base64(format!("clawdia:{KEY}").as_bytes());
    let basic_middle = &basic[12..basic.len() - 4];
    [KEY, basic_middle].iter().filter(|form| text.contains(**form)).map(|form| form.to_string()).collect()
}

/// A home whose agent `main` asks `leaky` (the mock, echoing credentials) and whose agent
/// `offline` asks `down` (an OpenAI endpoint on a closed loopback port). No cooldowns, so every
/// request reaches the provider. Returns the home and the closed port.
fn leaky_home() -> (Home, u16) {
    let home = Home::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        r#"[gateway]
bind = "127.0.0.1"
port = 0

[providers.leaky]
kind = "anthropic"
base_url = "{anthropic}"
api_key = {{ env = "CLAWDIA_TEST_KEY" }}
cooldown_secs = 0

[providers.down]
kind = "openai"
base_url = "http://127.0.0.1:{closed}/v1"
cooldown_secs = 0

[agents.main]
model = "leaky/primary"

[agents.offline]
model = "down/backup"
"#,
        anthropic = home.mock.anthropic_base_url(),
    );
    std::fs::write(home.path().join("clawdia.toml"), config).unwrap();
    home.mock.set_default(Reply::echo_credentials(401));
    (home, closed)
}

fn command(home: &Home, args: &[&str]) -> std::process::Command {
    let mut command = home.command(args);
    command.env("CLAWDIA_TEST_KEY", KEY).env("CLAWDIA_LOG", "debug");
    command
}

/// Checks one piece of client-facing output: the provider's own error reached it (the
/// positive control), masked, and without the provider's address.
fn check_output(what: &str, text: &str, mock_port: u16) {
    assert!(leaks(text).is_empty(), "{what} leaks {:?}: {text}", leaks(text));
    assert!(
        text.contains("invalid API key"),
        "{what}: the provider's error did not reach the client: {text}"
    );
    assert!(text.contains("[redacted]"), "{what}: {text}");
    assert!(
        !text.contains(&format!("127.0.0.1:{mock_port}")),
        "{what} reveals the provider's address: {text}"
    );
}

/// The `clawdia: error: ...` line of a command's stderr (the rest is its log).
fn error_line(stderr: &str) -> &str {
    stderr.lines().find(|line| line.starts_with("clawdia: error: ")).unwrap_or("(no error line)")
}

/// Every byte of a home's database files (with their WAL), as text.
fn database_text(home: &Home, name: &str) -> String {
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(more) = std::fs::read(home.path().join(format!("state/{name}{suffix}"))) {
            bytes.extend(more);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn a_provider_that_echoes_the_key_gets_its_error_through_with_the_key_masked_everywhere() {
    let (home, closed) = leaky_home();
    let mock_port = home.mock.addr().port();

    // The control for the mock itself: asked directly, it does echo the key in all its forms.
    let (status, echoed) = http(home.mock.addr(), "POST", "/v1/messages", Some(KEY), "{}");
    assert_eq!(status, 401);
    assert_eq!(leaks(&echoed).len(), 2, "the mock echoes the key and its Basic form: {echoed}");

    let mut child = command(&home, &["up"]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let log = Arc::clone(&log);
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("clawdia gateway listening on http://") {
                    let _ = tx.send(addr.trim().to_string());
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    let addr: std::net::SocketAddr =
        rx.recv_timeout(Duration::from_secs(20)).expect("gateway printed its address").parse().unwrap();
    let token = home.token();

    // OpenAI-compatible, JSON.
    let chat = r#"{"model":"main","messages":[{"role":"user","content":"hi"}]}"#;
    let (status, body) = http(addr, "POST", "/v1/chat/completions", Some(&token), chat);
    assert_eq!(status, 502, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"]["type"], "upstream_error");
    check_output("the JSON error", &body, mock_port);

    // OpenAI-compatible, streaming: the turn failed before its first text, so the error arrives
    // as the response's status and JSON body instead of a 200 stream.
    let stream = r#"{"model":"main","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, body) = http(addr, "POST", "/v1/chat/completions", Some(&token), stream);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains(r#""error""#), "{body}");
    check_output("the streaming request's error", &body, mock_port);

    // The native turn stream: failed before its first event of substance, so also a status.
    // (Errors inside a running stream pass through the one SSE frame writer, which masks them:
    // `clawdia-server` unit test `error_bodies_and_sse_frames_mask_registered_secrets`.)
    let (status, body) =
        http(addr, "POST", "/v1/turns", Some(&token), r#"{"agent":"main","message":"hi","session":"leak"}"#);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains(r#""error""#), "{body}");
    check_output("the /v1/turns error", &body, mock_port);

    // A provider that cannot be reached is named, its address is not.
    let offline = r#"{"model":"offline","messages":[{"role":"user","content":"hi"}]}"#;
    let (status, body) = http(addr, "POST", "/v1/chat/completions", Some(&token), offline);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("down: ") && body.contains("Connection refused"), "{body}");
    assert!(!body.contains(&closed.to_string()), "the provider's address reached the client: {body}");

    // `clawdia chat` through the running gateway.
    let out = command(&home, &["chat", "-m", "hi", "--json"]).output().unwrap();
    assert!(!out.status.success());
    check_output("`clawdia chat --json` through the gateway", &stdout(&out), mock_port);
    check_output("`clawdia chat` through the gateway", error_line(&stderr(&out)), mock_port);
    assert!(leaks(&stderr(&out)).is_empty(), "the CLI's log leaks: {}", stderr(&out));

    let pid = child.id().to_string();
    let _ = std::process::Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
    reader.join().unwrap();
    let log = log.lock().unwrap().clone();
    assert!(leaks(&log).is_empty(), "the gateway's log leaks {:?}:\n{log}", leaks(&log));
    assert!(
        log.contains("invalid API key") && log.contains("[redacted]"),
        "the failures were logged:\n{log}"
    );
    // The daemon's log file holds the same lines, masked the same way.
    let file = std::fs::read_to_string(home.path().join("logs/clawdia.log")).expect("the log file");
    assert!(leaks(&file).is_empty(), "logs/clawdia.log leaks {:?}:\n{file}", leaks(&file));
    assert!(
        file.contains("invalid API key") && file.contains("[redacted]"),
        "the failures were logged to the file:\n{file}"
    );

    // `clawdia chat` with no gateway running: the turn runs in this process, whose own log
    // (debug, with the provider's error) must not leak either.
    let out = command(&home, &["chat", "-m", "hi"]).output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    let line = error_line(&err);
    check_output("`clawdia chat` in-process", line, mock_port);
    assert!(line.starts_with("clawdia: error: every model failed"), "{line}");
    assert!(leaks(&err).is_empty(), "the CLI's log leaks: {err}");

    // What was stored: the audit log holds the failures (masked), and nothing holds the key.
    let audit = database_text(&home, "audit.db");
    // One model and no fallback: the failure is `provider_failed` (no fallback happened).
    assert!(audit.contains("provider_failed") && audit.contains("[redacted]"), "the failures were audited");
    assert!(leaks(&audit).is_empty(), "audit.db holds {:?}", leaks(&audit));
    let status = stdout(&command(&home, &["status"]).output().unwrap());
    assert!(leaks(&status).is_empty(), "`clawdia status` shows {:?}: {status}", leaks(&status));
    assert!(leaks(&database_text(&home, "sessions.db")).is_empty());
}
