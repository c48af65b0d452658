//! The transport both provider clients share: one pooled `reqwest::Client` per endpoint, the
//! POST with its fixed headers, the mapping of HTTP statuses and transport failures to
//! `ModelError`, bounded body reads with a per-read silence limit, an SSE event reader on top of
//! [`crate::sse`], and `Retry-After` parsing (seconds, HTTP-date, or `retry-after-ms`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clawdia_core::{ModelError, error_chain};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde::de::DeserializeOwned;

use crate::settings::ProviderSettings;
use crate::sse::{SseEvent, SseParser};

/// Cap on a non-streaming response body.
const MAX_BODY_BYTES: usize = 64 << 20;
/// How much of an error response body is read to find its message.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;
/// How much trailing data after a complete streamed reply is read to keep the connection.
const MAX_DRAIN_BYTES: usize = 64 << 10;
/// Error messages taken from a provider's body are cut to this many characters.
const ERROR_MESSAGE_CHARS: usize = 300;

/// One provider URL with its client, headers and timeouts; cheap to use per request.
#[derive(Debug)]
pub(crate) struct Endpoint {
    name: String,
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    connect_timeout: Duration,
    read_timeout: Duration,
}

/// A header the client always sends; `secret` values are marked sensitive (kept out of logs).
pub(crate) struct FixedHeader {
    pub name: &'static str,
    pub value: String,
    pub secret: bool,
}

