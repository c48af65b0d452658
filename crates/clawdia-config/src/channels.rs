//! `[channels]`: the owner's chat channels. `[channels.web]`, the browser chat and Control UI
//! the gateway serves at `/` (on by default): how long a pairing code and a signed-in browser
//! last, and the address printed in pairing links when the gateway sits behind a proxy.
//! `[channels.telegram]`, a Telegram bot (off until it has a token): the Bot API root, the
//! agent it talks to, and who may talk to it. `[channels.email]`, a mailbox the owner writes to
//! (off until the table is present): IMAP and SMTP servers, the login, the address replies come
//! from and who besides the owner may write. The raw tables as written and their validation;
//! `raw.rs` and `validate.rs` only call in.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::SecretRef;
use crate::error::ConfigError;
use crate::raw::RawSecret;
use crate::validate::Context;

/// Defaults of `[channels.web]`.
pub(crate) mod defaults {
    pub const PAIR_TTL: &str = "10m";
    pub const SESSION_TTL: &str = "30d";
}

/// The owner's chat channels.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Channels")]
pub(crate) struct RawChannels {
    /// The browser chat and Control UI at `/` on the gateway's address.
    #[serde(default)]
    pub web: RawWeb,
    /// A Telegram bot: the owner's phone channel. On when the table is present.
    #[schemars(with = "Option<RawTelegram>")]
    pub telegram: Option<Spanned<RawTelegram>>,
    /// A mailbox the owner (`[owner] email`) and the `allow`ed addresses write to: mail that
    /// passes DKIM with DMARC alignment becomes a turn, answered by a threaded reply. On when the
    /// table is present.
    #[schemars(with = "Option<RawEmail>")]
    pub email: Option<Spanned<RawEmail>>,
}

/// `[channels.email]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "EmailChannel")]
pub(crate) struct RawEmail {
    /// The IMAP server mail is read from: `{ host = "imap.example.org", port = 993, security =
    /// "tls" }`. Required.
    pub imap: Option<RawMailServer>,
    /// The SMTP submission server replies are sent through: `{ host = "smtp.example.org", port =
    /// 465, security = "tls" }`. Required.
    pub smtp: Option<RawMailServer>,
    /// The login on both servers. Required.
    #[schemars(with = "Option<String>")]
    pub username: Option<Spanned<String>>,
    /// The password on both servers, as a secret reference: `{ env = "CLAWDIA_MAIL_PASSWORD" }`
    /// or `{ file = "secrets/mail" }`. Required.
    pub password: Option<RawSecret>,
    /// The address replies and alerts are sent from, e.g. `"clawdia@example.org"`. Required.
    #[schemars(with = "Option<String>")]
    pub from: Option<Spanned<String>>,
    /// Addresses allowed to write besides the owner's (`[owner] email`). Their mail must pass
    /// DKIM and DMARC alignment too.
    #[schemars(with = "Option<Vec<String>>")]
    pub allow: Option<Vec<Spanned<String>>>,
    /// The agent mail talks to.
    #[schemars(with = "Option<String>", extend("default" = "main"))]
    pub agent: Option<Spanned<String>>,
    /// The largest attachment saved into the agent's workspace (`uploads/email/`), in MB (1-100);
    /// larger ones are left out, and the model is told. A mail over four times this plus 1 MB is
    /// not downloaded (refused and audited).
    #[schemars(extend("default" = 10))]
    pub max_attachment_mb: Option<u64>,
    /// Seconds between checks for new mail when the IMAP server has no IDLE (1-3600). With IDLE
    /// new mail is seen at once.
    #[schemars(extend("default" = 60))]
    pub poll_secs: Option<u64>,
    /// The IMAP folder read.
    #[schemars(with = "Option<String>", extend("default" = "INBOX"))]
    pub mailbox: Option<Spanned<String>>,
}

/// An IMAP or SMTP server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MailServer")]
pub(crate) struct RawMailServer {
    /// The server's host name (checked against its TLS certificate).
    #[schemars(with = "String")]
    pub host: Spanned<String>,
    /// The port. Defaults: IMAP 993 with `tls`, 143 otherwise; SMTP 465 with `tls`, 587
    /// otherwise.
    pub port: Option<u16>,
    /// `tls` (TLS from the first byte), `starttls` (upgraded after connecting; refused if the
    /// server does not offer it) or `plain` (no encryption: only to a loopback address, for tests).
    #[schemars(with = "Option<String>", extend("default" = "tls"))]
    pub security: Option<Spanned<String>>,
}

