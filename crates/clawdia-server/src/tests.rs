//! Router tests without a socket: auth, error bodies, the OpenAI shapes and the SSE framing,
//! against a scripted in-memory gateway.

use std::sync::Mutex;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use clawdia_core::{AgentInfo, AuditEvent, ModelRef, TurnError, TurnEvents, TurnOutcome, Usage};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

struct ScriptedGateway {
    requests: Mutex<Vec<TurnRequest>>,
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

fn fixture() -> Fixture {
    let gateway = Arc::new(ScriptedGateway { requests: Mutex::new(vec![]) });
    let audit = Arc::new(Audit::default());
    let state = ServerState::new(
        gateway.clone(),
        audit.clone(),
        "sekrit-token",
        Arc::new(|| "agent_metric 1\n".to_string()),
        4096,
    );
    Fixture { router: router(state), gateway, audit }
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
    for (method, path) in
        [("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/turns"), ("GET", "/metrics")]
    {
        for token in [None, Some("wrong"), Some("sekrit-token-longer"), Some("")] {
            let (status, _, body) = send(&f.router, method, path, token, "{}").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} {token:?}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(json["error"]["type"], "unauthorized");
        }
    }
    let audit = f.audit.0.lock().unwrap();
    assert_eq!(audit.len(), 16);
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
