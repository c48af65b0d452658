//! `[channels]`: the owner's chat channels. Today `[channels.web]`, the browser chat and Control
//! UI the gateway serves at `/` (on by default): how long a pairing code and a signed-in browser
//! last, and the address printed in pairing links when the gateway sits behind a proxy. The raw
//! tables as written and their validation; `raw.rs` and `validate.rs` only call in.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;
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

pub(crate) fn validate(context: &Context, raw: RawChannels) -> Result<ChannelsConfig, ConfigError> {
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
        web: WebConfig {
            enabled: raw.enabled.unwrap_or(true),
            public_url,
            pair_ttl: duration(raw.pair_ttl, "pair_ttl", defaults.pair_ttl)?,
            session_ttl: duration(raw.session_ttl, "session_ttl", defaults.session_ttl)?,
        },
    })
}
