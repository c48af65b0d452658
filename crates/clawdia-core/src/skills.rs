//! The skills seam: before a turn runs, the agent asks which skills the user's message routes
//! in; their text joins that turn's system prompt, an untrusted one narrows the turn to
//! read-only tools, and the triggered skills' own declarations (`mutating: false`, `writes`)
//! narrow it to what they say they need.

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
    /// Every skill the message triggered declares `mutating: false`: only `READ_ONLY_TOOLS`
    /// this turn as well.
    pub declared_read_only: bool,
    /// Every skill the message triggered declares where it writes (`writes`, or
    /// `mutating: false`): `write` and `edit` are confined to these workspace globs this turn
    /// and `exec` sees the workspace read-only. `None`: no confinement from skills.
    pub write_globs: Option<Vec<String>>,
}

/// Routes a user message to skills.
pub trait SkillRouter: Send + Sync {
    fn route(&self, agent: &str, workspace: &Path, message: &str) -> RoutedSkills;
}
