//! Inbound webhooks: `POST /v1/telegram/webhook` hands Telegram's update to the channel's hook,
//! which checks Telegram's secret header (`X-Telegram-Bot-Api-Secret-Token`) itself; the gateway
//! token is not asked for (Telegram cannot send it). A wrong or missing secret is a 401, counted
//! and audited like a failed token; an update the channel could not store is a 500, so Telegram
//! delivers it again.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use clawdia_core::{AuditEvent, HookAnswer, Severity};

use crate::ServerState;
use crate::error::ApiError;

pub(crate) async fn telegram(State(state): State<ServerState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(hook) = state.telegram_hook.clone() else {
        return ApiError::not_found("no such endpoint").into_response();
    };
    let secret = headers.get("x-telegram-bot-api-secret-token").and_then(|value| value.to_str().ok());
    match hook.receive(secret, &body).await {
        HookAnswer::Accepted => (StatusCode::OK, "").into_response(),
        HookAnswer::Unauthorized => {
            state.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
            state.audit.record(AuditEvent::new(
                "webhook_refused",
                Severity::WARNING,
                "a post to /v1/telegram/webhook without Telegram's secret token was refused".to_string(),
            ));
            ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong secret token")
                .into_response()
        }
        HookAnswer::Invalid(why) => ApiError::bad_request(why).into_response(),
        HookAnswer::Failed(why) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", why).into_response()
        }
    }
}
