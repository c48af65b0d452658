//! Router tests without a socket: auth, error bodies, the OpenAI shapes and the SSE framing,
//! against a scripted in-memory gateway.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use clawdia_core::{AgentInfo, AuditEvent, ModelRef, TurnError, TurnEvents, TurnOutcome, Usage};
use http_body_util::BodyExt;
use tower::ServiceExt;

use std::net::SocketAddr;

use super::*;

struct ScriptedGateway {
    requests: Mutex<Vec<TurnRequest>>,
    /// A turn whose message is "wait" sends some text, then blocks until this is notified.
    release: tokio::sync::Notify,
}

use clawdia_core::{TurnEvent, TurnRequest};

#[async_trait]
impl Gateway for ScriptedGateway {
    fn agents(&self) -> Vec<AgentInfo> {
        let model = ModelRef::parse("p/m").unwrap();
        vec![AgentInfo { name: "main".into(), model, fallbacks: vec![], tools: vec![] }]
    }
    async fn run_turn(
        &self,
        request: TurnRequest,
        events: &dyn TurnEvents,
    ) -> Result<TurnOutcome, TurnError> {
        self.requests.lock().unwrap().push(request.clone());
        if request.agent != "main" {
            return Err(TurnError::UnknownAgent(request.agent));
        }
        if request.message == "broke" {
            return Err(TurnError::BudgetExceeded("agent `main` has used its daily budget".into()));
        }
        let session = request.session.clone().unwrap_or_else(|| "s-new".into());
        events.event(TurnEvent::Started { session: session.clone(), agent: "main".into() });
        if request.message == "limited" {
            events.event(TurnEvent::Retry { model: "p/m".into(), reason: "rate_limited".into(), attempt: 1 });
            return Err(TurnError::ModelsFailed {
                message: "every model failed: rate limited (429)".into(),
                attempts: vec![],
                retry_after: Some(std::time::Duration::from_millis(1500)),
            });
        }
        if request.message == "cut" {
            events.event(TurnEvent::TextDelta { text: "Hal".into() });
            return Err(TurnError::ModelsFailed {
                message:
                    "the reply from p/m was cut off mid-stream (x) and no fallback model was left to try"
                        .into(),
                attempts: vec![],
                retry_after: Some(std::time::Duration::from_secs(1)),
            });
        }
        if request.message == "wait" {
            // Text first: a stream's headers go out with its first text (a turn that fails
            // before any gets a plain error status instead).
            events.event(TurnEvent::TextDelta { text: "waiting ".into() });
            self.release.notified().await;
        }
        if request.message == "leak" {
            // A secret the model spreads over three deltas.
            for piece in ["Your key: sk-split-", "across-", "deltas-5c1d9e and more"] {
                events.event(TurnEvent::TextDelta { text: piece.into() });
            }
        }
        if request.message == "leak-cut" {
            // Cut off while a tail that may begin the secret is held back.
            events.event(TurnEvent::TextDelta { text: "It breaks at sk-split".into() });
            return Err(TurnError::ModelsFailed {
                message: "the reply from p/m was cut off mid-stream".into(),
                attempts: vec![],
                retry_after: None,
            });
        }
        if request.message == "flood" {
            // Far more than a socket buffers: a client that does not read stalls the writes.
            for _ in 0..2048 {
                events.event(TurnEvent::TextDelta { text: "x".repeat(16 * 1024) });
            }
        }
        events.event(TurnEvent::TextDelta { text: "Hel".into() });
        events.event(TurnEvent::TextDelta { text: "lo".into() });
        let usage = Usage { input_tokens: 7, output_tokens: 2, ..Usage::default() };
        events.event(TurnEvent::End { usage, cost_usd: 0.5, model: Some("p/m".into()) });
        Ok(TurnOutcome {
            session_id: session,
            text: "Hello".into(),
            usage,
            cost_usd: 0.5,
            model: ModelRef::parse("p/m"),
            attempts: vec![],
            used_fallback: false,
            hit_max_tokens: request.message == "long",
        })
    }
}

