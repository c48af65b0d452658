//! The tool seam: what a tool declares (its spec and policy group) and how it is called. Every
//! tool call goes through the agent's single dispatch point, which checks policy first.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::model::ToolSpec;
use crate::turn::TurnOrigin;

/// Receives a running tool's partial output (e.g. `exec`'s stdout as it appears), so whoever
/// watches the turn sees it before the tool returns. The final result is still the tool's return
/// value; progress is for display only and is never stored.
pub type ToolProgress = Arc<dyn Fn(&str) + Send + Sync>;

/// What a tool knows about the call it serves.
#[derive(Clone)]
pub struct ToolContext {
    pub agent: String,
    pub session_id: String,
    /// The agent's workspace folder; path arguments are relative to it.
    pub workspace: PathBuf,
    /// Who started the turn this call belongs to.
    pub origin: TurnOrigin,
    /// The identity the transport gave the turn's sender (see `TurnRequest::sender`).
    pub sender: Option<String>,
    /// Where partial output goes while the tool runs; `None` when nobody watches.
    pub progress: Option<ToolProgress>,
    /// The turn's own confinement of file writes (the `writes` globs of the skills it was
    /// routed), on top of the agent's: `write`/`edit` refuse other workspace paths and `exec`
    /// sees the workspace read-only. `None`: no such confinement.
    pub write_globs: Option<std::sync::Arc<[String]>>,
}

impl ToolContext {
    /// A context with no sender identity and no progress sink.
    pub fn new(
        agent: impl Into<String>,
        session_id: impl Into<String>,
        workspace: impl Into<PathBuf>,
        origin: TurnOrigin,
    ) -> ToolContext {
        ToolContext {
            agent: agent.into(),
            session_id: session_id.into(),
            workspace: workspace.into(),
            origin,
            sender: None,
            progress: None,
            write_globs: None,
        }
    }

    /// The sender as policies name it: `cli`, `api`, `scheduler`, `subagent`, or
    /// `<origin>:<id>` when the transport identified the sender (e.g. `api:alice`).
    pub fn sender_id(&self) -> String {
        crate::turn::sender_id(self.origin, self.sender.as_deref())
    }

    /// Reports partial output, if anybody watches.
    pub fn report(&self, text: &str) {
        if let Some(progress) = &self.progress {
            progress(text);
        }
    }
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("agent", &self.agent)
            .field("session_id", &self.session_id)
            .field("workspace", &self.workspace)
            .field("origin", &self.origin)
            .field("sender", &self.sender)
            .field("progress", &self.progress.is_some())
            .field("write_globs", &self.write_globs)
            .finish()
    }
}

/// A tool failure. The message goes back to the model as an error result, never as a crash.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    #[error("path `{0}` is outside the workspace")]
    PathEscape(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("refused: {0}")]
    Refused(String),
    #[error("timed out after {0}s")]
    Timeout(u64),
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    /// Security-relevant failures are written to the audit log.
    pub fn is_security_event(&self) -> bool {
        matches!(self, ToolError::PathEscape(_) | ToolError::Refused(_))
    }
}

/// A capability an agent can invoke.
#[async_trait]
pub trait Tool: Send + Sync {
    fn spec(&self) -> &ToolSpec;
    /// The policy group this tool belongs to (`fs`, `web`, `exec`, `brain`, `mcp:<server>`, ...).
    fn group(&self) -> &str;
    /// A rarely used tool: instead of sending its schema with every model call, the agent loop
    /// names it in `tool_search`, and offers it from the call after the model asks for it.
    fn on_demand(&self) -> bool {
        false
    }
    /// Runs the tool. `arguments` is already-parsed JSON (an object for well-formed calls).
    async fn call(&self, context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError>;
}

/// Tools known only at run time, e.g. an MCP server's, listed when the server starts. The agent
/// loop asks every source registered for an agent at the start of each turn (a source may start
/// something then, on first use) and again at the dispatch point for a name it does not know.
/// Its tools go through the same dispatch point as built-in ones. A source registered for an
/// agent is a grant: its tools need no entry in the agent's allow list, but its deny list (a
/// tool name or the tool's group) still applies.
#[async_trait]
pub trait ToolSource: Send + Sync {
    /// For audit events and errors, e.g. `mcp:everything`.
    fn name(&self) -> &str;
    /// The tools available now, or why there are none (one line). Must not take longer than
    /// the source's own start-up timeout.
    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, String>;
}
