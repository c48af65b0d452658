//! Dev-only test support. Its centrepiece is [`MockLlm`]: a scriptable mock LLM server that
//! speaks both the Anthropic Messages and the OpenAI Chat Completions wire formats over real
//! HTTP on 127.0.0.1, streaming (SSE) or not as each request asks. Tests queue [`Reply`]s, point
//! a client (or the real `clawdia` binary) at it, and inspect what it received. The default
//! reply path does no logging and little allocation, because a benchmark drives thousands of
//! requests per second through it.

mod echo;
pub mod mail;
mod reply;
mod reset;
pub mod telegram;
mod wire;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch;

pub use reply::{Reply, ReplyKind};
use reset::{ResetHandle, ResettableListener};
use wire::{Asked, Ids, Wire};

/// One request the mock received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub path: String,
    /// Header names in lower case, values as text (lossy).
    pub headers: Vec<(String, String)>,
    /// The JSON body, or `Value::Null` when it was not JSON.
    pub body: Value,
    pub body_bytes: usize,
}

impl RecordedRequest {
    /// The first value of a header (name matched case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(found, _)| found.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// How to start a mock; [`MockLlm::start`] uses the defaults.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Keep every request for [`MockLlm::requests`]. Long-running servers (the bin) turn this
    /// off so memory stays flat.
    pub record_requests: bool,
    /// Used whenever the queue is empty.
    pub default_reply: Reply,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions { port: 0, record_requests: true, default_reply: Reply::text("ok") }
    }
}

struct Shared {
    queue: Mutex<VecDeque<Reply>>,
    /// Replies for requests naming one model, used before the common queue.
    by_model: Mutex<std::collections::HashMap<String, VecDeque<Reply>>>,
    default_reply: Mutex<Reply>,
    requests: Mutex<Vec<RecordedRequest>>,
    record_requests: bool,
    next_id: AtomicU64,
    shutdown: watch::Receiver<bool>,
}

impl Ids for Shared {
    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test thread must not wedge the server).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn next_reply(&self, model: Option<&str>) -> Reply {
        if let Some(reply) =
            model.and_then(|model| lock(&self.by_model).get_mut(model).and_then(VecDeque::pop_front))
        {
            return reply;
        }
        if let Some(reply) = lock(&self.queue).pop_front() {
            return reply;
        }
        lock(&self.default_reply).clone()
    }
}

/// A running mock server. Dropping it shuts the server down (hung replies are released).
pub struct MockLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
}

impl MockLlm {
    /// Binds 127.0.0.1 on a free port and serves in a background task of the current runtime.
    pub async fn start() -> MockLlm {
        MockLlm::start_with(MockOptions::default()).await.expect("mock LLM binds 127.0.0.1")
    }

    /// Like [`MockLlm::start`] with explicit options.
    pub async fn start_with(options: MockOptions) -> std::io::Result<MockLlm> {
        let (listener, shared, shutdown) = bind(options).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(serve(listener, Arc::clone(&shared)));
        Ok(MockLlm { addr, shared, shutdown })
    }

    /// Starts the mock on its own runtime in a background thread, for synchronous tests (for
    /// example ones that spawn the `clawdia` binary).
    pub fn start_blocking() -> MockLlm {
        MockLlm::start_blocking_with(MockOptions::default()).expect("mock LLM binds 127.0.0.1")
    }

