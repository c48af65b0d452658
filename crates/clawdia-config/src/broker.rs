//! `[broker]`: the store of requests awaiting the owner — the tool gate's approval requests
//! (`ask`) and the user agents' `request_elevation` requests, which the administrator agent
//! (`admin_agent`) assesses before the owner is asked. `[bridge]`: the signed one-way channel the
//! administrator side reports back on (its key and freshness window). This module holds both
//! stages: the raw tables as written and their validation, so `raw.rs` and `validate.rs` only
//! call in.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;
use crate::validate::Context;

/// Defaults of `[broker]`.
pub(crate) mod defaults {
    pub const TTL: &str = "24h";
}

/// Requests awaiting the owner (`clawdia broker list`): the approval requests of the tool gate
/// (`[agents.NAME.tools] ask`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Broker")]
pub(crate) struct RawBroker {
    /// How long a request waits for the owner before it expires and the agent is told so:
    /// a number with `s`, `m`, `h` or `d` (`"90m"`, `"24h"`, `"7d"`).
    #[schemars(with = "Option<String>", extend("default" = defaults::TTL))]
    pub ttl: Option<Spanned<String>>,
    /// The administrator agent: it assesses each `request_elevation` request (in a fresh session,
    /// with only the tools its own config grants) before the owner is asked, and runs what the
    /// owner approved through its `[agents.NAME.elevated]` allowlist. Unset: requests go to the
    /// owner without an assessment, and approved commands run under the requesting agent's
    /// allowlist.
    #[schemars(with = "Option<String>")]
    pub admin_agent: Option<Spanned<String>>,
}

/// `[bridge]`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Bridge")]
pub(crate) struct RawBridge {
    /// The shared key messages are signed with, as a secret reference. Made (32 random bytes,
    /// mode 0600) on first use when it is the default file.
    #[schemars(with = "Option<crate::raw::RawSecret>", extend("default" = {"file": "secrets/bridge-key"}))]
    pub key: Option<crate::raw::RawSecret>,
    /// How far a message's timestamp may be from now, either way, in seconds.
    #[schemars(with = "Option<u64>", extend("default" = 300))]
    pub window_seconds: Option<Spanned<u64>>,
}

/// `[bridge]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub key: crate::SecretRef,
    /// Whether `key` is the default file (`secrets/bridge-key`), which is made on first use.
    pub default_key: bool,
    pub window: Duration,
}

pub(crate) fn bridge(context: &Context, raw: RawBridge) -> Result<BridgeConfig, ConfigError> {
    let (key, default_key) = match raw.key {
        Some(key) => (context.secret(key, &["bridge", "key"])?, false),
        None => (crate::SecretRef::File(context.path("secrets/bridge-key")), true),
    };
    let window = match raw.window_seconds {
        None => 300,
        Some(seconds) if (1..=86_400).contains(seconds.get_ref()) => seconds.into_inner(),
        Some(seconds) => {
            return Err(context.error(
                seconds.span(),
                &["bridge", "window_seconds"],
                "must be from 1 to 86400",
            ));
        }
    };
    Ok(BridgeConfig { key, default_key, window: Duration::from_secs(window) })
}

/// `[broker]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// How long a pending request lives.
    pub ttl: Duration,
    /// `[broker] admin_agent`.
    pub admin_agent: Option<String>,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig {
            ttl: parse_ttl(defaults::TTL).unwrap_or(Duration::from_secs(86_400)),
            admin_agent: None,
        }
    }
}

pub(crate) fn validate(
    context: &Context,
    raw: RawBroker,
    agents: &std::collections::BTreeMap<String, crate::AgentConfig>,
) -> Result<BrokerConfig, ConfigError> {
    let admin_agent = match raw.admin_agent {
        None => None,
        Some(name) if agents.contains_key(name.get_ref()) => Some(name.into_inner()),
        Some(name) => {
            let configured: Vec<&str> = agents.keys().map(String::as_str).collect();
            return Err(context.error(
                name.span(),
                &["broker", "admin_agent"],
                format!("unknown agent `{}` (configured: {})", name.get_ref(), configured.join(", ")),
            ));
        }
    };
    let Some(ttl) = raw.ttl else { return Ok(BrokerConfig { admin_agent, ..BrokerConfig::default() }) };
    match parse_ttl(ttl.get_ref()) {
        Some(value) => Ok(BrokerConfig { ttl: value, admin_agent }),
        None => Err(context.error(
            ttl.span(),
            &["broker", "ttl"],
            format!(
                "`{}` is not a duration: a number of at least 1 with s, m, h or d, e.g. \"24h\" (at most 365d)",
                ttl.get_ref()
            ),
        )),
    }
}

/// `"90s"`, `"30m"`, `"24h"`, `"7d"`: at least one second, at most a year.
pub(crate) fn parse_ttl(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    let seconds_per = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3_600,
        'd' => 86_400,
        _ => return None,
    };
    let number: u64 = text[..text.len() - 1].parse().ok()?;
    let seconds = number.checked_mul(seconds_per)?;
    (1..=365 * 86_400).contains(&seconds).then(|| Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::parse_ttl;
    use std::time::Duration;

    #[test]
    fn ttls_take_a_unit_and_stay_in_range() {
        assert_eq!(parse_ttl("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_ttl("30m"), Some(Duration::from_secs(1_800)));
        assert_eq!(parse_ttl(" 24h "), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_ttl("7d"), Some(Duration::from_secs(604_800)));
        for bad in ["", "h", "24", "0s", "-1h", "1.5h", "400d", "99999999999999999999d", "24 h", "1w"] {
            assert_eq!(parse_ttl(bad), None, "{bad:?}");
        }
    }
}
