//! MCP servers in the gateway: one `clawdia_mcp::Mcp` from `[mcp.servers]`, its sources granted
//! to the agents each server names (nothing starts here: a server starts on the first turn or
//! call that can use it), run in the sandbox with the home's `secrets/` and `state/` hidden and
//! the sandbox helper being this binary. Tool lists are cached in `state/mcp/` for
//! `clawdia mcp list`.

use std::sync::Arc;

use clawdia_agent::Agents;
use clawdia_config::Config;
use clawdia_core::AuditSink;

pub use clawdia_mcp::{
    CachedTools, Launch, Mcp, McpError, McpServer, McpSource, ToolInfo, read_cache, tool_name,
};

/// Where servers run and what they cannot see.
pub fn launch(config: &Config) -> Launch {
    let state = crate::state_dir(&config.home);
    Launch {
        helper: crate::sandbox_helper(),
        hidden: vec![config.home.join("secrets"), state.clone()],
        cache_dir: Some(cache_dir(config)),
    }
}

/// The folder of the cached tool lists.
pub fn cache_dir(config: &Config) -> std::path::PathBuf {
    crate::state_dir(&config.home).join("mcp")
}

/// The configured servers, not started.
pub fn servers(config: &Config, audit: Option<Arc<dyn AuditSink>>) -> Mcp {
    Mcp::new(&config.mcp, launch(config), audit)
}

/// Grants every agent the servers that name it.
pub(crate) fn attach(config: &Config, agents: &mut Agents, audit: Arc<dyn AuditSink>) {
    if config.mcp.servers.is_empty() {
        return;
    }
    let mcp = servers(config, Some(audit));
    for agent in config.agents.keys() {
        for source in mcp.sources_for(agent) {
            agents.add_tool_source(agent, source);
        }
    }
}
