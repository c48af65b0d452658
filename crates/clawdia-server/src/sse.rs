//! Server-sent events plumbing: a turn runs in its own task and sends frames over a channel;
//! the response body streams them. Dropping the body (the client went away) aborts the task,
//! which cancels the turn — and a cancelled turn stores nothing partial.
//!
//! The status is decided as late as it can be: the response head waits until the turn shows
//! progress (text, a tool, a discard, its end). Until then the frames of events that only set
//! the scene (`started`, and the retries and fallbacks reported after a model call) are held
//! back, so a turn that fails before producing anything is answered with its real status (429
//! with `Retry-After`, 502, ...) and a JSON error instead of a 200 stream carrying an error.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use clawdia_core::{Gateway, TurnError, TurnEvent, TurnEvents, TurnOutcome, TurnRequest};
use tokio::sync::mpsc;

use crate::ApiError;

/// One SSE frame: optional `event:` line, then `data:` lines. Every frame (error events, fallback
/// reasons, tool output, text) passes here, so secret values are masked here
/// (`clawdia_core::redact`); the mask has no JSON-special character, so JSON data stays JSON.
pub fn frame(event: Option<&str>, data: &str) -> Bytes {
    let data = clawdia_core::redact::redact(data);
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// What the turn's task sends to the response.
enum Message {
    /// A rendered event; `progress` is false for events that may wait for the status decision.
    Frame { bytes: Option<Bytes>, progress: bool },
    /// The turn returned.
    Done(Result<TurnOutcome, TurnError>),
}

/// Whether an event shows the turn is under way (after it the status is 200 whatever comes).
fn shows_progress(event: &TurnEvent) -> bool {
    !matches!(event, TurnEvent::Started { .. } | TurnEvent::Retry { .. } | TurnEvent::Fallback { .. })
}

/// Turns events into frames and sends them down the channel. The reply's text passes a
/// `StreamRedactor` first: each frame is masked on its own (`frame`), and this also masks a
/// secret the model spread over several deltas (a tail that may begin one waits for the next
/// delta, or for the next other event).
struct ChannelEvents<F> {
    tx: mpsc::UnboundedSender<Message>,
    render: F,
    text: std::sync::Mutex<clawdia_core::redact::StreamRedactor>,
}

impl<F: Fn(&TurnEvent) -> Option<Bytes> + Send + Sync> ChannelEvents<F> {
    /// Sends the text still held back, if any.
    fn flush(&self) {
        let rest = self.text.lock().unwrap_or_else(std::sync::PoisonError::into_inner).finish();
        if !rest.is_empty() {
            self.send(&TurnEvent::TextDelta { text: rest });
        }
    }

    fn send(&self, event: &TurnEvent) {
        let bytes = (self.render)(event);
        let progress = shows_progress(event);
        if bytes.is_some() || progress {
            let _ = self.tx.send(Message::Frame { bytes, progress });
        }
    }
}

impl<F: Fn(&TurnEvent) -> Option<Bytes> + Send + Sync> TurnEvents for ChannelEvents<F> {
    fn event(&self, event: TurnEvent) {
        let mut text = self.text.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            TurnEvent::TextDelta { text: piece } => {
                let shown = text.push(&piece);
                drop(text);
                if !shown.is_empty() {
                    self.send(&TurnEvent::TextDelta { text: shown });
                }
            }
            // The text so far is void: what is held back goes with it.
            TurnEvent::Discard { .. } => {
                text.clear();
                drop(text);
                self.send(&event);
            }
            other => {
                drop(text);
                self.flush();
                self.send(&other);
            }
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `request` on `gateway` in a task; every event goes through `render`, and when the turn
/// returns, `finish` writes the closing frames. A turn that fails before it shows progress is
/// answered with `on_error`'s response (`ApiError`'s status and JSON body by default) instead
/// of a stream.
pub async fn stream_turn<R, E>(
    gateway: Arc<dyn Gateway>,
    request: TurnRequest,
    render: R,
    finish: E,
    on_error: impl FnOnce(TurnError) -> Response,
) -> Response
where
    R: Fn(&TurnEvent) -> Option<Bytes> + Send + Sync + 'static,
    E: FnOnce(Result<TurnOutcome, TurnError>) -> Vec<Bytes> + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let task = tokio::spawn(async move {
        let events = ChannelEvents { tx: tx.clone(), render, text: Default::default() };
        let result = gateway.run_turn(request, &events).await;
        // A turn that failed mid-reply: what was held back is shown before the error.
        events.flush();
        let _ = tx.send(Message::Done(result));
    });
    // Dropping this (the client left while we wait) aborts the turn.
    let guard = AbortOnDrop(task);
    let mut held = Vec::new();
    let mut finish = Some(finish);
    loop {
        match rx.recv().await {
            Some(Message::Frame { bytes, progress }) => {
                held.extend(bytes);
                if progress {
                    break;
                }
            }
            Some(Message::Done(Err(error))) => return on_error(error),
            Some(Message::Done(Ok(outcome))) => {
                if let Some(finish) = finish.take() {
                    held.extend(finish(Ok(outcome)));
                }
                break;
            }
            // The task ended without a result: it panicked.
            None => {
                return ApiError::new(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_error",
                    "the turn ended unexpectedly",
                )
                .into_response();
            }
        }
    }
    let state = (rx, guard, finish, held.into_iter());
    let body = futures_util::stream::unfold(state, |(mut rx, guard, mut finish, mut ready)| async move {
        loop {
            if let Some(bytes) = ready.next() {
                return Some((Ok::<Bytes, Infallible>(bytes), (rx, guard, finish, ready)));
            }
            match rx.recv().await? {
                Message::Frame { bytes, .. } => ready = bytes.into_iter().collect::<Vec<_>>().into_iter(),
                Message::Done(result) => {
                    ready = finish.take().map(|finish| finish(result)).unwrap_or_default().into_iter();
                }
            }
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
