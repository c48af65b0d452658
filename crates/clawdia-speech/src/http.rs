//! The HTTP client the remote engines share (`openai`, `elevenlabs`): one URL, default headers
//! (a key marked sensitive), 10 s to connect and 120 s for a whole request, a reply read up to
//! 64 MiB and refused past that, transport failures and timeouts as one line naming the URL.
//! Each engine reads the status and body itself, since each wire words its errors differently.

use std::time::Duration;

use clawdia_core::{SpeechError, error_chain};
use reqwest::header::{CONTENT_TYPE, HeaderMap};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_BODY_BYTES: usize = 64 << 20;

/// An HTTP client and the one URL an engine posts to.
pub(crate) struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) url: reqwest::Url,
}

/// A reply as read: its status, content type and body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: Vec<u8>,
}

impl Client {
    /// `url` must be http(s); `headers` go with every request.
    pub(crate) fn new(url: &str, headers: HeaderMap) -> Result<Client, SpeechError> {
        crate::install_crypto_provider();
        let parsed = reqwest::Url::parse(url)
            .map_err(|error| SpeechError::Unavailable(format!("invalid speech base_url `{url}`: {error}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SpeechError::Unavailable(format!("speech base_url `{url}` is not http(s)")));
        }
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("clawdia/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                SpeechError::Unavailable(format!("cannot build HTTP client: {}", error_chain(&error)))
            })?;
        Ok(Client { http, url: parsed })
    }

    /// A POST of `body` as JSON to the URL, ready to send.
    pub(crate) fn post_json(
        &self,
        body: &impl serde::Serialize,
    ) -> Result<reqwest::RequestBuilder, SpeechError> {
        let body = serde_json::to_vec(body)
            .map_err(|error| SpeechError::Failed(format!("cannot encode the speech request: {error}")))?;
        Ok(self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, reqwest::header::HeaderValue::from_static("application/json"))
            .body(body))
    }

    /// Sends the request and reads the whole reply, whatever its status.
    pub(crate) async fn fetch(&self, request: reqwest::RequestBuilder) -> Result<Reply, SpeechError> {
        let mut response = request.send().await.map_err(|error| self.transport(&error))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| self.transport(&error))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(SpeechError::Failed(format!(
                    "{} sent a reply larger than {} MiB",
                    self.url,
                    MAX_BODY_BYTES >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply { status, content_type, body })
    }

    fn transport(&self, error: &reqwest::Error) -> SpeechError {
        if error.is_timeout() {
            SpeechError::Failed(format!("{} timed out: {}", self.url, error_chain(error)))
        } else {
            SpeechError::Failed(format!("cannot reach {}: {}", self.url, error_chain(error)))
        }
    }
}
