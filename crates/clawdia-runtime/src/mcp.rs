//! MCP servers in the gateway: one `clawdia_mcp::Mcp` from `[mcp.servers]`, its sources granted
//! to the agents each server names (nothing starts here: a server starts on the first turn or
//! call that can use it), run in the sandbox with the home's `secrets/` and `state/` hidden and
//! the sandbox helper being this binary. Tool lists are cached in `state/mcp/` for
//! `clawdia mcp list`. In the daemon, the `mcp` component copies each server's state to the
//! status board as `mcp:NAME` and stops the servers on shutdown.

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

/// Grants every agent the servers that name it; the servers, when any are configured.
pub(crate) fn attach(config: &Config, agents: &mut Agents, audit: Arc<dyn AuditSink>) -> Option<Arc<Mcp>> {
    if config.mcp.servers.is_empty() {
        return None;
    }
    let mcp = servers(config, Some(audit));
    for agent in config.agents.keys() {
        for source in mcp.sources_for(agent) {
            agents.add_tool_source(agent, source);
        }
    }
    Some(Arc::new(mcp))
}

/// How often the `mcp` component reads the servers' states.
const WATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The `mcp` daemon component: lists each server as `mcp:NAME` on `board` — `running`, `stopped`
/// (not started yet: servers start on first use), or `failed` with its last error while it
/// fails (the server restarts itself with backoff on its next use) — with its restarts, and
/// stops every server (and its process tree) when the daemon stops.
pub(crate) fn watcher(mcp: Arc<Mcp>, board: Arc<clawdia_core::StatusBoard>) -> crate::daemon::Component {
    use clawdia_core::ComponentState;
    for server in mcp.servers() {
        board.register(&format!("mcp:{}", server.name()), ComponentState::Stopped);
    }
    crate::daemon::Component::new("mcp", move |token: crate::daemon::CancellationToken| {
        let (mcp, board) = (mcp.clone(), board.clone());
        async move {
            loop {
                for server in mcp.servers() {
                    // A server that is starting holds its lock: keep its last state meanwhile.
                    let Ok(status) = tokio::time::timeout(WATCH_EVERY, server.status()).await else {
                        continue;
                    };
                    let name = format!("mcp:{}", server.name());
                    let restarts = u32::try_from(status.starts.saturating_sub(1)).unwrap_or(u32::MAX);
                    let state = if status.running {
                        ComponentState::Running
                    } else if status.failures > 0 {
                        ComponentState::Failed
                    } else {
                        ComponentState::Stopped
                    };
                    board.observe(&name, state, restarts, status.last_error.as_deref());
                }
                tokio::select! {
                    () = tokio::time::sleep(WATCH_EVERY) => {}
                    () = token.cancelled() => break,
                }
            }
            mcp.shutdown().await;
            for server in mcp.servers() {
                board.set(&format!("mcp:{}", server.name()), ComponentState::Stopped);
            }
            Ok(())
        }
    })
}
