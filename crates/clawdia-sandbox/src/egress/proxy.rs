//! The filtering proxy the gateway runs for one sandboxed command: it accepts on the listener
//! the sandbox handed over, reads one request head (at most `MAX_HEAD` bytes, within
//! `HEAD_TIMEOUT`), and either tunnels (`CONNECT host:port`) or forwards one plain HTTP request
//! (`GET http://host[:port]/path`, rewritten to origin form with `Connection: close`) to an
//! allowlisted destination, or answers `400`/`403`/`502` with a one-line reason. Names are
//! resolved here and only a checked address is connected to.

use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UnixStream};

use super::{Allowlist, Host, Log, PROXY_PORT, is_public, parse_port, split_host_port};

/// The largest request head accepted (request line and headers).
pub(crate) const MAX_HEAD: usize = 16 * 1024;
/// The most header fields in a request head.
const MAX_HEADERS: usize = 100;
/// The most connections through one run's proxy at once.
const MAX_CONNECTIONS: usize = 64;
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
const DNS_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request head the proxy understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    pub method: String,
    pub host: Host,
    pub port: u16,
    /// `None` for `CONNECT`; else the origin-form target (`/path?query`).
    pub path: Option<String>,
    pub version: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// `CONNECT host:port` or `GET http://host:port/path` (the path cut at 80 characters).
    pub(crate) fn describe(&self) -> String {
        match &self.path {
            None => format!("CONNECT {}:{}", self.host, self.port),
            Some(path) => {
                let mut path = path.clone();
                if path.len() > 80 {
                    let mut cut = 80;
                    while !path.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    path.truncate(cut);
                    path.push_str("...");
                }
                format!("{} http://{}:{}{path}", self.method, self.host, self.port)
            }
        }
    }

    /// The head sent upstream for a plain HTTP request: origin form, `Host` from the target,
    /// hop-by-hop and proxy headers dropped, `Connection: close`.
    pub(crate) fn forward_head(&self) -> String {
        const DROPPED: [&str; 6] =
            ["host", "connection", "proxy-connection", "keep-alive", "proxy-authorization", "upgrade"];
        let authority =
            if self.port == 80 { self.host.to_string() } else { format!("{}:{}", self.host, self.port) };
        let path = self.path.as_deref().unwrap_or("/");
        let mut head = format!("{} {path} {}\r\nHost: {authority}\r\n", self.method, self.version);
        for (name, value) in &self.headers {
            if !DROPPED.iter().any(|dropped| name.eq_ignore_ascii_case(dropped)) {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        head.push_str("Connection: close\r\n\r\n");
        head
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// Parses a request head (without the blank line that ends it). Strict: ASCII only, CRLF line
/// ends, one space between the three parts of the request line, no folded or space-preceded
/// header names, HTTP/1.0 or 1.1, `CONNECT host:port` with a port, or an absolute `http://`
/// target without user info.
pub(crate) fn parse_head(head: &[u8]) -> Result<Request, String> {
    if head.len() > MAX_HEAD {
        return Err(format!("request head over {MAX_HEAD} bytes"));
    }
    if !head.is_ascii() {
        return Err("non-ASCII bytes in the request head".to_string());
    }
    let text = std::str::from_utf8(head).map_err(|_| "non-ASCII bytes in the request head".to_string())?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    if text.split("\r\n").any(|line| line.contains(['\r', '\n', '\0'])) {
        return Err("a bare CR, LF or NUL in the request head".to_string());
    }
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err("the request line is not `METHOD TARGET HTTP/1.1`".to_string());
    };
    if method.is_empty() || method.len() > 16 || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err("a malformed method".to_string());
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err("only HTTP/1.0 and HTTP/1.1 are spoken here".to_string());
    }
    if target.is_empty() || target.contains(['@', '\\', '#']) || target.chars().any(|c| c.is_ascii_control())
    {
        return Err("a malformed request target (user info, `\\` and `#` are refused)".to_string());
    }
    let (host, port, path) = if method == "CONNECT" {
        let (host, port) = split_host_port(target)?;
        let port = port.ok_or_else(|| "CONNECT needs HOST:PORT".to_string())?;
        (host, parse_port(port)?, None)
    } else {
        let scheme_end = target.find("://").ok_or_else(|| {
            "only absolute http:// targets are proxied (`GET http://host/path`); use CONNECT for https"
                .to_string()
        })?;
        let scheme = &target[..scheme_end];
        if !scheme.eq_ignore_ascii_case("http") {
            return Err(format!("the scheme `{scheme}` is not proxied as plain HTTP; use CONNECT for https"));
        }
        let rest = &target[scheme_end + 3..];
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (host, port) = split_host_port(authority)?;
        let port = port.map(parse_port).transpose()?.unwrap_or(80);
        let path = match path {
            "" => "/".to_string(),
            query if query.starts_with('?') => format!("/{query}"),
            path => path.to_string(),
        };
        (host, port, Some(path))
    };
    let host = Host::parse(host)?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            return Err("an empty line inside the request head".to_string());
        }
        if line.starts_with([' ', '\t']) {
            return Err("folded header lines are refused".to_string());
        }
        let (name, value) = line.split_once(':').ok_or_else(|| "a header line without `:`".to_string())?;
        if name.is_empty() || !name.chars().all(is_token_char) {
            return Err("a malformed header name".to_string());
        }
        if headers.len() == MAX_HEADERS {
            return Err(format!("more than {MAX_HEADERS} header fields"));
        }
        headers.push((name.to_string(), value.trim_matches([' ', '\t']).to_string()));
    }
    Ok(Request { method: method.to_string(), host, port, path, version: version.to_string(), headers })
}

