//! `ProviderSettings`: everything a provider client needs to reach one endpoint (base URL, key,
//! timeouts, cooldown, extra headers); its `Debug` never shows the key or header values. And
//! `RetryPolicy`: how the router retries one model after a transient failure before the chain
//! moves on.

use std::fmt;
use std::time::Duration;

/// How to reach one provider endpoint.
#[derive(Clone)]
pub struct ProviderSettings {
    /// The provider's name in model refs (`anthropic`, `zai`, ...); used in logs and errors.
    pub name: String,
    /// Anthropic: the host root (`https://api.anthropic.com`); OpenAI-compatible: the API root
    /// including its version segment (`https://api.openai.com/v1`, `https://api.z.ai/api/paas/v4`).
    pub base_url: String,
    pub api_key: Option<String>,
    /// Limit on establishing the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Longest silence allowed between response bytes (also the wait for the response head).
    pub read_timeout: Duration,
    /// How long the router skips this provider after a failure that cools it down.
    pub cooldown: Duration,
    /// Extra headers sent with every request (e.g. OpenRouter's `HTTP-Referer`).
    pub headers: Vec<(String, String)>,
}

impl ProviderSettings {
    /// Settings with the default timeouts (connect 10 s, read 120 s, cooldown 60 s), no key and
    /// no extra headers.
    pub fn new(name: impl Into<String>, base_url: impl Into<String>) -> ProviderSettings {
        ProviderSettings {
            name: name.into(),
            base_url: base_url.into(),
            api_key: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
            cooldown: Duration::from_secs(60),
            headers: Vec::new(),
        }
    }
}

impl fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ProviderSettings")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("cooldown", &self.cooldown)
            .field("headers", &header_names)
            .finish()
    }
}

/// How often and how long the router retries the same model after a transient failure (see
/// `ModelError::is_transient`) before it moves down the fallback chain. A retry happens only
/// when none of the failed reply reached the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first one; 0 disables retries.
    pub retries: u32,
    /// The wait before the first retry when the provider did not say how long to wait; it
    /// doubles for each further retry.
    pub base_delay: Duration,
    /// The longest wait before one retry. A `Retry-After` asking for more is honoured by not
    /// retrying: the chain moves on, and the provider cools down for at least that long.
    pub max_wait: Duration,
}

impl RetryPolicy {
    /// No retries: the first failure moves the chain on.
    pub const NONE: RetryPolicy =
        RetryPolicy { retries: 0, base_delay: Duration::ZERO, max_wait: Duration::ZERO };

    /// How long to wait before retry number `retry` (1-based) after a failure whose provider
    /// asked for `asked` (its `Retry-After`), or `None` when the policy allows no such retry.
    pub fn wait(&self, retry: u32, asked: Option<Duration>) -> Option<Duration> {
        if retry == 0 || retry > self.retries {
            return None;
        }
        let wait = match asked {
            Some(asked) => asked,
            None => self.base_delay.saturating_mul(1 << (retry - 1).min(16)).min(self.max_wait),
        };
        (wait <= self.max_wait).then_some(wait)
    }
}

impl Default for RetryPolicy {
    /// Two retries (three tries in all), 200 ms then 400 ms apart unless the provider says
    /// otherwise, never waiting more than 10 s for one.
    fn default() -> RetryPolicy {
        RetryPolicy { retries: 2, base_delay: Duration::from_millis(200), max_wait: Duration::from_secs(10) }
    }
}
