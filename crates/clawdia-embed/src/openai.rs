//! The OpenAI-compatible embedder: `POST {base_url}/embeddings` with
//! `{"model", "input": [...]}` (plus `"dimensions"` when configured), a Bearer key when there
//! is one, and the JSON wire types, which live here and nowhere else.
//!
//! Requests carry at most `MAX_INPUTS_PER_REQUEST` texts; longer calls are split. Replies are
//! checked (one vector per input, `index` a permutation, one length throughout) and vectors are
//! L2-normalized here, since not every compatible server normalizes. The dimension count comes
//! from the configuration, else a table of OpenAI's models, else the first response (until
//! then `dimensions()` is 0). Errors: 429 is `RateLimited`; everything else (other statuses,
//! transport failures, timeouts, bodies that are not the wire format) is `Failed` with one line
//! that names the endpoint. Timeouts: 10 s to connect, 60 s for the whole request.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use clawdia_core::{EmbedError, Embedder, error_chain};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

/// Texts per HTTP request (OpenAI accepts up to 2048; smaller requests fail and retry cheaper).
pub(crate) const MAX_INPUTS_PER_REQUEST: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const TOTAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Cap on a response body (64 vectors of 3072 floats as JSON are ~5 MB).
const MAX_BODY_BYTES: usize = 64 << 20;
/// Error messages taken from a response body are cut to this many characters.
const ERROR_MESSAGE_CHARS: usize = 200;

/// An OpenAI-compatible `/embeddings` endpoint.
pub struct OpenAiEmbedder {
    client: reqwest::Client,
    url: reqwest::Url,
    model: String,
    model_id: String,
    /// Sent as `dimensions` and required of every vector.
    configured_dimensions: Option<usize>,
    /// Known dimensions; 0 until the configuration, the model table or a response says.
    dimensions: AtomicUsize,
}

