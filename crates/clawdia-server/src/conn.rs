//! The accept loop: every connection is served by hyper's HTTP/1 connection with a header
//! timeout (a connection that does not deliver a complete request head within it — idle, or
//! half-sent — is closed, on opening and between keep-alive requests), a write timeout (a
//! client that stops reading its response is dropped), and a cap on open connections. At the
//! cap, the connection that has waited longest without a request in progress is closed to make
//! room, so idle connections can never lock clients out; only when every connection is running
//! a request does a new one get a `503` with `Retry-After`, written straight to the socket.
//!
//! Shutdown stops accepting, asks every connection to finish its current request and close,
//! and returns when all are gone; connections still busy after `limits.drain` are closed, which
//! cancels their requests (a turn stops with its client gone), so shutdown is bounded.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, mpsc, watch};
use tokio::time::Sleep;
use tower::ServiceExt;

use crate::{ApiError, Limits, guarded};

/// At most this many refusals are being written at once; beyond it a connection over the cap is
/// closed without a word.
const MAX_REFUSING: usize = 64;

/// How long writing a refusal (and draining what the client sent) may take.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// One open connection as the cap sees it.
#[derive(Default)]
struct Slot {
    /// Requests in progress on it (from the head being read to the response body's end).
    busy: AtomicUsize,
    /// Told to close because a new connection needed its place.
    evict: Notify,
}

#[derive(Default)]
struct Table {
    /// By connection number: the oldest first.
    slots: BTreeMap<u64, (Arc<Slot>, bool)>,
    /// Connections counted against the cap: open and not being evicted.
    counted: usize,
    next: u64,
}

/// The open connections and the cap on them.
pub(crate) struct Connections {
    table: Mutex<Table>,
    max: usize,
}

impl Connections {
    pub(crate) fn new(max: usize) -> Connections {
        Connections { table: Mutex::new(Table::default()), max: max.max(1) }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a new connection, evicting the longest-idle one at the cap; `None` when
    /// every connection is running a request.
    fn admit(&self) -> Option<(u64, Arc<Slot>)> {
        let mut table = self.table();
        if table.counted >= self.max {
            let victim = table
                .slots
                .values_mut()
                .find(|(slot, evicting)| !*evicting && slot.busy.load(Ordering::Acquire) == 0)?;
            victim.1 = true;
            victim.0.evict.notify_one();
            table.counted -= 1;
        }
        let id = table.next;
        table.next += 1;
        let slot = Arc::new(Slot::default());
        table.slots.insert(id, (slot.clone(), false));
        table.counted += 1;
        Some((id, slot))
    }

    fn remove(&self, id: u64) {
        let mut table = self.table();
        if let Some((_, evicting)) = table.slots.remove(&id)
            && !evicting
        {
            table.counted -= 1;
        }
    }

    /// Connections open now (evicted ones still closing included).
    pub(crate) fn open(&self) -> usize {
        self.table().slots.len()
    }
}

/// Counts a request as in progress on its connection until dropped.
pub(crate) struct Busy(Arc<Slot>);

impl Busy {
    fn new(slot: Arc<Slot>) -> Busy {
        slot.busy.fetch_add(1, Ordering::AcqRel);
        Busy(slot)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    connections: Arc<Connections>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Set when the drain is over: connections still open close at once.
    let (kill_tx, kill_rx) = watch::channel(false);
    // Every connection task holds a sender; `recv` returns `None` when the last one ended.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors (or a connection reset before accept): wait a
                    // moment rather than spin; the header timeout frees descriptors.
                    tracing::warn!("accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some((id, slot)) = connections.admit() else {
            refuse(stream, &refusing);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let task = Connection {
            router: router.clone(),
            limits: limits.clone(),
            connections: connections.clone(),
            id,
            slot,
            peer,
            stop: stop_rx.clone(),
            kill: kill_rx.clone(),
            _alive: alive_tx.clone(),
        };
        tokio::spawn(task.run(stream));
    }
    let _ = stop_tx.send(true);
    drop(alive_tx);
    drop(listener);
    if tokio::time::timeout(limits.drain, alive_rx.recv()).await.is_err() {
        tracing::warn!(
            open = connections.open(),
            "requests still running after the drain (gateway.drain_secs): cancelling them"
        );
        let _ = kill_tx.send(true);
        let _ = alive_rx.recv().await;
    }
    Ok(())
}

struct Connection {
    router: Router,
    limits: Limits,
    connections: Arc<Connections>,
    id: u64,
    slot: Arc<Slot>,
    peer: SocketAddr,
    stop: watch::Receiver<bool>,
    kill: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
}

impl Connection {
    async fn run(mut self, stream: TcpStream) {
        let io = TokioIo::new(WriteTimeout::new(stream, self.limits.write_timeout));
        let (router, slot, peer) = (self.router.clone(), self.slot.clone(), self.peer);
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let busy = Busy::new(slot.clone());
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(Body::new)).await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| guarded(body, busy)))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(self.limits.header_timeout);
        // Upgrades (the browser's WebSocket) leave the connection table once upgraded.
        let connection = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(connection);
        let mut closing = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(peer = %self.peer, "connection ended: {error}");
                    }
                    break;
                }
                () = self.slot.evict.notified(), if !closing => {
                    tracing::debug!(peer = %self.peer, "closing an idle connection: at max_connections");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                _ = self.stop.wait_for(|stop| *stop), if !closing => {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
                // Dropping the connection drops the request in progress and its turn.
                _ = self.kill.wait_for(|kill| *kill) => break,
            }
        }
        self.connections.remove(self.id);
    }
}

/// The whole refusal: status line, headers and an OpenAI-style JSON error body.
fn refusal() -> Vec<u8> {
    let body = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_busy",
        "the gateway is at its connection limit (gateway.max_connections) with every connection busy; retry shortly",
    )
    .body()
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Answers a connection over the cap with a 503 and closes it, reading what the client sent
/// first so the close does not turn into a reset that hides the answer.
fn refuse(mut stream: TcpStream, refusing: &Arc<Semaphore>) {
    let Ok(permit) = refusing.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(&refusal()).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut drained = 0usize;
            while drained < 64 * 1024 {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => drained += n,
                }
            }
            io::Result::Ok(())
        })
        .await;
    });
}

/// A socket whose writes fail once the client has not taken a byte for `timeout`.
struct WriteTimeout {
    inner: TcpStream,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WriteTimeout {
    fn new(inner: TcpStream, timeout: Duration) -> WriteTimeout {
        WriteTimeout { inner, timeout, stalled: None }
    }

    /// After the socket said "not now": pending until the timeout, then an error.
    fn stall<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.timeout;
        let sleep = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading the response (gateway.write_timeout_secs)",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(&mut self, result: Poll<io::Result<T>>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        match result {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.stall(cx),
        }
    }
}

impl AsyncRead for WriteTimeout {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteTimeout {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.progress(result, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.progress(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_flush(cx);
        this.progress(result, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.progress(result, cx)
    }
}
