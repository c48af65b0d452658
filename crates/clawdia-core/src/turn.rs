//! The gateway seam: one agent turn as the server, the CLI and (later) channels and the
//! scheduler request it, and the events it streams back while it runs.
//!
//! Cancelling a turn is dropping its future: nothing partial is stored (see `session`).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::message::Message;
use crate::model::{Attempt, ModelRef, Usage};

/// Who asked for the turn. Only `Owner` input is unwrapped; everything else the model reads is
/// wrapped in trust markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnOrigin {
    /// The owner at the CLI.
    Cli,
    /// An authenticated HTTP API client (holds the gateway token).
    Api,
    /// A scheduled job or the heartbeat (the owner configured its prompt).
    Scheduler,
    /// A sub-agent's turn, started by its parent agent's `spawn_subagent`.
    Subagent,
    /// A message to the Telegram bot; the sender is the Telegram user id (`telegram:<id>`).
    Telegram,
    /// The request broker: a report on the signed bridge to the agent that asked
    /// (`broker:report`), or a command the owner approved (`broker:approved`).
    Broker,
    /// A mail to the email channel that passed DKIM/DMARC; the sender is the From address
    /// (`email:<address>`).
    Email,
}

impl TurnOrigin {
    /// `cli`, `api`, `cron` (the scheduler: a job or the heartbeat), `subagent`, `telegram`,
    /// `broker` or `email`.
    pub fn as_str(self) -> &'static str {
        match self {
            TurnOrigin::Cli => "cli",
            TurnOrigin::Api => "api",
            TurnOrigin::Scheduler => "cron",
            TurnOrigin::Subagent => "subagent",
            TurnOrigin::Telegram => "telegram",
            TurnOrigin::Broker => "broker",
            TurnOrigin::Email => "email",
        }
    }
}

/// The sender identity policies match on: the origin, plus `:<id>` when the transport
/// identified the sender (`api:alice`; a sub-agent acting for it: `subagent:api:alice`).
/// Characters other than ASCII letters, digits and `._@+-:` in the id become `_`; the origin
/// prefix comes from the transport, so no id can pose as another origin.
pub fn sender_id(origin: TurnOrigin, sender: Option<&str>) -> String {
    match sender.filter(|id| !id.is_empty()) {
        None => origin.as_str().to_string(),
        Some(id) => {
            let clean: String = id
                .chars()
                .take(128)
                .map(|c| if c.is_ascii_alphanumeric() || "._@+-:".contains(c) { c } else { '_' })
                .collect();
            format!("{}:{clean}", origin.as_str())
        }
    }
}

/// Whether `sender` (e.g. `api:alice`) is one the pattern names: exactly, or `ORIGIN:*` for any
/// identified sender of that origin.
pub fn sender_matches(pattern: &str, sender: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) if prefix.ends_with(':') => sender.starts_with(prefix) && sender.len() > prefix.len(),
        _ => pattern == sender,
    }
}

#[derive(Debug, Clone)]
pub struct TurnRequest {
    pub agent: String,
    /// Continue this session; `None` starts a new one.
    pub session: Option<String>,
    pub message: String,
    pub origin: TurnOrigin,
    /// The sender's identity within the origin, when the transport has one (the OpenAI `user`
    /// field, a chat id on a channel). Sub-agents inherit their parent turn's sender.
    pub sender: Option<String>,
    /// Whether the message is the owner's own words (the CLI, a holder of the gateway token, a
    /// job the owner configured). Anyone else's message reaches the model inside trust markers,
    /// like a tool result: data, never instructions.
    pub from_owner: bool,
    /// Earlier messages to seed a session that does not exist yet (an OpenAI client that sends
    /// the whole history without naming a session). Ignored for an existing session.
    pub history: Vec<Message>,
    /// Narrows the agent's tools to these names or groups for this turn (within the agent's own
    /// policy, never beyond it). `None`: the agent's policy alone.
    pub tools_allow: Option<Vec<String>>,
    /// How much context the model gets: everything, or a light one (the heartbeat, the dream's
    /// distillers).
    pub context: TurnContext,
    /// What the caller asked of this turn's model calls beyond the agent's own settings.
    pub options: TurnOptions,
}

