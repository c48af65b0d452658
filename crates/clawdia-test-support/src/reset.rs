//! Connections the mock can reset: a listener whose every connection carries a switch that a
//! handler can flip through its `ConnectInfo<ResetHandle>`. Once flipped, the connection's next
//! write fails instead of sending the response, and the socket is closed with `SO_LINGER` 0, so
//! the client sees a TCP reset before a single byte of the reply, the way a crashing or
//! overloaded upstream (or a proxy in front of it) drops a request.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener (with `TCP_NODELAY` on every connection) whose connections can be reset.
pub(crate) struct ResettableListener(pub(crate) TcpListener);

/// One accepted connection and its reset switch.
pub(crate) struct Connection {
    stream: TcpStream,
    reset: Arc<AtomicBool>,
}

/// The reset switch of the connection a request arrived on.
#[derive(Clone, Debug)]
pub(crate) struct ResetHandle(Arc<AtomicBool>);

impl ResetHandle {
    /// Makes the connection fail instead of answering: the client gets a reset, no response.
    pub(crate) fn reset(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Listener for ResettableListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        loop {
            match self.0.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (Connection { stream, reset: Arc::default() }, addr);
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, ResettableListener>> for ResetHandle {
    fn connect_info(stream: IncomingStream<'_, ResettableListener>) -> ResetHandle {
        ResetHandle(Arc::clone(&stream.io().reset))
    }
}

impl Connection {
    /// The error every write returns once the switch is flipped (after arming the RST).
    fn refuse_if_reset(&self) -> Option<io::Error> {
        if !self.reset.load(Ordering::SeqCst) {
            return None;
        }
        let _ = self.stream.set_zero_linger();
        Some(io::Error::new(io::ErrorKind::ConnectionReset, "mock: connection reset before the reply"))
    }
}

impl AsyncRead for Connection {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.refuse_if_reset() {
            Some(error) => Poll::Ready(Err(error)),
            None => Pin::new(&mut this.stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match this.refuse_if_reset() {
            Some(error) => Poll::Ready(Err(error)),
            None => Pin::new(&mut this.stream).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.refuse_if_reset() {
            Some(error) => Poll::Ready(Err(error)),
            None => Pin::new(&mut this.stream).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
