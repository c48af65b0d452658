//! `GET /v1/status`: the daemon's components as JSON, `{version, pid, started_at, uptime_secs,
//! components: [{name, state, since, restarts, error?, attempt?, next_try?}]}`. Times are RFC 3339
//! (UTC); `attempt` and `next_try` appear while a component waits to be restarted. The wire type
//! lives here; the runtime hands over a snapshot function of core's `StatusBoard`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use clawdia_core::{ComponentState, ComponentStatus, UnixMillis};
use serde::Serialize;

use crate::ServerState;

/// Where `/v1/status` gets its data: the daemon's start time and a snapshot of its components.
#[derive(Clone)]
pub struct StatusSource {
    pub started_at: UnixMillis,
    pub components: Arc<dyn Fn() -> Vec<ComponentStatus> + Send + Sync>,
}

impl Default for StatusSource {
    fn default() -> StatusSource {
        StatusSource { started_at: clawdia_core::time::now_ms(), components: Arc::new(Vec::new) }
    }
}

#[derive(Serialize)]
pub(crate) struct StatusBody {
    version: &'static str,
    pid: u32,
    started_at: String,
    uptime_secs: u64,
    components: Vec<ComponentBody>,
}

#[derive(Serialize)]
struct ComponentBody {
    name: String,
    state: &'static str,
    since: String,
    restarts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_try: Option<String>,
}

fn component(status: ComponentStatus) -> ComponentBody {
    let (attempt, next_try) = match status.state {
        ComponentState::Restarting { attempt, next_try } => {
            (Some(attempt), Some(clawdia_core::time::rfc3339_utc(next_try)))
        }
        _ => (None, None),
    };
    ComponentBody {
        name: status.name,
        state: status.state.name(),
        since: clawdia_core::time::rfc3339_utc(status.since),
        restarts: status.restarts,
        error: status.error,
        attempt,
        next_try,
    }
}

pub(crate) async fn status(State(state): State<ServerState>) -> Json<StatusBody> {
    let source = &state.status;
    let now = clawdia_core::time::now_ms();
    let body = StatusBody {
        version: env!("CARGO_PKG_VERSION"),
        pid: std::process::id(),
        started_at: clawdia_core::time::rfc3339_utc(source.started_at),
        uptime_secs: u64::try_from((now - source.started_at).max(0) / 1000).unwrap_or(0),
        components: (source.components)().into_iter().map(component).collect(),
    };
    Json(body)
}
