//! `request_elevation` (group `broker`): a user agent that cannot change the host asks for a
//! change. The request (what, why, the exact commands as argument vectors, urgency) is written
//! as one JSON file into the broker's inbox (`state/broker/inbox/`, a dead drop: written under a
//! temporary name, then renamed, so the watcher never reads half a file). Nothing runs here: the
//! administrator agent assesses it, the owner decides, and approved commands run only through the
//! elevated allowlist. The outcome comes back to the session as a signed bridge message.

use std::path::PathBuf;

use async_trait::async_trait;
use clawdia_core::elevation::{Filed, Urgency};
use clawdia_core::{Tool, ToolContext, ToolError, ToolSpec};
use serde_json::json;

/// The tool, dropping requests into `inbox`.
pub struct RequestElevation {
    inbox: PathBuf,
    spec: ToolSpec,
}

impl RequestElevation {
    pub fn new(inbox: PathBuf) -> RequestElevation {
        let spec = ToolSpec {
            name: "request_elevation".to_string(),
            description: "Ask for a change you cannot make yourself (installing a package, restarting a \
                          service, changing system configuration). The administrator assesses the request \
                          and asks the owner; if approved, the exact commands you list run on the host \
                          through the owner's allowlist (no shell: each command is an argument vector with \
                          an absolute program path). You are told the outcome later in this conversation."
                .to_string(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "description": "What should change, in one sentence."},
                    "reason": {"type": "string", "description": "Why it is needed."},
                    "commands": {
                        "type": "array",
                        "items": {"type": "array", "items": {"type": "string"}},
                        "description": "The exact commands proposed, each as [absolute program, arg, ...]."
                    },
                    "urgency": {"type": "string", "enum": ["low", "normal", "high"]},
                },
                "required": ["action", "reason"],
            }),
        };
        RequestElevation { inbox, spec }
    }
}

#[async_trait]
impl Tool for RequestElevation {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn group(&self) -> &str {
        "broker"
    }

    async fn call(&self, context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError> {
        let action = crate::string_arg(&arguments, "action")?.to_string();
        let reason = crate::string_arg(&arguments, "reason")?.to_string();
        let commands: Vec<Vec<String>> = match arguments.get("commands") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(value) => serde_json::from_value(value.clone()).map_err(|_| {
                ToolError::InvalidArguments(
                    "`commands` must be a list of argument vectors, e.g. [[\"/usr/bin/systemctl\", \"restart\", \"nginx\"]]".into(),
                )
            })?,
        };
        let urgency = match arguments.get("urgency").and_then(|v| v.as_str()) {
            None => Urgency::Normal,
            Some("low") => Urgency::Low,
            Some("normal") => Urgency::Normal,
            Some("high") => Urgency::High,
            Some(other) => {
                return Err(ToolError::InvalidArguments(format!(
                    "unknown urgency `{other}` (low, normal, high)"
                )));
            }
        };
        let filed = Filed {
            action,
            reason,
            commands,
            urgency,
            agent: Some(context.agent.clone()),
            session: Some(context.session_id.clone()),
        };
        filed.check().map_err(ToolError::InvalidArguments)?;
        let id = clawdia_core::random::hex(4).map_err(|e| ToolError::Failed(e.to_string()))?;
        let body = serde_json::to_vec_pretty(&filed).map_err(|e| ToolError::Failed(e.to_string()))?;
        let inbox = self.inbox.clone();
        let name = id.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&inbox)?;
            let partial = inbox.join(format!(".{name}.json.partial"));
            std::fs::write(&partial, body)?;
            std::fs::rename(&partial, inbox.join(format!("{name}.json")))
        })
        .await
        .map_err(|_| ToolError::Failed("filing the request stopped unexpectedly".into()))?
        .map_err(|e| ToolError::Failed(format!("the request could not be filed: {e}")))?;
        Ok(format!(
            "Filed as request {id}. The administrator will assess it and the owner decides; nothing has \
             run yet. The outcome will reach this conversation as a signed bridge message."
        ))
    }
}