/// A refusal: the status, its reason phrase, and the one-line explanation.
struct Refusal {
    status: u16,
    message: String,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal { status, message: message.into() }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        403 => "Forbidden",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

/// A complete response carrying `message` as its plain-text body.
pub(crate) fn response(status: u16, message: &str) -> String {
    let body = format!("clawdia egress proxy: {message}\n");
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         X-Clawdia-Egress: refused\r\nConnection: close\r\n\r\n{body}",
        reason(status),
        body.len()
    )
}

/// Serves the run's proxy: waits for the sandbox's listener on `channel`, then accepts until
/// the task is aborted (which drops the listener and, through the `JoinSet`, every connection).
pub(super) async fn serve(channel: UnixStream, allowlist: Arc<Allowlist>, log: Arc<Mutex<Log>>) {
    let received = loop {
        if channel.readable().await.is_err() {
            return;
        }
        match channel.try_io(tokio::io::Interest::READABLE, || super::recv_fd(channel.as_raw_fd())) {
            Ok(Some(fd)) => break fd,
            Ok(None) => return,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
    };
    drop(channel);
    let listener = std::net::TcpListener::from(received);
    // Only a listening socket on the sandbox's proxy address is served.
    if listener.local_addr().ok() != Some(SocketAddr::from(([127, 0, 0, 1], PROXY_PORT)))
        || listener.set_nonblocking(true).is_err()
    {
        return;
    }
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((mut client, _)) if connections.len() >= MAX_CONNECTIONS => {
                    let text = response(503, &format!("more than {MAX_CONNECTIONS} connections at once"));
                    let _ = client.write_all(text.as_bytes()).await;
                }
                Ok((client, _)) => {
                    connections.spawn(handle(client, allowlist.clone(), log.clone()));
                }
                // Out of descriptors or similar: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

enum HeadError {
    Closed,
    TooLarge,
}

/// Reads up to the end of the request head; returns the head (without the blank line) and any
/// bytes that followed it.
async fn read_head(client: &mut TcpStream) -> Result<(Vec<u8>, Vec<u8>), HeadError> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await.map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(HeadError::Closed);
        }
        let from = buffer.len().saturating_sub(3);
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let end = from + at;
            if end > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            let rest = buffer.split_off(end + 4);
            buffer.truncate(end);
            return Ok((buffer, rest));
        }
        if buffer.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
    }
}

