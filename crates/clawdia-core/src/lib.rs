//! Clawdia's core: the provider-neutral conversation types, the events a turn emits, and the seam
//! traits (models, tools, sessions, audit, gateway) through which the capability crates meet.
//!
//! Architecture invariant: this crate does no IO and knows no wire format. It names no concrete
//! provider, database or HTTP type; the composition root (`clawdia-runtime`) plugs those in. Its
//! only requests to the operating system are system calls that touch no file, socket or
//! database: the clock (`time`) and the random number generator (`random`).

pub mod approval;
pub mod audit;
pub mod bridge;
pub mod browser;
pub mod crypto;
pub mod elevation;
pub mod embed;
pub mod hook;
pub mod message;
pub mod model;
pub mod notify;
pub mod random;
pub mod redact;
pub mod session;
pub mod skills;
pub mod speech;
pub mod status;
pub mod text;
pub mod time;
pub mod tool;
pub mod turn;
pub mod uploads;

pub use approval::{Approval, ApprovalError, ApprovalStatus, ApprovalStore, Decided, Decision, Transition};
pub use audit::{AuditEvent, AuditSink, Severity};
pub use browser::{BrowserSession, BrowserStore, CodeCheck};
pub use embed::{EmbedError, Embedder};
pub use hook::{HookAnswer, InboundHook};
pub use message::{Message, ToolCall};
pub use model::{
    Attempt, ChainOutcome, ChatRequest, ChatResponse, DeltaSink, ModelClient, ModelDelta, ModelError,
    ModelRef, Models, NoDeltas, StopReason, ToolSpec, Usage,
};
pub use notify::{Alert, AlertChannel, LiveAlerts, NoNotifier, Notifier};
pub use session::{SessionMeta, SessionStore, StoreError, StoredSession};
pub use skills::{READ_ONLY_TOOLS, RoutedSkills, SkillRouter};
pub use speech::{Pcm, SpeechError, SpeechToText, TextToSpeech, Transcript, VoiceNotes};
pub use status::{ComponentState, ComponentStatus, StatusBoard};
pub use text::{error_body_message, error_chain, first_line, frontmatter_fence, hex, one_line};
pub use tool::{Tool, ToolContext, ToolError, ToolProgress, ToolSource};
pub use turn::{
    AgentInfo, Gateway, TurnContext, TurnError, TurnEvent, TurnEvents, TurnOptions, TurnOrigin, TurnOutcome,
    TurnRequest, sender_id, sender_matches,
};

/// Milliseconds since the Unix epoch; the one timestamp representation used across crates.
pub type UnixMillis = i64;