/// `[channels.telegram]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TelegramChannel")]
pub(crate) struct RawTelegram {
    /// The bot's token from @BotFather, as a secret reference: `{ env = "TELEGRAM_BOT_TOKEN" }`.
    /// Required.
    pub token: Option<RawSecret>,
    /// The Bot API's address (a local Bot API server, or a test double).
    #[schemars(with = "Option<String>", extend("default" = "https://api.telegram.org"))]
    pub api_root: Option<Spanned<String>>,
    /// How updates arrive: `poll` (long polling; works behind NAT) or `webhook` (Telegram posts
    /// each update to `webhook_url`, which must reach the gateway's `/v1/telegram/webhook`; each
    /// post carries a secret token the gateway checks).
    #[schemars(with = "Option<String>", extend("default" = "poll"))]
    pub mode: Option<Spanned<String>>,
    /// With `mode = "webhook"`: the public address Telegram posts updates to, reaching the
    /// gateway's `/v1/telegram/webhook` (e.g. through a reverse proxy with TLS):
    /// `"https://clawdia.example.org/v1/telegram/webhook"`.
    #[schemars(with = "Option<String>")]
    pub webhook_url: Option<Spanned<String>>,
    /// The agent the bot's chats talk to.
    #[schemars(with = "Option<String>", extend("default" = "main"))]
    pub agent: Option<Spanned<String>>,
    /// Further agents a chat may switch to with `/agent NAME`.
    #[schemars(with = "Option<Vec<String>>")]
    pub agents: Option<Vec<Spanned<String>>>,
    /// Who besides the owner (`[owner] telegram`) may talk to the bot in private chats:
    /// `pairing` (they get a one-time code; `clawdia telegram pair CODE` lets them in),
    /// `allowlist` (only the user ids in `allow`), `open` (anyone) or `disabled` (the owner only).
    #[schemars(with = "Option<String>", extend("default" = "pairing"))]
    pub dm_policy: Option<Spanned<String>>,
    /// Telegram user ids allowed besides the owner.
    #[schemars(with = "Option<Vec<i64>>")]
    pub allow: Option<Vec<i64>>,
    /// In groups the bot answers only messages that mention it or reply to it (`mention`), or
    /// ignores groups (`off`). Only allowed senders are ever answered.
    #[schemars(with = "Option<String>", extend("default" = "mention"))]
    pub groups: Option<Spanned<String>>,
    /// Seconds a long poll waits for updates (1-50).
    #[schemars(extend("default" = 30))]
    pub poll_timeout_secs: Option<u64>,
    /// Messages a person sends in a burst (each within this many milliseconds of the last) are
    /// answered as one turn. 0 answers each at once.
    #[schemars(extend("default" = 600))]
    pub batch_ms: Option<u64>,
    /// When a reply also comes as a voice note (needs `[speech] tts`): `spoken` (when the person
    /// sent a voice note, or wrote `/voice ...`), `always`, or `never`.
    #[schemars(with = "Option<String>", extend("default" = "spoken"))]
    pub voice_reply: Option<Spanned<String>>,
    /// The largest photo, document or voice note the bot downloads, in MB (Telegram's own Bot API
    /// hands bots files up to 20 MB; a local Bot API server up to 2000). Larger ones are refused
    /// with a message to the sender.
    #[schemars(extend("default" = 20))]
    pub max_file_mb: Option<u64>,
}

