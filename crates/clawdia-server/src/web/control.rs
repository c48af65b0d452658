//! The Control endpoints the web UI (or any client with the token) reads the gateway through:
//! agents with usage and budget, sessions and transcripts, notifications, the audit log, cron
//! jobs, the brain, MCP servers, skills and `doctor`, Telegram pairing requests, and uploads. The runtime answers them
//! through the `Console` seam with JSON values; this module only maps routes to requests and
//! errors to statuses (the shapes are documented in `docs/web-protocol.md`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::web::signin::web;
use crate::{ApiError, ServerState};

/// Where an upload goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadTarget {
    /// The agent's workspace folder (`uploads/NAME`).
    Workspace,
    /// A page of the brain (markdown or text).
    Brain,
}

/// One question to the runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsoleRequest {
    Agents,
    Sessions {
        agent: Option<String>,
        query: Option<String>,
        limit: usize,
    },
    Session {
        id: String,
    },
    Notifications {
        limit: usize,
    },
    Audit {
        min_severity: u8,
        limit: usize,
    },
    Cron,
    CronRuns {
        name: String,
        limit: usize,
    },
    CronRun {
        name: String,
    },
    CronEnable {
        name: String,
        enabled: bool,
    },
    BrainSearch {
        query: String,
        limit: usize,
    },
    BrainPage {
        slug: String,
    },
    Mcp,
    Skills,
    Doctor,
    Upload {
        agent: String,
        to: UploadTarget,
        name: String,
        bytes: Bytes,
    },
    /// Telegram users waiting for the owner to let them in.
    TelegramPairings,
    /// Lets in the Telegram user whose pairing request has `code`.
    TelegramPair {
        code: String,
    },
}

/// Why the runtime could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

impl From<ConsoleError> for ApiError {
    fn from(error: ConsoleError) -> ApiError {
        let message = error.to_string();
        match error {
            ConsoleError::NotFound(_) => ApiError::not_found(message),
            ConsoleError::Invalid(_) => ApiError::bad_request(message),
            ConsoleError::Unavailable(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            ConsoleError::Failed(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
            }
        }
    }
}

/// The runtime's answers to the Control UI.
#[async_trait::async_trait]
pub trait Console: Send + Sync {
    async fn answer(&self, request: ConsoleRequest) -> Result<Value, ConsoleError>;
}

async fn ask(state: &ServerState, request: ConsoleRequest) -> Result<Response, ApiError> {
    let web = web(state)?;
    let answer = web.console.answer(request).await?;
    Ok(match answer {
        Value::Null => StatusCode::NO_CONTENT.into_response(),
        value => Json(value).into_response(),
    })
}

fn limit(value: Option<usize>, default: usize) -> usize {
    value.unwrap_or(default).clamp(1, 1_000)
}

#[derive(Deserialize)]
pub(crate) struct SessionsQuery {
    agent: Option<String>,
    q: Option<String>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
pub(crate) struct LimitQuery {
    limit: Option<usize>,
}

#[derive(Deserialize)]
pub(crate) struct AuditQuery {
    min_severity: Option<u8>,
    limit: Option<usize>,
}

#[derive(Deserialize)]
pub(crate) struct SearchQuery {
    q: String,
    limit: Option<usize>,
}

#[derive(Deserialize)]
pub(crate) struct UploadQuery {
    #[serde(default = "main_agent")]
    agent: String,
    to: UploadTarget,
    name: String,
}

fn main_agent() -> String {
    "main".into()
}

pub(crate) async fn agents(State(state): State<ServerState>) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::Agents).await
}

pub(crate) async fn sessions(
    State(state): State<ServerState>,
    Query(query): Query<SessionsQuery>,
) -> Result<Response, ApiError> {
    let query_text = query.q.map(|q| q.trim().to_string()).filter(|q| !q.is_empty());
    let agent = query.agent.filter(|a| !a.is_empty());
    ask(&state, ConsoleRequest::Sessions { agent, query: query_text, limit: limit(query.limit, 50) }).await
}

pub(crate) async fn session(
    State(state): State<ServerState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::Session { id }).await
}

pub(crate) async fn notifications(
    State(state): State<ServerState>,
    Query(query): Query<LimitQuery>,
) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::Notifications { limit: limit(query.limit, 50) }).await
}

pub(crate) async fn audit(
    State(state): State<ServerState>,
    Query(query): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let min_severity = query.min_severity.unwrap_or(0).min(15);
    ask(&state, ConsoleRequest::Audit { min_severity, limit: limit(query.limit, 100) }).await
}

pub(crate) async fn cron(State(state): State<ServerState>) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::Cron).await
}

pub(crate) async fn cron_runs(
    State(state): State<ServerState>,
    Path(name): Path<String>,
    Query(query): Query<LimitQuery>,
) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::CronRuns { name, limit: limit(query.limit, 20) }).await
}

pub(crate) async fn cron_run(
    State(state): State<ServerState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::CronRun { name }).await
}

pub(crate) async fn cron_enable(
    State(state): State<ServerState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::CronEnable { name, enabled: true }).await
}

pub(crate) async fn cron_disable(
    State(state): State<ServerState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::CronEnable { name, enabled: false }).await
}

pub(crate) async fn brain_search(
    State(state): State<ServerState>,
    Query(query): Query<SearchQuery>,
) -> Result<Response, ApiError> {
    let text = query.q.trim().to_string();
    if text.is_empty() {
        return Err(ApiError::bad_request("`q` is empty: type what to search for"));
    }
    ask(&state, ConsoleRequest::BrainSearch { query: text, limit: limit(query.limit, 20) }).await
}

pub(crate) async fn brain_page(
    State(state): State<ServerState>,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::BrainPage { slug }).await
}

pub(crate) async fn mcp(State(state): State<ServerState>) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::Mcp).await
}

pub(crate) async fn skills(State(state): State<ServerState>) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::Skills).await
}

pub(crate) async fn telegram_pairings(State(state): State<ServerState>) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::TelegramPairings).await
}

pub(crate) async fn telegram_pair(
    State(state): State<ServerState>,
    Path(code): Path<String>,
) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::TelegramPair { code }).await
}

pub(crate) async fn doctor(State(state): State<ServerState>) -> Result<Response, ApiError> {
    ask(&state, ConsoleRequest::Doctor).await
}

pub(crate) async fn upload(
    State(state): State<ServerState>,
    Query(query): Query<UploadQuery>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the upload is empty"));
    }
    ask(&state, ConsoleRequest::Upload { agent: query.agent, to: query.to, name: query.name, bytes }).await
}
