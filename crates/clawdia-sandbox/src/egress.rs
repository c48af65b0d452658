//! Egress for sandboxed commands: the only way out of the sandbox's network namespace is an
//! HTTP proxy in the gateway that lets through allowlisted `host:port` pairs and nothing else.
//!
//! How it is wired: the sandbox keeps its own network namespace with only loopback. Before the
//! command starts, the sandbox's last stage (inside that namespace) binds a TCP listener on
//! `127.0.0.1:3128` (`PROXY_PORT`) and hands the listening socket to the gateway over a Unix
//! socket pair inherited for that purpose (`SCM_RIGHTS`), then closes its own copies. The
//! gateway accepts on that socket — connections made inside the sandbox — and serves them as
//! a filtering proxy, opening the outbound connection itself from the host. No forwarder
//! process and no socket file exist inside the sandbox; the command never holds the listener
//! or the socket pair. The command gets `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` (and the
//! lower-case forms) set to `http://127.0.0.1:3128`, `NO_PROXY=localhost,127.0.0.1,::1`, and
//! `NODE_USE_ENV_PROXY=1` (without which Node ignores them).
//! Anything that ignores the proxy has no route out: the surface stays closed.
//!
//! The proxy (`proxy.rs`) understands `CONNECT host:port` (HTTPS and any other TCP protocol
//! tunnelled through it) and absolute-form plain HTTP requests (`GET http://host/path`, sent
//! on with `Connection: close`). It resolves names itself and connects only to the address it
//! checked (no second lookup to rebind). It refuses with a `403` and a one-line reason, logs the
//! refusal (`tracing`, target `clawdia::egress`), and the run's output ends with a note listing
//! what was refused.
//!
//! ## Allowlist syntax
//!
//! Each entry is `HOST:PORT` or `HOST` (which means ports 443 and 80):
//! - `api.github.com` — exactly that name (case-insensitive, a trailing dot ignored);
//! - `*.pypi.org` — any name below `pypi.org` at any depth, not `pypi.org` itself (the suffix
//!   needs at least two labels: `*.org` is refused);
//! - `203.0.113.7` or `[2001:db8::1]` — exactly that address, requested as a literal.
//!
//! A port is 1 to 65535; `*` is not a port. Loopback, private, link-local and other non-public
//! destinations are refused even when a name on the list resolves to them (DNS rebinding), and
//! reachable only through an entry that names the address literally (`127.0.0.1:8080`).
//!
//! The proxy and every connection through it end with the run: timeout or exit, the task is
//! aborted and the listener closed.

mod proxy;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use crate::{Network, Outcome, SandboxError};

/// The port the proxy listens on inside the sandbox (on the sandbox's own loopback).
pub const PROXY_PORT: u16 = 3128;
/// What the command's proxy variables are set to.
pub const PROXY_URL: &str = "http://127.0.0.1:3128";

/// The longest host name (RFC 1035).
const MAX_NAME: usize = 253;

/// A destination host as requested: a DNS name (lower case, no trailing dot) or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(name) => f.write_str(name),
            Host::Ip(IpAddr::V4(ip)) => write!(f, "{ip}"),
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
        }
    }
}

impl Host {
    /// Parses a host: `[v6]`, an IPv4 address, or a DNS name of letters, digits, `-` and `_`
    /// (lower-cased; one trailing dot dropped).
    pub fn parse(text: &str) -> Result<Host, String> {
        if let Some(inner) = text.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(|| format!("`{text}`: unclosed `[`"))?;
            return inner
                .parse::<Ipv6Addr>()
                .map(|ip| Host::Ip(IpAddr::V6(ip)))
                .map_err(|_| format!("`{text}` is not an IPv6 address"));
        }
        if let Ok(ip) = text.parse::<Ipv4Addr>() {
            return Ok(Host::Ip(IpAddr::V4(ip)));
        }
        if text.contains(':') {
            return Err(format!("`{text}`: write an IPv6 address in brackets, e.g. [::1]:443"));
        }
        let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
        if name.is_empty() {
            return Err("empty host".to_string());
        }
        if name.len() > MAX_NAME {
            return Err(format!("host name longer than {MAX_NAME} characters"));
        }
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("`{text}`: every dot-separated label needs 1 to 63 characters"));
            }
            if let Some(bad) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
            {
                return Err(format!("`{text}`: `{}` is not allowed in a host name", bad.escape_default()));
            }
        }
        Ok(Host::Name(name))
    }
}