/// `[channels.web]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "WebChannel")]
pub(crate) struct RawWeb {
    /// Serve the web UI, its WebSocket and sign-in endpoints. `false` leaves only the API.
    #[schemars(extend("default" = true))]
    pub enabled: Option<bool>,
    /// The address browsers reach the gateway at, when it is not the listen address (a reverse
    /// proxy with TLS): pairing links and QR codes point here, e.g. `"https://clawdia.example.org"`.
    #[schemars(with = "Option<String>")]
    pub public_url: Option<Spanned<String>>,
    /// How long a pairing code from `clawdia web pair` may be used: `"10m"`, `"1h"`, ...
    #[schemars(with = "Option<String>", extend("default" = defaults::PAIR_TTL))]
    pub pair_ttl: Option<Spanned<String>>,
    /// How long a signed-in browser stays signed in: `"30d"`, `"12h"`, ...
    #[schemars(with = "Option<String>", extend("default" = defaults::SESSION_TTL))]
    pub session_ttl: Option<Spanned<String>>,
}

/// `[channels]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChannelsConfig {
    pub web: WebConfig,
    pub telegram: Option<TelegramConfig>,
    pub email: Option<EmailConfig>,
}

/// `[channels.email]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailConfig {
    pub imap: MailServer,
    pub smtp: MailServer,
    pub username: String,
    pub password: SecretRef,
    /// A bare address (`user@domain`).
    pub from: String,
    /// Bare addresses, lowercased.
    pub allow: Vec<String>,
    pub agent: String,
    pub max_attachment_bytes: u64,
    pub poll: Duration,
    pub mailbox: String,
}

/// An IMAP or SMTP server, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailServer {
    pub host: String,
    pub port: u16,
    pub security: MailSecurity,
}

/// How a mail server connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailSecurity {
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Tls,
    /// Plain connection upgraded with STARTTLS (required).
    StartTls,
    /// No encryption; validation allows it only for loopback hosts.
    Plain,
}

impl MailSecurity {
    pub fn name(self) -> &'static str {
        match self {
            MailSecurity::Tls => "tls",
            MailSecurity::StartTls => "starttls",
            MailSecurity::Plain => "plain",
        }
    }
}

/// Whether `address` is a plausible bare email address: one `@` with text on both sides, a dot
/// or `localhost`-style name in the domain is not required, no spaces or angle brackets.
pub fn is_email_address(address: &str) -> bool {
    match address.split_once('@') {
        Some((user, domain)) => {
            !user.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !address.contains(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"'))
        }
        None => false,
    }
}

/// Who besides the owner may talk to the bot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmPolicy {
    Pairing,
    Allowlist,
    Open,
    Disabled,
}

impl DmPolicy {
    pub fn name(self) -> &'static str {
        match self {
            DmPolicy::Pairing => "pairing",
            DmPolicy::Allowlist => "allowlist",
            DmPolicy::Open => "open",
            DmPolicy::Disabled => "disabled",
        }
    }
}

/// `[channels.telegram]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelegramConfig {
    pub token: SecretRef,
    /// Without a trailing slash.
    pub api_root: String,
    pub agent: String,
    /// `agent` first, then the others a chat may switch to.
    pub agents: Vec<String>,
    pub dm_policy: DmPolicy,
    pub allow: Vec<i64>,
    /// Answer mentions and replies in groups.
    pub groups: bool,
    pub poll_timeout: Duration,
    /// The quiet window that ends a burst of messages (zero: none).
    pub batch: Duration,
    pub mode: TelegramMode,
    pub voice_reply: VoiceReply,
    pub max_file_bytes: u64,
}

/// How the bot receives updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelegramMode {
    /// Long polling with `getUpdates`.
    Poll,
    /// Telegram posts updates to this public URL (which reaches `/v1/telegram/webhook`).
    Webhook { url: String },
}

/// When a reply is also sent as a voice note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceReply {
    /// When the person spoke (a voice note) or asked (`/voice ...`).
    Spoken,
    Always,
    Never,
}

/// `[channels.web]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    pub enabled: bool,
    /// Without a trailing slash.
    pub public_url: Option<String>,
    pub pair_ttl: Duration,
    pub session_ttl: Duration,
}

impl Default for WebConfig {
    fn default() -> WebConfig {
        WebConfig {
            enabled: true,
            public_url: None,
            pair_ttl: Duration::from_secs(600),
            session_ttl: Duration::from_secs(30 * 86_400),
        }
    }
}