/// A caller's settings for one turn's model calls (the OpenAI endpoint's `temperature`,
/// `max_tokens`, `stop` and `system` messages). The default changes nothing: the agent's own
/// settings apply. Never stored: they hold for this turn only.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TurnOptions {
    /// Replaces the agent's `temperature`.
    pub temperature: Option<f32>,
    /// Replaces the agent's `max_tokens` for every model call of the turn.
    pub max_tokens: Option<u32>,
    /// Stop sequences: the model stops before writing any of them.
    pub stop: Vec<String>,
    /// Instructions from the caller (who holds the owner's token), appended to the agent's
    /// system prompt.
    pub system: Option<String>,
}

/// The context a turn's model calls carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TurnContext {
    /// The workspace files (and daily notes) in the system prompt, the whole session.
    #[default]
    Full,
    /// No workspace files and only the last few messages of the session.
    Light,
    /// As `Light`, with the workspace's `HEARTBEAT.md` (the heartbeat's checklist) as the one file.
    Heartbeat,
}

impl TurnContext {
    /// `Light` or `Heartbeat`.
    pub fn is_light(self) -> bool {
        self != TurnContext::Full
    }
}

/// What a running turn reports, in order. A turn that succeeds ends with `End`; a turn that
/// fails returns its `TurnError`, which transports render as one final `Error` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TurnEvent {
    Started {
        session: String,
        agent: String,
    },
    TextDelta {
        text: String,
    },
    /// The text streamed since the last model call began came from an attempt that broke off,
    /// and a fallback model is tried next; `reason` says which failed and which comes next.
    /// When no model is left, there is no `Discard`: the turn ends with an error saying the
    /// reply was cut off.
    Discard {
        reason: String,
    },
    ToolStart {
        id: String,
        name: String,
        arguments: String,
    },
    /// Partial output of a running tool (e.g. `exec`), for display; the result follows in
    /// `ToolEnd`.
    ToolOutput {
        id: String,
        text: String,
    },
    ToolEnd {
        id: String,
        name: String,
        is_error: bool,
        summary: String,
    },
    /// A model failed (or was skipped while cooling down) and the next model of the chain is
    /// tried: `from` failed with `reason`, `to` comes next.
    Fallback {
        from: String,
        #[serde(default)]
        to: String,
        reason: String,
    },
    /// A model failed with a transient error (rate limit, overload, reset, timeout) before any
    /// of its reply was shown, and the same model is tried again; `attempt` counts the retries.
    Retry {
        model: String,
        reason: String,
        attempt: u32,
    },
    /// A tool call was not run: it waits for the owner's decision on request `id`. The turn
    /// ends after this round; the agent continues the session once the owner decides.
    ApprovalRequested {
        id: String,
        tool: String,
        reason: String,
    },
    Error {
        message: String,
    },
    End {
        usage: Usage,
        cost_usd: f64,
        model: Option<String>,
    },
}

/// Receives a turn's events as they happen.
pub trait TurnEvents: Send + Sync {
    fn event(&self, event: TurnEvent);
}

impl<F: Fn(TurnEvent) + Send + Sync> TurnEvents for F {
    fn event(&self, event: TurnEvent) {
        self(event)
    }
}

