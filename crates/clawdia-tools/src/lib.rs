//! Built-in agent tools: `read`, `write`, `edit`, `list`, `grep` confined to the agent's
//! workspace, `web_fetch` with time, size and address caps, and `exec`, which runs shell
//! commands inside the sandbox (`clawdia-sandbox`); `host_exec` runs owner-allowlisted host
//! binaries for allowlisted senders.
//!
//! Architecture invariant: every path argument goes through `paths::resolve`, which refuses
//! absolute paths, `..` components and symlinks that lead outside the workspace. This crate
//! knows nothing about policy, sessions or trust markers: the agent's dispatch point does that.

mod elevated;
mod elevation;
mod exec;
mod fs;
pub mod globs;
pub mod paths;
pub mod web;

use std::sync::Arc;

use clawdia_core::Tool;

pub use clawdia_sandbox::{Choice as SandboxChoice, Limits as ExecLimits};
pub use elevated::{CredentialSource, HostCommand, HostExec, HostExecSettings};
pub use elevation::RequestElevation;
pub use exec::ExecSettings;
pub use web::WebFetchLimits;

/// The workspace file tools (group `fs`).
pub fn fs_tools() -> Vec<Arc<dyn Tool>> {
    fs_tools_writing(None)
}

/// The workspace file tools, with `write` and `edit` confined to paths matching `write_globs`
/// (workspace-relative; `None`: anywhere in the workspace). A write elsewhere is refused.
pub fn fs_tools_writing(write_globs: Option<Vec<String>>) -> Vec<Arc<dyn Tool>> {
    [fs::FsOp::Read, fs::FsOp::Write, fs::FsOp::Edit, fs::FsOp::List, fs::FsOp::Grep]
        .into_iter()
        .map(|op| Arc::new(fs::FsTool::new(op).with_write_globs(write_globs.clone())) as Arc<dyn Tool>)
        .collect()
}

/// `web_fetch` (group `web`) with the given limits.
pub fn web_fetch(limits: WebFetchLimits) -> Arc<dyn Tool> {
    Arc::new(web::WebFetch::new(limits))
}

/// `exec` (group `exec`): shell commands in the sandbox.
pub fn exec(settings: ExecSettings) -> Arc<dyn Tool> {
    Arc::new(exec::Exec::new(settings))
}

/// Reads a required string argument.
fn string_arg<'a>(arguments: &'a serde_json::Value, key: &str) -> Result<&'a str, clawdia_core::ToolError> {
    arguments
        .get(key)
        .and_then(|v| v.as_str())
        .ok_or_else(|| clawdia_core::ToolError::InvalidArguments(format!("`{key}` (a string) is required")))
}

#[cfg(test)]
mod tests;