impl OpenAiEmbedder {
    /// An embedder for `{base_url}/embeddings` (e.g. `https://api.openai.com/v1`) and `model`.
    /// `dimensions`, when given, is sent in every request and every vector must have it.
    pub fn new(
        base_url: &str,
        api_key: Option<String>,
        model: &str,
        dimensions: Option<usize>,
    ) -> Result<OpenAiEmbedder, EmbedError> {
        crate::install_crypto_provider();
        let url_text = format!("{}/embeddings", base_url.trim_end_matches('/'));
        let url = reqwest::Url::parse(&url_text).map_err(|error| {
            EmbedError::Unavailable(format!("invalid embeddings base_url `{url_text}`: {error}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EmbedError::Unavailable(format!("embeddings base_url `{url_text}` is not http(s)")));
        }
        if model.trim().is_empty() {
            return Err(EmbedError::Unavailable("embeddings model name is empty".to_string()));
        }
        if dimensions == Some(0) {
            return Err(EmbedError::Unavailable("embeddings dimensions must be at least 1".to_string()));
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = api_key.filter(|key| !key.is_empty()) {
            let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
                EmbedError::Unavailable("embeddings API key is not a valid header value".to_string())
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TOTAL_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("clawdia/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| {
                EmbedError::Unavailable(format!("cannot build HTTP client: {}", error_chain(&error)))
            })?;
        let known = dimensions.or_else(|| known_dimensions(model)).unwrap_or(0);
        Ok(OpenAiEmbedder {
            client,
            url,
            model: model.to_string(),
            model_id: format!("openai/{model}"),
            configured_dimensions: dimensions,
            dimensions: AtomicUsize::new(known),
        })
    }

    /// One request for at most `MAX_INPUTS_PER_REQUEST` texts.
    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = serde_json::to_vec(&WireRequest {
            model: &self.model,
            input: texts,
            dimensions: self.configured_dimensions,
        })
        .map_err(|error| EmbedError::Failed(format!("cannot encode embeddings request: {error}")))?;
        let response = self
            .client
            .post(self.url.clone())
            .body(body)
            .send()
            .await
            .map_err(|error| self.transport(&error))?;
        let status = response.status();
        let body = self.read_body(response).await?;
        if status.as_u16() == 429 {
            tracing::debug!(url = %self.url, "embeddings endpoint rate limited");
            return Err(EmbedError::RateLimited);
        }
        if !status.is_success() {
            return Err(EmbedError::Failed(format!(
                "{} returned HTTP {}: {}",
                self.url,
                status.as_u16(),
                error_message(&body)
            )));
        }
        let reply: WireResponse = serde_json::from_slice(&body).map_err(|error| {
            EmbedError::Failed(format!("{} sent an invalid embeddings response: {error}", self.url))
        })?;
        let vectors = ordered_vectors(reply, texts.len()).map_err(|problem| {
            EmbedError::Failed(format!("{} sent an invalid embeddings response: {problem}", self.url))
        })?;
        self.check_dimensions(&vectors)?;
        Ok(vectors.into_iter().map(normalized).collect())
    }

    async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, EmbedError> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| self.transport(&error))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(EmbedError::Failed(format!(
                    "{} sent a response larger than {MAX_BODY_BYTES} bytes",
                    self.url
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Every vector has the known length, or (none known yet) the first vector's length,
    /// which then becomes the known one.
    fn check_dimensions(&self, vectors: &[Vec<f32>]) -> Result<(), EmbedError> {
        let Some(first) = vectors.first() else {
            return Ok(());
        };
        let expected = match self.dimensions.compare_exchange(
            0,
            first.len(),
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                tracing::debug!(model = %self.model_id, dimensions = first.len(), "learned embedding dimensions");
                first.len()
            }
            Err(known) => known,
        };
        match vectors.iter().find(|vector| vector.len() != expected) {
            None => Ok(()),
            Some(vector) => Err(EmbedError::Failed(format!(
                "{} returned {}-dimensional vectors, expected {expected}",
                self.url,
                vector.len()
            ))),
        }
    }

    fn transport(&self, error: &reqwest::Error) -> EmbedError {
        if error.is_timeout() {
            EmbedError::Failed(format!("{} timed out: {}", self.url, error_chain(error)))
        } else {
            EmbedError::Failed(format!("cannot reach {}: {}", self.url, error_chain(error)))
        }
    }
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client's default headers hold the key; they are left out.
        formatter
            .debug_struct("OpenAiEmbedder")
            .field("url", &self.url.as_str())
            .field("model_id", &self.model_id)
            .field("dimensions", &self.dimensions.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions.load(Ordering::Acquire)
    }

    fn batch_size(&self) -> usize {
        MAX_INPUTS_PER_REQUEST
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut vectors = Vec::with_capacity(texts.len());
        for batch in texts.chunks(MAX_INPUTS_PER_REQUEST) {
            vectors.extend(self.request(batch).await?);
        }
        Ok(vectors)
    }
}

// ---- wire ------------------------------------------------------------------------------------

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
pub(crate) struct WireResponse {
    data: Vec<WireEmbedding>,
}

#[derive(Deserialize)]
struct WireEmbedding {
    embedding: Vec<f32>,
    /// Position of the input; servers that leave it out answer in order.
    #[serde(default)]
    index: Option<usize>,
}

/// The vectors in input order: exactly one per input, `index` (when given) a permutation.
pub(crate) fn ordered_vectors(reply: WireResponse, inputs: usize) -> Result<Vec<Vec<f32>>, String> {
    if reply.data.len() != inputs {
        return Err(format!("{} embeddings for {inputs} inputs", reply.data.len()));
    }
    let mut slots: Vec<Option<Vec<f32>>> = vec![None; inputs];
    for (position, item) in reply.data.into_iter().enumerate() {
        let index = item.index.unwrap_or(position);
        let slot =
            slots.get_mut(index).ok_or_else(|| format!("index {index} out of range for {inputs} inputs"))?;
        if slot.replace(item.embedding).is_some() {
            return Err(format!("index {index} appears twice"));
        }
    }
    // Every slot is filled: `inputs` items landed in distinct slots of `inputs`.
    Ok(slots.into_iter().flatten().collect())
}

/// `vector` scaled to unit length (a zero vector stays zero).
pub(crate) fn normalized(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|value| value * value).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        vector.iter_mut().for_each(|value| *value /= norm);
    }
    vector
}

/// Output sizes of OpenAI's own embedding models.
fn known_dimensions(model: &str) -> Option<usize> {
    match model {
        "text-embedding-3-small" | "text-embedding-ada-002" => Some(1536),
        "text-embedding-3-large" => Some(3072),
        _ => None,
    }
}

/// The human message of an error body, or that the body was empty.
pub(crate) fn error_message(body: &[u8]) -> String {
    clawdia_core::error_body_message(body, ERROR_MESSAGE_CHARS).unwrap_or_else(|| "empty body".to_string())
}

#[cfg(test)]
mod tests;
