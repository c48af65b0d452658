//! Bearer-token authentication for every route but `/health`: constant-time comparison, a
//! JSON 401 otherwise, and an audit event per failure.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clawdia_core::{AuditEvent, Severity};
use subtle::ConstantTimeEq;

use crate::{ApiError, ServerState};

/// Whether `presented` equals `expected`, in time independent of where they differ.
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    !expected.is_empty() && bool::from(presented.ct_eq(expected))
}

pub async fn require_token(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let ok = presented.is_some_and(|t| token_matches(t.as_bytes(), state.token.as_bytes()));
    if !ok {
        state.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.to_string())
            .unwrap_or_else(|| "unknown peer".into());
        let why = if presented.is_some() { "wrong bearer token" } else { "no bearer token" };
        state.audit.record(AuditEvent::new(
            "auth_failure",
            Severity::WARNING,
            format!("{why} from {peer} for {} {}", request.method(), request.uri().path()),
        ));
        return ApiError::unauthorized().into_response();
    }
    state.counters.requests.fetch_add(1, Ordering::Relaxed);
    next.run(request).await
}
