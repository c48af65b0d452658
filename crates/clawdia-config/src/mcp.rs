//! `[mcp]`: MCP servers the gateway may start, each a program spoken to over stdio, run in the
//! same sandbox as `exec`, granted to named agents only. This module holds both stages: the raw
//! tables as written and their validation (names, the granted agents exist, counts and the
//! per-call timeout in range), so `raw.rs` and `validate.rs` only call in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;
use crate::raw::{RawSecret, SandboxKind};
use crate::validate::Context;
use crate::{AgentConfig, Sandbox, SecretRef};

/// Defaults of `[mcp.servers.NAME]`.
pub(crate) mod defaults {
    pub const TIMEOUT_SECS: u64 = 30;
    /// Below the agent's 120 s cap on any tool call.
    pub const MAX_TIMEOUT_SECS: u64 = 110;
    /// Node (what most MCP servers run on) reserves about 10 GiB of address space for every
    /// WebAssembly memory, and undici's HTTP parser behind `fetch` is one: `exec`'s 4 GiB breaks
    /// it. 32 GiB of address space leaves room for three; it is not resident memory.
    pub const MEMORY_MB: u64 = 32 * 1024;
    /// A server lives for hours: CPU time accumulates. At the limit the kernel ends it and it
    /// restarts on the next call.
    pub const CPU_SECONDS: u64 = 3600;
    pub const PROCESSES: u64 = 256;
    pub const OPEN_FILES: u64 = 1024;
    pub const FILE_SIZE_MB: u64 = 256;
    pub const DIR: &str = "mcp";
}

/// MCP (Model Context Protocol) servers whose tools agents may use.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Mcp")]
pub(crate) struct RawMcp {
    /// Servers by name (lowercase letters, digits, `-`, single `_`). A server's tools appear to
    /// the agents it is granted to as `NAME__tool` (policy group `mcp:NAME`). Servers start on
    /// first use, never at gateway start, and restart (with backoff) after a crash or a hang.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawMcpServer>")]
    pub servers: BTreeMap<String, Spanned<RawMcpServer>>,
}

/// One MCP server over stdio, run in the sandbox (as `exec` commands are) with its own
/// writable folder; nothing else of the host is writable, the home's `secrets/` and `state/`
/// are hidden, there is no network beyond the `egress` allowlist, and the gateway's
/// environment is not inherited.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "McpServer")]
pub(crate) struct RawMcpServer {
    /// The program: an absolute path, or a name looked up on the sandbox's `PATH`
    /// (`/usr/local/bin:/usr/bin:/bin` and their `sbin`s).
    #[schemars(with = "String")]
    pub command: Spanned<String>,
    /// Its arguments, passed exactly as written (no shell).
    #[schemars(extend("default" = []))]
    pub args: Option<Vec<String>>,
    /// Environment variables for the server: plain strings, or secret references
    /// (`{ env = "NAME" }`, `{ file = "path" }`) resolved when the server starts.
    #[schemars(with = "Option<BTreeMap<String, RawMcpEnv>>", extend("default" = {}))]
    pub env: Option<BTreeMap<String, Spanned<RawMcpEnv>>>,
    /// The agents that may see and call this server's tools. Nobody else may: `*` in an
    /// agent's `tools.allow` does not grant MCP tools, and the agent's `tools.deny` still
    /// applies (a tool name, or the group `mcp:NAME`). Left out or empty, the server is
    /// granted to no agent (`clawdia mcp list` says so; `clawdia mcp probe` still tries it).
    #[schemars(with = "Option<Vec<String>>", extend("default" = []))]
    pub agents: Option<Vec<Spanned<String>>>,
    /// Seconds one tool call may take; then the server (its whole process tree) is killed, the
    /// call returns an error, and the next call starts it again.
    #[schemars(with = "Option<u64>", extend("default" = defaults::TIMEOUT_SECS))]
    pub timeout_seconds: Option<Spanned<u64>>,
    /// How the server is isolated: `auto`, `bwrap`, `builtin` or `off` (as for agents; `off`
    /// runs it on the host with the gateway's rights).
    #[schemars(with = "Option<SandboxKind>", extend("default" = "auto"))]
    pub sandbox: Option<Spanned<SandboxKind>>,
    /// `HOST:PORT` or `HOST` (ports 443 and 80) entries the server may reach through the
    /// sandbox's filtering proxy (`HTTPS_PROXY` is set for it; node needs no flag), e.g.
    /// `["api.github.com"]`; `*.example.com` matches names below example.com. Empty (the
    /// default): no network at all. Not applied with `sandbox = "off"`.
    #[schemars(with = "Option<Vec<String>>", extend("default" = []))]
    pub egress: Option<Vec<Spanned<String>>>,
    /// The server's writable folder (its working directory and `HOME`), relative to the home.
    /// Default: `mcp/NAME`.
    #[schemars(with = "Option<String>")]
    pub dir: Option<Spanned<String>>,
    /// Virtual memory per process, in MiB (`RLIMIT_AS`). Larger than `exec`'s default: node
    /// reserves about 10 GiB of address space per WebAssembly memory (`fetch` uses one).
    #[schemars(with = "Option<u64>", extend("default" = defaults::MEMORY_MB))]
    pub memory_mb: Option<Spanned<u64>>,
    /// CPU seconds per process over the server's life (`RLIMIT_CPU`); at the limit it is ended
    /// and restarts on the next call.
    #[schemars(with = "Option<u64>", extend("default" = defaults::CPU_SECONDS))]
    pub cpu_seconds: Option<Spanned<u64>>,
    /// Most processes (and threads) at once inside the server's sandbox.
    #[schemars(with = "Option<u64>", extend("default" = defaults::PROCESSES))]
    pub processes: Option<Spanned<u64>>,
    /// Most open files per process.
    #[schemars(with = "Option<u64>", extend("default" = defaults::OPEN_FILES))]
    pub open_files: Option<Spanned<u64>>,
    /// Largest file the server may write, in MiB.
    #[schemars(with = "Option<u64>", extend("default" = defaults::FILE_SIZE_MB))]
    pub file_size_mb: Option<Spanned<u64>>,
}

