//! One MCP server's life: started on first use in the sandbox, the rmcp handshake and tool
//! listing under a start-up timeout, calls under the per-call timeout, and the kill of the whole
//! process tree when a call times out or the server dies. The state sits behind an async mutex
//! held only to start or stop the server; calls run concurrently on the shared rmcp peer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clawdia_config::{McpEnv, McpServerConfig};
use clawdia_core::{AuditEvent, AuditSink, Severity};
use clawdia_sandbox::{Limits, Network, Policy, StderrTail, StdioChild, spawn_stdio};
use rmcp::ServiceExt as _;
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::{Peer, RoleClient, RunningService, ServiceError};

use crate::{Launch, McpError, cache, tool};

/// The longest wait between restarts of a server that keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The least time allowed for the start (sandbox, program start-up, handshake, tool listing).
const MIN_START_TIMEOUT: Duration = Duration::from_secs(30);
/// `SIGTERM` to `SIGKILL` when a server is stopped.
const KILL_GRACE: Duration = Duration::from_millis(500);

/// A tool as the server lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    /// The server's own name for it.
    pub name: String,
    pub description: String,
    /// The JSON Schema of its arguments.
    pub schema: serde_json::Value,
}

/// What `clawdia mcp list` and tests can see of a server.
#[derive(Debug, Clone)]
pub struct ServerStatus {
    pub running: bool,
    /// Successful starts so far.
    pub starts: u64,
    /// Consecutive failures (reset by a successful call).
    pub failures: u32,
    pub last_error: Option<String>,
    /// The tools of the last start, if it ever started.
    pub tools: Option<Vec<ToolInfo>>,
    /// The process group of the running server (its sandbox's top process).
    pub pgid: Option<i32>,
}

struct Running {
    generation: u64,
    peer: Peer<RoleClient>,
    /// Kept so the rmcp service task lives as long as the server; dropped on stop.
    _service: RunningService<RoleClient, ClientConfig>,
    child: tokio::sync::Mutex<StdioChild>,
    stderr: StderrTail,
    pgid: i32,
}

#[derive(Default)]
struct State {
    running: Option<Arc<Running>>,
    generation: u64,
    tools: Option<Arc<Vec<ToolInfo>>>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    starts: u64,
}

/// One configured server; starts on first use.
pub struct McpServer {
    config: McpServerConfig,
    launch: Launch,
    audit: Option<Arc<dyn AuditSink>>,
    state: tokio::sync::Mutex<State>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer").field("name", &self.config.name).finish()
    }
}

/// The delay before the next start after `failures` consecutive failures: none after the
/// first (a crash is restarted at once), then 1 s, 2 s, 4 s ... up to a minute.
pub(crate) fn backoff(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 2).min(6)).min(MAX_BACKOFF),
    }
}

/// The most telling line of a server's stderr, shortened, as `; stderr: ...`: the last one that
/// reads like an error (node ends a crash with its version line), else the last non-empty one.
fn stderr_note(stderr: &StderrTail) -> String {
    let text = stderr.text();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    let telling = ["rror", "not found", "denied", "crash", "panic", "fatal", "Fatal", "No such"];
    let line =
        lines.iter().rev().find(|line| telling.iter().any(|word| line.contains(word))).or(lines.last());
    match line {
        None => String::new(),
        Some(line) => {
            let short: String = line.chars().take(300).collect();
            format!("; stderr: {short}")
        }
    }
}

