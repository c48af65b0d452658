//! The one integration-test binary of clawdia-test-support: the mock LLM server (started both
//! ways) and the `clawdia-mock-llm` executable, driven with a minimal raw HTTP/1.1 client so the
//! mock is checked independently of the clients it is used to test.
#![allow(clippy::disallowed_methods)] // tests spawn the mock binary

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use clawdia_test_support::{MockLlm, Reply};
use serde_json::{Value, json};

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(found, _)| found.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// POSTs `body` with `Connection: close` and reads the whole (fixed-length) response.
fn post(addr: SocketAddr, path: &str, body: &Value) -> RawResponse {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Probe: yes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("head and body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    RawResponse { status, headers, body: body.to_string() }
}

fn openai_request(stream: bool) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream, "stream_options": {"include_usage": true}})
}

fn anthropic_request(stream: bool) -> Value {
    json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

/// The `data:` payloads of an SSE body, in order.
fn sse_data(body: &str) -> Vec<String> {
    body.lines().filter_map(|line| line.strip_prefix("data: ")).map(str::to_string).collect()
}

#[test]
fn blocking_mock_answers_both_wires_from_one_queue_and_records_requests() {
    let mock = MockLlm::start_blocking();
    assert_eq!(mock.openai_base_url(), format!("http://{}/v1", mock.addr()));
    assert_eq!(mock.anthropic_base_url(), format!("http://{}", mock.addr()));

    let reply = post(mock.addr(), "/v1/chat/completions", &openai_request(false));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["choices"][0]["message"]["content"], "ok", "default reply");

    mock.push(Reply::text("first"));
    mock.push(Reply::text("second"));
    let anthropic = post(mock.addr(), "/v1/messages", &anthropic_request(false)).json();
    let openai = post(mock.addr(), "/v1/chat/completions", &openai_request(false)).json();
    assert_eq!(anthropic["content"][0]["text"], "first");
    assert_eq!(anthropic["usage"]["input_tokens"], 10);
    assert_eq!(openai["choices"][0]["message"]["content"], "second");
    assert_eq!(openai["usage"]["completion_tokens"], 5);

    mock.set_default(Reply::text("new default"));
    let reply = post(mock.addr(), "/v1/messages", &anthropic_request(false)).json();
    assert_eq!(reply["content"][0]["text"], "new default");

    let requests = mock.requests();
    let paths: Vec<&str> = requests.iter().map(|request| request.path.as_str()).collect();
    assert_eq!(paths, vec!["/v1/chat/completions", "/v1/messages", "/v1/chat/completions", "/v1/messages"]);
    assert_eq!(requests[1].body, anthropic_request(false));
    assert_eq!(requests[1].header("X-PROBE"), Some("yes"));
    assert_eq!(requests[1].body_bytes, anthropic_request(false).to_string().len());
}

