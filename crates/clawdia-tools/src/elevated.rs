//! `host_exec` (group `elevated`): runs an owner-allowlisted binary on the host, outside the
//! sandbox. Three checks, all in code, before anything runs: the turn's sender must match one of
//! the agent's sender patterns; the program must be one of the allowlisted absolute paths; and
//! every argument must match that entry's patterns. No shell is involved (the argument vector
//! reaches `execve` as given). Credentials the command needs are resolved at the boundary and
//! put in its environment only; the model never sees them, and their values are masked in the
//! output it reads. Every run and every refusal is an audit event.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clawdia_core::{AuditEvent, AuditSink, Severity, Tool, ToolContext, ToolError, ToolSpec};
use clawdia_sandbox::{Limits, Network, Policy};
use serde_json::json;

use crate::exec::{Utf8Stream, report};

/// Resolves a credential when a command runs; errors name the reference, never a value.
pub type CredentialSource = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

/// One allowlisted host binary.
#[derive(Clone)]
pub struct HostCommand {
    /// Absolute.
    pub path: PathBuf,
    /// One pattern per argument: `*` matches any characters within the argument; a final `**`
    /// matches any further arguments.
    pub args: Vec<String>,
    /// Environment variables injected at the boundary.
    pub env: Vec<(String, CredentialSource)>,
    pub timeout: Duration,
    pub description: Option<String>,
}

/// What `host_exec` may run for one agent.
#[derive(Clone)]
pub struct HostExecSettings {
    /// Sender patterns: `cli`, `api:alice`, or `ORIGIN:*` for any identified sender of an origin.
    pub senders: Vec<String>,
    pub commands: Vec<HostCommand>,
    pub kill_grace: Duration,
    pub max_output_bytes: usize,
}

/// The `host_exec` tool.
pub struct HostExec {
    spec: ToolSpec,
    settings: HostExecSettings,
    audit: Arc<dyn AuditSink>,
}

impl HostExec {
    pub fn new(settings: HostExecSettings, audit: Arc<dyn AuditSink>) -> HostExec {
        let mut listing = String::new();
        for command in &settings.commands {
            listing.push_str(&format!("\n- {}", command.path.display()));
            for arg in &command.args {
                listing.push(' ');
                listing.push_str(arg);
            }
            if let Some(description) = &command.description {
                listing.push_str(&format!(" ({description})"));
            }
        }
        let spec = ToolSpec {
            name: "host_exec".to_string(),
            description: format!(
                "Run one of the owner's allowlisted programs on the host, outside the sandbox. Give \
                 the program's absolute path and its arguments (no shell: no pipes, globbing or \
                 variables). Arguments must match a pattern below, where `*` is any text within one \
                 argument and a final `**` any further arguments. Anything else is refused. Allowed:{listing}"
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "program": {"type": "string", "description": "The absolute path of an allowed program."},
                    "args": {"type": "array", "items": {"type": "string"}, "description": "The arguments, one per element."},
                },
                "required": ["program"],
            }),
        };
        HostExec { spec, settings, audit }
    }

    fn audit(&self, context: &ToolContext, kind: &str, severity: Severity, message: String) {
        self.audit.record(
            AuditEvent::new(kind, severity, message).agent(&context.agent).session(&context.session_id),
        );
    }

    fn refuse(&self, context: &ToolContext, message: String) -> ToolError {
        self.audit(context, "elevated_refused", Severity::HIGH, message.clone());
        ToolError::Refused(message)
    }
}

#[async_trait]
impl Tool for HostExec {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn group(&self) -> &str {
        "elevated"
    }

