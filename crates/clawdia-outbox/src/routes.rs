//! The routes and the wire formats they speak. Every route sees the same alert JSON (`id`,
//! `created_at`, `kind`, `severity`, `title`, `body`, `agent`, `approval`), except the webhook
//! formats of ntfy (the text as body, `Title`/`Priority`/`Tags` headers) and Gotify (`{title,
//! message, priority}`); all carry the stable alert id (the JSON's `id`, the `X-Clawdia-Alert-Id`
//! header), so a receiver can drop the duplicate a crash between acceptance and our record can
//! cause.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use clawdia_config::{HookConfig, SecretRef, WebhookFormat};
use serde::Serialize;

use crate::queue::Queued;

/// The alert as every route sees it.
#[derive(Debug, Serialize)]
pub struct AlertJson<'a> {
    pub id: &'a str,
    pub created_at: String,
    pub kind: &'a str,
    pub severity: u8,
    pub title: &'a str,
    pub body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<&'a str>,
}

impl<'a> AlertJson<'a> {
    pub fn of(queued: &'a Queued) -> AlertJson<'a> {
        let alert = &queued.alert;
        AlertJson {
            id: &queued.id,
            created_at: clawdia_core::time::rfc3339_utc(queued.created_ms),
            kind: &alert.kind,
            severity: alert.severity.0,
            title: &alert.title,
            body: &alert.body,
            agent: alert.agent.as_deref(),
            approval: alert.approval.as_deref(),
        }
    }
}

/// The alert as one JSON line (no trailing newline).
pub fn json_line(queued: &Queued) -> String {
    serde_json::to_string(&AlertJson::of(queued)).unwrap_or_else(|_| format!("{{\"id\":\"{}\"}}", queued.id))
}

/// ntfy's priority (1 min .. 5 max) for a severity (0 .. 15).
pub fn ntfy_priority(severity: u8) -> u8 {
    match severity {
        0..=2 => 1,
        3..=4 => 2,
        5..=9 => 3,
        10..=12 => 4,
        _ => 5,
    }
}

/// Gotify's priority (0 .. 10; 8 and up is "high") for a severity (0 .. 15).
pub fn gotify_priority(severity: u8) -> u8 {
    match ntfy_priority(severity) {
        1 => 1,
        2 => 2,
        3 => 5,
        4 => 8,
        _ => 10,
    }
}

/// A header value: printable ASCII as is, anything else as an RFC 2047 encoded word (what ntfy
/// decodes), control characters and line breaks as spaces.
pub fn header_text(text: &str) -> String {
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let clean = clean.trim();
    if clean.is_ascii() {
        return clean.to_string();
    }
    format!("=?UTF-8?B?{}?=", base64(clean.as_bytes()))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `log`: appends the alert's JSON line to `logs/alerts.log` (folder 0700, file 0600).
pub fn append_log(home: &Path, queued: &Queued) -> Result<(), String> {
    let dir = home.join("logs");
    clawdia_sqlite::create_private_dir(&dir).map_err(|e| e.to_string())?;
    let path = dir.join("alerts.log");
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut line = json_line(queued);
    line.push('\n');
    file.write_all(line.as_bytes()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `hook`: runs the command on the host (no shell) in the home with the alert JSON on stdin and
/// a clean environment (`PATH`, `HOME` = the home, `LANG`, `CLAWDIA_ALERT_ID`,
/// `CLAWDIA_ALERT_KIND`); exit 0 within `timeout` is delivery.
pub async fn run_hook(
    home: &Path,
    hook: &HookConfig,
    timeout: Duration,
    queued: &Queued,
) -> Result<(), String> {
    let mut policy = clawdia_sandbox::Policy::new(home);
    policy.timeout = timeout;
    policy.kill_grace = Duration::from_secs(2);
    policy.output_cap = 4096;
    policy.env.push(("CLAWDIA_ALERT_ID".into(), queued.id.clone()));
    policy.env.push(("CLAWDIA_ALERT_KIND".into(), queued.alert.kind.clone()));
    let mut input = json_line(queued);
    input.push('\n');
    let outcome = clawdia_sandbox::run_host_with_input(
        &hook.program,
        &hook.args,
        &policy,
        Some(input.as_bytes()),
        |_| {},
    )
    .await
    .map_err(|e| e.to_string())?;
    let tail = clawdia_core::one_line(outcome.output.trim());
    let tail: String = tail.chars().take(300).collect();
    let said = if tail.is_empty() { String::new() } else { format!(": {tail}") };
    if outcome.timed_out {
        return Err(format!("{} timed out after {}s{said}", hook.program.display(), timeout.as_secs()));
    }
    match outcome.exit_code {
        Some(0) => Ok(()),
        Some(code) => Err(format!("{} exited with {code}{said}", hook.program.display())),
        None => Err(format!("{} was killed by a signal{said}", hook.program.display())),
    }
}

/// The webhook route's settings, with the token still a reference (resolved per send).
#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: String,
    pub format: WebhookFormat,
    pub token: Option<SecretRef>,
}

#[derive(Serialize)]
struct GotifyMessage<'a> {
    title: &'a str,
    message: &'a str,
    priority: u8,
    extras: GotifyExtras<'a>,
}

#[derive(Serialize)]
struct GotifyExtras<'a> {
    #[serde(rename = "clawdia::alert")]
    alert: GotifyAlert<'a>,
}

#[derive(Serialize)]
struct GotifyAlert<'a> {
    id: &'a str,
    kind: &'a str,
}