impl McpServer {
    pub fn new(config: McpServerConfig, launch: Launch, audit: Option<Arc<dyn AuditSink>>) -> Arc<McpServer> {
        Arc::new(McpServer { config, launch, audit, state: tokio::sync::Mutex::new(State::default()) })
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn config(&self) -> &McpServerConfig {
        &self.config
    }

    /// The policy group of this server's tools, `mcp:NAME`.
    pub fn group(&self) -> String {
        format!("mcp:{}", self.config.name)
    }

    fn audit(&self, kind: &str, severity: Severity, message: String) {
        tracing::warn!(server = %self.config.name, kind, "{message}");
        if let Some(audit) = &self.audit {
            audit.record(AuditEvent::new(kind, severity, message));
        }
    }

    pub async fn status(&self) -> ServerStatus {
        let state = self.state.lock().await;
        let running = match &state.running {
            Some(running) => !running.child.lock().await.exited(),
            None => false,
        };
        ServerStatus {
            running,
            starts: state.starts,
            failures: state.failures,
            last_error: state.last_error.clone(),
            tools: state.tools.as_ref().map(|tools| tools.as_ref().clone()),
            pgid: state.running.as_ref().filter(|_| running).map(|r| r.pgid),
        }
    }

    /// The server's tools: the list from its last start, or (never started) from starting it now.
    pub async fn tools(&self) -> Result<Arc<Vec<ToolInfo>>, McpError> {
        if let Some(tools) = self.state.lock().await.tools.clone() {
            return Ok(tools);
        }
        self.ensure().await?;
        let tools = self.state.lock().await.tools.clone();
        Ok(tools.unwrap_or_default())
    }

    /// Calls `tool` with `arguments` under the per-call timeout; the text of its result.
    pub async fn call(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, McpError> {
        let running = self.ensure().await?;
        let mut params = CallToolRequestParams::new(tool.to_string());
        params.arguments = Some(arguments);
        let server = self.config.name.clone();
        let refused_before = running.child.lock().await.egress_refused();
        match tokio::time::timeout(self.config.timeout, running.peer.call_tool(params)).await {
            Err(_) => {
                let seconds = self.config.timeout.as_secs();
                let message = format!("`{tool}` timed out after {seconds}s");
                self.fail(&running, "mcp_timeout", &message).await;
                Err(McpError::Timeout { server, tool: tool.to_string(), seconds })
            }
            Ok(Err(ServiceError::McpError(error))) => {
                Err(McpError::Protocol { server, message: error.message.to_string() })
            }
            Ok(Err(error)) => {
                // Give the stderr reader a moment to catch the server's last words.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let message = format!("{error}{}", stderr_note(&running.stderr));
                self.fail(&running, "mcp_crashed", &format!("crashed during `{tool}`: {message}")).await;
                Err(McpError::Crashed { server, tool: tool.to_string(), message })
            }
            Ok(Ok(result)) => {
                self.state.lock().await.failures = 0;
                let (mut text, is_error) = tool::result_text(&result);
                // Say so when the sandbox refused the server's network requests meanwhile, so
                // the model (and the owner) can tell a policy refusal from a broken site.
                let child = running.child.lock().await;
                if child.egress_refused() > refused_before
                    && let Some(refusals) = child.egress_refusals()
                {
                    text.push_str(&format!("\n[{refusals}; allowed: {}]", self.config.egress.join(", ")));
                }
                drop(child);
                if is_error { Err(McpError::ToolFailed { message: text }) } else { Ok(text) }
            }
        }
    }

    /// Stops the server (its whole tree) if it runs. The next use starts it again.
    pub async fn stop(&self) {
        let running = self.state.lock().await.running.take();
        if let Some(running) = running {
            running.child.lock().await.kill(KILL_GRACE).await;
        }
    }

    /// Records a failure of the running generation `running`: the server is killed (whole
    /// tree), audited, and the next start is scheduled by the backoff.
    /// Calls that were in flight on a server another call already failed only see its pipes
    /// close: they are not counted or audited again.
    async fn fail(&self, running: &Arc<Running>, kind: &str, message: &str) {
        let current = {
            let mut state = self.state.lock().await;
            let current = state.running.as_ref().is_some_and(|r| r.generation == running.generation);
            if current {
                state.running = None;
                self.note_failure(&mut state, message);
            }
            current
        };
        running.child.lock().await.kill(KILL_GRACE).await;
        if current {
            self.audit(kind, Severity::WARNING, format!("MCP server `{}`: {message}", self.config.name));
        }
    }

    fn note_failure(&self, state: &mut State, message: &str) {
        state.failures = state.failures.saturating_add(1);
        state.retry_at = Some(Instant::now() + backoff(state.failures));
        state.last_error = Some(message.to_string());
    }

    /// The running server, started now if it is not running (unless held back by the backoff).
    async fn ensure(&self) -> Result<Arc<Running>, McpError> {
        let mut state = self.state.lock().await;
        if let Some(running) = state.running.clone() {
            let exited = running.child.lock().await.exited();
            if !exited {
                return Ok(running);
            }
            state.running = None;
            let message = format!("exited{}", stderr_note(&running.stderr));
            self.note_failure(&mut state, &message);
            self.audit(
                "mcp_crashed",
                Severity::WARNING,
                format!("MCP server `{}` {message}", self.config.name),
            );
        }
        if let Some(at) = state.retry_at {
            let now = Instant::now();
            if at > now {
                return Err(McpError::Backoff {
                    server: self.config.name.clone(),
                    message: state.last_error.clone().unwrap_or_default(),
                    seconds: (at - now).as_secs_f64().ceil() as u64,
                });
            }
        }
        state.generation += 1;
        let generation = state.generation;
        match self.start(generation).await {
            Ok((running, tools)) => {
                state.starts += 1;
                state.retry_at = None;
                if let Some(dir) = &self.launch.cache_dir {
                    cache::write(dir, &self.config.name, &tools);
                }
                state.tools = Some(Arc::new(tools));
                let running = Arc::new(running);
                state.running = Some(running.clone());
                tracing::info!(server = %self.config.name, pgid = running.pgid, "MCP server started");
                Ok(running)
            }
            Err(message) => {
                self.note_failure(&mut state, &message);
                self.audit(
                    "mcp_start_failed",
                    Severity::WARNING,
                    format!("MCP server `{}` cannot start: {message}", self.config.name),
                );
                Err(McpError::Start { server: self.config.name.clone(), message })
            }
        }
    }

    /// Spawns the server in its sandbox, does the MCP handshake and lists its tools.
    async fn start(&self, generation: u64) -> Result<(Running, Vec<ToolInfo>), String> {
        let config = &self.config;
        let mechanism = clawdia_sandbox::detect_cached(&self.launch.helper)
            .await
            .select(crate::choice(config))
            .map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| format!("cannot create {}: {e}", config.dir.display()))?;
        let mut env = Vec::new();
        for (key, value) in &config.env {
            let value = match value {
                McpEnv::Plain(text) => text.clone(),
                McpEnv::Secret(reference) => {
                    reference.resolve().map_err(|e| format!("env {key}: {e}"))?.expose().to_string()
                }
            };
            env.push((key.clone(), value));
        }
        let mut policy = Policy::new(&config.dir);
        policy.hidden = self.launch.hidden.clone();
        policy.env = env;
        policy.network = Network::allowing(&config.egress);
        policy.limits = Limits {
            address_space: Some(config.memory_bytes),
            cpu_seconds: Some(config.cpu_seconds),
            processes: Some(config.processes),
            open_files: Some(config.open_files),
            file_size: Some(config.file_size_bytes),
        };
        let mut child = spawn_stdio(&mechanism, &policy, &config.command, &config.args)
            .await
            .map_err(|e| e.to_string())?;
        let stderr = child.stderr_handle();
        let pgid = child.pgid();
        let Some((stdin, stdout)) = child.take_pipes() else {
            child.kill(KILL_GRACE).await;
            return Err("the server's pipes are missing".into());
        };
        let info = ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("clawdia", env!("CARGO_PKG_VERSION")),
        );
        let handshake = async {
            let service = info.serve((stdout, stdin)).await.map_err(|e| e.to_string())?;
            let listed = service.peer().list_all_tools().await.map_err(|e| format!("listing tools: {e}"))?;
            Ok::<_, String>((service, listed))
        };
        let limit = config.timeout.max(MIN_START_TIMEOUT);
        let outcome = tokio::time::timeout(limit, handshake).await;
        let (service, listed) = match outcome {
            Ok(Ok(done)) => done,
            Ok(Err(message)) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                child.kill(KILL_GRACE).await;
                return Err(format!("{message}{}", stderr_note(&stderr)));
            }
            Err(_) => {
                child.kill(KILL_GRACE).await;
                return Err(format!(
                    "no answer to the MCP handshake within {}s{}",
                    limit.as_secs(),
                    stderr_note(&stderr)
                ));
            }
        };
        let tools = listed
            .into_iter()
            .map(|tool| ToolInfo {
                name: tool.name.to_string(),
                description: tool.description.map(|d| d.to_string()).or(tool.title).unwrap_or_default(),
                schema: serde_json::Value::Object(tool.input_schema.as_ref().clone()),
            })
            .collect();
        let peer = service.peer().clone();
        let running = Running {
            generation,
            peer,
            _service: service,
            child: tokio::sync::Mutex::new(child),
            stderr,
            pgid,
        };
        Ok((running, tools))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_restarts_at_once_then_doubles_up_to_a_minute() {
        let seconds: Vec<u64> = (0..12).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(seconds, [0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60, 60]);
    }
}
