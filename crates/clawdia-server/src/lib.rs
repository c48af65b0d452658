//! The gateway's HTTP API: `GET /health` (no auth); bearer-authenticated OpenAI-compatible
//! `GET /v1/models` and `POST /v1/chat/completions` (JSON and SSE), the native turn stream
//! `POST /v1/turns` (SSE of `TurnEvent`s), the owner's approval requests (`/v1/approvals`),
//! `GET /metrics` (Prometheus text) and `GET /v1/status` (the daemon's components, `status`).
//!
//! No client can lock the others out: connections are capped and time out when idle, half-sent
//! or not reading (`conn`), and turns and request bodies are bounded (`limits`).
//!
//! Architecture invariants: the server knows agents only through the `Gateway` trait; JSON wire
//! types for these endpoints live only here; every failure becomes a JSON error response in one
//! place (`error::ApiError`), and no request can take the process down.

mod approvals;
mod auth;
mod conn;
mod error;
mod limits;
mod openai;
mod sse;
mod status;
mod turns;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use clawdia_core::{AuditSink, Gateway};
use tokio::sync::Semaphore;

pub use error::ApiError;
pub use limits::Limits;
pub(crate) use limits::guarded;
pub use status::StatusSource;

/// Renders extra Prometheus text (the agents' counters) for `/metrics`.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct ServerState {
    pub gateway: Arc<dyn Gateway>,
    pub audit: Arc<dyn AuditSink>,
    /// The bearer token every route but `/health` requires.
    pub token: Arc<str>,
    pub metrics: MetricsSource,
    pub limits: Limits,
    pub counters: Arc<HttpCounters>,
    /// The daemon's components and start time for `/v1/status`.
    pub status: StatusSource,
    /// One permit per turn that may run at once.
    turns: Arc<Semaphore>,
    connections: Arc<conn::Connections>,
}

/// HTTP-level counters.
#[derive(Debug, Default)]
pub struct HttpCounters {
    pub requests: AtomicU64,
    pub auth_failures: AtomicU64,
    pub errors: AtomicU64,
}

impl ServerState {
    pub fn new(
        gateway: Arc<dyn Gateway>,
        audit: Arc<dyn AuditSink>,
        token: &str,
        metrics: MetricsSource,
        limits: Limits,
    ) -> ServerState {
        ServerState {
            gateway,
            audit,
            token: Arc::from(token),
            metrics,
            turns: Arc::new(Semaphore::new(limits.max_concurrent_turns.max(1))),
            connections: Arc::new(conn::Connections::new(limits.max_connections)),
            limits,
            counters: Arc::new(HttpCounters::default()),
            status: StatusSource::default(),
        }
    }

    /// Serves `status` at `/v1/status` (without it, only the server's own process is shown).
    pub fn with_status(mut self, status: StatusSource) -> ServerState {
        self.status = status;
        self
    }
}

/// The whole API as a `Router`; tests call it without a socket.
pub fn router(state: ServerState) -> Router {
    // Layers run outside in: the token first, then a turn slot, then the body is read.
    let turns = Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/turns", post(turns::turn))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/deny", post(approvals::deny))
        .route_layer(from_fn_with_state(state.clone(), limits::read_body))
        .route_layer(from_fn_with_state(state.clone(), limits::turn_slot));
    let authed = Router::new()
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{id}", get(openai::model))
        .route("/v1/approvals", get(approvals::list))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status::status))
        .merge(turns)
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/health", get(health))
        .merge(authed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.limits.max_request_bytes))
        .with_state(state)
}

/// Serves the API for `state` on `listener` until `shutdown` completes, then lets open requests
/// finish. Connections are capped and timed out as `state.limits` says.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    let connections = state.connections.clone();
    conn::serve(listener, router(state), limits, connections, shutdown).await
}

async fn health() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        concat!(r#"{"status":"ok","version":""#, env!("CARGO_PKG_VERSION"), r#""}"#),
    )
}

async fn metrics(State(state): State<ServerState>) -> impl IntoResponse {
    let counters = &state.counters;
    let mut text = (state.metrics)();
    text.push_str(&format!(
        "# HELP clawdia_http_requests_total Authenticated HTTP requests.\n# TYPE clawdia_http_requests_total counter\nclawdia_http_requests_total {}\n\
         # HELP clawdia_http_auth_failures_total Requests refused for a missing or wrong token.\n# TYPE clawdia_http_auth_failures_total counter\nclawdia_http_auth_failures_total {}\n\
         # HELP clawdia_http_errors_total Requests answered with an error.\n# TYPE clawdia_http_errors_total counter\nclawdia_http_errors_total {}\n",
        counters.requests.load(Ordering::Relaxed),
        counters.auth_failures.load(Ordering::Relaxed),
        counters.errors.load(Ordering::Relaxed),
    ));
    text.push_str(&format!(
        "# HELP clawdia_http_open_connections Client connections open now.\n# TYPE clawdia_http_open_connections gauge\nclawdia_http_open_connections {}\n\
         # HELP clawdia_http_turns_running Turns running over HTTP now.\n# TYPE clawdia_http_turns_running gauge\nclawdia_http_turns_running {}\n",
        state.connections.open(),
        state.limits.max_concurrent_turns.saturating_sub(state.turns.available_permits()),
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

#[cfg(test)]
mod tests;