pub(crate) fn validate(
    context: &Context,
    raw: RawChannels,
    agents: &std::collections::BTreeMap<String, crate::AgentConfig>,
) -> Result<ChannelsConfig, ConfigError> {
    let telegram = match raw.telegram {
        None => None,
        Some(table) => Some(telegram(context, table, agents)?),
    };
    let email = match raw.email {
        None => None,
        Some(table) => Some(email(context, table, agents)?),
    };
    let raw = raw.web;
    let key = |field: &'static str| ["channels", "web", field];
    let defaults = WebConfig::default();
    let duration = |value: Option<Spanned<String>>, field: &'static str, default: Duration| {
        match value {
        None => Ok(default),
        Some(text) => crate::broker::parse_ttl(text.get_ref()).ok_or_else(|| {
            context.error(
                text.span(),
                &key(field),
                format!(
                    "`{}` is not a duration: a number of at least 1 with s, m, h or d, e.g. \"10m\" (at most 365d)",
                    text.get_ref()
                ),
            )
        }),
    }
    };
    let public_url = match raw.public_url {
        None => None,
        Some(url) => {
            let text = url.get_ref().trim().trim_end_matches('/');
            let rest = text.strip_prefix("https://").or_else(|| text.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
                    Some(text.to_string())
                }
                _ => {
                    return Err(context.error(
                        url.span(),
                        &key("public_url"),
                        format!(
                            "`{}` is not an http(s) URL, e.g. \"https://clawdia.example.org\"",
                            url.get_ref()
                        ),
                    ));
                }
            }
        }
    };
    Ok(ChannelsConfig {
        telegram,
        email,
        web: WebConfig {
            enabled: raw.enabled.unwrap_or(true),
            public_url,
            pair_ttl: duration(raw.pair_ttl, "pair_ttl", defaults.pair_ttl)?,
            session_ttl: duration(raw.session_ttl, "session_ttl", defaults.session_ttl)?,
        },
    })
}

