//! `POST /v1/turns`: the native streaming turn API. Body `{"agent","message","session"?}`;
//! response is SSE, one frame per `TurnEvent` (`event:` = its `type`, `data:` = its JSON):
//! `started`, `text_delta`, `discard`, `tool_start`, `tool_output`, `tool_end`, `retry`,
//! `fallback`, then `end` (usage and cost) or `error`. A turn that fails before its first text or
//! tool gets a plain error response instead of a stream (429 with `Retry-After` when only rate
//! limits stood in the way, else 502, ...); an unknown agent is a 404 before the stream starts.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::{IntoResponse, Response};
use clawdia_core::{TurnError, TurnEvent, TurnOrigin, TurnRequest};
use serde::Deserialize;

use crate::sse::{frame, stream_turn};
use crate::{ApiError, ServerState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TurnBody {
    #[serde(default = "default_agent")]
    agent: String,
    message: String,
    #[serde(default)]
    session: Option<String>,
    /// Who the message is from, for policies that name senders (`api:<sender>`).
    #[serde(default)]
    sender: Option<String>,
}

fn default_agent() -> String {
    "main".into()
}

fn event_name(event: &TurnEvent) -> &'static str {
    match event {
        TurnEvent::Started { .. } => "started",
        TurnEvent::TextDelta { .. } => "text_delta",
        TurnEvent::Discard { .. } => "discard",
        TurnEvent::ToolStart { .. } => "tool_start",
        TurnEvent::ToolOutput { .. } => "tool_output",
        TurnEvent::ToolEnd { .. } => "tool_end",
        TurnEvent::Fallback { .. } => "fallback",
        TurnEvent::Retry { .. } => "retry",
        TurnEvent::ApprovalRequested { .. } => "approval_requested",
        TurnEvent::Error { .. } => "error",
        TurnEvent::End { .. } => "end",
    }
}

pub fn render(event: &TurnEvent) -> Option<Bytes> {
    let json = serde_json::to_string(event).ok()?;
    Some(frame(Some(event_name(event)), &json))
}

pub async fn turn(State(state): State<ServerState>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return ApiError::new(rejection.status(), "invalid_request_error", rejection.body_text())
                .into_response();
        }
    };
    let parsed: TurnBody = match serde_json::from_slice(&body) {
        Ok(parsed) => parsed,
        Err(error) => return ApiError::bad_request(format!("invalid turn request: {error}")).into_response(),
    };
    // The stream answers 200 before the turn starts: an unknown agent is refused first.
    if !state.gateway.agents().iter().any(|agent| agent.name == parsed.agent) {
        return ApiError::from(TurnError::UnknownAgent(parsed.agent)).into_response();
    }
    let request = TurnRequest {
        from_owner: true,
        agent: parsed.agent,
        session: parsed.session,
        message: parsed.message,
        origin: TurnOrigin::Api,
        sender: parsed.sender,
        history: Vec::new(),
        tools_allow: None,
        context: clawdia_core::TurnContext::Full,
        options: Default::default(),
    };
    let counters = state.counters.clone();
    let finish = move |result: Result<_, TurnError>| match result {
        Ok(_) => Vec::new(),
        Err(error) => {
            counters.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            render(&TurnEvent::Error { message: error.to_string() }).into_iter().collect()
        }
    };
    let counters = state.counters.clone();
    let on_error = move |error: TurnError| {
        counters.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        ApiError::from(error).into_response()
    };
    stream_turn(state.gateway.clone(), request, render, finish, on_error).await
}
