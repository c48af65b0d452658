//! `web_fetch`: GET an http(s) URL with a time cap, a size cap, manual redirects, and — unless
//! the agent's policy allows it — no loopback, private or link-local targets (checked on every
//! hop after DNS resolution, and the connection is pinned to the checked address).

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use clawdia_core::{Tool, ToolContext, ToolError, ToolSpec};
use futures_util::StreamExt;
use serde_json::json;

use crate::string_arg;

const MAX_REDIRECTS: usize = 5;

/// The caps one agent's `web_fetch` runs under.
#[derive(Debug, Clone)]
pub struct WebFetchLimits {
    pub timeout: Duration,
    pub max_bytes: usize,
    /// Allow loopback, private, link-local and other non-public addresses.
    pub allow_private: bool,
}

pub struct WebFetch {
    spec: ToolSpec,
    limits: WebFetchLimits,
}

impl WebFetch {
    pub fn new(limits: WebFetchLimits) -> WebFetch {
        WebFetch {
            spec: ToolSpec {
                name: "web_fetch".into(),
                description: "Fetch a web page (http/https) and return its text.".into(),
                parameters: json!({"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]}),
            },
            limits,
        }
    }
}

#[async_trait]
impl Tool for WebFetch {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }
    fn group(&self) -> &str {
        "web"
    }
    async fn call(&self, _context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError> {
        let url = string_arg(&arguments, "url")?;
        let limits = self.limits.clone();
        match tokio::time::timeout(limits.timeout, fetch(url, &limits)).await {
            Ok(result) => result,
            Err(_) => Err(ToolError::Timeout(limits.timeout.as_secs())),
        }
    }
}

/// Whether an address is fine to reach from an agent without `allow_private`: the same
/// judgement as the sandbox's egress proxy (loopback, private, link-local, CGNAT, documentation,
/// reserved and IPv4 embedded in IPv6 are not).
pub use clawdia_sandbox::is_public;

async fn fetch(start: &str, limits: &WebFetchLimits) -> Result<String, ToolError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut url = reqwest::Url::parse(start)
        .map_err(|e| ToolError::InvalidArguments(format!("bad url `{start}`: {e}")))?;
    for _ in 0..=MAX_REDIRECTS {
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(ToolError::Refused(format!(
                "only http and https URLs are fetched, not `{}`",
                url.scheme()
            )));
        }
        let host =
            url.host_str().ok_or_else(|| ToolError::InvalidArguments("url has no host".into()))?.to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
            .await
            .map_err(|e| ToolError::Failed(format!("cannot resolve {host}: {e}")))?
            .collect();
        let Some(first) = addresses.first().copied() else {
            return Err(ToolError::Failed(format!("cannot resolve {host}")));
        };
        if !limits.allow_private
            && let Some(bad) = addresses.iter().find(|a| !is_public(a.ip()))
        {
            return Err(ToolError::Refused(format!(
                "{host} resolves to the non-public address {}; this agent may only fetch public addresses",
                bad.ip()
            )));
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&lookup_host, first)
            .connect_timeout(limits.timeout)
            .user_agent(concat!("clawdia/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ToolError::Failed(format!("http client: {e}")))?;
        let response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| ToolError::Failed(format!("fetch {url} failed: {e}")))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| ToolError::Failed(format!("{status} without a Location header")))?;
            url = url
                .join(location)
                .map_err(|e| ToolError::Failed(format!("bad redirect `{location}`: {e}")))?;
            continue;
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let mut body = Vec::new();
        let mut truncated = false;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ToolError::Failed(format!("reading {url}: {e}")))?;
            let room = limits.max_bytes.saturating_sub(body.len());
            if chunk.len() > room {
                body.extend_from_slice(&chunk[..room]);
                truncated = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        let raw = String::from_utf8_lossy(&body);
        let text = if content_type.contains("html") { html_to_text(&raw) } else { raw.into_owned() };
        let mut out = format!("{} {url}\ncontent-type: {content_type}\n\n{text}", status.as_u16());
        if truncated {
            out.push_str(&format!("\n[truncated at {} bytes]", limits.max_bytes));
        }
        return Ok(out);
    }
    Err(ToolError::Failed(format!("more than {MAX_REDIRECTS} redirects")))
}

/// A small HTML-to-text pass: drops scripts, styles and tags, decodes common entities, and
/// collapses blank runs. Good enough for a model to read; not a renderer.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    let bytes = html.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'<' {
            let rest = &lower[i..];
            let skip_to = if rest.starts_with("<script") {
                rest.find("</script>").map(|p| p + "</script>".len())
            } else if rest.starts_with("<style") {
                rest.find("</style>").map(|p| p + "</style>".len())
            } else if rest.starts_with("<!--") {
                rest.find("-->").map(|p| p + 3)
            } else {
                rest.find('>').map(|p| p + 1)
            };
            let block = rest.starts_with("<p")
                || rest.starts_with("<br")
                || rest.starts_with("<div")
                || rest.starts_with("<li")
                || rest.starts_with("<h")
                || rest.starts_with("</p")
                || rest.starts_with("<tr");
            match skip_to {
                Some(n) => i += n,
                None => break,
            }
            if block {
                out.push('\n');
            }
            continue;
        }
        let next = html[i..].find('<').map(|p| i + p).unwrap_or(bytes.len());
        out.push_str(&html[i..next]);
        i = next;
    }
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let mut result = String::new();
    let mut blank = 0;
    for line in decoded.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        result.push_str(&line);
        result.push('\n');
    }
    result.trim().to_string()
}
