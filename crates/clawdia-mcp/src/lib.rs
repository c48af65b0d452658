//! The MCP client. Each `[mcp.servers.NAME]` becomes an `McpServer`: a program started on first
//! use (the first turn of an agent granted it, or the first call), never at gateway start, over
//! stdio (rmcp) inside the same sandbox as `exec` (`clawdia_sandbox::spawn_stdio`: namespaces,
//! read-only root, the home's `secrets/` and `state/` hidden, no network beyond the server's
//! `egress` allowlist, rlimits, clean environment, its own writable folder). Its tools are
//! listed once per start and cached; they reach agents as `NAME__tool` (policy group
//! `mcp:NAME`) through `McpSource`, a `clawdia_core::ToolSource` registered only with the agents
//! the server is granted to, so the agent loop's single dispatch point checks policy, times and
//! audits every call.
//!
//! Isolation: every call has the server's `timeout_seconds`; a call that times out, or a server
//! that crashes, gets its whole process tree killed, and the caller an error result. The next
//! use starts it again, immediately after the first failure, then with a doubling backoff (up to
//! a minute) while failures repeat; a successful call resets it. Nothing here panics on a
//! server's behaviour: whatever it does becomes a one-line `McpError`.
//!
//! Architecture invariant: a capability crate; it depends only on clawdia-core, clawdia-config
//! and clawdia-sandbox (and rmcp, which owns the MCP wire format).

mod cache;
mod server;
mod tool;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use clawdia_config::{McpConfig, McpServerConfig};
use clawdia_core::{AuditSink, ToolSource};

pub use cache::{CachedTool, CachedTools, read_cache};
pub use server::{McpServer, ServerStatus, ToolInfo};
pub use tool::{McpSource, McpTool, tool_name};

/// Where a server runs: the sandbox helper binary, the paths hidden from it, and where the
/// tool lists are cached for `clawdia mcp list`.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The binary that calls `clawdia_sandbox::init_main_if_requested` first (the gateway).
    pub helper: PathBuf,
    /// Paths unreadable inside the server's sandbox (the home's `secrets/` and `state/`).
    pub hidden: Vec<PathBuf>,
    /// Folder for `NAME.json` tool lists; `None`: not cached on disk.
    pub cache_dir: Option<PathBuf>,
}

/// Why a server could not serve a request. One line each.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    /// The server could not be started (sandbox, program, handshake, listing).
    #[error("MCP server `{server}` cannot start: {message}")]
    Start { server: String, message: String },
    /// Failed recently; the next start is held back.
    #[error("MCP server `{server}` failed ({message}); it starts again in {seconds}s")]
    Backoff { server: String, message: String, seconds: u64 },
    /// The call took longer than `timeout_seconds`: the server was killed.
    #[error(
        "MCP server `{server}`: `{tool}` timed out after {seconds}s; the server was stopped and starts again on the next call"
    )]
    Timeout { server: String, tool: String, seconds: u64 },
    /// The server died (or closed its pipes) during the call.
    #[error("MCP server `{server}` crashed during `{tool}`: {message}; it starts again on the next call")]
    Crashed { server: String, tool: String, message: String },
    /// The server answered with a protocol error (unknown tool, bad arguments, ...).
    #[error("MCP server `{server}`: {message}")]
    Protocol { server: String, message: String },
    /// The tool ran and reported an error.
    #[error("{message}")]
    ToolFailed { message: String },
}

/// Every configured server, by name.
pub struct Mcp {
    servers: BTreeMap<String, Arc<McpServer>>,
}

impl Mcp {
    /// One (not started) server per `[mcp.servers.NAME]`.
    pub fn new(config: &McpConfig, launch: Launch, audit: Option<Arc<dyn AuditSink>>) -> Mcp {
        let servers = config
            .servers
            .values()
            .map(|server| {
                (server.name.clone(), McpServer::new(server.clone(), launch.clone(), audit.clone()))
            })
            .collect();
        Mcp { servers }
    }

    pub fn server(&self, name: &str) -> Option<&Arc<McpServer>> {
        self.servers.get(name)
    }

    pub fn servers(&self) -> impl Iterator<Item = &Arc<McpServer>> {
        self.servers.values()
    }

    /// The tool sources of the servers granted to `agent`.
    pub fn sources_for(&self, agent: &str) -> Vec<Arc<dyn ToolSource>> {
        self.servers
            .values()
            .filter(|server| server.config().agents.iter().any(|a| a == agent))
            .map(|server| Arc::new(McpSource::new(server.clone())) as Arc<dyn ToolSource>)
            .collect()
    }

    /// Stops every running server (and its process tree).
    pub async fn shutdown(&self) {
        for server in self.servers.values() {
            server.stop().await;
        }
    }
}

/// The sandbox choice of a server's config.
pub(crate) fn choice(config: &McpServerConfig) -> clawdia_sandbox::Choice {
    match config.sandbox {
        clawdia_config::Sandbox::Auto => clawdia_sandbox::Choice::Auto,
        clawdia_config::Sandbox::Bwrap => clawdia_sandbox::Choice::Bubblewrap,
        clawdia_config::Sandbox::Builtin => clawdia_sandbox::Choice::Builtin,
        clawdia_config::Sandbox::Off => clawdia_sandbox::Choice::Off,
    }
}