    /// Like [`MockLlm::start_blocking`] with explicit options.
    pub fn start_blocking_with(options: MockOptions) -> std::io::Result<MockLlm> {
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("mock-llm".to_string()).spawn(move || {
            let runtime =
                match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started_tx.send(Err(error));
                        return;
                    }
                };
            runtime.block_on(async move {
                match bind(options).await {
                    Ok((listener, shared, shutdown)) => {
                        let started = listener.local_addr().map(|addr| MockLlm {
                            addr,
                            shared: Arc::clone(&shared),
                            shutdown,
                        });
                        let _ = started_tx.send(started);
                        serve(listener, shared).await;
                    }
                    Err(error) => {
                        let _ = started_tx.send(Err(error));
                    }
                }
            });
        })?;
        started_rx.recv().map_err(|_| std::io::Error::other("mock LLM thread died while starting"))?
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (the Anthropic client appends `/v1/messages`).
    pub fn anthropic_base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1` (the OpenAI client appends `/chat/completions`).
    pub fn openai_base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Queues a reply; both endpoints take from the same FIFO queue.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.queue).push_back(reply);
    }

    /// Queues a reply for the next request that names `model` (the provider-side id, e.g.
    /// `admin` for `mock/admin`): agents that run at the same time each get their own.
    pub fn push_for(&self, model: &str, reply: Reply) {
        lock(&self.shared.by_model).entry(model.to_string()).or_default().push_back(reply);
    }

    /// The reply used when the queue is empty (initially the text "ok").
    pub fn set_default(&self, reply: Reply) {
        *lock(&self.shared.default_reply) = reply;
    }

    /// Every request received so far, in order (empty when recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

type Bound = (tokio::net::TcpListener, Arc<Shared>, watch::Sender<bool>);

async fn bind(options: MockOptions) -> std::io::Result<Bound> {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, options.port)).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        by_model: Mutex::default(),
        default_reply: Mutex::new(options.default_reply),
        requests: Mutex::new(Vec::new()),
        record_requests: options.record_requests,
        next_id: AtomicU64::new(0),
        shutdown: shutdown_rx,
    });
    Ok((listener, shared, shutdown_tx))
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let app = axum::Router::new()
        .route("/v1/messages", post(anthropic))
        .route("/v1/chat/completions", post(openai))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(256 << 20))
        .with_state(shared);
    let listener = ResettableListener(listener);
    let _ = axum::serve(listener, app.into_make_service_with_connect_info::<ResetHandle>())
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .await;
}

async fn anthropic(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(connection): ConnectInfo<ResetHandle>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(Wire::Anthropic, &shared, &connection, uri.path(), &headers, &body).await
}

async fn openai(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(connection): ConnectInfo<ResetHandle>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(Wire::OpenAi, &shared, &connection, uri.path(), &headers, &body).await
}

async fn not_found(State(shared): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = serde_json::from_slice(&body).unwrap_or(Value::Null);
    record(&shared, uri.path(), &headers, &parsed, body.len());
    (StatusCode::NOT_FOUND, "the mock LLM serves /v1/messages and /v1/chat/completions").into_response()
}

fn record(shared: &Shared, path: &str, headers: &HeaderMap, body: &Value, body_bytes: usize) {
    if !shared.record_requests {
        return;
    }
    let headers = headers
        .iter()
        .map(|(name, value)| {
            (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect();
    lock(&shared.requests).push(RecordedRequest {
        path: path.to_string(),
        headers,
        body: body.clone(),
        body_bytes,
    });
}

async fn answer(
    wire: Wire,
    shared: &Shared,
    connection: &ResetHandle,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    record(shared, path, headers, &parsed, body.len());
    let reply = shared.next_reply(parsed["model"].as_str());
    if let ReplyKind::Reset = reply.kind {
        return reset_response(connection);
    }
    if let ReplyKind::Hang = reply.kind {
        let mut shutdown = shared.shutdown.clone();
        let _ = shutdown.wait_for(|stop| *stop).await;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let asked = Asked {
        model: parsed.get("model").and_then(Value::as_str).unwrap_or("mock-model"),
        include_usage: parsed
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    let stream = parsed.get("stream").and_then(Value::as_bool).unwrap_or(false);
    match &reply.kind {
        ReplyKind::Status { code, retry_after, body } => {
            status_response(wire, *code, retry_after.as_deref(), body)
        }
        ReplyKind::EchoCredentials { code } => echo::response(wire, *code, headers),
        _ if stream => {
            let events = match wire {
                Wire::Anthropic => wire::anthropic_events(&reply, &asked, shared),
                Wire::OpenAi => wire::openai_events(&reply, &asked, shared),
            };
            sse_response(events, reply.chunk_delay)
        }
        ReplyKind::Malformed => {
            json_response(StatusCode::OK, Bytes::from_static(wire::malformed_body(wire).as_bytes()))
        }
        ReplyKind::Truncated => {
            let full = match wire {
                Wire::Anthropic => {
                    wire::anthropic_body(&Reply::text("This reply breaks off in the middle"), &asked, shared)
                }
                Wire::OpenAi => {
                    wire::openai_body(&Reply::text("This reply breaks off in the middle"), &asked, shared)
                }
            };
            cut_short_response(full.to_string().into_bytes())
        }
        _ => {
            let full = match wire {
                Wire::Anthropic => wire::anthropic_body(&reply, &asked, shared),
                Wire::OpenAi => wire::openai_body(&reply, &asked, shared),
            };
            json_response(StatusCode::OK, Bytes::from(full.to_string()))
        }
    }
}

fn json_response(status: StatusCode, body: Bytes) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn status_response(wire: Wire, code: u16, retry_after: Option<&str>, body: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = if body.is_empty() {
        let error = match wire {
            Wire::Anthropic => wire::anthropic_error(code),
            Wire::OpenAi => wire::openai_error(code),
        };
        Bytes::from(error.to_string())
    } else {
        Bytes::from(body.to_string())
    };
    let mut response = json_response(status, body);
    if let Some(value) = retry_after.and_then(|value| HeaderValue::from_str(value).ok()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn sse_response(events: Vec<String>, chunk_delay: Duration) -> Response {
    let body = if chunk_delay.is_zero() {
        Body::from(events.concat())
    } else {
        let stream =
            futures_util::stream::unfold((events.into_iter(), true), move |(mut events, first)| async move {
                let event = events.next()?;
                if !first {
                    tokio::time::sleep(chunk_delay).await;
                }
                Some((Ok::<_, Infallible>(Bytes::from(event)), (events, false)))
            });
        Body::from_stream(stream)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Announces the full length, sends the first half, then drops the connection.
fn cut_short_response(full: Vec<u8>) -> Response {
    let length = full.len();
    let half = Bytes::from(full).slice(..length / 2);
    let stream = futures_util::stream::unfold(Some(half), |state| async move {
        match state {
            Some(half) => Some((Ok(half), None)),
            None => {
                // Let the first half reach the wire before the connection is torn down.
                tokio::time::sleep(Duration::from_millis(20)).await;
                Some((Err(std::io::Error::other("mock: connection cut mid-body")), None))
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// Resets the connection instead of answering: what the client receives is a TCP reset.
fn reset_response(connection: &ResetHandle) -> Response {
    connection.reset();
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}