/// A finished turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnOutcome {
    pub session_id: String,
    /// The final assistant text.
    pub text: String,
    pub usage: Usage,
    pub cost_usd: f64,
    /// The model that produced the final reply.
    pub model: Option<ModelRef>,
    pub attempts: Vec<Attempt>,
    /// True when the final reply came from a model other than the first in the chain.
    pub used_fallback: bool,
    /// True when the final reply stopped because it reached `max_tokens` (it is cut short).
    pub hit_max_tokens: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TurnError {
    #[error("no agent named `{0}`")]
    UnknownAgent(String),
    #[error("{0}")]
    BudgetExceeded(String),
    /// The model chain gave no reply. `message` says what happened ("every model failed: ...",
    /// or that a reply was cut off mid-stream with no model left to try).
    #[error("{message}")]
    ModelsFailed {
        message: String,
        attempts: Vec<Attempt>,
        /// Set when only rate limits stood in the way: when to try again.
        retry_after: Option<Duration>,
    },
    #[error("session error: {0}")]
    Session(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No session id or marker boundary could be drawn; the turn did not start.
    #[error(transparent)]
    Random(#[from] crate::random::RandomError),
}

/// An agent as listed to clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub name: String,
    pub model: ModelRef,
    pub fallbacks: Vec<ModelRef>,
    pub tools: Vec<String>,
}

/// Runs turns; implemented by the runtime, used by the HTTP server and the CLI.
#[async_trait]
pub trait Gateway: Send + Sync {
    fn agents(&self) -> Vec<AgentInfo>;
    async fn run_turn(&self, request: TurnRequest, events: &dyn TurnEvents)
    -> Result<TurnOutcome, TurnError>;

    /// Applies the owner's decision on approval request `id`: an approved call runs with the
    /// arguments that were stored, then the agent continues the session with the outcome (its
    /// events go to `events`). A gateway without approvals refuses.
    async fn decide(
        &self,
        id: &str,
        decision: crate::approval::Decision,
        events: &dyn TurnEvents,
    ) -> Result<crate::approval::Decided, crate::approval::ApprovalError> {
        let _ = (id, decision, events);
        Err(crate::approval::ApprovalError::Unavailable)
    }

    /// The owner's answer to request `id` in their own words ("yes", "no, not on Fridays",
    /// "what would this touch?", "only the first part"): the gateway works out what it means
    /// and acts on it. Only the request broker's elevation requests take replies.
    async fn operator_reply(
        &self,
        id: &str,
        text: &str,
    ) -> Result<crate::elevation::ReplyOutcome, crate::approval::ApprovalError> {
        let _ = (id, text);
        Err(crate::approval::ApprovalError::Unavailable)
    }

    /// As [`Gateway::operator_reply`], for a reply that came by mail: it counts only with the
    /// request's one-time `token` (from the `[clawdia:ID:TOKEN]` tag of the subject).
    async fn operator_reply_with_token(
        &self,
        id: &str,
        token: &str,
        text: &str,
    ) -> Result<crate::elevation::ReplyOutcome, crate::approval::ApprovalError> {
        let _ = (id, token, text);
        Err(crate::approval::ApprovalError::Unavailable)
    }

    /// Approval requests, newest first (`pending_only`: those still waiting).
    fn approvals(
        &self,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<crate::approval::Approval>, crate::approval::ApprovalError> {
        let _ = (pending_only, limit);
        Err(crate::approval::ApprovalError::Unavailable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_ids_keep_the_transport_origin_first() {
        assert_eq!(sender_id(TurnOrigin::Cli, None), "cli");
        assert_eq!(sender_id(TurnOrigin::Api, Some("")), "api");
        assert_eq!(sender_id(TurnOrigin::Api, Some("alice")), "api:alice");
        assert_eq!(sender_id(TurnOrigin::Subagent, Some("api:alice")), "subagent:api:alice");
        assert_eq!(sender_id(TurnOrigin::Scheduler, Some("nightly-report")), "cron:nightly-report");
        assert_eq!(sender_id(TurnOrigin::Telegram, Some("123456789")), "telegram:123456789");
        assert_eq!(sender_id(TurnOrigin::Email, Some("ana@example.org")), "email:ana@example.org");
        // An API client cannot pass itself off as the owner's terminal.
        assert_eq!(sender_id(TurnOrigin::Api, Some("\ncli")), "api:_cli");
        assert_eq!(sender_id(TurnOrigin::Api, Some("a b*")), "api:a_b_");
    }
}
