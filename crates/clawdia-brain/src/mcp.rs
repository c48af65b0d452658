//! `clawdia brain mcp`: the brain as an MCP server over stdio (rmcp). Tools: `query`, `search`,
//! `get_page`, `find_experts`, `put_page`, `add_fact`, `timeline`, `add_timeline`, each with a
//! JSON Schema for its arguments. A failing call is a tool error result the client can read,
//! never a protocol error or a crash.

use std::sync::Arc;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, ServiceExt};

use crate::brain::Brain;
use crate::ops;

#[derive(Clone)]
pub struct BrainServer {
    brain: Arc<Brain>,
}

impl BrainServer {
    pub fn new(brain: Arc<Brain>) -> BrainServer {
        BrainServer { brain }
    }
}

/// The tool list with schemas.
pub fn tools() -> Vec<Tool> {
    ops::OPS
        .iter()
        .map(|op| {
            let schema = match ops::schema(op) {
                serde_json::Value::Object(map) => map,
                _ => serde_json::Map::new(),
            };
            Tool::new(*op, ops::description(op), Arc::new(schema))
        })
        .collect()
}

impl ServerHandler for BrainServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("clawdia-brain", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Clawdia's knowledge brain: search with `query`, read pages with `get_page`, record knowledge with `put_page` and `add_fact`.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !ops::OPS.contains(&request.name.as_ref()) {
            return Err(ErrorData::invalid_params(format!("unknown tool `{}`", request.name), None));
        }
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let result = match ops::call(&self.brain, &request.name, &arguments, "mcp").await {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(message) => CallToolResult::error(vec![ContentBlock::text(message)]),
        };
        Ok(result.into())
    }
}

/// Serves the brain on stdin/stdout until the client disconnects.
pub async fn serve_stdio(brain: Arc<Brain>) -> Result<(), String> {
    let running = BrainServer::new(brain)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP session failed to start: {e}"))?;
    running.waiting().await.map_err(|e| format!("MCP session ended with an error: {e}"))?;
    Ok(())
}
