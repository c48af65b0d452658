//! The owner's decisions over HTTP: `GET /v1/approvals` (newest first; `?pending=true` for the
//! waiting ones only) and `POST /v1/approvals/{id}/approve` or `/deny` with an optional
//! `{"note": "..."}`. A decision runs the approved call and the agent's continuation turn
//! before it answers, so it passes the same turn slot and body limits as a turn.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use clawdia_core::{Approval, ApprovalError, Decision};
use serde::{Deserialize, Serialize};

use crate::ServerState;
use crate::error::ApiError;

impl From<ApprovalError> for ApiError {
    fn from(error: ApprovalError) -> ApiError {
        let message = error.to_string();
        match error {
            ApprovalError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
            ApprovalError::AlreadyDecided { .. } | ApprovalError::Expired(_) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            ApprovalError::Unavailable => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
            }
            ApprovalError::Store(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
            }
        }
    }
}

/// One request as the API shows it: the stored record plus its one-line summary.
#[derive(Serialize)]
pub(crate) struct ApprovalJson {
    #[serde(flatten)]
    approval: Approval,
    summary: String,
}

/// `approval` as the API and the web socket show it.
pub(crate) fn json(approval: &Approval) -> serde_json::Value {
    serde_json::to_value(ApprovalJson::from(approval.clone())).unwrap_or_default()
}

impl From<Approval> for ApprovalJson {
    fn from(approval: Approval) -> ApprovalJson {
        ApprovalJson { summary: approval.summary(), approval }
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pending: bool,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    100
}

pub(crate) async fn list(State(state): State<ServerState>, Query(query): Query<ListQuery>) -> Response {
    match state.gateway.approvals(query.pending, query.limit.min(1000)) {
        Ok(list) => Json(list.into_iter().map(ApprovalJson::from).collect::<Vec<_>>()).into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    #[serde(default)]
    note: Option<String>,
}

/// What a decision came to: the request as it now stands, and the agent's reply in the
/// continuation turn (or why that turn failed).
#[derive(Serialize)]
struct DecidedJson {
    approval: ApprovalJson,
    reply: Option<String>,
    turn_error: Option<String>,
}

pub(crate) async fn approve(
    state: State<ServerState>,
    id: Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    decide(state, id, body, true).await
}

pub(crate) async fn deny(
    state: State<ServerState>,
    id: Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    decide(state, id, body, false).await
}

async fn decide(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
    approve: bool,
) -> Response {
    let parsed: DecisionBody = match json_body(body, "decision", true) {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(),
    };
    let decision = Decision { approve, note: parsed.note };
    let gateway = state.gateway.clone();
    // The decision runs in its own task: a client that goes away does not cut the approved call
    // or the agent's continuation in half.
    let work = tokio::spawn(async move {
        let ignore = |_event: clawdia_core::TurnEvent| {};
        gateway.decide(&id, decision, &ignore).await
    });
    match work.await {
        Ok(Ok(decided)) => {
            let (reply, turn_error) = match decided.turn {
                None => (None, None),
                Some(Ok(outcome)) => (Some(outcome.text), None),
                Some(Err(error)) => (None, Some(error.to_string())),
            };
            Json(DecidedJson { approval: decided.approval.into(), reply, turn_error }).into_response()
        }
        Ok(Err(error)) => ApiError::from(error).into_response(),
        Err(_) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "the decision task failed")
                .into_response()
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyBody {
    text: String,
}

/// `POST /v1/approvals/{id}/reply {"text"}`: the owner's answer in their own words to an
/// elevation request; the reading and what came of it.
pub(crate) async fn reply(
    State(state): State<ServerState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let parsed: ReplyBody = match json_body(body, "reply", false) {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(),
    };
    let gateway = state.gateway.clone();
    // Like a decision, it runs to the end even when the client goes away.
    let work = tokio::spawn(async move { gateway.operator_reply(&id, &parsed.text).await });
    match work.await {
        Ok(Ok(outcome)) => Json(outcome).into_response(),
        Ok(Err(error)) => ApiError::from(error).into_response(),
        Err(_) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "the reply task failed")
            .into_response(),
    }
}

/// A request's JSON body (`what` names it in errors); an empty body is the default when
/// `empty_ok`.
fn json_body<T: serde::de::DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
    what: &str,
    empty_ok: bool,
) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "invalid_request_error", rejection.body_text())
    })?;
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&body).map_err(|error| ApiError::bad_request(format!("invalid {what}: {error}")))
}
