//! A small HTTP/1.1 load generator on raw keep-alive sockets: it writes a fixed request and
//! reads each response by its `Content-Length`, so the client costs as little CPU as possible
//! on a 2-core machine that also runs the gateway and the mock.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection sending the same request over and over.
pub struct Client {
    stream: TcpStream,
    request: Vec<u8>,
    buffer: Vec<u8>,
}

impl Client {
    pub async fn connect(
        addr: SocketAddr,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> anyhow::Result<Client> {
        let stream = TcpStream::connect(addr).await.with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Ok(Client { stream, request: request.into_bytes(), buffer: Vec::with_capacity(8192) })
    }

    /// Sends the request and reads the whole response; returns its status code.
    pub async fn send(&mut self) -> anyhow::Result<u16> {
        self.stream.write_all(&self.request).await?;
        self.buffer.clear();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(pos) = find(&self.buffer, b"\r\n\r\n") {
                break pos + 4;
            }
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed mid-response");
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).to_ascii_lowercase();
        let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .context("response without content-length")?;
        while self.buffer.len() < head_end + length {
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("connection closed mid-body");
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
        Ok(status)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Latencies of `count` sequential requests on one connection.
pub async fn sequential(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &str,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut client = Client::connect(addr, path, token, body).await?;
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        let status = client.send().await?;
        if status != 200 {
            bail!("status {status} from {path}");
        }
        latencies.push(start.elapsed());
    }
    Ok(latencies)
}

/// `clients` connections sending as fast as they can for `duration`; returns (ok, errors).
pub async fn concurrent(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
    body: &str,
    clients: usize,
    duration: Duration,
) -> anyhow::Result<(u64, u64)> {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut client = Client::connect(addr, path, token, body).await?;
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u64, 0u64);
            while Instant::now() < deadline {
                match client.send().await {
                    Ok(200) => ok += 1,
                    Ok(_) => failed += 1,
                    Err(_) => {
                        failed += 1;
                        break;
                    }
                }
            }
            (ok, failed)
        }));
    }
    let mut totals = (0, 0);
    for task in tasks {
        let (ok, failed) = task.await?;
        totals.0 += ok;
        totals.1 += failed;
    }
    Ok(totals)
}

/// The `p`-th percentile (0–100) of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}