/// One connection from the sandbox.
async fn handle(mut client: TcpStream, allowlist: Arc<Allowlist>, log: Arc<Mutex<Log>>) {
    let refuse = |what: &str, refusal: &Refusal| {
        tracing::info!(target: "clawdia::egress", status = refusal.status, "refused {what}: {}", refusal.message);
        let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        log.refuse(format!("{what}: {}", refusal.message));
    };
    let (head, rest) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(read)) => read,
        Ok(Err(HeadError::Closed)) => return,
        Ok(Err(HeadError::TooLarge)) => {
            let refusal = Refusal::new(431, format!("request head over {MAX_HEAD} bytes"));
            refuse("a request", &refusal);
            return answer(&mut client, refusal).await;
        }
        Err(_) => return answer(&mut client, Refusal::new(408, "no complete request head in time")).await,
    };
    let request = match parse_head(&head) {
        Ok(request) => request,
        Err(why) => {
            let refusal = Refusal::new(400, why);
            refuse("a malformed request", &refusal);
            return answer(&mut client, refusal).await;
        }
    };
    let what = request.describe();
    let upstream = match open(&request, &allowlist).await {
        Ok(upstream) => upstream,
        Err(refusal) => {
            refuse(&what, &refusal);
            return answer(&mut client, refusal).await;
        }
    };
    tracing::debug!(target: "clawdia::egress", "allowed {what}");
    log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).allowed_total += 1;
    let mut upstream = upstream;
    let first = match &request.path {
        None => {
            if client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.is_err() {
                return;
            }
            rest
        }
        Some(_) => [request.forward_head().into_bytes(), rest].concat(),
    };
    if upstream.write_all(&first).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// Checks `request` against the allowlist, resolves and vets its addresses, and connects.
async fn open(request: &Request, allowlist: &Allowlist) -> Result<TcpStream, Refusal> {
    let (host, port) = (&request.host, request.port);
    let Some(rule) = allowlist.permits(host, port) else {
        let allowed = if allowlist.rules.is_empty() { "nothing".to_string() } else { allowlist.to_string() };
        return Err(Refusal::new(
            403,
            format!("{host}:{port} is not on this sandbox's egress allowlist (allowed: {allowed})"),
        ));
    };
    let found: Vec<SocketAddr> = match host {
        Host::Ip(ip) => vec![SocketAddr::new(*ip, port)],
        Host::Name(name) => {
            match tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((name.as_str(), port))).await {
                Err(_) => return Err(Refusal::new(502, format!("looking up {name} timed out"))),
                Ok(Err(error)) => return Err(Refusal::new(502, format!("cannot resolve {name}: {error}"))),
                Ok(Ok(found)) => found.collect(),
            }
        }
    };
    let usable: Vec<SocketAddr> =
        found.iter().copied().filter(|address| rule.names_an_address() || is_public(address.ip())).collect();
    if usable.is_empty() {
        let list: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
        return Err(Refusal::new(
            403,
            format!(
                "{host} resolves only to non-public addresses ({}); only an entry naming the address itself \
                 reaches those",
                if list.is_empty() { "none".to_string() } else { list.join(", ") }
            ),
        ));
    }
    let mut last = String::new();
    for address in usable.iter().take(4) {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(error)) => last = format!("cannot connect to {address}: {error}"),
            Err(_) => last = format!("connecting to {address} timed out"),
        }
    }
    Err(Refusal::new(502, last))
}

/// Sends the refusal and closes, first reading (briefly, boundedly) what the client still
/// sends, so that unread input does not turn the close into a reset that loses the answer.
async fn answer(client: &mut TcpStream, refusal: Refusal) {
    let _ = client.write_all(response(refusal.status, &refusal.message).as_bytes()).await;
    let _ = client.shutdown().await;
    let drain = async {
        let mut buffer = [0u8; 4096];
        let mut left: usize = 256 * 1024;
        while left > 0 {
            match client.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}
