//! Authentication for every route but `/health`, the web UI's assets and its sign-in: the bearer
//! token (constant-time comparison), or — when the web channel is on — a signed-in browser's
//! session cookie, which for any method but GET/HEAD must come with the session's CSRF token
//! (`X-CSRF-Token`) and no foreign `Origin`. A JSON 401 (403 for CSRF) otherwise, and an audit
//! event per failure. Handlers find who was let in as a `Principal` extension.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clawdia_core::{AuditEvent, BrowserSession, Severity};
use subtle::ConstantTimeEq;

use crate::{ApiError, ServerState};

/// The header a signed-in browser's state-changing requests carry.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who a request was let in as.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A client with the gateway's bearer token.
    Token,
    /// A signed-in browser.
    Browser(BrowserSession),
}

/// Whether `presented` equals `expected`, in time independent of where they differ.
pub fn token_matches(presented: &[u8], expected: &[u8]) -> bool {
    !expected.is_empty() && bool::from(presented.ct_eq(expected))
}

fn header(request: &Request, name: axum::http::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Who `request` comes from, or why it is refused.
fn authenticate(state: &ServerState, request: &Request) -> Result<Principal, (ApiError, &'static str)> {
    let bearer = header(request, AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    if let Some(presented) = bearer {
        return if token_matches(presented.as_bytes(), state.token.as_bytes()) {
            Ok(Principal::Token)
        } else {
            Err((ApiError::unauthorized(), "wrong bearer token"))
        };
    }
    let cookies = header(request, COOKIE);
    let (Some(web), Some(cookies)) = (&state.web, cookies) else {
        return Err((ApiError::unauthorized(), "no bearer token"));
    };
    let Some(session) = web.session_from_cookies(cookies) else {
        let error = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this browser is not signed in (its session expired or was revoked): sign in again",
        );
        return Err((error, "unknown or expired browser session"));
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let forbidden = |message: &str| ApiError::new(StatusCode::FORBIDDEN, "forbidden", message);
        if let Some(origin) = header(request, ORIGIN)
            && !crate::web::same_origin(origin, header(request, HOST), web.settings.public_url.as_deref())
        {
            return Err((
                forbidden("cross-origin request refused"),
                "cross-origin request with a browser cookie",
            ));
        }
        let csrf = header(request, axum::http::HeaderName::from_static(CSRF_HEADER)).unwrap_or("");
        if !token_matches(csrf.as_bytes(), session.csrf.as_bytes()) {
            return Err((
                forbidden("missing or wrong X-CSRF-Token header (reload the page)"),
                "browser request without its CSRF token",
            ));
        }
    }
    Ok(Principal::Browser(session))
}

pub(crate) fn peer(request: &Request) -> String {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string())
        .unwrap_or_else(|| "unknown peer".into())
}

pub async fn require_token(State(state): State<ServerState>, mut request: Request, next: Next) -> Response {
    match authenticate(&state, &request) {
        Ok(principal) => {
            state.counters.requests.fetch_add(1, Ordering::Relaxed);
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err((error, why)) => {
            state.counters.auth_failures.fetch_add(1, Ordering::Relaxed);
            state.audit.record(AuditEvent::new(
                "auth_failure",
                Severity::WARNING,
                format!("{why} from {} for {} {}", peer(&request), request.method(), request.uri().path()),
            ));
            error.into_response()
        }
    }
}