#[tokio::test]
async fn anthropic_stream_is_a_realistic_event_sequence() {
    let mock = MockLlm::start().await;
    mock.push(Reply::text_then_tool_calls("Hello there", vec![("read", r#"{"path":"a.txt"}"#)]).usage(3, 4));
    let addr = mock.addr();
    let reply = tokio::task::spawn_blocking(move || post(addr, "/v1/messages", &anthropic_request(true)))
        .await
        .expect("join");
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    let events: Vec<Value> =
        sse_data(&reply.body).iter().map(|data| serde_json::from_str(data).expect("JSON data")).collect();
    let types: Vec<&str> = events.iter().filter_map(|event| event["type"].as_str()).collect();
    assert_eq!(types.first(), Some(&"message_start"));
    assert_eq!(&types[types.len() - 2..], ["message_delta", "message_stop"]);
    let text: String = events.iter().filter_map(|event| event["delta"]["text"].as_str()).collect();
    assert_eq!(text, "Hello there");
    let arguments: Vec<&str> =
        events.iter().filter_map(|event| event["delta"]["partial_json"].as_str()).collect();
    assert!(arguments.len() >= 3, "arguments arrive in pieces: {arguments:?}");
    assert_eq!(arguments.concat(), r#"{"path":"a.txt"}"#);
    let tool_start =
        events.iter().find(|event| event["content_block"]["type"] == "tool_use").expect("tool block");
    assert!(tool_start["content_block"]["id"].as_str().is_some_and(|id| id.starts_with("toolu_mock_")));
    assert_eq!(events[events.len() - 2]["delta"]["stop_reason"], "tool_use");
    assert_eq!(events[events.len() - 2]["usage"]["output_tokens"], 4);
}

#[tokio::test]
async fn openai_stream_ends_with_finish_usage_and_done() {
    let mock = MockLlm::start().await;
    mock.push(Reply::tool_calls(vec![("a", r#"{"x":1}"#), ("b", "{}")]));
    let addr = mock.addr();
    let reply =
        tokio::task::spawn_blocking(move || post(addr, "/v1/chat/completions", &openai_request(true)))
            .await
            .expect("join");
    let data = sse_data(&reply.body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> =
        data[..data.len() - 1].iter().map(|text| serde_json::from_str(text).expect("JSON")).collect();
    assert!(chunks.iter().all(|chunk| chunk["object"] == "chat.completion.chunk"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[chunks.len() - 1]["usage"]["prompt_tokens"], 10);
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "tool_calls");
    let first_pieces: Vec<&Value> = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["tool_calls"].get(0))
        .filter(|call| call.get("id").is_some())
        .collect();
    assert_eq!(first_pieces.len(), 2, "one opening piece per call, with id and name");
    assert_eq!(first_pieces[1]["function"]["name"], "b");
}

#[tokio::test]
async fn status_reply_has_retry_after_and_provider_error_body() {
    let mock = MockLlm::start().await;
    mock.push(Reply::status(429).retry_after("3"));
    mock.push(Reply::status(503).body("plain words"));
    let addr = mock.addr();
    let (limited, down) = tokio::task::spawn_blocking(move || {
        (
            post(addr, "/v1/messages", &anthropic_request(true)),
            post(addr, "/v1/chat/completions", &openai_request(false)),
        )
    })
    .await
    .expect("join");
    assert_eq!(limited.status, 429);
    assert_eq!(limited.header("retry-after"), Some("3"));
    assert_eq!(limited.json()["error"]["type"], "rate_limit_error");
    assert_eq!((down.status, down.body.as_str()), (503, "plain words"));
}

/// Sends a request and reads until the connection ends: the bytes received and how it ended.
fn post_raw(addr: SocketAddr, path: &str, body: &Value) -> (Vec<u8>, Option<std::io::ErrorKind>) {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut received = Vec::new();
    let ended = stream.read_to_end(&mut received).err().map(|error| error.kind());
    (received, ended)
}

#[tokio::test]
async fn a_reset_reply_drops_the_connection_before_any_byte_and_the_next_request_is_answered() {
    let mock = MockLlm::start().await;
    mock.push(Reply::reset());
    mock.push(Reply::text("after the reset"));
    let addr = mock.addr();
    let (reset, next) = tokio::task::spawn_blocking(move || {
        (
            post_raw(addr, "/v1/chat/completions", &openai_request(false)),
            post(addr, "/v1/messages", &anthropic_request(false)),
        )
    })
    .await
    .expect("join");
    assert_eq!(reset, (Vec::new(), Some(std::io::ErrorKind::ConnectionReset)), "a TCP reset, no response");
    assert_eq!(next.status, 200);
    assert_eq!(next.json()["content"][0]["text"], "after the reset");
    assert_eq!(mock.requests().len(), 2, "the reset request was received and recorded");
}

#[tokio::test]
async fn unknown_paths_are_recorded_and_answered_404() {
    let mock = MockLlm::start().await;
    let addr = mock.addr();
    let reply = tokio::task::spawn_blocking(move || post(addr, "/v1/responses", &json!({"x": 1})))
        .await
        .expect("join");
    assert_eq!(reply.status, 404);
    assert_eq!(mock.requests()[0].path, "/v1/responses");
}

#[test]
fn the_binary_prints_its_address_and_serves_the_given_text() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_clawdia-mock-llm"))
        .args(["--port", "0", "--text", "from the binary"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn clawdia-mock-llm");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("read line");
    let addr: SocketAddr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let reply = post(addr, "/v1/chat/completions", &openai_request(false));
    let streamed = post(addr, "/v1/messages", &anthropic_request(true));
    child.kill().expect("kill");
    let _ = child.wait();
    assert_eq!(reply.json()["choices"][0]["message"]["content"], "from the binary");
    assert!(streamed.body.contains("message_stop"));
}

#[test]
fn the_binary_rejects_unknown_arguments() {
    let output = Command::new(env!("CARGO_BIN_EXE_clawdia-mock-llm")).arg("--bogus").output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage"));
}
