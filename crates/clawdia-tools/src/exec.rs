//! `exec` (group `exec`): runs a shell command in the agent's workspace inside the sandbox
//! (`clawdia-sandbox`). The mechanism is chosen once, on first use, from the agent's `sandbox`
//! setting and what works on the machine; when nothing works the tool refuses with the reason
//! and the fix, and never runs the command unsandboxed unless the owner configured
//! `sandbox = "off"`. The result tells the model the exit code (or the timeout) and the
//! capped output.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use clawdia_core::{Tool, ToolContext, ToolError, ToolSpec};
use clawdia_sandbox::{Choice, Limits, Mechanism, Network, Policy, SandboxError};
use serde_json::json;

use crate::string_arg;

/// How `exec` runs commands for one agent.
#[derive(Debug, Clone)]
pub struct ExecSettings {
    pub sandbox: Choice,
    /// The binary that serves as the sandbox helper (the running `clawdia`).
    pub helper: PathBuf,
    /// Paths the command must not see (the home's `secrets/`, `state/`, other workspaces).
    pub hidden: Vec<PathBuf>,
    /// For agents whose writes are confined to globs: commands may read the workspace but not
    /// write it (the sandbox cannot enforce a glob).
    pub read_only_workspace: bool,
    pub limits: Limits,
    /// Used when the call gives no `timeout_seconds`.
    pub default_timeout: Duration,
    /// The most a call may ask for.
    pub max_timeout: Duration,
    pub kill_grace: Duration,
    pub max_output_bytes: usize,
    /// Egress allowlist entries (`host:port`, `host`, `*.suffix`), reachable only through the
    /// sandbox's filtering proxy; empty: no network.
    pub egress: Vec<String>,
}

/// What the model is told about the network.
fn network_text(egress: &[String]) -> String {
    if egress.is_empty() {
        return "there is no network".to_string();
    }
    format!(
        "the network is reachable only through an HTTP proxy ({proxy}, already set as HTTP_PROXY, \
         HTTPS_PROXY and ALL_PROXY: curl, pip, git and most HTTP clients use it) and only to {hosts} \
         (an entry without a port means 443 and 80); everything else is refused with 403",
        proxy = clawdia_sandbox::egress::PROXY_URL,
        hosts = egress.join(", ")
    )
}

/// The `exec` tool.
pub struct Exec {
    spec: ToolSpec,
    settings: ExecSettings,
    mechanism: tokio::sync::OnceCell<Result<Mechanism, SandboxError>>,
}

impl Exec {
    pub fn new(settings: ExecSettings) -> Exec {
        let spec = ToolSpec {
            name: "exec".to_string(),
            description: format!(
                "Run a shell command (/bin/sh -c) in your workspace, inside a sandbox: the workspace \
                 is {}, the rest of the filesystem is read-only, /tmp is private, {}, and the \
                 environment is minimal. stdout and stderr are merged and capped at \
                 {} bytes. The command and everything it starts are killed after `timeout_seconds` \
                 (default {}, at most {}).",
                if settings.read_only_workspace {
                    "read-only (write files with `write`/`edit`)"
                } else {
                    "writable"
                },
                network_text(&settings.egress),
                settings.max_output_bytes,
                settings.default_timeout.as_secs(),
                settings.max_timeout.as_secs()
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The shell command line."},
                    "timeout_seconds": {"type": "integer", "minimum": 1},
                },
                "required": ["command"],
            }),
        };
        Exec { spec, settings, mechanism: tokio::sync::OnceCell::new() }
    }

    async fn mechanism(&self) -> Result<Mechanism, SandboxError> {
        self.mechanism
            .get_or_init(|| async {
                if self.settings.sandbox == Choice::Off {
                    return Ok(Mechanism::Unsandboxed);
                }
                clawdia_sandbox::detect_cached(&self.settings.helper).await.select(self.settings.sandbox)
            })
            .await
            .clone()
    }
}

#[async_trait]
impl Tool for Exec {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn group(&self) -> &str {
        "exec"
    }

    async fn call(&self, context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError> {
        let command = string_arg(&arguments, "command")?;
        if command.trim().is_empty() {
            return Err(ToolError::InvalidArguments("`command` must not be empty".into()));
        }
        let timeout = match arguments.get("timeout_seconds") {
            None | Some(serde_json::Value::Null) => self.settings.default_timeout,
            Some(value) => match value.as_u64() {
                Some(seconds) if seconds >= 1 => Duration::from_secs(seconds).min(self.settings.max_timeout),
                _ => {
                    return Err(ToolError::InvalidArguments(
                        "`timeout_seconds` must be a whole number of seconds, at least 1".into(),
                    ));
                }
            },
        };
        let mechanism =
            self.mechanism().await.map_err(|error| ToolError::Refused(format!("exec: {error}")))?;
        std::fs::create_dir_all(&context.workspace)
            .map_err(|e| ToolError::Failed(format!("cannot create the workspace: {e}")))?;
        let policy = Policy {
            workspace: context.workspace.clone(),
            workspace_writable: !self.settings.read_only_workspace && context.write_globs.is_none(),
            hidden: self.settings.hidden.clone(),
            visible: Vec::new(),
            network: Network::allowing(&self.settings.egress),
            limits: self.settings.limits,
            env: Vec::new(),
            timeout,
            kill_grace: self.settings.kill_grace,
            output_cap: self.settings.max_output_bytes,
        };
        let mut stream = Utf8Stream::default();
        let on_output = |bytes: &[u8]| {
            let text = stream.push(bytes);
            if !text.is_empty() {
                context.report(&text);
            }
        };
        let outcome = clawdia_sandbox::run(&mechanism, &policy, command, on_output).await.map_err(
            |error| match error {
                SandboxError::Unavailable(_) | SandboxError::Unsupported(_) => {
                    ToolError::Refused(error.to_string())
                }
                other => ToolError::Failed(other.to_string()),
            },
        )?;
        Ok(report(&outcome, timeout))
    }
}

/// Turns a byte stream into text chunk by chunk without splitting a UTF-8 character: an
/// incomplete sequence at the end of a chunk waits for the next one; invalid bytes become U+FFFD.
#[derive(Debug, Default)]
pub(crate) struct Utf8Stream {
    pending: Vec<u8>,
}

impl Utf8Stream {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let complete = match std::str::from_utf8(&self.pending) {
            Ok(_) => self.pending.len(),
            // An error with no length is a sequence cut off at the end: keep it (at most 3 bytes).
            Err(error) if error.error_len().is_none() => error.valid_up_to(),
            Err(_) => self.pending.len(),
        };
        let text = String::from_utf8_lossy(&self.pending[..complete]).into_owned();
        self.pending.drain(..complete);
        text
    }
}

/// What the model reads: how the command ended, then its output.
pub(crate) fn report(outcome: &clawdia_sandbox::Outcome, timeout: Duration) -> String {
    let status = if outcome.timed_out {
        format!("timed out after {}s: the command and everything it started were killed", timeout.as_secs())
    } else {
        match (outcome.exit_code, outcome.signal) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => format!("killed by signal {signal}"),
            (None, None) => "ended".to_string(),
        }
    };
    let size = if outcome.truncated {
        format!("{} bytes, truncated", outcome.output_bytes)
    } else {
        format!("{} bytes", outcome.output_bytes)
    };
    let mut text = format!("{status} ({:.2}s)\n--- output ({size}) ---\n", outcome.duration.as_secs_f64());
    text.push_str(&outcome.output);
    text
}

#[cfg(test)]
mod tests;
