//! The model seam: a chat request in provider-neutral form, the streamed deltas, the final
//! response with usage, the error kinds a fallback chain acts on, and the two traits — one
//! provider endpoint (`ModelClient`) and a chain of them with fallbacks (`Models`).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::message::Message;

/// `provider/model`, split at the first `/` (the model part may itself contain slashes, as
/// OpenRouter ids do).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl ModelRef {
    /// Parses `provider/model`; both parts must be non-empty.
    pub fn parse(text: &str) -> Option<ModelRef> {
        let (provider, model) = text.split_once('/')?;
        if provider.is_empty() || model.is_empty() || provider.trim() != provider {
            return None;
        }
        Some(ModelRef { provider: provider.to_string(), model: model.to_string() })
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// A tool as the model sees it: name, description and JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// One model call. `model` is the provider-side model id (without the provider prefix).
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub system: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    /// Stop sequences: generation ends before any of them would be written (and the reply
    /// does not contain it). Empty: none.
    pub stop: Vec<String>,
    /// Stream the reply (SSE) when true; otherwise one JSON response.
    pub stream: bool,
}

/// Token accounting for one model call (or a sum of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_read_tokens: u64,
    #[serde(default)]
    pub cache_write_tokens: u64,
}

impl Usage {
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    Other,
}

/// A complete model reply. Only complete replies exist as values: a stream that broke off is an
/// error, never a partial `ChatResponse`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// Always `Message::Assistant`.
    pub message: Message,
    pub usage: Usage,
    pub stop_reason: StopReason,
}

/// Incremental output while a reply streams in.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelDelta {
    Text(String),
    /// A tool call began (its arguments stream in afterwards).
    ToolCallStarted {
        id: String,
        name: String,
    },
}

/// Receives deltas while a reply streams. A delta may belong to an attempt that later fails:
/// when another model is tried after it, `discard` is called right before that attempt starts.
/// When no attempt follows, nothing is discarded: the chain's error is the last word, and the
/// caller says the reply was cut off.
pub trait DeltaSink: Send + Sync {
    fn delta(&self, delta: ModelDelta);
    /// The deltas sent so far came from `failed`, whose reply broke off; `next` is tried now.
    fn discard(&self, _failed: &ModelRef, _next: &ModelRef) {}
}

/// A sink that drops everything (non-streaming callers).
#[derive(Debug, Default)]
pub struct NoDeltas;

impl DeltaSink for NoDeltas {
    fn delta(&self, _delta: ModelDelta) {}
}

/// The failures of one model call, in the shape a fallback chain acts on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    #[error("rate limited (429){}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    #[error("server error {status}: {message}")]
    Server { status: u16, message: String },
    #[error("request rejected {status}: {message}")]
    Rejected { status: u16, message: String },
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("stream ended before the reply was complete: {0}")]
    Truncated(String),
    #[error("provider is cooling down for {remaining_secs}s after a failure")]
    CoolingDown { remaining_secs: u64 },
    #[error("no such provider `{0}`")]
    UnknownProvider(String),
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Other(String),
}

impl ModelError {
    /// A short stable word for records and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            ModelError::RateLimited { .. } => "rate_limited",
            ModelError::Server { .. } => "server_error",
            ModelError::Rejected { .. } => "rejected",
            ModelError::Unauthorized(_) => "unauthorized",
            ModelError::Connect(_) => "connect",
            ModelError::Timeout(_) => "timeout",
            ModelError::Malformed(_) => "malformed",
            ModelError::Truncated(_) => "truncated",
            ModelError::CoolingDown { .. } => "cooling_down",
            ModelError::UnknownProvider(_) => "unknown_provider",
            ModelError::Cancelled => "cancelled",
            ModelError::Other(_) => "other",
        }
    }

    /// Whether trying the same model again soon may succeed: a rate limit, a server error that
    /// means "busy" or "down for a moment" (500, 502, 503, 504, Anthropic's 529 overloaded), a
    /// connection that failed or was reset, a timeout, or a reply that broke off. Never a request
    /// the provider refused (400, 401, 403, 404, ...). Whoever retries must also know that no
    /// part of the failed reply reached the user.
    pub fn is_transient(&self) -> bool {
        match self {
            ModelError::RateLimited { .. }
            | ModelError::Connect(_)
            | ModelError::Timeout(_)
            | ModelError::Truncated(_) => true,
            ModelError::Server { status, .. } => matches!(status, 500 | 502 | 503 | 504 | 529),
            _ => false,
        }
    }

    /// Whether the provider should be put on a cooldown after this error.
    pub fn cools_down_provider(&self) -> bool {
        matches!(
            self,
            ModelError::RateLimited { .. }
                | ModelError::Server { .. }
                | ModelError::Connect(_)
                | ModelError::Timeout(_)
                | ModelError::Malformed(_)
                | ModelError::Truncated(_)
        )
    }
}

/// One provider endpoint speaking one wire format.
#[async_trait]
pub trait ModelClient: Send + Sync {
    async fn complete(&self, request: &ChatRequest, sink: &dyn DeltaSink)
    -> Result<ChatResponse, ModelError>;
}

/// One try of one model in a chain, kept for the audit trail and the turn record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub model: ModelRef,
    /// `None` on success, else the `ModelError::reason` word.
    pub failure: Option<String>,
    /// The error's message on failure.
    pub detail: Option<String>,
    pub elapsed_ms: u64,
    /// 0 for the first try of this chain entry, then 1, 2, ... for its retries after transient
    /// failures (the same model again, before the chain moves on).
    #[serde(default)]
    pub retry: u32,
}

/// The result of running a model chain: the reply from the model that answered (or the last
/// error), plus every attempt in order.
#[derive(Debug, Clone)]
pub struct ChainOutcome {
    pub result: Result<(ModelRef, ChatResponse), ModelError>,
    pub attempts: Vec<Attempt>,
    /// Set only when the chain failed on rate limits alone (every entry answered 429, or was
    /// skipped while cooling down after one): how long until a provider expects requests again.
    pub retry_after: Option<Duration>,
}

/// A set of providers that runs a request against an ordered chain of models, falling back on
/// failures and keeping per-provider cooldowns.
#[async_trait]
pub trait Models: Send + Sync {
    /// Tries `chain` in order. `request.model` is overwritten with each model's id.
    async fn complete(&self, chain: &[ModelRef], request: ChatRequest, sink: &dyn DeltaSink) -> ChainOutcome;
}

#[cfg(test)]
mod tests;
