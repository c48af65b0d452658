//! Crash safety: `kill -9` of the gateway mid-turn loses at most that turn; the session loads
//! afterwards (an orphaned tool call gets a synthetic error result) and continues.

use std::io::{Read, Write};
use std::time::Duration;

use crate::support::*;

/// A loopback HTTP server that accepts connections and never answers (a slow web page).
fn silent_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    addr
}

fn start_turn(gateway: &Gateway, token: &str, session: &str, message: &str) {
    let addr = gateway.addr;
    let body = format!(r#"{{"message":"{message}","session":"{session}"}}"#);
    let token = token.to_string();
    std::thread::spawn(move || {
        if let Ok(mut stream) = std::net::TcpStream::connect(addr) {
            let request = format!(
                "POST /v1/turns HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(request.as_bytes());
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink);
        }
    });
}

#[test]
fn kill_during_a_tool_call_leaves_a_loadable_session() {
    let home = Home::with_agent_extra("[agents.main.web_fetch]\nallow_private = true\ntimeout_secs = 60\n");
    let page = silent_server();
    home.mock.push(Reply::text("noted"));
    let gateway = home.up();
    let token = home.token();
    let (status, _) =
        http(gateway.addr, "POST", "/v1/turns", Some(&token), r#"{"message":"hello","session":"k1"}"#);
    assert_eq!(status, 200);
    let url = format!("http://{page}/slow");
    home.mock.push(Reply::tool_calls(vec![("web_fetch", format!(r#"{{"url":"{url}"}}"#).as_str())]));
    start_turn(&gateway, &token, "k1", "fetch it");
    // Wait until the tool call is stored (the assistant message with the call is written
    // before the tool runs), then kill the gateway while the fetch hangs.
    let stored = wait_until(Duration::from_secs(10), || export(&home, "k1").len() == 4);
    assert!(stored, "the tool-call message was stored: {:?}", export(&home, "k1"));
    gateway.kill9();

    let messages = export(&home, "k1");
    assert_eq!(messages.len(), 4, "user, assistant, user, assistant(tool call): {messages:?}");
    home.mock.push(Reply::text("Sorry, the fetch was interrupted."));
    let gateway = home.up();
    let (status, body) = http(
        gateway.addr,
        "POST",
        "/v1/turns",
        Some(&token),
        r#"{"message":"what happened?","session":"k1"}"#,
    );
    assert_eq!(status, 200);
    assert!(body.contains("event: end"), "{body}");
    let messages = export(&home, "k1");
    assert_eq!(messages.last().unwrap()["text"], "Sorry, the fetch was interrupted.");
    let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant", "tool_result", "user", "assistant"]);
    assert_eq!(messages[4]["is_error"], true);
    // The model saw a well-formed transcript: the call paired with its (synthetic) result.
    let last = home.mock.requests().pop().unwrap();
    let wire = last.body["messages"].to_string();
    assert!(
        wire.contains("tool_result") && wire.contains("stopped before this tool call finished"),
        "{wire}"
    );
    let out = home.run(&["doctor"]);
    assert!(stdout(&out).contains("databases pass the integrity check"), "{}", stdout(&out));
}

#[test]
fn kill_during_a_model_stream_loses_only_that_turn() {
    let home = Home::new();
    home.mock.push(Reply::text("first answer"));
    let gateway = home.up();
    let token = home.token();
    let (status, _) =
        http(gateway.addr, "POST", "/v1/turns", Some(&token), r#"{"message":"one","session":"k2"}"#);
    assert_eq!(status, 200);
    home.mock.push(Reply::text("a long answer that never finishes").chunk_delay(Duration::from_secs(30)));
    start_turn(&gateway, &token, "k2", "two");
    assert!(wait_until(Duration::from_secs(10), || home.mock.requests().len() == 2));
    gateway.kill9();
    let messages = export(&home, "k2");
    assert_eq!(messages.len(), 2, "the interrupted turn left nothing behind: {messages:?}");
    home.mock.push(Reply::text("third answer"));
    let gateway = home.up();
    let (_, body) =
        http(gateway.addr, "POST", "/v1/turns", Some(&token), r#"{"message":"three","session":"k2"}"#);
    assert!(body.contains("event: end"), "{body}");
    let messages = export(&home, "k2");
    let texts: Vec<&str> = messages.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert_eq!(texts, ["one", "first answer", "three", "third answer"]);
}
