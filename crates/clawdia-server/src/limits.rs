//! What one client can take from the gateway: how many turns run at once (one more waits for a
//! slot, then gets a `503` with `Retry-After`; its body is read only once it has a slot, so
//! waiting and refused requests cost no memory), and how large and how slow a request body may
//! be (`413`, `408`). The connection-level limits are applied in `conn`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::{ApiError, ServerState};

/// The server's limits; `clawdia-runtime` fills them from `[gateway]`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_request_bytes: usize,
    /// Most connections open at once.
    pub max_connections: usize,
    /// A request head must arrive within this of a connection opening or its previous request.
    pub header_timeout: Duration,
    /// A request body must arrive within this.
    pub body_timeout: Duration,
    /// A response may wait this long for a client that stopped reading.
    pub write_timeout: Duration,
    /// Turns running at once over HTTP.
    pub max_concurrent_turns: usize,
    /// How long a turn waits for a free slot.
    pub turn_queue: Duration,
    /// After shutdown begins, how long requests in progress (turns) may run on before their
    /// connections are closed, which cancels them.
    pub drain: Duration,
}

/// A `503` that tells the client when to try again.
pub fn busy(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_busy", message).into_response();
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Takes one of the turn slots for the request and holds it until its response body has been
/// sent (a streamed turn runs as long as its body); waits up to `turn_queue` for one, then
/// answers `503`.
pub async fn turn_slot(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let slot = state.turns.clone().try_acquire_owned();
    let slot = match slot {
        Ok(permit) => Ok(permit),
        Err(_) => tokio::time::timeout(state.limits.turn_queue, state.turns.clone().acquire_owned())
            .await
            .map_err(|_| ())
            .and_then(|acquired| acquired.map_err(|_| ())),
    };
    let Ok(permit) = slot else {
        return busy(&format!(
            "{} turns are already running (gateway.max_concurrent_turns) and none ended within {} s; retry shortly",
            state.limits.max_concurrent_turns,
            state.limits.turn_queue.as_secs()
        ));
    };
    next.run(request).await.map(|body| guarded(body, permit))
}

/// Reads the whole request body within `body_timeout` and `max_request_bytes`, so the handler
/// sees it in memory and a slow or oversized upload is cut off with a clear status.
pub async fn read_body(State(state): State<ServerState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let limits = &state.limits;
    let read =
        tokio::time::timeout(limits.body_timeout, Limited::new(body, limits.max_request_bytes).collect());
    let bytes: Bytes = match read.await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(error)) if error.is::<LengthLimitError>() => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                format!(
                    "the request body is larger than {} bytes (gateway.max_request_bytes)",
                    limits.max_request_bytes
                ),
            )
            .into_response();
        }
        Ok(Err(error)) => {
            return ApiError::bad_request(format!("reading the request body failed: {error}"))
                .into_response();
        }
        Err(_) => {
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} s (gateway.body_timeout_secs)",
                    limits.body_timeout.as_secs()
                ),
            )
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// `body` with `guard` kept alive until the body ends or is dropped.
pub(crate) fn guarded<G: Send + Unpin + 'static>(body: Body, guard: G) -> Body {
    Body::new(Guarded { body, _guard: guard })
}

struct Guarded<G> {
    body: Body,
    _guard: G,
}

impl<G: Unpin> http_body::Body for Guarded<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
