//! The tool seam: what a tool declares (its spec and policy group) and how it is called. Every
//! tool call goes through the agent's single dispatch point, which checks policy first.

use std::path::PathBuf;

use async_trait::async_trait;

use crate::model::ToolSpec;

/// What a tool knows about the call it serves.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub agent: String,
    pub session_id: String,
    /// The agent's workspace folder; path arguments are relative to it.
    pub workspace: PathBuf,
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
    /// Runs the tool. `arguments` is already-parsed JSON (an object for well-formed calls).
    async fn call(&self, context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError>;
}