impl Endpoint {
    /// Builds the endpoint `{base_url}{path}` with the provider's fixed headers followed by the
    /// configured extra headers.
    pub(crate) fn new(
        settings: &ProviderSettings,
        path: &str,
        fixed: Vec<FixedHeader>,
    ) -> Result<Endpoint, ModelError> {
        crate::install_crypto_provider();
        let name = settings.name.clone();
        let url_text = format!("{}{}", settings.base_url.trim_end_matches('/'), path);
        let url = reqwest::Url::parse(&url_text).map_err(|error| {
            ModelError::Other(format!("provider `{name}`: invalid base_url `{url_text}`: {error}"))
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let extra = settings.headers.iter().map(|(name, value)| (name.as_str(), value, false));
        let fixed = fixed.iter().map(|header| (header.name, &header.value, header.secret));
        for (header_name, value, secret) in fixed.chain(extra) {
            let header_name = HeaderName::from_bytes(header_name.as_bytes()).map_err(|_| {
                ModelError::Other(format!("provider `{name}`: invalid header name `{header_name}`"))
            })?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                ModelError::Other(format!("provider `{name}`: invalid value for header `{header_name}`"))
            })?;
            value.set_sensitive(secret);
            headers.insert(header_name, value);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .read_timeout(settings.read_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("clawdia/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                ModelError::Other(format!(
                    "provider `{name}`: cannot build HTTP client: {}",
                    error_chain(&error)
                ))
            })?;
        Ok(Endpoint {
            name,
            client,
            url,
            headers,
            connect_timeout: settings.connect_timeout,
            read_timeout: settings.read_timeout,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// POSTs `body` (JSON) and returns the response once its head arrived with a success
    /// status; any other status becomes the matching `ModelError`.
    pub(crate) async fn post(&self, body: Vec<u8>) -> Result<reqwest::Response, ModelError> {
        let request = self.client.post(self.url.clone()).headers(self.headers.clone()).body(body).send();
        // reqwest's own connect and read timeouts fire first; this is a backstop.
        let limit = self.connect_timeout + self.read_timeout;
        let response = match tokio::time::timeout(limit, request).await {
            Err(_) => {
                return Err(ModelError::Timeout(format!(
                    "{}: no response within {} ms",
                    self.name,
                    limit.as_millis()
                )));
            }
            Ok(Err(error)) => return Err(self.send_error(error)),
            Ok(Ok(response)) => response,
        };
        if response.status().is_success() { Ok(response) } else { Err(self.status_error(response).await) }
    }

    fn send_error(&self, error: reqwest::Error) -> ModelError {
        let timeout = error.is_timeout();
        let detail = self.transport_detail(error);
        if timeout {
            ModelError::Timeout(detail)
        } else {
            // Refused, reset, DNS, TLS, or the peer closed before answering: all mean the
            // request never got a reply from this endpoint.
            ModelError::Connect(detail)
        }
    }

    /// A transport failure as `provider: cause`, without the URL reqwest puts in its message:
    /// the provider's name says which endpoint failed, and the internal address (a proxy, a
    /// host on the private network) is nobody's business but the owner's config.
    fn transport_detail(&self, error: reqwest::Error) -> String {
        format!("{}: {}", self.name, error_chain(&error.without_url()))
    }

    async fn status_error(&self, mut response: reqwest::Response) -> ModelError {
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers(), SystemTime::now());
        let body = read_prefix(&mut response, self.read_timeout, MAX_ERROR_BODY_BYTES).await;
        let message = error_message(&body, status);
        tracing::debug!(provider = %self.name, status, %message, "provider returned an error status");
        match status {
            429 => ModelError::RateLimited { retry_after },
            401 | 403 => ModelError::Unauthorized(message),
            500..=599 => ModelError::Server { status, message },
            _ => ModelError::Rejected { status, message },
        }
    }

    /// Reads a whole (non-streaming) body, failing on silence longer than the read timeout.
    pub(crate) async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, ModelError> {
        let expected = response.content_length().unwrap_or(0).min(MAX_BODY_BYTES as u64);
        let mut body = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
        while let Some(chunk) = self.next_chunk(&mut response).await? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(ModelError::Malformed(format!(
                    "{}: response body larger than {MAX_BODY_BYTES} bytes",
                    self.name
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    async fn next_chunk(&self, response: &mut reqwest::Response) -> Result<Option<bytes::Bytes>, ModelError> {
        match tokio::time::timeout(self.read_timeout, response.chunk()).await {
            Err(_) => Err(ModelError::Timeout(format!(
                "{}: no data for {} ms",
                self.name,
                self.read_timeout.as_millis()
            ))),
            Ok(Err(error)) if error.is_timeout() => Err(ModelError::Timeout(self.transport_detail(error))),
            Ok(Err(error)) => Err(ModelError::Truncated(format!(
                "{}: connection broke mid-reply: {}",
                self.name,
                error_chain(&error.without_url())
            ))),
            Ok(Ok(chunk)) => Ok(chunk),
        }
    }

    /// Parses a complete JSON body: a body that ends early is `Truncated`, anything else that
    /// does not fit `T` is `Malformed`.
    pub(crate) fn parse_body<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, ModelError> {
        serde_json::from_slice(body).map_err(|error| {
            if error.is_eof() {
                ModelError::Truncated(format!("{}: response body ends mid-JSON", self.name))
            } else {
                ModelError::Malformed(format!("{}: {error}", self.name))
            }
        })
    }

    /// Parses one SSE event's data; it is complete by construction, so any failure is
    /// `Malformed`.
    pub(crate) fn parse_event<T: DeserializeOwned>(&self, data: &str) -> Result<T, ModelError> {
        serde_json::from_str(data).map_err(|error| {
            ModelError::Malformed(format!("{}: bad event data ({error}): {}", self.name, clip(data)))
        })
    }
}

/// Reads SSE events off a streaming response, one `read_timeout` per network read.
pub(crate) struct SseReader<'a> {
    endpoint: &'a Endpoint,
    response: reqwest::Response,
    parser: SseParser,
    ready: std::vec::IntoIter<SseEvent>,
    scratch: Vec<SseEvent>,
    ended: bool,
}

impl<'a> SseReader<'a> {
    pub(crate) fn new(endpoint: &'a Endpoint, response: reqwest::Response) -> SseReader<'a> {
        SseReader {
            endpoint,
            response,
            parser: SseParser::new(),
            ready: Vec::new().into_iter(),
            scratch: Vec::new(),
            ended: false,
        }
    }

    /// The next complete event, or `None` once the body ended cleanly.
    pub(crate) async fn next(&mut self) -> Result<Option<SseEvent>, ModelError> {
        loop {
            if let Some(event) = self.ready.next() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            match self.endpoint.next_chunk(&mut self.response).await? {
                None => self.ended = true,
                Some(chunk) => {
                    self.parser
                        .push(&chunk, &mut self.scratch)
                        .map_err(|error| ModelError::Malformed(format!("{}: {error}", self.endpoint.name)))?;
                    self.ready = std::mem::take(&mut self.scratch).into_iter();
                }
            }
        }
    }

    /// The reply is complete: read whatever still follows (usually just the end of the
    /// chunked body) in the background, so the connection can go back to the pool instead of
    /// being closed, without making the caller wait for it.
    pub(crate) fn release(self) {
        if self.ended {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut response = self.response;
        let read_timeout = self.endpoint.read_timeout;
        runtime.spawn(async move {
            let mut drained = 0;
            while drained < MAX_DRAIN_BYTES {
                match tokio::time::timeout(read_timeout, response.chunk()).await {
                    Ok(Ok(Some(chunk))) => drained += chunk.len(),
                    _ => break,
                }
            }
        });
    }
}

/// Whether the response is a JSON document rather than an event stream: some servers answer a
/// streaming request with one plain JSON reply, which is then read as such.
/// A server that answered a streaming request with one whole JSON reply (some OpenAI-compatible
/// servers ignore `stream`): the caller still gets the text as it would from a stream, in one
/// delta, so whoever shows the reply as it arrives shows it.
pub(crate) fn whole_reply_as_delta(
    request: &clawdia_core::ChatRequest,
    response: clawdia_core::ChatResponse,
    sink: &dyn clawdia_core::DeltaSink,
) -> clawdia_core::ChatResponse {
    if request.stream
        && let clawdia_core::Message::Assistant { text, .. } = &response.message
        && !text.is_empty()
    {
        sink.delta(clawdia_core::ModelDelta::Text(text.clone()));
    }
    response
}

pub(crate) fn is_json(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.trim_start().starts_with("application/json"))
}

/// Reads up to `limit` bytes of a body, giving up quietly on errors (used for error bodies).
async fn read_prefix(response: &mut reqwest::Response, read_timeout: Duration, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match tokio::time::timeout(read_timeout, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    body
}

/// The human message of an error body, or that the body was empty.
pub(crate) fn error_message(body: &[u8], status: u16) -> String {
    clawdia_core::error_body_message(body, ERROR_MESSAGE_CHARS)
        .unwrap_or_else(|| format!("HTTP {status} with an empty body"))
}

fn truncate_chars(mut text: String, max_chars: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
    }
    text
}

/// A short excerpt of event data for error messages.
fn clip(text: &str) -> String {
    truncate_chars(text.to_string(), 120)
}

/// How long the provider asks us to wait: `retry-after-ms` (OpenAI) wins, else `Retry-After`
/// as delay-seconds or an HTTP-date (a date in the past means zero).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let millis = headers
        .get("retry-after-ms")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .and_then(|millis| Duration::try_from_secs_f64(millis / 1000.0).ok());
    if millis.is_some() {
        return millis;
    }
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
    }
    let at = parse_http_date(text)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form servers send.
pub(crate) fn parse_http_date(text: &str) -> Option<SystemTime> {
    let mut parts = text.split_whitespace();
    let _weekday = parts.next()?.strip_suffix(',')?;
    let day: u32 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut clock = parts.next()?.split(':');
    let hour: u64 = clock.next()?.parse().ok()?;
    let minute: u64 = clock.next()?.parse().ok()?;
    let second: u64 = clock.next()?.parse().ok()?;
    if parts.next()? != "GMT" || parts.next().is_some() || clock.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || !(1970..=9999).contains(&year) {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests;