fn telegram(
    context: &Context,
    table: Spanned<RawTelegram>,
    agents: &std::collections::BTreeMap<String, crate::AgentConfig>,
) -> Result<TelegramConfig, ConfigError> {
    let span = table.span();
    let raw = table.into_inner();
    let key = |field: &'static str| ["channels", "telegram", field];
    let token = match raw.token {
        Some(token) => context.secret(token, &key("token"))?,
        None => {
            return Err(context.error(
                span,
                &key("token"),
                "is required: the bot's token as a secret reference, e.g. token = { env = \"TELEGRAM_BOT_TOKEN\" }",
            ));
        }
    };
    let http_url = |url: &Spanned<String>, field: &'static str| {
        let text = url.get_ref().trim().trim_end_matches('/').to_string();
        if (text.starts_with("https://") || text.starts_with("http://"))
            && !text.contains(char::is_whitespace)
        {
            Ok(text)
        } else {
            Err(context.error(url.span(), &key(field), format!("`{}` is not an http(s) URL", url.get_ref())))
        }
    };
    let api_root = match &raw.api_root {
        None => "https://api.telegram.org".to_string(),
        Some(url) => http_url(url, "api_root")?,
    };
    let mode = match raw.mode {
        None => TelegramMode::Poll,
        Some(mode) => match mode.get_ref().as_str() {
            "poll" => TelegramMode::Poll,
            "webhook" => match &raw.webhook_url {
                Some(url) => TelegramMode::Webhook { url: http_url(url, "webhook_url")? },
                None => {
                    return Err(context.error(
                        mode.span(),
                        &key("webhook_url"),
                        "is required with mode = \"webhook\": the public https address that reaches the gateway's /v1/telegram/webhook",
                    ));
                }
            },
            other => {
                return Err(context.error(
                    mode.span(),
                    &key("mode"),
                    format!("unknown mode `{other}` (one of: poll, webhook)"),
                ));
            }
        },
    };
    let voice_reply = match raw.voice_reply {
        None => VoiceReply::Spoken,
        Some(reply) => match reply.get_ref().as_str() {
            "spoken" => VoiceReply::Spoken,
            "always" => VoiceReply::Always,
            "never" => VoiceReply::Never,
            other => {
                return Err(context.error(
                    reply.span(),
                    &key("voice_reply"),
                    format!("unknown setting `{other}` (one of: spoken, always, never)"),
                ));
            }
        },
    };
    let max_file_bytes = match raw.max_file_mb {
        None => 20 << 20,
        Some(mb @ 1..=2000) => mb << 20,
        Some(_) => return Err(context.error(span, &key("max_file_mb"), "must be from 1 to 2000")),
    };
    let known = |name: &Spanned<String>, field: &'static str| {
        if agents.contains_key(name.get_ref()) {
            Ok(name.get_ref().clone())
        } else {
            let configured: Vec<&str> = agents.keys().map(String::as_str).collect();
            Err(context.error(
                name.span(),
                &key(field),
                format!("unknown agent `{}` (configured: {})", name.get_ref(), configured.join(", ")),
            ))
        }
    };
    let agent = match &raw.agent {
        Some(name) => known(name, "agent")?,
        None if agents.contains_key("main") => "main".to_string(),
        None => {
            return Err(context.error(
                span,
                &key("agent"),
                "is required when there is no agent named `main`",
            ));
        }
    };
    let mut chat_agents = vec![agent.clone()];
    for name in raw.agents.iter().flatten() {
        let name = known(name, "agents")?;
        if !chat_agents.contains(&name) {
            chat_agents.push(name);
        }
    }
    let dm_policy = match raw.dm_policy {
        None => DmPolicy::Pairing,
        Some(policy) => match policy.get_ref().as_str() {
            "pairing" => DmPolicy::Pairing,
            "allowlist" => DmPolicy::Allowlist,
            "open" => DmPolicy::Open,
            "disabled" => DmPolicy::Disabled,
            other => {
                return Err(context.error(
                    policy.span(),
                    &key("dm_policy"),
                    format!("unknown policy `{other}` (one of: pairing, allowlist, open, disabled)"),
                ));
            }
        },
    };
    let groups = match raw.groups {
        None => true,
        Some(groups) => match groups.get_ref().as_str() {
            "mention" => true,
            "off" => false,
            other => {
                return Err(context.error(
                    groups.span(),
                    &key("groups"),
                    format!("unknown setting `{other}` (one of: mention, off)"),
                ));
            }
        },
    };
    let poll_timeout = match raw.poll_timeout_secs {
        None => Duration::from_secs(30),
        Some(secs @ 1..=50) => Duration::from_secs(secs),
        Some(_) => return Err(context.error(span, &key("poll_timeout_secs"), "must be from 1 to 50")),
    };
    Ok(TelegramConfig {
        token,
        api_root,
        agent,
        agents: chat_agents,
        dm_policy,
        allow: raw.allow.unwrap_or_default(),
        groups,
        poll_timeout,
        batch: Duration::from_millis(raw.batch_ms.unwrap_or(600).min(10_000)),
        mode,
        voice_reply,
        max_file_bytes,
    })
}

