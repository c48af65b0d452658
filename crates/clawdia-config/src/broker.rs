//! `[broker]`: the store of requests awaiting the owner — today the tool gate's approval
//! requests (`ask`), later the request broker's own kinds. This module holds both stages: the
//! raw table as written and its validation, so `raw.rs` and `validate.rs` only call in.

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
}

/// `[broker]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// How long a pending request lives.
    pub ttl: Duration,
}

impl Default for BrokerConfig {
    fn default() -> BrokerConfig {
        BrokerConfig { ttl: parse_ttl(defaults::TTL).unwrap_or(Duration::from_secs(86_400)) }
    }
}

pub(crate) fn validate(context: &Context, raw: RawBroker) -> Result<BrokerConfig, ConfigError> {
    let Some(ttl) = raw.ttl else { return Ok(BrokerConfig::default()) };
    match parse_ttl(ttl.get_ref()) {
        Some(value) => Ok(BrokerConfig { ttl: value }),
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