#[derive(Default)]
struct Audit(Mutex<Vec<AuditEvent>>);

impl AuditSink for Audit {
    fn record(&self, event: AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

struct Fixture {
    router: Router,
    gateway: Arc<ScriptedGateway>,
    audit: Arc<Audit>,
}

fn limits() -> Limits {
    Limits {
        max_request_bytes: 4096,
        max_connections: 64,
        header_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(5),
        max_concurrent_turns: 4,
        turn_queue: Duration::from_secs(5),
        drain: Duration::from_secs(5),
    }
}

fn state_with(limits: Limits) -> (ServerState, Arc<ScriptedGateway>, Arc<Audit>) {
    let gateway =
        Arc::new(ScriptedGateway { requests: Mutex::new(vec![]), release: tokio::sync::Notify::new() });
    let audit = Arc::new(Audit::default());
    let state = ServerState::new(
        gateway.clone(),
        audit.clone(),
        "sekrit-token",
        Arc::new(|| "agent_metric 1\n".to_string()),
        limits,
    );
    (state, gateway, audit)
}

fn fixture_with(limits: Limits) -> Fixture {
    let (state, gateway, audit) = state_with(limits);
    Fixture { router: router(state), gateway, audit }
}

fn fixture() -> Fixture {
    fixture_with(limits())
}

async fn send(
    router: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut builder = Request::builder().method(method).uri(path).header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let response = router.clone().oneshot(builder.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn health_needs_no_token() {
    let f = fixture();
    let (status, _, body) = send(&f.router, "GET", "/health", None, "").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn everything_else_needs_the_token() {
    let f = fixture();
    for (method, path) in [
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/turns"),
        ("GET", "/metrics"),
        ("GET", "/v1/status"),
    ] {
        for token in [None, Some("wrong"), Some("sekrit-token-longer"), Some("")] {
            let (status, _, body) = send(&f.router, method, path, token, "{}").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} {token:?}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["error"]["type"], "unauthorized");
        }
    }
    let audit = f.audit.0.lock().unwrap();
    assert_eq!(audit.len(), 20);
    assert!(audit.iter().all(|e| e.kind == "auth_failure"));
    assert!(f.gateway.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn models_lists_agents() {
    let f = fixture();
    let (status, _, body) = send(&f.router, "GET", "/v1/models", Some("sekrit-token"), "").await;
    assert_eq!(status, StatusCode::OK);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["data"][0]["id"], "main");
    assert_eq!(json["object"], "list");
}

#[tokio::test]
async fn chat_completion_json_and_session_handling() {
    let f = fixture();
    let body = r#"{"model":"main","messages":[{"role":"system","content":"ignored"},{"role":"user","content":"earlier"},{"role":"assistant","content":"reply"},{"role":"user","content":[{"type":"text","text":"now"}]}]}"#;
    let (status, headers, text) =
        send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["choices"][0]["message"]["content"], "Hello");
    assert_eq!(json["usage"]["total_tokens"], 9);
    let session = headers[openai::SESSION_HEADER].to_str().unwrap().to_string();
    let requests = f.gateway.requests.lock().unwrap().clone();
    assert_eq!(requests[0].message, "now");
    assert_eq!(
        requests[0].history,
        vec![clawdia_core::Message::user("earlier"), clawdia_core::Message::assistant("reply")]
    );
    assert_eq!(requests[0].session.as_deref(), Some(session.as_str()));
    let body = r#"{"model":"main","user":"alice-chat","messages":[{"role":"user","content":"hi"}]}"#;
    let (_, headers, _) = send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), body).await;
    assert_eq!(headers[openai::SESSION_HEADER], "alice-chat");
}

#[tokio::test]
async fn chat_completion_stream_is_openai_shaped() {
    let f = fixture();
    let body = r#"{"model":"main","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, headers, text) =
        send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    let datas: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
    assert_eq!(datas.last(), Some(&"[DONE]"));
    let chunks: Vec<serde_json::Value> =
        datas[..datas.len() - 1].iter().map(|d| serde_json::from_str(d).unwrap()).collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(content, "Hello");
    assert_eq!(chunks[chunks.len() - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[chunks.len() - 1]["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn errors_are_json_with_fitting_statuses() {
    let f = fixture();
    let cases = [
        (
            r#"{"model":"nobody","messages":[{"role":"user","content":"x"}]}"#,
            StatusCode::NOT_FOUND,
            "model_not_found",
        ),
        (
            r#"{"model":"main","messages":[{"role":"user","content":"broke"}]}"#,
            StatusCode::PAYMENT_REQUIRED,
            "budget_exceeded",
        ),
        (r#"{"model":"main","messages":[]}"#, StatusCode::BAD_REQUEST, "invalid_request_error"),
        (r#"{"model":"main""#, StatusCode::BAD_REQUEST, "invalid_request_error"),
    ];
    for (body, expected, kind) in cases {
        let (status, _, text) =
            send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), body).await;
        assert_eq!(status, expected, "{body}: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["error"]["type"], kind, "{text}");
    }
    let huge =
        format!(r#"{{"model":"main","messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(10_000));
    let (status, _, text) =
        send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "{text}");
    let (status, _, text) = send(&f.router, "GET", "/nope", Some("sekrit-token"), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(text.contains("no such endpoint"));
}

#[tokio::test]
async fn native_turn_stream_has_typed_events() {
    let f = fixture();
    let (status, _, text) = send(
        &f.router,
        "POST",
        "/v1/turns",
        Some("sekrit-token"),
        r#"{"agent":"main","message":"hi","session":"s9"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(names, ["started", "text_delta", "text_delta", "end"]);
    assert!(text.contains(r#""cost_usd":0.5"#), "{text}");
    // A turn that fails before any progress gets its real status, not a 200 stream.
    let (status, _, text) =
        send(&f.router, "POST", "/v1/turns", Some("sekrit-token"), r#"{"message":"broke"}"#).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(json["error"]["message"].as_str().unwrap().contains("daily budget"), "{text}");
}

#[tokio::test]
async fn a_turn_stopped_by_rate_limits_alone_is_a_429_with_retry_after_before_any_stream() {
    let f = fixture();
    let requests = [
        ("/v1/chat/completions", r#"{"model":"main","messages":[{"role":"user","content":"limited"}]}"#),
        (
            "/v1/chat/completions",
            r#"{"model":"main","stream":true,"messages":[{"role":"user","content":"limited"}]}"#,
        ),
        ("/v1/turns", r#"{"message":"limited"}"#),
    ];
    for (path, body) in requests {
        let (status, headers, text) = send(&f.router, "POST", path, Some("sekrit-token"), body).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{path} {body}: {text}");
        assert_eq!(headers["retry-after"], "2", "1.5 s rounds up to whole seconds");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["error"]["type"], "rate_limit_error", "{text}");
        assert_eq!(json["error"]["code"], 429);
    }
    // Positive control: a turn that answers is a 200 stream.
    let (status, headers, _) = send(
        &f.router,
        "POST",
        "/v1/chat/completions",
        Some("sekrit-token"),
        r#"{"model":"main","stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers.get("retry-after").is_none());
}

#[tokio::test]
async fn a_failure_after_text_was_streamed_ends_the_200_stream_with_the_error() {
    let f = fixture();
    let (status, _, text) = send(
        &f.router,
        "POST",
        "/v1/chat/completions",
        Some("sekrit-token"),
        r#"{"model":"main","stream":true,"messages":[{"role":"user","content":"cut"}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "the head went out with the first text");
    let chunks: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hal");
    let error = &chunks.last().unwrap()["error"];
    assert!(error["message"].as_str().unwrap().contains("was cut off mid-stream"), "{text}");
    assert!(!text.contains("fallback model answers"), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"));

    let (status, _, text) =
        send(&f.router, "POST", "/v1/turns", Some("sekrit-token"), r#"{"message":"cut"}"#).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(names, ["started", "text_delta", "error"]);
}

#[tokio::test]
async fn status_lists_the_daemons_components_with_their_states() {
    let (state, _, _) = state_with(limits());
    let started_at = clawdia_core::time::now_ms() - 90_000;
    let board = Arc::new(clawdia_core::StatusBoard::new());
    board.register("server", clawdia_core::ComponentState::Running);
    board.register("scheduler", clawdia_core::ComponentState::Running);
    board.failed("scheduler", "cron.db: disk I/O error", 2, started_at + 100_000);
    board.register("embedder", clawdia_core::ComponentState::Disabled);
    let snapshot = board.clone();
    let state =
        state.with_status(StatusSource { started_at, components: Arc::new(move || snapshot.snapshot()) });
    let router = router(state);
    let (status, _, _) = send(&router, "GET", "/v1/status", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = send(&router, "GET", "/v1/status", Some("sekrit-token"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["pid"], std::process::id());
    assert!(json["uptime_secs"].as_u64().is_some_and(|secs| (90..100).contains(&secs)), "{json}");
    assert_eq!(json["started_at"], clawdia_core::time::rfc3339_utc(started_at));
    let components = json["components"].as_array().unwrap();
    let names: Vec<_> = components.iter().map(|c| (c["name"].as_str(), c["state"].as_str())).collect();
    assert_eq!(
        names,
        [
            (Some("server"), Some("running")),
            (Some("scheduler"), Some("restarting")),
            (Some("embedder"), Some("disabled"))
        ]
    );
    assert_eq!(components[1]["error"], "cron.db: disk I/O error");
    assert_eq!(components[1]["attempt"], 2);
    assert_eq!(components[1]["next_try"], clawdia_core::time::rfc3339_utc(started_at + 100_000));
    assert!(components[0].get("error").is_none() && components[0].get("attempt").is_none(), "{json}");
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let f = fixture();
    let (status, headers, text) = send(&f.router, "GET", "/metrics", Some("sekrit-token"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().starts_with("text/plain"));
    assert!(text.contains("agent_metric 1\n"));
    assert!(text.contains("clawdia_http_requests_total 1\n"), "{text}");
}

#[test]
fn token_comparison() {
    assert!(auth::token_matches(b"abc", b"abc"));
    assert!(!auth::token_matches(b"abd", b"abc"));
    assert!(!auth::token_matches(b"ab", b"abc"));
    assert!(!auth::token_matches(b"", b""));
}

#[test]
fn error_bodies_and_sse_frames_mask_registered_secrets() {
    let key = "sk-server-unit-3e8a1c9d70";
    clawdia_core::redact::register(key);
    let error = ApiError::from(TurnError::ModelsFailed {
        message: format!("p/m: unauthorized: invalid key {key}"),
        attempts: Vec::new(),
        retry_after: None,
    });
    let body = error.body().to_string();
    assert!(!body.contains(key), "{body}");
    // The positive control: the rest of the error is intact.
    assert!(body.contains("p/m: unauthorized: invalid key [redacted]"), "{body}");
    assert_eq!(error.status, StatusCode::BAD_GATEWAY);
    let frame = crate::sse::frame(Some("error"), &format!(r#"{{"message":"bad {key}"}}"#));
    assert_eq!(frame, "event: error\ndata: {\"message\":\"bad [redacted]\"}\n\n");
}

#[tokio::test]
async fn one_model_by_id() {
    let f = fixture();
    let (status, _, body) = send(&f.router, "GET", "/v1/models/main", Some("sekrit-token"), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["id"], "main");
    assert_eq!(json["object"], "model");
    let (status, _, body) = send(&f.router, "GET", "/v1/models/nobody", Some("sekrit-token"), "").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["error"]["type"], "model_not_found");
    let (status, _, _) = send(&f.router, "GET", "/v1/models/main", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn client_side_tools_are_refused_with_the_reason() {
    let f = fixture();
    let tool = r#"{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}"#;
    let refused = [
        format!(r#"{{"model":"main","tools":[{tool}],"messages":[{{"role":"user","content":"hi"}}]}}"#),
        r#"{"model":"main","functions":[{"name":"f"}],"messages":[{"role":"user","content":"hi"}]}"#.into(),
        r#"{"model":"main","messages":[{"role":"user","content":"hi"},{"role":"tool","tool_call_id":"c1","content":"42"},{"role":"user","content":"and?"}]}"#.into(),
    ];
    for body in &refused {
        let (status, _, text) =
            send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let message = json["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("runs a Clawdia agent") && message.contains("client-side tools"),
            "{message}"
        );
    }
    assert!(f.gateway.requests.lock().unwrap().is_empty(), "a refused request reached the agent");
    // An empty tool list asks for nothing and is fine.
    let body =
        r#"{"model":"main","tools":[],"tool_choice":"none","messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, text) = send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[tokio::test]
async fn client_sampling_settings_and_system_messages_reach_the_turn() {
    let f = fixture();
    let body = r#"{"model":"main","temperature":0.2,"max_tokens":50,"max_completion_tokens":77,"stop":"END",
        "messages":[{"role":"system","content":"Answer in French."},{"role":"developer","content":[{"type":"text","text":"Be terse."}]},{"role":"user","content":"hi"}]}"#;
    let (status, _, text) = send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let body =
        r#"{"model":"main","max_tokens":12,"stop":["a","b"],"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, text) = send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let body = r#"{"model":"main","messages":[{"role":"user","content":"hi"}]}"#;
    send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), body).await;
    let requests = f.gateway.requests.lock().unwrap().clone();
    assert_eq!(
        requests[0].options,
        clawdia_core::TurnOptions {
            temperature: Some(0.2),
            max_tokens: Some(77),
            stop: vec!["END".into()],
            system: Some("Answer in French.\n\nBe terse.".into()),
        }
    );
    assert!(requests[0].history.is_empty(), "system messages are not history: {:?}", requests[0].history);
    assert_eq!(requests[1].options.max_tokens, Some(12));
    assert_eq!(requests[1].options.stop, ["a", "b"]);
    assert_eq!(requests[1].options.system, None);
    assert_eq!(requests[2].options, clawdia_core::TurnOptions::default());
}

#[tokio::test]
async fn bad_client_settings_are_400() {
    let f = fixture();
    let cases = [
        (r#""temperature":3"#, "temperature"),
        (r#""max_tokens":0"#, "max_tokens"),
        (r#""stop":["a","b","c","d","e"]"#, "stop"),
        (r#""stop":[""]"#, "stop"),
        (r#""n":2"#, "`n`"),
    ];
    for (field, named) in cases {
        let body = format!(r#"{{"model":"main",{field},"messages":[{{"role":"user","content":"hi"}}]}}"#);
        let (status, _, text) =
            send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert!(text.contains(named), "{body}: {text}");
    }
    assert!(f.gateway.requests.lock().unwrap().is_empty());
}

#[tokio::test]
async fn native_turn_for_an_unknown_agent_is_404() {
    let f = fixture();
    let (status, headers, text) =
        send(&f.router, "POST", "/v1/turns", Some("sekrit-token"), r#"{"agent":"nobody","message":"hi"}"#)
            .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{text}");
    assert_eq!(headers["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["error"]["type"], "model_not_found");
    assert!(f.gateway.requests.lock().unwrap().is_empty());
}

fn chat_request(body: &str) -> Request<Body> {
    Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header("authorization", "Bearer sekrit-token")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn turns_beyond_the_cap_wait_then_get_503_with_retry_after_until_one_ends() {
    let f =
        fixture_with(Limits { max_concurrent_turns: 1, turn_queue: Duration::from_millis(200), ..limits() });
    let waiting = r#"{"model":"main","stream":true,"messages":[{"role":"user","content":"wait"}]}"#;
    let first = f.router.clone().oneshot(chat_request(waiting)).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let mut first = first.into_body();
    // The turn has started (and holds the one slot) once its first frame arrives.
    let frame = first.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(String::from_utf8_lossy(&frame).contains("assistant"), "{frame:?}");

    let hi = r#"{"model":"main","messages":[{"role":"user","content":"hi"}]}"#;
    let (status, headers, text) =
        send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), hi).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert_eq!(headers["retry-after"], "1");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["error"]["type"], "server_busy");
    assert!(json["error"]["message"].as_str().unwrap().contains("max_concurrent_turns"), "{text}");
    let (status, _, _) =
        send(&f.router, "POST", "/v1/turns", Some("sekrit-token"), r#"{"message":"hi"}"#).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    // Requests that are not turns are not held up.
    let (status, _, _) = send(&f.router, "GET", "/v1/models", Some("sekrit-token"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f.gateway.requests.lock().unwrap().len(), 1, "a refused turn reached the agent");

    f.gateway.release.notify_one();
    let rest = first.collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&rest).contains("[DONE]"));
    let (status, _, text) = send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), hi).await;
    assert_eq!(status, StatusCode::OK, "the slot came back when the stream ended: {text}");
}

#[tokio::test]
async fn a_turn_beyond_the_cap_waits_for_a_free_slot() {
    let f = fixture_with(Limits { max_concurrent_turns: 1, ..limits() });
    let waiting = r#"{"model":"main","stream":true,"messages":[{"role":"user","content":"wait"}]}"#;
    let mut first = f.router.clone().oneshot(chat_request(waiting)).await.unwrap().into_body();
    first.frame().await.unwrap().unwrap();
    let router = f.router.clone();
    let queued = tokio::spawn(async move {
        let hi = r#"{"model":"main","messages":[{"role":"user","content":"hi"}]}"#;
        send(&router, "POST", "/v1/chat/completions", Some("sekrit-token"), hi).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!queued.is_finished(), "the second turn did not wait");
    assert_eq!(f.gateway.requests.lock().unwrap().len(), 1, "the second turn ran beside the first");
    f.gateway.release.notify_one();
    first.collect().await.unwrap();
    let (status, _, text) = tokio::time::timeout(Duration::from_secs(3), queued).await.unwrap().unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(f.gateway.requests.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let f = fixture_with(Limits { body_timeout: Duration::from_millis(200), ..limits() });
    let stalled = futures_util::StreamExt::chain(
        futures_util::stream::iter([Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"model\""))]),
        futures_util::stream::pending(),
    );
    let request = Request::builder()
        .method("POST")
        .uri("/v1/chat/completions")
        .header("authorization", "Bearer sekrit-token")
        .body(Body::from_stream(stalled))
        .unwrap();
    let started = std::time::Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(5), f.router.clone().oneshot(request))
        .await
        .expect("answered")
        .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() >= Duration::from_millis(200));
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("body_timeout_secs"), "{text:?}");
    assert!(f.gateway.requests.lock().unwrap().is_empty());
}

// ---- over a real socket -------------------------------------------------------------------

struct Served {
    addr: SocketAddr,
    gateway: Arc<ScriptedGateway>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Served {
    async fn start(limits: Limits) -> Served {
        let (state, gateway, _) = state_with(limits);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Served { addr, gateway, stop: Some(stop), task }
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(5), &mut self.task)
            .await
            .expect("the server stopped")
            .unwrap()
            .unwrap();
    }
}

/// One request on a fresh connection (`Connection: close`); the raw response.
async fn raw(addr: SocketAddr, method: &str, path: &str, body: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer sekrit-token\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .expect("a response in time")
        .unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

/// Whether the server closed `stream` (EOF or reset) within `within`.
async fn closed_by_server(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_after_the_header_timeout() {
    use tokio::io::AsyncWriteExt;
    let served = Served::start(Limits { header_timeout: Duration::from_millis(300), ..limits() }).await;
    let mut idle = tokio::net::TcpStream::connect(served.addr).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(served.addr).await.unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n").await.unwrap();
    // A client that sends its request in time is served.
    let response = raw(served.addr, "GET", "/health", "").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(closed_by_server(&mut idle, Duration::from_secs(3)).await, "an idle connection stayed open");
    assert!(closed_by_server(&mut half, Duration::from_secs(3)).await, "a half-sent request stayed open");
    served.shutdown().await;
}

#[tokio::test]
async fn at_the_connection_cap_the_longest_idle_connection_makes_room() {
    let served = Served::start(Limits { max_connections: 3, ..limits() }).await;
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(served.addr).await.unwrap());
    }
    // Let the server accept all three.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let response = raw(served.addr, "GET", "/health", "").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        closed_by_server(&mut idle[0], Duration::from_secs(3)).await,
        "the oldest idle connection was kept"
    );
    assert!(!closed_by_server(&mut idle[2], Duration::from_millis(200)).await, "a newer idle one was closed");
    served.shutdown().await;
}

#[tokio::test]
async fn at_the_connection_cap_with_every_connection_busy_a_new_one_gets_503() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let served = Served::start(Limits { max_connections: 2, ..limits() }).await;
    let waiting = r#"{"model":"main","stream":true,"messages":[{"role":"user","content":"wait"}]}"#;
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(served.addr).await.unwrap();
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer sekrit-token\r\nContent-Length: {}\r\n\r\n{waiting}",
            waiting.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        busy.push(stream);
    }
    let response = raw(served.addr, "GET", "/health", "").await;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.to_ascii_lowercase().contains("retry-after: 1"), "{response}");
    let body = response.split_once("\r\n\r\n").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["error"]["type"], "server_busy");
    assert!(json["error"]["message"].as_str().unwrap().contains("max_connections"));
    // Once the turns end and their connections close, new connections are served again.
    served.gateway.release.notify_one();
    served.gateway.release.notify_one();
    for stream in &mut busy {
        stream.shutdown().await.unwrap();
        assert!(closed_by_server(stream, Duration::from_secs(3)).await);
    }
    drop(busy);
    let mut served_again = false;
    for _ in 0..50 {
        if raw(served.addr, "GET", "/health", "").await.starts_with("HTTP/1.1 200") {
            served_again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served_again);
    served.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_after_the_write_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let served = Served::start(Limits { write_timeout: Duration::from_secs(1), ..limits() }).await;
    let open_connections = || async {
        let metrics = raw(served.addr, "GET", "/metrics", "").await;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix("clawdia_http_open_connections "))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap()
    };
    // Positive control: only the metrics request's own connection is open.
    assert_eq!(open_connections().await, 1);
    let flood = r#"{"model":"main","stream":true,"messages":[{"role":"user","content":"flood"}]}"#;
    let mut stalled = tokio::net::TcpStream::connect(served.addr).await.unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer sekrit-token\r\nContent-Length: {}\r\n\r\n{flood}",
        flood.len()
    );
    stalled.write_all(request.as_bytes()).await.unwrap();
    let mut buf = [0u8; 16];
    stalled.read_exact(&mut buf).await.unwrap();
    assert_eq!(open_connections().await, 2, "the stalled stream is open while the server can still write");
    let mut dropped = false;
    for _ in 0..100 {
        if open_connections().await == 1 {
            dropped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(dropped, "a client that stopped reading kept its connection");
    served.shutdown().await;
}

/// Starts a streamed "wait" turn on `addr` and returns its connection once the turn is running.
async fn waiting_turn(addr: SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = r#"{"model":"main","stream":true,"messages":[{"role":"user","content":"wait"}]}"#;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer sekrit-token\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut head)).await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"), "the turn did not start");
    stream
}

/// Everything the server still sends on `stream` until it closes it.
async fn rest_of(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    String::from_utf8_lossy(&rest).into_owned()
}

#[tokio::test]
async fn on_shutdown_a_turn_in_flight_finishes_within_the_drain() {
    let mut served = Served::start(Limits { drain: Duration::from_secs(5), ..limits() }).await;
    let mut stream = waiting_turn(served.addr).await;
    let gateway = served.gateway.clone();
    let _ = served.stop.take().map(|stop| stop.send(()));
    // New connections are refused once shutdown began; the turn in flight goes on.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(tokio::net::TcpStream::connect(served.addr).await.is_err(), "still accepting after shutdown");
    assert!(!served.task.is_finished(), "the server stopped before its turn finished");
    gateway.release.notify_one();
    let rest = rest_of(&mut stream).await;
    assert!(rest.contains("Hel") && rest.contains("[DONE]"), "the turn was cut: {rest}");
    tokio::time::timeout(Duration::from_secs(2), &mut served.task)
        .await
        .expect("the server stopped once the turn ended")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn on_shutdown_a_turn_longer_than_the_drain_is_cut_and_the_server_stops() {
    let mut served = Served::start(Limits { drain: Duration::from_millis(300), ..limits() }).await;
    let mut stream = waiting_turn(served.addr).await;
    let began = std::time::Instant::now();
    let _ = served.stop.take().map(|stop| stop.send(()));
    tokio::time::timeout(Duration::from_secs(3), &mut served.task)
        .await
        .expect("the server stopped after the drain")
        .unwrap()
        .unwrap();
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(300), "the drain was not waited for: {took:?}");
    let rest = rest_of(&mut stream).await;
    assert!(!rest.contains("[DONE]"), "the turn finished although it was never released: {rest}");
}

#[tokio::test]
async fn a_secret_spread_over_several_text_deltas_is_masked_in_both_streams() {
    let key = "sk-split-across-deltas-5c1d9e";
    clawdia_core::redact::register(key);
    let f = fixture();
    let (status, _, native) =
        send(&f.router, "POST", "/v1/turns", Some("sekrit-token"), r#"{"message":"leak"}"#).await;
    assert_eq!(status, StatusCode::OK);
    let body = r#"{"model":"main","stream":true,"messages":[{"role":"user","content":"leak"}]}"#;
    let (status, _, openai) =
        send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), body).await;
    assert_eq!(status, StatusCode::OK);
    for stream in [&native, &openai] {
        let text: String = stream
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
            .filter_map(|event| {
                event["text"]
                    .as_str()
                    .or_else(|| event["choices"][0]["delta"]["content"].as_str())
                    .map(String::from)
            })
            .collect();
        for part in ["sk-split-across", "across-deltas", "deltas-5c1d9e"] {
            assert!(!stream.contains(part), "{stream}");
        }
        // Positive control: the text around it arrives, in order, whole.
        assert_eq!(text, "Your key: [redacted] and moreHello", "{stream}");
    }
    // A reply cut off while a tail was held back still shows that tail before the error.
    let (_, _, cut) =
        send(&f.router, "POST", "/v1/turns", Some("sekrit-token"), r#"{"message":"leak-cut"}"#).await;
    let names: Vec<&str> = cut.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(names, ["started", "text_delta", "text_delta", "error"], "{cut}");
    assert!(cut.contains("It breaks at ") && cut.contains(r#""text":"sk-split""#), "{cut}");
}

#[tokio::test]
async fn a_reply_cut_at_max_tokens_finishes_with_length_in_both_openai_shapes() {
    let f = fixture();
    for (message, expected) in [("long", "length"), ("hi", "stop")] {
        let body = format!(r#"{{"model":"main","messages":[{{"role":"user","content":"{message}"}}]}}"#);
        let (status, _, text) =
            send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), &body).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["choices"][0]["finish_reason"], expected, "{text}");
        let body = format!(
            r#"{{"model":"main","stream":true,"messages":[{{"role":"user","content":"{message}"}}]}}"#
        );
        let (_, _, stream) =
            send(&f.router, "POST", "/v1/chat/completions", Some("sekrit-token"), &body).await;
        let finishes: Vec<String> = stream
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter_map(|data| serde_json::from_str::<serde_json::Value>(data).ok())
            .filter_map(|chunk| chunk["choices"][0]["finish_reason"].as_str().map(String::from))
            .collect();
        assert_eq!(finishes, [expected], "{stream}");
    }
}
