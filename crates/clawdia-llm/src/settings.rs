//! `ProviderSettings`: everything a provider client needs to reach one endpoint (base URL, key,
//! timeouts, cooldown, extra headers). Its `Debug` never shows the key or header values.

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
