//! The skills seam: before a turn runs, the agent asks which skills the user's message routes
//! in; their text joins that turn's system prompt, and an untrusted one narrows the turn to
//! read-only tools.

use std::path::Path;

/// The tools a turn keeps when an untrusted skill is routed in: they read, never change
/// anything.
pub const READ_ONLY_TOOLS: &[&str] =
    &["read", "list", "grep", "web_fetch", "brain_query", "brain_get", "brain_timeline"];

/// The skills routed into one turn.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutedSkills {
    pub names: Vec<String>,
    /// Appended to the system prompt; empty when no skill applies.
    pub prompt: String,
    /// An untrusted skill is among them: only `READ_ONLY_TOOLS` this turn.
    pub read_only: bool,
}

/// Routes a user message to skills.
pub trait SkillRouter: Send + Sync {
    fn route(&self, agent: &str, workspace: &Path, message: &str) -> RoutedSkills;
}
