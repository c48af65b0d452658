//! The one place failures become HTTP responses: an OpenAI-style JSON error body
//! (`{"error":{"message","type","code"}}`) with a status chosen per kind, its message with every
//! registered secret masked (`clawdia_core::redact`). A turn that failed only on rate limits is a
//! 429 with `Retry-After` (whole seconds, at least 1), like a provider's own.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use clawdia_core::TurnError;
use serde_json::json;

#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    /// Sent as `Retry-After` (a 429).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, kind, message: message.into(), retry_after: None }
    }

    /// `Retry-After` in whole seconds, rounded up and at least 1: the gateway already retried,
    /// so "now" would only ask for the same answer.
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after.map(|wait| (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or invalid bearer token")
    }

    /// The JSON body, also used as an SSE `error` payload. Secret values are masked here, the
    /// one place every error message passes on its way to a client.
    pub fn body(&self) -> serde_json::Value {
        let message = clawdia_core::redact::redact(&self.message);
        json!({"error": {"message": message, "type": self.kind, "code": self.status.as_u16()}})
    }
}

impl From<TurnError> for ApiError {
    fn from(error: TurnError) -> ApiError {
        let message = error.to_string();
        match error {
            TurnError::UnknownAgent(_) => ApiError::new(StatusCode::NOT_FOUND, "model_not_found", message),
            TurnError::Invalid(_) => ApiError::bad_request(message),
            TurnError::BudgetExceeded(_) => {
                ApiError::new(StatusCode::PAYMENT_REQUIRED, "budget_exceeded", message)
            }
            TurnError::ModelsFailed { retry_after: Some(wait), .. } => ApiError {
                retry_after: Some(wait),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_error", message)
            },
            TurnError::ModelsFailed { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream_error", message)
            }
            TurnError::Session(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "session_error", message)
            }
            TurnError::Random(_) => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", message)
            }
        }
    }
}

/// No random bytes, no id: the request fails closed with a 500 that says why.
impl From<clawdia_core::random::RandomError> for ApiError {
    fn from(error: clawdia_core::random::RandomError) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after_secs();
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