/// An environment value: a plain string or a secret reference.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
#[schemars(rename = "McpEnvValue")]
pub(crate) enum RawMcpEnv {
    Plain(String),
    Secret(RawSecret),
}

/// `[mcp]`, validated.
#[derive(Debug, Clone, Default)]
pub struct McpConfig {
    pub servers: BTreeMap<String, McpServerConfig>,
}

impl McpConfig {
    /// The servers granted to `agent`.
    pub fn granted(&self, agent: &str) -> impl Iterator<Item = &McpServerConfig> {
        self.servers.values().filter(move |server| server.agents.iter().any(|a| a == agent))
    }
}

/// One `[mcp.servers.NAME]`.
#[derive(Debug, Clone)]
pub struct McpServerConfig {
    pub name: String,
    pub command: String,
    pub args: Vec<String>,
    pub env: Vec<(String, McpEnv)>,
    pub agents: Vec<String>,
    pub timeout: Duration,
    pub sandbox: Sandbox,
    /// `host:port` entries the server may reach through the egress proxy; empty: no network.
    pub egress: Vec<String>,
    /// Absolute: the server's writable folder.
    pub dir: PathBuf,
    pub memory_bytes: u64,
    pub cpu_seconds: u64,
    pub processes: u64,
    pub open_files: u64,
    pub file_size_bytes: u64,
}

/// A server environment value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpEnv {
    Plain(String),
    Secret(SecretRef),
}

pub(crate) fn validate(
    context: &Context,
    raw: RawMcp,
    agents: &BTreeMap<String, AgentConfig>,
) -> Result<McpConfig, ConfigError> {
    let mut servers = BTreeMap::new();
    for (name, server) in raw.servers {
        let server = validate_server(context, &name, server, agents)?;
        servers.insert(name, server);
    }
    Ok(McpConfig { servers })
}

