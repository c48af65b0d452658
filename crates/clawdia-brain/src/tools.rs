//! The brain as agent tools (group `brain`): `brain_query`, `brain_get`, `brain_put_page`,
//! `brain_add_fact`, `brain_add_take`, `brain_timeline` (which also adds entries). Each is a thin name over an operation in `ops`; the
//! agent's dispatch point checks policy and wraps results in trust markers as for every tool.

use std::sync::Arc;

use async_trait::async_trait;
use clawdia_core::{Tool, ToolContext, ToolError, ToolSpec};

use crate::brain::Brain;
use crate::ops;

/// (tool name, operation).
const TOOLS: [(&str, &str); 6] = [
    ("brain_query", "query"),
    ("brain_get", "get_page"),
    ("brain_put_page", "put_page"),
    ("brain_add_fact", "add_fact"),
    ("brain_add_take", "add_take"),
    ("brain_timeline", "timeline"),
];

/// Every brain tool's name: reading (`brain_query`, `brain_get`) and writing the brain is all
/// they can do, which is what the dream cycle's distillers are limited to.
pub const TOOL_NAMES: [&str; 6] =
    ["brain_query", "brain_get", "brain_put_page", "brain_add_fact", "brain_add_take", "brain_timeline"];

struct BrainTool {
    brain: Arc<Brain>,
    spec: ToolSpec,
    op: &'static str,
}

/// The brain tools for one brain.
pub fn brain_tools(brain: Arc<Brain>) -> Vec<Arc<dyn Tool>> {
    TOOLS
        .iter()
        .map(|(name, op)| {
            let mut parameters = ops::schema(op);
            let mut description = ops::description(op).to_string();
            if *name == "brain_timeline" {
                // One tool lists and adds: with `text` (and `at`) it adds an entry.
                let add = ops::schema("add_timeline");
                if let (Some(list), Some(extra)) =
                    (parameters["properties"].as_object_mut(), add["properties"].as_object())
                {
                    for (key, value) in extra {
                        list.entry(key.clone()).or_insert_with(|| value.clone());
                    }
                }
                description = "List timeline entries (optionally for a page and date range), or add one by giving `at` and `text`.".into();
            }
            Arc::new(BrainTool {
                brain: brain.clone(),
                spec: ToolSpec { name: name.to_string(), description, parameters },
                op,
            }) as Arc<dyn Tool>
        })
        .collect()
}

#[async_trait]
impl Tool for BrainTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn group(&self) -> &str {
        "brain"
    }

    /// Reading the brain is common; writing pages, facts, takes and the timeline is not.
    fn on_demand(&self) -> bool {
        !matches!(self.op, "query" | "get_page")
    }

    async fn call(&self, context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError> {
        let op =
            if self.op == "timeline" && arguments.get("text").is_some() { "add_timeline" } else { self.op };
        // Checked against the schema this tool offers (`brain_timeline`'s lists and adds).
        ops::check_args(&self.spec.name, &self.spec.parameters, &arguments)
            .map_err(ToolError::InvalidArguments)?;
        let writer = format!("agent:{}", context.agent);
        ops::run(&self.brain, op, &arguments, &writer).await.map_err(ToolError::Failed)
    }
}
