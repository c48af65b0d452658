//! The approval seam: a tool call the gate answered with "ask the owner" is stored as an
//! [`Approval`] (with the exact arguments the model gave), the owner decides, and only then does
//! the call run — with those arguments, once. The store behind [`ApprovalStore`] moves a
//! request between states only by compare-and-set, so a decision cannot be applied twice and a
//! request decided once cannot be decided again. The request broker of a later issue adds kinds
//! of its own to the same store.

use serde::{Deserialize, Serialize};

use crate::session::StoreError;
use crate::turn::{TurnError, TurnOrigin, TurnOutcome};

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for the owner.
    Pending,
    /// The owner approved; the call is running (or the gateway stopped while it ran).
    Approved,
    /// The owner refused; the call never ran.
    Denied,
    /// Nobody decided within the TTL; the call never ran.
    Expired,
    /// Approved, ran, and succeeded.
    Done,
    /// Approved and ran, but the call failed (or no longer matched its session).
    Failed,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Done => "done",
            ApprovalStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<ApprovalStatus> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Approved,
            ApprovalStatus::Denied,
            ApprovalStatus::Expired,
            ApprovalStatus::Done,
            ApprovalStatus::Failed,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// One request awaiting (or past) the owner's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// Short random hex, what the owner types: `clawdia broker approve 3f9a1c2b`.
    pub id: String,
    /// `tool_call` for the gate's requests.
    pub kind: String,
    pub status: ApprovalStatus,
    pub agent: String,
    pub session: String,
    /// The model's id for the call; the session's transcript must hold this very call.
    pub call_id: String,
    pub tool: String,
    /// The arguments exactly as the model gave them (JSON text); these and only these run.
    pub arguments: String,
    /// Who started the turn that made the call; the continuation runs as them.
    pub origin: TurnOrigin,
    pub sender: Option<String>,
    /// Why the gate asked (the `ask` entry that matched).
    pub reason: String,
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(default)]
    pub decided_at: Option<i64>,
    /// The owner's note with the decision.
    #[serde(default)]
    pub note: Option<String>,
    /// The start of the call's result (or why it failed), once it ran.
    #[serde(default)]
    pub result: Option<String>,
}

impl Approval {
    /// One line for lists and alerts: `exec {"command":"ls"}`, the arguments shortened.
    pub fn summary(&self) -> String {
        if self.kind == "elevation" {
            // The request broker's: its action (the commands are in `arguments`).
            return crate::text::one_line(&self.reason);
        }
        let arguments = crate::text::one_line(&self.arguments);
        let short: String = arguments.chars().take(160).collect();
        let ellipsis = if short.len() < arguments.len() { "…" } else { "" };
        format!("{} {short}{ellipsis}", self.tool)
    }
}

/// A state change: `id` moves from `from` to `to` only if it is still in `from`.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    pub id: &'a str,
    pub from: ApprovalStatus,
    pub to: ApprovalStatus,
    pub at: i64,
    pub note: Option<&'a str>,
    pub result: Option<&'a str>,
}

/// Where requests live (`state/broker.db`). Every state change is a compare-and-set.
pub trait ApprovalStore: Send + Sync {
    fn create(&self, approval: &Approval) -> Result<(), StoreError>;
    fn get(&self, id: &str) -> Result<Option<Approval>, StoreError>;
    /// Newest first; `pending_only` leaves out decided ones.
    fn list(&self, pending_only: bool, limit: usize) -> Result<Vec<Approval>, StoreError>;
    /// Applies `change` if the request is still in `change.from`; false when it was not (decided
    /// meanwhile, or no such request). A note or result given is recorded with the change.
    fn transition(&self, change: Transition<'_>) -> Result<bool, StoreError>;
    /// Pending requests whose `expires_at` is at or before `now`.
    fn due_to_expire(&self, now: i64) -> Result<Vec<Approval>, StoreError>;
    /// Approved requests decided at or before `before` that never reported back (`done` or
    /// `failed`): their call was cut off, by a gateway that stopped while it ran.
    fn stranded(&self, before: i64) -> Result<Vec<Approval>, StoreError>;
}

/// The owner's decision on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub approve: bool,
    pub note: Option<String>,
}

/// What came of a decision: the request as it now stands, and the turn in which the agent
/// learned the outcome (none when the approved call could not run: `approval.result` says why).
#[derive(Debug, Clone)]
pub struct Decided {
    pub approval: Approval,
    pub turn: Option<Result<TurnOutcome, TurnError>>,
}

/// Why a decision could not be applied. One line each.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("no request `{0}` (see `clawdia broker list`)")]
    NotFound(String),
    #[error("request `{id}` is already {status}; a request is decided once")]
    AlreadyDecided { id: String, status: &'static str },
    #[error("request `{0}` expired before it was decided; the call was not run")]
    Expired(String),
    #[error("this gateway keeps no approval requests")]
    Unavailable,
    #[error("{0}")]
    Store(String),
}
