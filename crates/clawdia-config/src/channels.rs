//! `[channels]`: the owner's chat channels. `[channels.web]`, the browser chat and Control UI
//! the gateway serves at `/` (on by default): how long a pairing code and a signed-in browser
//! last, and the address printed in pairing links when the gateway sits behind a proxy.
//! `[channels.telegram]`, a Telegram bot (off until it has a token): the Bot API root, the
//! agent it talks to, and who may talk to it. The raw tables as written and their validation;
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