/// Splits `host:port`, `host`, `[v6]:port` or `[v6]`; the port is returned unparsed.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if text.starts_with('[') {
        let end = text.find(']').ok_or_else(|| format!("`{text}`: unclosed `[`"))?;
        let (host, rest) = text.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            _ => match rest.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(format!("`{text}`: expected `:PORT` after `]`")),
            },
        };
    }
    match text.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => {
            Err(format!("`{text}`: write an IPv6 address in brackets, e.g. [::1]:443"))
        }
        Some((host, port)) => Ok((host, Some(port))),
        None => Ok((text, None)),
    }
}

/// Parses a port: 1 to 65535, decimal digits only.
pub fn parse_port(text: &str) -> Result<u16, String> {
    let valid = !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u16>() {
        Ok(port) if valid && port != 0 => Ok(port),
        _ => Err(format!("`{text}` is not a port (1 to 65535)")),
    }
}

/// Which hosts an entry matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this name.
    Name(String),
    /// Any name strictly below this suffix (`*.pypi.org` holds `pypi.org`).
    Below(String),
    /// Exactly this address, requested as a literal; may be non-public.
    Ip(IpAddr),
}

/// One allowlist entry: a host pattern and a port (`None`: 443 and 80).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressRule {
    pub host: HostPattern,
    pub port: Option<u16>,
}

impl EgressRule {
    /// Parses one entry (see the module documentation for the syntax).
    pub fn parse(entry: &str) -> Result<EgressRule, String> {
        if entry.is_empty() {
            return Err("an empty egress entry".to_string());
        }
        if let Some(bad) = entry.chars().find(|c| c.is_whitespace() || c.is_control() || !c.is_ascii()) {
            return Err(format!(
                "egress entry `{}`: `{}` is not allowed",
                entry.escape_default(),
                bad.escape_default()
            ));
        }
        if entry.contains(['/', '@', '?', '#']) {
            return Err(format!("egress entry `{entry}`: write HOST or HOST:PORT, not a URL"));
        }
        let problem = |why: String| format!("egress entry `{entry}`: {why}");
        let (wildcard, rest) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let (host, port) = split_host_port(rest).map_err(problem)?;
        let port = port.map(parse_port).transpose().map_err(problem)?;
        let host = match Host::parse(host).map_err(problem)? {
            Host::Name(name) if wildcard => {
                if name.split('.').count() < 2 {
                    return Err(problem(format!(
                        "`*.{name}` is too broad: name at least two labels after `*.`"
                    )));
                }
                HostPattern::Below(name)
            }
            Host::Name(name) => HostPattern::Name(name),
            Host::Ip(_) if wildcard => return Err(problem("`*.` cannot precede an address".to_string())),
            Host::Ip(ip) => HostPattern::Ip(ip),
        };
        Ok(EgressRule { host, port })
    }

    /// Whether a request for `host:port` is covered by this entry.
    pub fn matches(&self, host: &Host, port: u16) -> bool {
        let port_ok = match self.port {
            Some(allowed) => allowed == port,
            None => port == 443 || port == 80,
        };
        port_ok
            && match (&self.host, host) {
                (HostPattern::Name(allowed), Host::Name(name)) => allowed == name,
                (HostPattern::Below(suffix), Host::Name(name)) => name
                    .strip_suffix(suffix.as_str())
                    .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                (HostPattern::Ip(allowed), Host::Ip(ip)) => allowed == ip,
                _ => false,
            }
    }