fn email(
    context: &Context,
    table: Spanned<RawEmail>,
    agents: &std::collections::BTreeMap<String, crate::AgentConfig>,
) -> Result<EmailConfig, ConfigError> {
    let span = table.span();
    let raw = table.into_inner();
    let key = |field: &'static str| ["channels", "email", field];
    let required = |field: &'static str, example: &str| {
        context.error(span.clone(), &key(field), format!("is required, e.g. {example}"))
    };
    let server = |raw: Option<RawMailServer>, field: &'static str| -> Result<MailServer, ConfigError> {
        let example = format!("{field} = {{ host = \"{field}.example.org\", security = \"tls\" }}");
        let Some(raw) = raw else { return Err(required(field, &example)) };
        let server_key = |name: &'static str| ["channels", "email", field, name];
        let host = raw.host.get_ref().trim().to_string();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let bad = host.is_empty()
            || host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@')
            || (bare.contains(':') && bare.parse::<std::net::Ipv6Addr>().is_err());
        if bad {
            let message = format!("`{}` is not a host name or address", raw.host.get_ref());
            return Err(context.error(raw.host.span(), &server_key("host"), message));
        }
        let security = match &raw.security {
            None => MailSecurity::Tls,
            Some(value) => match value.get_ref().as_str() {
                "tls" => MailSecurity::Tls,
                "starttls" => MailSecurity::StartTls,
                "plain" => MailSecurity::Plain,
                other => {
                    let message = format!("unknown security `{other}` (one of: tls, starttls, plain)");
                    return Err(context.error(value.span(), &server_key("security"), message));
                }
            },
        };
        if security == MailSecurity::Plain && !is_loopback(&host) {
            let message = format!(
                "`plain` sends the password unencrypted: allowed only to a loopback host, not `{host}` (use tls or starttls)"
            );
            let at = raw.security.as_ref().map(|value| value.span()).unwrap_or(raw.host.span());
            return Err(context.error(at, &server_key("security"), message));
        }
        let port = match raw.port {
            Some(0) => {
                return Err(context.error(raw.host.span(), &server_key("port"), "must be from 1 to 65535"));
            }
            Some(port) => port,
            None => match (field, security) {
                ("imap", MailSecurity::Tls) => 993,
                ("imap", _) => 143,
                (_, MailSecurity::Tls) => 465,
                _ => 587,
            },
        };
        Ok(MailServer {
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port,
            security,
        })
    };
    let imap = server(raw.imap, "imap")?;
    let smtp = server(raw.smtp, "smtp")?;
    let username = match raw.username {
        Some(name) if !name.get_ref().trim().is_empty() => name.into_inner().trim().to_string(),
        Some(name) => return Err(context.error(name.span(), &key("username"), "must not be empty")),
        None => return Err(required("username", "username = \"clawdia@example.org\"")),
    };
    let password = match raw.password {
        Some(password) => context.secret(password, &key("password"))?,
        None => return Err(required("password", "password = { env = \"CLAWDIA_MAIL_PASSWORD\" }")),
    };
    let address = |value: &Spanned<String>, field: &'static str| {
        let text = value.get_ref().trim();
        if is_email_address(text) {
            Ok(text.to_ascii_lowercase())
        } else {
            let message = format!(
                "`{}` is not an email address (write the bare address: name@example.org)",
                value.get_ref()
            );
            Err(context.error(value.span(), &key(field), message))
        }
    };
    let from = match &raw.from {
        Some(from) => address(from, "from")?,
        None => return Err(required("from", "from = \"clawdia@example.org\"")),
    };
    let mut allow = Vec::new();
    for entry in raw.allow.iter().flatten() {
        let entry = address(entry, "allow")?;
        if !allow.contains(&entry) {
            allow.push(entry);
        }
    }
    let agent = match &raw.agent {
        Some(name) if agents.contains_key(name.get_ref()) => name.get_ref().clone(),
        Some(name) => {
            let configured: Vec<&str> = agents.keys().map(String::as_str).collect();
            let message =
                format!("unknown agent `{}` (configured: {})", name.get_ref(), configured.join(", "));
            return Err(context.error(name.span(), &key("agent"), message));
        }
        None if agents.contains_key("main") => "main".to_string(),
        None => {
            return Err(context.error(
                span,
                &key("agent"),
                "is required when there is no agent named `main`",
            ));
        }
    };
    let max_attachment_bytes = match raw.max_attachment_mb {
        None => 10 << 20,
        Some(mb @ 1..=100) => mb << 20,
        Some(_) => return Err(context.error(span, &key("max_attachment_mb"), "must be from 1 to 100")),
    };
    let poll = match raw.poll_secs {
        None => Duration::from_secs(60),
        Some(secs @ 1..=3600) => Duration::from_secs(secs),
        Some(_) => return Err(context.error(span, &key("poll_secs"), "must be from 1 to 3600")),
    };
    let mailbox = match raw.mailbox {
        None => "INBOX".to_string(),
        Some(name) if !name.get_ref().trim().is_empty() && !name.get_ref().contains(['\r', '\n', '"']) => {
            name.into_inner().trim().to_string()
        }
        Some(name) => {
            return Err(context.error(name.span(), &key("mailbox"), "must be a folder name, e.g. \"INBOX\""));
        }
    };
    Ok(EmailConfig {
        imap,
        smtp,
        username,
        password,
        from,
        allow,
        agent,
        max_attachment_bytes,
        poll,
        mailbox,
    })
}

/// Whether `host` names this machine's loopback interface.
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback())
}