fn validate_server(
    context: &Context,
    name: &str,
    raw: Spanned<RawMcpServer>,
    agents: &BTreeMap<String, AgentConfig>,
) -> Result<McpServerConfig, ConfigError> {
    let span = raw.span();
    let key =
        |field: &str| vec!["mcp".to_string(), "servers".to_string(), name.to_string(), field.to_string()];
    let at = |field: &str, span: std::ops::Range<usize>, message: String| {
        let key = key(field);
        let key: Vec<&str> = key.iter().map(String::as_str).collect();
        let key = if field.is_empty() { &key[..3] } else { &key[..] };
        context.error(span, key, message)
    };
    let mut bytes = name.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name.len() <= 48
        && !name.contains("__");
    if !valid {
        let message = "server names must be 1-48 lowercase letters, digits, `-` or `_` (not `__`: tools are \
                       named NAME__tool), starting with a letter or digit";
        return Err(at("", span, message.to_string()));
    }
    let raw = raw.into_inner();
    let command = raw.command.get_ref().trim().to_string();
    if command.is_empty() {
        return Err(at("command", raw.command.span(), "must not be empty".into()));
    }
    if !command.starts_with('/') && command.contains('/') {
        let message = format!("`{command}` must be an absolute path or a program name on PATH");
        return Err(at("command", raw.command.span(), message));
    }
    let mut granted = Vec::new();
    for (index, agent) in raw.agents.iter().flatten().enumerate() {
        if !agents.contains_key(agent.get_ref()) {
            let configured = agents.keys().cloned().collect::<Vec<_>>().join(", ");
            let key = key("agents");
            let index = format!("[{index}]");
            let mut path: Vec<&str> = key.iter().map(String::as_str).collect();
            path.push(&index);
            let message = format!("unknown agent `{}` (configured: {configured})", agent.get_ref());
            return Err(context.error(agent.span(), &path, message));
        }
        granted.push(agent.get_ref().clone());
    }
    let mut env = Vec::new();
    for (variable, value) in raw.env.unwrap_or_default() {
        let valid = !variable.is_empty()
            && !variable.starts_with(|c: char| c.is_ascii_digit())
            && variable.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid {
            let key = key("env");
            let mut path: Vec<&str> = key.iter().map(String::as_str).collect();
            path.push(&variable);
            return Err(context.error(value.span(), &path, "variable names are letters, digits and `_`"));
        }
        let value = match value.into_inner() {
            RawMcpEnv::Plain(text) => McpEnv::Plain(text),
            RawMcpEnv::Secret(secret) => {
                McpEnv::Secret(context.secret(secret, &["mcp", "servers", name, "env", &variable])?)
            }
        };
        env.push((variable, value));
    }
    let timeout = match raw.timeout_seconds {
        Some(value) if !(1..=defaults::MAX_TIMEOUT_SECS).contains(value.get_ref()) => {
            let message = format!("must be between 1 and {}", defaults::MAX_TIMEOUT_SECS);
            return Err(at("timeout_seconds", value.span(), message));
        }
        value => Duration::from_secs(value.map_or(defaults::TIMEOUT_SECS, Spanned::into_inner)),
    };
    let dir = match raw.dir {
        None => context.path(defaults::DIR).join(name),
        Some(dir) if dir.get_ref().trim().is_empty() => {
            return Err(at("dir", dir.span(), "must not be empty".into()));
        }
        Some(dir) => context.path(dir.get_ref()),
    };
    let secrets = context.path("secrets");
    let state = context.path("state");
    if secrets.starts_with(&dir)
        || dir.starts_with(&secrets)
        || state.starts_with(&dir)
        || dir.starts_with(&state)
    {
        return Err(at("dir", span, "must not contain or be inside the home's secrets/ or state/".into()));
    }
    let positive = |value: Option<Spanned<u64>>, field: &str, default: u64| {
        context.positive(value, &["mcp", "servers", name, field], default)
    };
    let mib = 1024 * 1024;
    Ok(McpServerConfig {
        name: name.to_string(),
        command,
        args: raw.args.unwrap_or_default(),
        env,
        agents: granted,
        timeout,
        sandbox: match raw.sandbox.map(Spanned::into_inner) {
            None | Some(SandboxKind::Auto) => Sandbox::Auto,
            Some(SandboxKind::Bwrap) => Sandbox::Bwrap,
            Some(SandboxKind::Builtin) => Sandbox::Builtin,
            Some(SandboxKind::Off) => Sandbox::Off,
        },
        egress: crate::egress::entries(context, raw.egress, &["mcp", "servers", name, "egress"])?,
        dir,
        memory_bytes: positive(raw.memory_mb, "memory_mb", defaults::MEMORY_MB)? * mib,
        cpu_seconds: positive(raw.cpu_seconds, "cpu_seconds", defaults::CPU_SECONDS)?,
        processes: positive(raw.processes, "processes", defaults::PROCESSES)?,
        open_files: positive(raw.open_files, "open_files", defaults::OPEN_FILES)?,
        file_size_bytes: positive(raw.file_size_mb, "file_size_mb", defaults::FILE_SIZE_MB)? * mib,
    })
}
