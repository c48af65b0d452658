//! The running gateway (`clawdia up`): health, auth, the native turn stream, the CLI going
//! through a live gateway, metrics, bad requests, bind safety and graceful shutdown.

use std::time::Duration;

use crate::support::*;

#[test]
fn health_auth_and_native_turns() {
    let home = Home::new();
    let gateway = home.up();
    let (status, body) = http(gateway.addr, "GET", "/health", None, "");
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "ok");
    for token in [None, Some("wrong")] {
        let (status, body) = http(gateway.addr, "GET", "/v1/models", token, "");
        assert_eq!(status, 401, "{body}");
        assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["error"]["message"].is_string());
    }
    let token = home.token();
    let (status, body) = http(gateway.addr, "GET", "/v1/models", Some(&token), "");
    assert_eq!(status, 200);
    assert!(body.contains(r#""id":"main""#), "{body}");

    home.mock.push(Reply::tool_calls(vec![("list", r#"{"path":"."}"#)]));
    home.mock.push(Reply::text("You have five files."));
    let (status, body) = http(
        gateway.addr,
        "POST",
        "/v1/turns",
        Some(&token),
        r#"{"agent":"main","message":"what files?","session":"t1"}"#,
    );
    assert_eq!(status, 200);
    let kinds: Vec<&str> = body.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(kinds.first(), Some(&"started"), "{body}");
    assert!(
        kinds.contains(&"tool_start") && kinds.contains(&"tool_end") && kinds.contains(&"text_delta"),
        "{kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"end"));
    // The model got the tool result inside trust markers; the API client gets it without them,
    // and never sees the session's boundary.
    let sent = home.mock.requests()[1].body["messages"].to_string();
    let boundary = sent.split("<<<untrusted ").nth(1).and_then(|rest| rest.split(' ').next());
    let boundary = boundary.unwrap_or_else(|| panic!("the model saw no marker: {sent}"));
    assert!(boundary.len() >= 8, "{boundary}");
    let tool_end = body
        .lines()
        .skip_while(|line| *line != "event: tool_end")
        .find_map(|line| line.strip_prefix("data: "))
        .unwrap();
    let tool_end: serde_json::Value = serde_json::from_str(tool_end).unwrap();
    let summary = tool_end["summary"].as_str().unwrap();
    assert!(summary.contains("IDENTITY.md"), "the listing itself is there: {summary}");
    assert!(!summary.contains("<<<") && !summary.contains(boundary), "{summary}");
    let end = body.lines().filter_map(|l| l.strip_prefix("data: ")).next_back().unwrap();
    let end: serde_json::Value = serde_json::from_str(end).unwrap();
    assert_eq!(end["usage"]["input_tokens"], 20, "usage summed over both model calls: {end}");

    let (status, metrics) = http(gateway.addr, "GET", "/metrics", Some(&token), "");
    assert_eq!(status, 200);
    assert!(metrics.contains("clawdia_turns_total 1\n"), "{metrics}");
    assert!(metrics.contains("clawdia_tool_calls_total 1\n"), "{metrics}");
    assert!(metrics.contains("clawdia_http_auth_failures_total 2\n"), "{metrics}");

    // Auth failures are in the audit log.
    drop(gateway);
    let out = home.run(&["sessions", "show", "t1"]);
    assert!(stdout(&out).contains("You have five files."));
}

#[test]
fn cli_chat_uses_the_running_gateway() {
    let home = Home::new();
    let gateway = home.up();
    home.mock.push(Reply::text("via gateway"));
    let out = home.run(&["chat", "-m", "hi", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(json["text"], "via gateway");
    let status = stdout(&home.run(&["status"]));
    assert!(status.contains(&format!("running at http://{}", gateway.addr)), "{status}");
    let (_, metrics) = http(gateway.addr, "GET", "/metrics", Some(&home.token()), "");
    assert!(metrics.contains("clawdia_turns_total 1\n"), "the turn ran in the gateway: {metrics}");
    let code = gateway.terminate();
    assert!(code.success(), "graceful exit on SIGTERM: {code:?}");
    assert!(stdout(&home.run(&["status"])).contains("not running"));
}

#[test]
fn bad_requests_never_take_the_daemon_down() {
    let home = Home::new();
    let gateway = home.up();
    let token = home.token();
    let bodies = [
        "",
        "{",
        "null",
        r#"{"model":"main","messages":"x"}"#,
        r#"{"model":"main","messages":[{"role":"user","content":42}]}"#,
        r#"{"message":""}"#,
    ];
    for body in bodies {
        for path in ["/v1/chat/completions", "/v1/turns"] {
            let (status, text) = http(gateway.addr, "POST", path, Some(&token), body);
            assert!(status == 400 || status == 200, "{path} {body:?}: {status} {text}");
        }
    }
    let big = format!(r#"{{"message":"{}"}}"#, "x".repeat(2 << 20));
    let (status, _) = http(gateway.addr, "POST", "/v1/turns", Some(&token), &big);
    assert_eq!(status, 413);
    home.mock.push(Reply::text("still alive"));
    let (status, body) = http(
        gateway.addr,
        "POST",
        "/v1/chat/completions",
        Some(&token),
        r#"{"model":"main","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("still alive"));
}

#[test]
fn concurrent_turns_on_one_session_are_serialized() {
    let home = Home::new();
    let gateway = home.up();
    let token = home.token();
    home.mock.set_default(Reply::text("answer").delay(Duration::from_millis(50)));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let token = token.clone();
            let addr = gateway.addr;
            std::thread::spawn(move || {
                let body = format!(r#"{{"message":"question {i}","session":"shared"}}"#);
                http(addr, "POST", "/v1/turns", Some(&token), &body)
            })
        })
        .collect();
    for thread in threads {
        let (status, body) = thread.join().unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("event: end"), "{body}");
    }
    let messages = export(&home, "shared");
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant"].repeat(4), "turns never interleave");
    // Each model call saw every earlier complete exchange.
    let sizes: Vec<usize> =
        home.mock.requests().iter().map(|r| r.body["messages"].as_array().unwrap().len()).collect();
    assert_eq!(sizes, [1, 3, 5, 7]);
}

#[test]
fn non_loopback_bind_needs_a_strong_token() {
    let home = Home::new();
    std::fs::write(home.path().join("secrets/gateway-token"), "short\n").unwrap();
    let out = home.run(&["up", "--bind", "0.0.0.0", "--port", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("refusing to bind 0.0.0.0"), "{}", stderr(&out));
    std::fs::remove_file(home.path().join("secrets/gateway-token")).unwrap();
    let out = home.run(&["up"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("gateway token:"), "{}", stderr(&out));
}

#[test]
fn a_client_that_goes_away_cancels_its_turn() {
    use std::io::Write;
    let home = Home::new();
    let gateway = home.up();
    let token = home.token();
    home.mock.push(Reply::hang());
    let body = r#"{"message":"this will hang","session":"c1"}"#;
    let mut stream = std::net::TcpStream::connect(gateway.addr).unwrap();
    let request = format!(
        "POST /v1/turns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    assert!(wait_until(Duration::from_secs(10), || home.mock.requests().len() == 1));
    drop(stream); // the client goes away mid-turn
    // The cancelled turn released the session: the next turn on it completes at once instead
    // of queueing behind a model call that never ends.
    home.mock.push(Reply::text("next turn"));
    let (status, body) =
        http(gateway.addr, "POST", "/v1/turns", Some(&token), r#"{"message":"hello again","session":"c1"}"#);
    assert_eq!(status, 200);
    assert!(body.contains("event: end"), "{body}");
    let texts: Vec<String> =
        export(&home, "c1").iter().map(|m| m["text"].as_str().unwrap().to_string()).collect();
    assert_eq!(texts, ["hello again", "next turn"], "nothing of the cancelled turn was stored");
}

/// Raises this test process's soft open-file limit to the hard one (it holds thousands of
/// sockets); returns the limit.
fn raise_own_open_files() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
    limit.rlim_cur
}

fn open_connections(addr: std::net::SocketAddr, token: &str) -> usize {
    let (status, metrics) = http(addr, "GET", "/metrics", Some(token), "");
    assert_eq!(status, 200, "{metrics}");
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("clawdia_http_open_connections "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no open-connections gauge in {metrics}"))
}

#[test]
fn two_thousand_idle_and_half_sent_connections_do_not_lock_clients_out() {
    use std::io::Write;
    use std::time::Instant;
    let home = Home::new();
    // Opening 2,000 connections can take longer on a loaded or sandboxed machine than the
    // default header timeout (10 s), which would close the first ones and rightly keep the count
    // down: here they must all stay open, so the flood is what the gateway has to live with.
    let config_path = home.path().join("clawdia.toml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, config.replacen("[gateway]\n", "[gateway]\nheader_timeout_secs = 600\n", 1))
        .unwrap();
    // Started before this process raises its own limit, so the gateway inherits the usual soft
    // limit (1024 here) and has to raise its own to hold the flood.
    let gateway = home.up();
    assert!(raise_own_open_files() >= 4500, "the test needs a hard open-file limit of at least 4500");
    // The gateway raised its soft open-file limit to the hard one.
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", gateway.child.id())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .map(|line| line.split_whitespace().skip(3).take(2).collect())
        .unwrap_or_default();
    assert!(open_files.len() == 2 && open_files[0] == open_files[1], "{limits}");
    let token = home.token();
    // Positive control: connections are accepted and served normally.
    let (status, _) = http(gateway.addr, "GET", "/health", None, "");
    assert_eq!(status, 200);
    // The /health connection above may still be closing on the server's side for a moment.
    assert!(
        wait_until(Duration::from_secs(5), || open_connections(gateway.addr, &token) == 1),
        "only the metrics request's own connection is open"
    );

    let mut flood = Vec::with_capacity(2000);
    for i in 0..2000 {
        let mut stream = std::net::TcpStream::connect(gateway.addr).expect("connect");
        if i % 2 == 1 {
            // Half-sent: a request head that never ends.
            stream.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n").unwrap();
        }
        flood.push(stream);
    }
    assert!(
        wait_until(Duration::from_secs(30), || open_connections(gateway.addr, &token) > 2000),
        "the gateway did not hold the 2,000 connections open (it has {})",
        open_connections(gateway.addr, &token)
    );

    let started = Instant::now();
    let (status, body) = http(gateway.addr, "GET", "/health", None, "");
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(2), "/health took {:?}", started.elapsed());

    home.mock.push(Reply::text("still answering"));
    let started = Instant::now();
    let (status, body) = http(
        gateway.addr,
        "POST",
        "/v1/chat/completions",
        Some(&token),
        r#"{"model":"main","messages":[{"role":"user","content":"are you there?"}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("still answering"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5), "the chat took {:?}", started.elapsed());
    drop(flood);
}

#[test]
fn a_failed_first_turn_leaves_no_empty_session() {
    let home = Home::new();
    let gateway = home.up();
    let token = home.token();
    // Both models of the chain refuse: the turn fails before any reply.
    home.mock.push(Reply::status(401));
    home.mock.push(Reply::status(401));
    let (status, body) = http(
        gateway.addr,
        "POST",
        "/v1/chat/completions",
        Some(&token),
        r#"{"model":"main","user":"doomed-session","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(status, 502, "{body}");
    home.mock.push(Reply::text("hello"));
    let (status, body) = http(
        gateway.addr,
        "POST",
        "/v1/chat/completions",
        Some(&token),
        r#"{"model":"main","user":"kept-session","messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let out = home.run(&["sessions", "list"]);
    let listed = stdout(&out);
    assert!(listed.contains("kept-session"), "{listed}");
    assert!(!listed.contains("doomed-session"), "a failed turn left a session: {listed}");
}
