//! The on-disk copy of each server's last tool list (`<cache_dir>/NAME.json`), written when a
//! server starts, so `clawdia mcp list` can show a running gateway's tools without starting
//! anything. Best effort: a write failure is logged, a missing or unreadable file is `None`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::server::ToolInfo;

/// A server's tools as last listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedTools {
    /// Unix milliseconds of the listing.
    pub listed_at_ms: i64,
    pub tools: Vec<CachedTool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedTool {
    pub name: String,
    pub description: String,
}

pub(crate) fn write(dir: &Path, server: &str, tools: &[ToolInfo]) {
    let cached = CachedTools {
        listed_at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
        tools: tools
            .iter()
            .map(|tool| CachedTool { name: tool.name.clone(), description: tool.description.clone() })
            .collect(),
    };
    let result = std::fs::create_dir_all(dir).and_then(|()| {
        let json = serde_json::to_vec_pretty(&cached).map_err(std::io::Error::other)?;
        let path = dir.join(format!("{server}.json"));
        let temporary = dir.join(format!(".{server}.json.tmp"));
        std::fs::write(&temporary, json)?;
        std::fs::rename(&temporary, &path)
    });
    if let Err(error) = result {
        tracing::warn!(server, "cannot cache the MCP tool list in {}: {error}", dir.display());
    }
}

/// The cached tool list of `server`, if one was written.
pub fn read_cache(dir: &Path, server: &str) -> Option<CachedTools> {
    let bytes = std::fs::read(dir.join(format!("{server}.json"))).ok()?;
    serde_json::from_slice(&bytes).ok()
}
