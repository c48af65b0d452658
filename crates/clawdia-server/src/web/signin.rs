//! Signing a browser in and out: `POST /v1/web/login` with the gateway token or a pairing code
//! sets the session cookie and returns the CSRF token; `GET /v1/web/me` tells the page whether
//! it is signed in; `POST /v1/web/logout`; `GET /v1/web/sessions` and
//! `POST /v1/web/sessions/{id}/revoke` list and end signed-in browsers. Failed sign-ins are
//! counted per client address and in all, and refused for a while (429) past a limit.

use std::net::SocketAddr;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use clawdia_core::browser::normalize_code;
use clawdia_core::{AuditEvent, BrowserSession, CodeCheck, Severity};
use serde::Deserialize;
use serde_json::json;

use crate::auth::{Principal, token_matches};
use crate::web::{COOKIE as COOKIE_NAME, Web};
use crate::{ApiError, ServerState};

/// The web channel of `state`, or a 404 when it is off.
pub(crate) fn web(state: &ServerState) -> Result<&std::sync::Arc<Web>, ApiError> {
    state
        .web
        .as_ref()
        .ok_or_else(|| ApiError::not_found("the web UI is off ([channels.web] enabled = false)"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    label: Option<String>,
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

fn session_json(session: &BrowserSession, current: bool) -> serde_json::Value {
    json!({
        "id": session.id,
        "label": session.label,
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
        "expires_at": session.expires_at,
        "current": current,
    })
}

fn cookie(web: &Web, secret: &str, max_age: u64) -> Option<HeaderValue> {
    let secure = if web.secure_cookie() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE_NAME}={secret}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .ok()
}

pub(crate) async fn login(
    State(state): State<ServerState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let web = web(&state)?.clone();
    let ip = Some(peer.ip());
    if let Some(wait) = web.locked_out(ip) {
        let error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            format!("too many failed sign-ins: try again in {} minutes", wait.as_secs().div_ceil(60)),
        );
        return Err(ApiError { retry_after: Some(wait), ..error });
    }
    let login: Login = serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("invalid sign-in request: {error}")))?;
    let refuse = |message: &str, why: String| {
        web.failed_sign_in(ip);
        state.audit.record(AuditEvent::new(
            "web_sign_in_failed",
            Severity::WARNING,
            format!("{why} from {peer}"),
        ));
        unauthorized(message)
    };
    let how = match (login.token.as_deref(), login.code.as_deref()) {
        (Some(token), None) => {
            if !token_matches(token.trim().as_bytes(), state.token.as_bytes()) {
                return Err(refuse(
                    "that is not the gateway token (see `token` in the gateway's home), or sign in with a code from `clawdia web pair`",
                    "wrong gateway token".into(),
                ));
            }
            "gateway token"
        }
        (None, Some(typed)) => {
            let Some(code) = normalize_code(typed) else {
                return Err(refuse(CodeCheck::Unknown.message(), "malformed pairing code".into()));
            };
            let store = web.store.clone();
            let now = clawdia_core::time::now_ms();
            let checked = tokio::task::spawn_blocking(move || store.redeem_code(&code, now))
                .await
                .map_err(|_| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "sign-in failed")
                })?
                .map_err(|error| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", error.to_string())
                })?;
            if checked != CodeCheck::Redeemed {
                return Err(refuse(checked.message(), format!("pairing code refused ({checked:?})")));
            }
            "pairing code"
        }
        _ => return Err(ApiError::bad_request("send either `token` or `code`")),
    };
    let now = clawdia_core::time::now_ms();
    let ttl = i64::try_from(web.settings.session_ttl.as_millis()).unwrap_or(i64::MAX / 4);
    let label = login
        .label
        .map(|label| clawdia_core::text::one_line(&label).chars().take(60).collect::<String>())
        .filter(|label| !label.is_empty())
        .unwrap_or_else(|| format!("browser signed in with a {how}"));
    let session = BrowserSession {
        id: clawdia_core::random::hex(4)?,
        label,
        created_at: now,
        last_seen_at: now,
        expires_at: now + ttl,
        csrf: clawdia_core::random::hex(16)?,
    };
    let secret = clawdia_core::random::hex(32)?;
    let store = web.store.clone();
    let (stored, to_store, secret_for_store) = (session.clone(), session.clone(), secret.clone());
    tokio::task::spawn_blocking(move || store.add_session(&to_store, &secret_for_store))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "sign-in failed"))?
        .map_err(|error| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", error.to_string())
        })?;
    state.audit.record(AuditEvent::new(
        "web_signed_in",
        Severity::NOTICE,
        format!("browser {} signed in with a {how} from {peer}", stored.id),
    ));
    let mut response =
        Json(json!({"session": session_json(&stored, true), "csrf": stored.csrf})).into_response();
    if let Some(value) = cookie(&web, &secret, web.settings.session_ttl.as_secs()) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

/// `GET /v1/web/me`: not behind the auth layer (a browser that is not signed in is the normal
/// case on first load, not an attack worth an audit line).
pub(crate) async fn me(State(state): State<ServerState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let web = web(&state)?;
    let session = headers
        .get(COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|cookies| web.session_from_cookies(cookies))
        .ok_or_else(|| unauthorized("this browser is not signed in"))?;
    Ok(Json(json!({"session": session_json(&session, true), "csrf": session.csrf})).into_response())
}

pub(crate) async fn logout(
    State(state): State<ServerState>,
    principal: axum::Extension<Principal>,
) -> Result<Response, ApiError> {
    let web = web(&state)?;
    if let Principal::Browser(session) = &principal.0 {
        end(&state, web, &session.id).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(value) = cookie(web, "", 0) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

async fn end(state: &ServerState, web: &Web, id: &str) -> Result<bool, ApiError> {
    let store = web.store.clone();
    let owned = id.to_string();
    let revoked = tokio::task::spawn_blocking(move || store.revoke(&owned, clawdia_core::time::now_ms()))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "revoking failed"))?
        .map_err(|error| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", error.to_string())
        })?;
    if revoked {
        web.hub.revoked(id);
        state.audit.record(AuditEvent::new(
            "web_session_revoked",
            Severity::NOTICE,
            format!("browser {id} signed out"),
        ));
    }
    Ok(revoked)
}

pub(crate) async fn sessions(
    State(state): State<ServerState>,
    principal: axum::Extension<Principal>,
) -> Result<Response, ApiError> {
    let web = web(&state)?;
    let store = web.store.clone();
    let listed = tokio::task::spawn_blocking(move || store.sessions(clawdia_core::time::now_ms()))
        .await
        .map_err(|_| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "listing failed"))?
        .map_err(|error| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", error.to_string())
        })?;
    let current = match &principal.0 {
        Principal::Browser(session) => Some(session.id.as_str()),
        Principal::Token => None,
    };
    let body: Vec<_> = listed.iter().map(|s| session_json(s, Some(s.id.as_str()) == current)).collect();
    Ok(Json(body).into_response())
}

pub(crate) async fn revoke(
    State(state): State<ServerState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let web = web(&state)?;
    if end(&state, web, &id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::not_found(format!("no signed-in browser `{id}` (see `clawdia web sessions`)")))
    }
}