/// The request a webhook gets for an alert: headers and body (before the token).
pub fn webhook_request(format: WebhookFormat, queued: &Queued) -> (Vec<(&'static str, String)>, String) {
    let alert = &queued.alert;
    let mut headers = vec![("X-Clawdia-Alert-Id", queued.id.clone())];
    let body = match format {
        WebhookFormat::Ntfy => {
            headers.push(("Title", header_text(&alert.title)));
            headers.push(("Priority", ntfy_priority(alert.severity.0).to_string()));
            headers.push(("Tags", header_text(&format!("clawdia,{}", alert.kind))));
            headers.push(("Content-Type", "text/plain; charset=utf-8".to_string()));
            if alert.body.trim().is_empty() { alert.title.clone() } else { alert.body.clone() }
        }
        WebhookFormat::Gotify => {
            headers.push(("Content-Type", "application/json".to_string()));
            let message = GotifyMessage {
                title: &alert.title,
                message: if alert.body.trim().is_empty() { &alert.title } else { &alert.body },
                priority: gotify_priority(alert.severity.0),
                extras: GotifyExtras { alert: GotifyAlert { id: &queued.id, kind: &alert.kind } },
            };
            serde_json::to_string(&message).unwrap_or_default()
        }
        WebhookFormat::Json => {
            headers.push(("Content-Type", "application/json".to_string()));
            json_line(queued)
        }
    };
    (headers, body)
}

/// `webhook`: POSTs the alert; a 2xx answer is delivery.
pub async fn post_webhook(
    client: &reqwest::Client,
    webhook: &Webhook,
    queued: &Queued,
) -> Result<(), String> {
    let (headers, body) = webhook_request(webhook.format, queued);
    let mut request = client.post(&webhook.url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    if let Some(reference) = &webhook.token {
        let token = reference.resolve().map_err(|e| format!("webhook token: {e}"))?;
        request = match webhook.format {
            WebhookFormat::Gotify => request.header("X-Gotify-Key", token.expose()),
            WebhookFormat::Ntfy | WebhookFormat::Json => request.bearer_auth(token.expose()),
        };
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("{}: {}", webhook.url, clawdia_core::text::error_chain(&e)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.bytes().await.unwrap_or_default();
    let said =
        clawdia_core::text::error_body_message(&body, 200).map(|m| format!(": {m}")).unwrap_or_default();
    Err(format!("{} answered HTTP {}{said}", webhook.url, status.as_u16()))
}

#[cfg(test)]
mod tests {
    use clawdia_core::{Alert, Severity};

    use super::*;

    fn queued(title: &str, body: &str, severity: Severity) -> Queued {
        Queued {
            id: "alert-0123".into(),
            created_ms: 1_700_000_000_000,
            alert: Alert::new("job_failing", severity, title, body).agent("main"),
        }
    }

    #[test]
    fn severities_map_onto_ntfy_and_gotify_priorities() {
        let ntfy: Vec<u8> = [0, 3, 5, 7, 10, 13, 15].iter().map(|s| ntfy_priority(*s)).collect();
        assert_eq!(ntfy, [1, 2, 3, 3, 4, 5, 5]);
        let gotify: Vec<u8> = [0, 3, 7, 10, 13].iter().map(|s| gotify_priority(*s)).collect();
        assert_eq!(gotify, [1, 2, 5, 8, 10]);
    }

    #[test]
    fn the_json_line_carries_id_and_time_and_skips_what_is_absent() {
        let line = json_line(&queued("job `x` failed", "exit 4\nmore", Severity::HIGH));
        assert_eq!(
            line,
            r#"{"id":"alert-0123","created_at":"2023-11-14T22:13:20.000Z","kind":"job_failing","severity":10,"title":"job `x` failed","body":"exit 4\nmore","agent":"main"}"#
        );
        assert!(!line.contains('\n') && !line.contains("approval"));
    }

    #[test]
    fn ntfy_gets_the_body_and_ascii_safe_headers() {
        let (headers, body) =
            webhook_request(WebhookFormat::Ntfy, &queued("Café\nfailed", "", Severity::CRITICAL));
        assert_eq!(body, "Café\nfailed", "an empty body falls back to the title");
        let header = |name: &str| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        assert_eq!(header("Title").as_deref(), Some("=?UTF-8?B?Q2Fmw6kgZmFpbGVk?="));
        assert_eq!(header("Priority").as_deref(), Some("5"));
        assert_eq!(header("Tags").as_deref(), Some("clawdia,job_failing"));
        assert_eq!(header("X-Clawdia-Alert-Id").as_deref(), Some("alert-0123"));
        assert_eq!(header_text("plain title"), "plain title");
    }

    #[test]
    fn base64_pads_like_the_standard() {
        assert_eq!(
            [base64(b""), base64(b"f"), base64(b"fo"), base64(b"foo"), base64(b"foob")],
            ["", "Zg==", "Zm8=", "Zm9v", "Zm9vYg=="]
        );
    }

    #[test]
    fn gotify_gets_title_message_and_priority() {
        let (_, body) =
            webhook_request(WebhookFormat::Gotify, &queued("disk full", "93% used", Severity::WARNING));
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["title"], "disk full");
        assert_eq!(value["message"], "93% used");
        assert_eq!(value["priority"], 5);
        assert_eq!(value["extras"]["clawdia::alert"]["id"], "alert-0123");
    }
}