    /// Whether connections under this entry may go to non-public addresses: only when the entry
    /// names the address itself.
    pub fn names_an_address(&self) -> bool {
        matches!(self.host, HostPattern::Ip(_))
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Name(name) => f.write_str(name)?,
            HostPattern::Below(suffix) => write!(f, "*.{suffix}")?,
            HostPattern::Ip(ip) => write!(f, "{}", Host::Ip(*ip))?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

/// A parsed egress allowlist.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Allowlist {
    pub rules: Vec<EgressRule>,
}

impl Allowlist {
    /// Parses every entry; the first malformed one is the error.
    pub fn parse(entries: &[String]) -> Result<Allowlist, String> {
        Ok(Allowlist {
            rules: entries.iter().map(|entry| EgressRule::parse(entry)).collect::<Result<_, _>>()?,
        })
    }

    /// The first entry covering `host:port`.
    pub fn permits(&self, host: &Host, port: u16) -> Option<&EgressRule> {
        self.rules.iter().find(|rule| rule.matches(host, port))
    }
}

impl fmt::Display for Allowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, rule) in self.rules.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{rule}")?;
        }
        Ok(())
    }
}

/// Whether `ip` is an ordinary public unicast address: not loopback, private, link-local,
/// carrier-grade NAT, unspecified, broadcast, multicast, documentation, benchmarking or
/// reserved (IPv4 embedded in IPv6 is judged as IPv4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let embedded = |high: usize| Ipv4Addr::from(((s[high] as u32) << 16) | s[high + 1] as u32);
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_public(IpAddr::V4(embedded(6))); // IPv4-compatible
            }
            if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0; 4] {
                return is_public(IpAddr::V4(embedded(6))); // NAT64
            }
            if s[0] == 0x2002 {
                return is_public(IpAddr::V4(embedded(1))); // 6to4
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

/// The proxy variables the command gets.
pub(crate) fn environment() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> =
        ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"]
            .into_iter()
            .map(|key| (key.to_string(), PROXY_URL.to_string()))
            .collect();
    for key in ["NO_PROXY", "no_proxy"] {
        env.push((key.to_string(), "localhost,127.0.0.1,::1".to_string()));
    }
    // Node's own HTTP stack and fetch honour the variables only when asked (Node 22.21+, 24+).
    env.push(("NODE_USE_ENV_PROXY".to_string(), "1".to_string()));
    env
}

/// What the proxy let through and refused during one run.
#[derive(Debug, Default)]
pub(crate) struct Log {
    pub refused: Vec<String>,
    pub refused_total: usize,
    pub allowed_total: usize,
}

/// The most refusals listed in a run's output.
const MAX_LISTED: usize = 8;

impl Log {
    pub(crate) fn refuse(&mut self, what: String) {
        self.refused_total += 1;
        if self.refused.len() < MAX_LISTED && !self.refused.contains(&what) {
            self.refused.push(what);
        }
    }
}

/// The gateway's side of one run's egress: the socket pair the sandbox hands its listener
/// through, and the proxy task serving it. Dropping it stops the proxy and closes every
/// connection through it.
#[derive(Debug)]
pub(crate) struct Egress {
    /// The sandbox's end of the pair (close-on-exec; `run` clears the flag in the child only).
    child: OwnedFd,
    task: tokio::task::JoinHandle<()>,
    log: Arc<Mutex<Log>>,
}

impl Egress {
    /// For `Network::Allow` in a sandbox: parses the allowlist and starts the proxy task,
    /// which waits for the sandbox's listener. `None` for `Network::None`, and without a
    /// sandbox (the host's network is not confined at all then).
    pub(crate) fn start(network: &Network, sandboxed: bool) -> Result<Option<Egress>, SandboxError> {
        let Network::Allow(entries) = network else { return Ok(None) };
        let allowlist = Allowlist::parse(entries).map_err(SandboxError::InvalidPolicy)?;
        if !sandboxed {
            return Ok(None);
        }
        let error = |e: std::io::Error| SandboxError::Spawn(format!("cannot set up the egress proxy: {e}"));
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(error)?;
        ours.set_nonblocking(true).map_err(error)?;
        let ours = tokio::net::UnixStream::from_std(ours).map_err(error)?;
        let log = Arc::new(Mutex::new(Log::default()));
        let task = tokio::spawn(proxy::serve(ours, Arc::new(allowlist), log.clone()));
        Ok(Some(Egress { child: OwnedFd::from(theirs), task, log }))
    }

