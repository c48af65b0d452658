//! A server's tools as agent tools: `McpSource` (the `ToolSource` registered with each granted
//! agent) lists them as `McpTool`s named `SERVER__tool` in group `mcp:SERVER` with the server's
//! JSON Schema; a call goes to the server and its content blocks come back as text.

use std::sync::Arc;

use async_trait::async_trait;
use clawdia_core::{Tool, ToolContext, ToolError, ToolSource, ToolSpec};
use rmcp::model::CallToolResult;

use crate::server::ToolInfo;
use crate::{McpError, McpServer};

/// Most characters of one result given to the model; the rest is cut with a marker.
const MAX_RESULT_CHARS: usize = 64 * 1024;

/// The agent-facing name of `tool` of `server`: `server__tool`, with characters model APIs refuse
/// in tool names replaced by `_`. `None` when it would exceed 64 characters (the providers' cap).
pub fn tool_name(server: &str, tool: &str) -> Option<String> {
    let clean: String = tool
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' })
        .collect();
    let name = format!("{server}__{clean}");
    (name.len() <= 64 && !clean.is_empty()).then_some(name)
}

/// The text of a tool result (content blocks joined by blank lines; structured content when
/// there is no other content) and whether the tool reported an error.
pub(crate) fn result_text(result: &CallToolResult) -> (String, bool) {
    let mut parts = Vec::new();
    for block in &result.content {
        let Ok(value) = serde_json::to_value(block) else { continue };
        let field = |key: &str| value.get(key).and_then(serde_json::Value::as_str).unwrap_or_default();
        let part = match field("type") {
            "text" => field("text").to_string(),
            "image" | "audio" => {
                format!(
                    "[{} content: {}, {} bytes base64]",
                    field("type"),
                    field("mimeType"),
                    field("data").len()
                )
            }
            "resource" => {
                let resource = value.get("resource").cloned().unwrap_or_default();
                let uri = resource.get("uri").and_then(serde_json::Value::as_str).unwrap_or_default();
                match resource.get("text").and_then(serde_json::Value::as_str) {
                    Some(text) => format!("[resource {uri}]\n{text}"),
                    None => format!("[binary resource {uri}]"),
                }
            }
            "resource_link" => format!("[resource link: {} {}]", field("uri"), field("name")),
            other => format!("[{other} content]"),
        };
        parts.push(part);
    }
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    let mut text = parts.join("\n\n");
    if text.chars().count() > MAX_RESULT_CHARS {
        let total = text.chars().count();
        text = text.chars().take(MAX_RESULT_CHARS).collect();
        text.push_str(&format!("\n[... {} more characters omitted ...]", total - MAX_RESULT_CHARS));
    }
    (text, result.is_error == Some(true))
}

/// One tool of one server, as an agent sees it.
pub struct McpTool {
    server: Arc<McpServer>,
    spec: ToolSpec,
    group: String,
    /// The server's own name for the tool.
    remote: String,
}

impl McpTool {
    fn new(server: Arc<McpServer>, info: &ToolInfo) -> Option<McpTool> {
        let name = tool_name(server.name(), &info.name)?;
        let mut parameters = info.schema.clone();
        if !parameters.is_object() {
            parameters = serde_json::json!({"type": "object"});
        }
        let description = if info.description.is_empty() {
            format!("Tool `{}` of the MCP server `{}`.", info.name, server.name())
        } else {
            info.description.clone()
        };
        let group = server.group();
        Some(McpTool {
            spec: ToolSpec { name, description, parameters },
            group,
            remote: info.name.clone(),
            server,
        })
    }
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn group(&self) -> &str {
        &self.group
    }

    async fn call(&self, _context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError> {
        let serde_json::Value::Object(arguments) = arguments else {
            return Err(ToolError::InvalidArguments("arguments must be a JSON object".into()));
        };
        self.server.call(&self.remote, arguments).await.map_err(|error| match error {
            McpError::ToolFailed { message } => ToolError::Failed(message),
            other => ToolError::Failed(other.to_string()),
        })
    }
}

/// The tools of one server for the agents it is granted to.
pub struct McpSource {
    server: Arc<McpServer>,
    name: String,
}

impl McpSource {
    pub fn new(server: Arc<McpServer>) -> McpSource {
        McpSource { name: server.group(), server }
    }

    /// The agent-facing tools of the server (starting it if it never ran).
    pub async fn list(&self) -> Result<Vec<McpTool>, McpError> {
        let tools = self.server.tools().await?;
        Ok(tools.iter().filter_map(|info| McpTool::new(self.server.clone(), info)).collect())
    }
}

#[async_trait]
impl ToolSource for McpSource {
    fn name(&self) -> &str {
        &self.name
    }

    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, String> {
        let tools = self.list().await.map_err(|e| e.to_string())?;
        Ok(tools.into_iter().map(|tool| Arc::new(tool) as Arc<dyn Tool>).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_are_prefixed_cleaned_and_capped() {
        assert_eq!(tool_name("everything", "get-sum").as_deref(), Some("everything__get-sum"));
        assert_eq!(tool_name("fs", "read.file/v2").as_deref(), Some("fs__read_file_v2"));
        assert_eq!(tool_name("fs", ""), None);
        assert_eq!(tool_name("fs", &"x".repeat(61)), None);
        assert!(tool_name("fs", &"x".repeat(60)).is_some());
    }

    #[test]
    fn results_become_text_and_errors_are_flagged() {
        let result: CallToolResult = serde_json::from_value(serde_json::json!({
            "content": [
                {"type": "text", "text": "hello"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "file:///a", "text": "inside"}}
            ],
            "isError": true
        }))
        .unwrap();
        let (text, is_error) = result_text(&result);
        assert!(is_error);
        assert_eq!(
            text,
            "hello\n\n[image content: image/png, 4 bytes base64]\n\n[resource file:///a]\ninside"
        );
        let structured: CallToolResult =
            serde_json::from_value(serde_json::json!({"content": [], "structuredContent": {"sum": 3}}))
                .unwrap();
        assert_eq!(result_text(&structured), (r#"{"sum":3}"#.to_string(), false));
    }
}
