//! The gateway's HTTP API: `GET /health` (no auth); bearer-authenticated OpenAI-compatible
//! `GET /v1/models` and `POST /v1/chat/completions` (JSON and SSE), the native turn stream
//! `POST /v1/turns` (SSE of `TurnEvent`s), the owner's approval requests (`/v1/approvals`),
//! `GET /metrics` (Prometheus text) and `GET /v1/status` (the daemon's components, `status`);
//! and, with the web channel on (`web`), the browser UI at `/`, its sign-in, the `/v1/ws`
//! WebSocket and the Control endpoints.
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
mod hooks;
mod limits;
mod openai;
mod sse;
mod status;
mod turns;
pub mod web;

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
    /// The web channel, when it is on.
    pub web: Option<Arc<web::Web>>,
    /// Telegram's updates in webhook mode, posted to `/v1/telegram/webhook`.
    pub telegram_hook: Option<Arc<dyn clawdia_core::InboundHook>>,
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
            web: None,
            telegram_hook: None,
        }
    }

    /// Takes Telegram's webhook posts at `/v1/telegram/webhook` (checked by `hook`'s secret,
    /// not the gateway token).
    pub fn with_telegram_hook(mut self, hook: Arc<dyn clawdia_core::InboundHook>) -> ServerState {
        self.telegram_hook = Some(hook);
        self
    }

    /// Serves the web channel too: the UI at `/`, sign-in, `/v1/ws` and the Control endpoints.
    pub fn with_web(mut self, web: web::Web) -> ServerState {
        self.web = Some(Arc::new(web));
        self
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
        .route("/v1/approvals/{id}/reply", post(approvals::reply))
        .route_layer(from_fn_with_state(state.clone(), limits::read_body))
        .route_layer(from_fn_with_state(state.clone(), limits::turn_slot));
    let authed = Router::new()
        .route("/v1/models", get(openai::models))
        .route("/v1/models/{id}", get(openai::model))
        .route("/v1/approvals", get(approvals::list))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status::status))
        .merge(turns)
        .merge(web_authed(&state))
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    let mut open = Router::new().route("/health", get(health));
    if state.telegram_hook.is_some() {
        open = open.route("/v1/telegram/webhook", post(hooks::telegram));
    }
    if state.web.is_some() {
        open = open
            .route("/", get(web::assets::index))
            .route("/{file}", get(web::assets::file))
            .route("/v1/web/login", post(web::signin::login))
            .route("/v1/web/me", get(web::signin::me));
    }
    open.merge(authed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.limits.max_request_bytes))
        .with_state(state)
}

/// The web channel's authenticated routes (none when it is off).
fn web_authed(state: &ServerState) -> Router<ServerState> {
    use web::control;
    if state.web.is_none() {
        return Router::new();
    }
    Router::new()
        .route("/v1/ws", get(web::socket::upgrade))
        .route("/v1/web/logout", post(web::signin::logout))
        .route("/v1/web/sessions", get(web::signin::sessions))
        .route("/v1/web/sessions/{id}/revoke", post(web::signin::revoke))
        .route("/v1/agents", get(control::agents))
        .route("/v1/sessions", get(control::sessions))
        .route("/v1/sessions/{id}", get(control::session))
        .route("/v1/notifications", get(control::notifications))
        .route("/v1/audit", get(control::audit))
        .route("/v1/cron", get(control::cron))
        .route("/v1/cron/{name}/runs", get(control::cron_runs))
        .route("/v1/cron/{name}/run", post(control::cron_run))
        .route("/v1/cron/{name}/enable", post(control::cron_enable))
        .route("/v1/cron/{name}/disable", post(control::cron_disable))
        .route("/v1/brain/search", get(control::brain_search))
        .route("/v1/brain/pages/{*slug}", get(control::brain_page))
        .route("/v1/mcp", get(control::mcp))
        .route("/v1/skills", get(control::skills))
        .route("/v1/doctor", get(control::doctor))
        .route("/v1/upload", post(control::upload))
        .route("/v1/telegram/pairings", get(control::telegram_pairings))
        .route("/v1/telegram/pairings/{code}/approve", post(control::telegram_pair))
}

/// Serves the API for `state` on `listener` until `shutdown` completes, then lets open requests
/// finish. Connections are capped and timed out as `state.limits` says. Browser sockets close
/// at shutdown and the web's running turns get the same drain as HTTP requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ServerState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.limits.clone();
    let connections = state.connections.clone();
    let hub = state.web.as_ref().map(|web| web.hub.clone());
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let stopped = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    };
    let drain = limits.drain;
    let web_drain = async move {
        if let Some(hub) = hub {
            hub.shut_down(drain).await;
        }
    };
    let signal = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        web_drain.await;
    };
    let (served, ()) =
        tokio::join!(conn::serve(listener, router(state), limits, connections, stopped), signal);
    served
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
