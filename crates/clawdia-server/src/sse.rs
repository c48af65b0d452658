//! Server-sent events plumbing: a turn runs in its own task and sends frames over a channel;
//! the response body streams them. Dropping the body (the client went away) aborts the task,
//! which cancels the turn — and a cancelled turn stores nothing partial.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use clawdia_core::{Gateway, TurnError, TurnEvent, TurnEvents, TurnOutcome, TurnRequest};
use tokio::sync::mpsc;

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

/// Turns events into frames and sends them down the channel.
pub struct ChannelEvents<F> {
    pub tx: mpsc::UnboundedSender<Bytes>,
    pub render: F,
}

impl<F: Fn(&TurnEvent) -> Option<Bytes> + Send + Sync> TurnEvents for ChannelEvents<F> {
    fn event(&self, event: TurnEvent) {
        if let Some(bytes) = (self.render)(&event) {
            let _ = self.tx.send(bytes);
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
/// returns, `finish` writes the closing frames. Returns the streaming response.
pub fn stream_turn<R, E>(gateway: Arc<dyn Gateway>, request: TurnRequest, render: R, finish: E) -> Response
where
    R: Fn(&TurnEvent) -> Option<Bytes> + Send + Sync + 'static,
    E: FnOnce(Result<TurnOutcome, TurnError>) -> Vec<Bytes> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let task = tokio::spawn(async move {
        let events = ChannelEvents { tx: tx.clone(), render };
        let result = gateway.run_turn(request, &events).await;
        for bytes in finish(result) {
            let _ = tx.send(bytes);
        }
    });
    let guard = AbortOnDrop(task);
    let body = futures_util::stream::unfold((rx, guard), |(mut rx, guard)| async move {
        rx.recv().await.map(|bytes| (Ok::<Bytes, Infallible>(bytes), (rx, guard)))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
