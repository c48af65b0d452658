//! Transient provider failures through the running gateway (`clawdia up`) and the mock LLM on
//! loopback: a 429 (Retry-After 0) twice, a 500 or a reset once are retried on the same model
//! and answered; rate limits everywhere reach the client as a 429 with `Retry-After` before any
//! stream starts; a reply cut off mid-stream with no model left says so and claims no fallback,
//! while a real fallback is still announced.

use std::net::SocketAddr;

use crate::support::*;

/// `solo` has no fallback; `main` (mock/primary, then alt/backup) keeps the home's default.
fn home() -> Home {
    Home::with_agent_extra("\n[agents.solo]\nmodel = \"mock/primary\"\n")
}

/// A raw HTTP/1.1 request: the status, the lower-cased head, the (de-chunked) body.
fn request(addr: SocketAddr, path: &str, token: &str, body: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, raw_body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let head = head.to_ascii_lowercase();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.contains("transfer-encoding: chunked") { dechunk(raw_body) } else { raw_body.into() };
    (status, head, body)
}

fn chat_body(agent: &str, stream: bool) -> String {
    format!(r#"{{"model":"{agent}","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#)
}

/// The `content` of every chunk of an OpenAI stream, joined, and the error message if any.
fn stream_content(body: &str) -> (String, Option<String>) {
    let mut content = String::new();
    let mut error = None;
    for data in body.lines().filter_map(|l| l.strip_prefix("data: ")).filter(|d| *d != "[DONE]") {
        let chunk: serde_json::Value = serde_json::from_str(data).expect("chunk JSON");
        if let Some(text) = chunk["choices"][0]["delta"]["content"].as_str() {
            content.push_str(text);
        }
        if let Some(message) = chunk["error"]["message"].as_str() {
            error = Some(message.to_string());
        }
    }
    (content, error)
}

/// The text of a native turn stream's `text_delta` events, joined.
fn turn_text(body: &str) -> String {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
        .filter(|event| event["type"] == "text_delta")
        .filter_map(|event| event["text"].as_str().map(String::from))
        .collect()
}

fn event_names(body: &str) -> Vec<&str> {
    body.lines().filter_map(|l| l.strip_prefix("event: ")).collect()
}

/// Whether the audit database (or its WAL) holds `needle`.
fn audited(home: &Home, needle: &str) -> bool {
    ["state/audit.db", "state/audit.db-wal"].iter().any(|file| {
        std::fs::read(home.path().join(file))
            .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
    })
}

#[test]
fn transient_provider_failures_are_retried_and_the_turn_is_answered() {
    let home = home();
    let gateway = home.up();
    let token = home.token();

    // 429 twice (Retry-After 0), then 200.
    home.mock.push(Reply::status(429).retry_after("0"));
    home.mock.push(Reply::status(429).retry_after("0"));
    home.mock.push(Reply::text("answered after two 429s"));
    let (status, _, body) = request(gateway.addr, "/v1/chat/completions", &token, &chat_body("solo", false));
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["choices"][0]["message"]["content"], "answered after two 429s");
    assert_eq!(home.mock.requests().len(), 3);

    // A 500 once, streaming.
    home.mock.push(Reply::status(500));
    home.mock.push(Reply::text("answered after a 500"));
    let (status, _, body) = request(gateway.addr, "/v1/chat/completions", &token, &chat_body("solo", true));
    assert_eq!(status, 200, "{body}");
    assert_eq!(stream_content(&body), ("answered after a 500".to_string(), None), "{body}");

    // A connection reset before any byte, on the native stream: a `retry` event, no fallback.
    home.mock.push(Reply::reset());
    home.mock.push(Reply::text("answered after a reset"));
    let (status, _, body) =
        request(gateway.addr, "/v1/turns", &token, r#"{"agent":"solo","message":"hi","session":"r1"}"#);
    assert_eq!(status, 200, "{body}");
    let names = event_names(&body);
    assert!(names.contains(&"retry") && !names.contains(&"fallback"), "{names:?}");
    assert_eq!(names.last(), Some(&"end"), "{body}");
    assert_eq!(turn_text(&body), "answered after a reset", "{body}");
    assert!(body.contains(r#""reason":"connect""#), "{body}");
    assert_eq!(home.mock.requests().len(), 7, "every failure got exactly one retry");

    // Refusals are not retried (positive control for the retry rule).
    home.mock.push(Reply::status(400));
    home.mock.push(Reply::text("must not be asked"));
    let (status, _, body) = request(gateway.addr, "/v1/chat/completions", &token, &chat_body("solo", false));
    assert_eq!(status, 502, "{body}");
    assert_eq!(home.mock.requests().len(), 8);
    drop(gateway);
    assert!(audited(&home, "provider_retry"), "every attempt is in the audit log");
}

#[test]
fn rate_limits_everywhere_reach_the_client_as_429_with_retry_after() {
    let home = home();
    let gateway = home.up();
    let token = home.token();
    // mock/primary three times (two retries), then alt/backup three times.
    for _ in 0..6 {
        home.mock.push(Reply::status(429).retry_after("0"));
    }
    let (status, head, body) =
        request(gateway.addr, "/v1/chat/completions", &token, &chat_body("main", false));
    assert_eq!(status, 429, "{body}");
    assert!(head.contains("\r\nretry-after: 1"), "{head}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(home.mock.requests().len(), 6);

    // Both providers now cool down; the one whose cooldown ends first is still asked. Streaming
    // clients get the status before any 200, on both APIs.
    for (path, body) in [
        ("/v1/chat/completions", chat_body("main", true)),
        ("/v1/turns", r#"{"agent":"main","message":"hi"}"#.to_string()),
    ] {
        for _ in 0..3 {
            home.mock.push(Reply::status(429).retry_after("0"));
        }
        let (status, head, text) = request(gateway.addr, path, &token, &body);
        assert_eq!(status, 429, "{path}: {text}");
        assert!(head.contains("\r\nretry-after: 1"), "{head}");
        assert!(!head.contains("text/event-stream"), "{head}");
    }

    // The CLI through the gateway says so in one line.
    for _ in 0..3 {
        home.mock.push(Reply::status(429).retry_after("0"));
    }
    let out = home.run(&["chat", "-m", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("clawdia: error: every model failed: rate limited (429)"), "{err}");
    assert!(err.contains("try again in 1 s"), "{err}");

    // Positive control: once the provider answers, so does the gateway.
    home.mock.push(Reply::text("finally"));
    let (status, _, body) = request(gateway.addr, "/v1/chat/completions", &token, &chat_body("main", false));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_reply_cut_off_with_no_fallback_says_so_and_claims_no_fallback() {
    let home = home();
    let gateway = home.up();
    let token = home.token();

    home.mock.push(Reply::truncated());
    let (status, _, body) = request(gateway.addr, "/v1/chat/completions", &token, &chat_body("solo", true));
    assert_eq!(status, 200, "the head went out with the first text: {body}");
    let (content, error) = stream_content(&body);
    assert!(content.contains("This reply breaks off"), "{body}");
    assert!(!content.contains("fallback"), "no fallback is announced: {content}");
    let error = error.expect("the stream ends with an error");
    assert!(error.contains("the reply from mock/primary was cut off mid-stream"), "{error}");
    assert!(error.contains("no fallback model was left to try"), "{error}");
    assert_eq!(home.mock.requests().len(), 1, "a reply that was partly shown is not retried");

    home.mock.push(Reply::truncated());
    let (status, _, body) =
        request(gateway.addr, "/v1/turns", &token, r#"{"agent":"solo","message":"hi","session":"cut"}"#);
    assert_eq!(status, 200);
    let names = event_names(&body);
    assert!(!names.contains(&"fallback") && !names.contains(&"discard"), "{names:?}");
    assert_eq!(names.last(), Some(&"error"), "{names:?}");
    assert!(body.contains("was cut off mid-stream"), "{body}");

    home.mock.push(Reply::truncated());
    let out = home.run(&["chat", "-a", "solo", "-m", "hi"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("was cut off mid-stream") && !err.contains("fallback model answers"), "{err}");
    assert!(stdout(&out).contains("This reply breaks off"), "the partial text was shown");

    drop(gateway);
    assert!(audited(&home, "provider_failed"), "the failure is audited");
    assert!(!audited(&home, "provider_fallback"), "no fallback happened, none is audited");
    let stored = stdout(&home.run(&["sessions", "export", "cut"]));
    assert!(!stored.contains("breaks off"), "nothing partial is stored: {stored}");
}

#[test]
fn with_a_fallback_configured_the_fallback_is_announced_by_name() {
    // The cut-off provider cools down afterwards, so each API gets a fresh home.
    let home = home();
    let gateway = home.up();
    home.mock.push(Reply::truncated());
    home.mock.push(Reply::text("clean answer"));
    let (status, _, body) =
        request(gateway.addr, "/v1/chat/completions", &home.token(), &chat_body("main", true));
    assert_eq!(status, 200, "{body}");
    let (content, error) = stream_content(&body);
    assert_eq!(error, None, "{body}");
    assert!(
        content.contains("[mock/primary failed mid-reply; trying the fallback model alt/backup]"),
        "{content}"
    );
    assert!(content.ends_with("clean answer"), "{content}");
    drop(gateway);
    assert!(audited(&home, "provider_fallback"));

    let home = self::home();
    let gateway = home.up();
    home.mock.push(Reply::truncated());
    home.mock.push(Reply::text("clean again"));
    let (_, _, body) =
        request(gateway.addr, "/v1/turns", &home.token(), r#"{"agent":"main","message":"hi"}"#);
    let names = event_names(&body);
    assert!(names.contains(&"discard") && names.contains(&"fallback"), "{names:?}");
    assert!(body.contains(r#""from":"mock/primary","to":"alt/backup","reason":"truncated""#), "{body}");
    assert!(body.contains("trying the fallback model alt/backup"), "{body}");
    assert_eq!(names.last(), Some(&"end"), "{body}");
}