    async fn call(&self, context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError> {
        let program = crate::string_arg(&arguments, "program")?;
        let args: Vec<String> = match arguments.get("args") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|item| match item.as_str() {
                    Some(text) if !text.contains('\0') => Ok(text.to_string()),
                    _ => Err(ToolError::InvalidArguments("`args` must be strings without NUL bytes".into())),
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(ToolError::InvalidArguments("`args` must be an array of strings".into())),
        };
        let line = command_line(program, &args);
        let sender = context.sender_id();
        if !self.settings.senders.iter().any(|pattern| sender_matches(pattern, &sender)) {
            return Err(self.refuse(
                context,
                format!("host command `{line}`: sender `{sender}` may not run host commands for this agent"),
            ));
        }
        let Some(command) = self
            .settings
            .commands
            .iter()
            .find(|command| command.path.as_os_str() == program && args_match(&command.args, &args))
        else {
            return Err(
                self.refuse(context, format!("host command `{line}` is not on this agent's allowlist"))
            );
        };
        let mut env = Vec::new();
        for (name, source) in &command.env {
            let value =
                source().map_err(|error| ToolError::Failed(format!("credential `{name}`: {error}")))?;
            env.push((name.clone(), value));
        }
        let masks: Vec<(String, String)> = env
            .iter()
            .filter(|(_, value)| value.len() >= 4)
            .map(|(name, value)| (value.clone(), format!("[{name} redacted]")))
            .collect();
        std::fs::create_dir_all(&context.workspace)
            .map_err(|e| ToolError::Failed(format!("cannot create the workspace: {e}")))?;
        let policy = Policy {
            workspace: context.workspace.clone(),
            workspace_writable: true,
            hidden: Vec::new(),
            visible: Vec::new(),
            network: Network::None,
            limits: Limits {
                address_space: None,
                cpu_seconds: None,
                processes: None,
                open_files: None,
                file_size: None,
            },
            env,
            timeout: command.timeout,
            kill_grace: self.settings.kill_grace,
            output_cap: self.settings.max_output_bytes,
        };
        let mut stream = Utf8Stream::default();
        let outcome = clawdia_sandbox::run_host(&command.path, &args, &policy, |bytes| {
            let text = stream.push(bytes);
            if !text.is_empty() {
                context.report(&mask(&text, &masks));
            }
        })
        .await
        .map_err(|error| ToolError::Failed(format!("host command `{line}`: {error}")))?;
        let status = match (outcome.exit_code, outcome.timed_out) {
            (_, true) => "timed out".to_string(),
            (Some(code), _) => format!("exit code {code}"),
            (None, _) => format!("signal {}", outcome.signal.unwrap_or(0)),
        };
        self.audit(
            context,
            "elevated_exec",
            Severity::NOTICE,
            format!("ran host command `{line}` ({status})"),
        );
        Ok(mask(&report(&outcome, command.timeout), &masks))
    }
}

/// The command as one line for messages and the audit log (arguments with spaces quoted).
fn command_line(program: &str, args: &[String]) -> String {
    let mut line: String = program.chars().take(200).collect();
    for arg in args.iter().take(32) {
        line.push(' ');
        if arg.is_empty() || arg.contains(char::is_whitespace) {
            line.push_str(&format!("{arg:?}"));
        } else {
            line.push_str(arg);
        }
    }
    line.chars().filter(|c| !c.is_control()).take(400).collect()
}

pub(crate) use clawdia_core::sender_matches;

/// Whether `args` match the patterns one to one (a final `**` takes any rest, including none).
pub(crate) fn args_match(patterns: &[String], args: &[String]) -> bool {
    let (patterns, rest) = match patterns.split_last() {
        Some((last, init)) if last == "**" => (init, true),
        _ => (patterns, false),
    };
    if args.len() < patterns.len() || (!rest && args.len() != patterns.len()) {
        return false;
    }
    patterns.iter().zip(args).all(|(pattern, arg)| wildcard(pattern.as_bytes(), arg.as_bytes()))
}

/// `*` matches any run of bytes (within one argument); everything else is literal.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Replaces every credential value in `text` with its marker.
fn mask(text: &str, masks: &[(String, String)]) -> String {
    let mut text = text.to_string();
    for (value, marker) in masks {
        if text.contains(value.as_str()) {
            text = text.replace(value.as_str(), marker);
        }
    }
    text
}

#[cfg(test)]
mod tests;
