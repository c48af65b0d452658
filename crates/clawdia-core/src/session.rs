//! The session seam: durable transcripts and the usage ledger that budgets read.
//!
//! Invariants every implementation keeps: `append` is atomic (all messages or none); only
//! complete messages are ever passed to it; `open` repairs a transcript whose last assistant
//! message has tool calls without results by appending a synthetic error result for each, so a
//! loaded transcript always pairs every call with a result.

use serde::{Deserialize, Serialize};

use crate::UnixMillis;
use crate::message::Message;
use crate::model::{ModelRef, Usage};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionMeta {
    pub id: String,
    pub agent: String,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    pub message_count: u64,
    /// The per-session random boundary used in trust markers.
    pub boundary: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredSession {
    pub meta: SessionMeta,
    pub messages: Vec<Message>,
    /// How many synthetic results `open` added to repair orphaned tool calls.
    pub repaired: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("session `{0}` not found")]
    NotFound(String),
    #[error("session `{id}` belongs to agent `{agent}`")]
    WrongAgent { id: String, agent: String },
    #[error("database error: {0}")]
    Database(String),
    /// Input that cannot become a session (a file to import with no message in it).
    #[error("{0}")]
    Invalid(String),
}

/// Transcripts and usage, shared by the gateway and the CLI.
pub trait SessionStore: Send + Sync {
    /// Loads session `id` of `agent` (repairing orphaned tool calls), or creates it with
    /// `boundary` when it does not exist.
    fn open(&self, agent: &str, id: &str, boundary: &str) -> Result<StoredSession, StoreError>;
    /// Appends complete messages atomically.
    fn append(&self, id: &str, messages: &[Message]) -> Result<(), StoreError>;
    /// Records one model call's usage and cost against the agent's ledger.
    fn record_usage(
        &self,
        agent: &str,
        session_id: &str,
        model: &ModelRef,
        usage: &Usage,
        cost_usd: f64,
    ) -> Result<(), StoreError>;
    /// Tokens and USD spent by `agent` since `since`.
    fn usage_since(&self, agent: &str, since: UnixMillis) -> Result<(u64, f64), StoreError>;
    /// Sessions, newest first.
    fn list(&self, agent: Option<&str>, limit: usize) -> Result<Vec<SessionMeta>, StoreError>;
    /// Deletes session `id` if it holds no message (a turn failed before its first reply);
    /// whether it did. A session with messages is left alone.
    fn discard_if_empty(&self, id: &str) -> Result<bool, StoreError>;
}