    /// The descriptor number the sandbox inherits (for `Spec::egress_fd`).
    pub(crate) fn child_fd(&self) -> RawFd {
        self.child.as_raw_fd()
    }

    /// Stops the proxy (closing every connection through it) and appends what it refused to
    /// the outcome's output.
    pub(crate) fn finish(self, outcome: &mut Outcome) {
        self.task.abort();
        let Some(refusals) = self.refusals() else { return };
        if !outcome.output.is_empty() && !outcome.output.ends_with('\n') {
            outcome.output.push('\n');
        }
        outcome.output.push_str(&format!("[{refusals}]\n"));
    }

    /// How many requests the proxy has refused so far.
    pub(crate) fn refused_total(&self) -> usize {
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).refused_total
    }

    /// `egress proxy refused N request(s): ...`, or `None` while nothing was refused.
    pub(crate) fn refusals(&self) -> Option<String> {
        let log = self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if log.refused_total == 0 {
            return None;
        }
        let more = log.refused_total - log.refused.len();
        let more = if more > 0 { format!("; and {more} more") } else { String::new() };
        Some(format!(
            "egress proxy refused {} request(s): {}{more}",
            log.refused_total,
            log.refused.join("; ")
        ))
    }
}

impl Drop for Egress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Inside the sandbox, before confinement: binds the proxy listener on the sandbox's loopback
/// and hands it to the gateway through `fd`, then closes both here, so the command holds
/// neither.
pub(crate) fn hand_over_listener(fd: RawFd) -> Result<(), String> {
    // SAFETY: `fd` is the socket pair end the gateway passed for this purpose; we own it now
    // and close it when `channel` drops.
    let channel = unsafe { OwnedFd::from_raw_fd(fd) };
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, PROXY_PORT))
        .map_err(|e| format!("cannot listen on 127.0.0.1:{PROXY_PORT} for the egress proxy: {e}"))?;
    send_fd(&channel, listener.as_raw_fd())
        .map_err(|e| format!("cannot hand the egress listener to the gateway: {e}"))?;
    Ok(())
}

/// Sends one descriptor (with one byte of payload) over a Unix socket.
fn send_fd(channel: &OwnedFd, fd: RawFd) -> std::io::Result<()> {
    let mut byte = [b'L'];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: msghdr is plain data; zeroed is valid, and every pointer set below outlives the
    // sendmsg call. CMSG_FIRSTHDR/CMSG_DATA point into `control`, which is large enough for one
    // header and one descriptor (CMSG_SPACE).
    let sent = unsafe {
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = space as _;
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<RawFd>(), fd);
        libc::sendmsg(channel.as_raw_fd(), &message, libc::MSG_NOSIGNAL)
    };
    if sent != 1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one descriptor sent by `send_fd` (close-on-exec). `Ok(None)` at end of stream or
/// when the message carried no descriptor.
fn recv_fd(channel: RawFd) -> std::io::Result<Option<OwnedFd>> {
    let mut byte = [0u8];
    let mut iov = libc::iovec { iov_base: byte.as_mut_ptr().cast(), iov_len: 1 };
    // SAFETY: a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: as in `send_fd`; the kernel writes at most `msg_controllen` bytes of control data
    // and one byte of payload into buffers we own.
    unsafe {
        let mut message: libc::msghdr = std::mem::zeroed();
        message.msg_iov = &mut iov;
        message.msg_iovlen = 1;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = space as _;
        let received = libc::recvmsg(channel, &mut message, libc::MSG_CMSG_CLOEXEC);
        if received < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if received == 0 {
            return Ok(None);
        }
        let header = libc::CMSG_FIRSTHDR(&message);
        if header.is_null()
            || (*header).cmsg_level != libc::SOL_SOCKET
            || (*header).cmsg_type != libc::SCM_RIGHTS
            || message.msg_flags & libc::MSG_CTRUNC != 0
        {
            return Ok(None);
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(header).cast::<RawFd>());
        Ok(Some(OwnedFd::from_raw_fd(fd)))
    }
}
