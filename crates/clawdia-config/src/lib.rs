//! The strict `clawdia.toml`: parsed in two stages, raw serde structs that mirror the file
//! (`raw`) then checked and defaulted into the validated types below (`validate`). Any unknown
//! key, wrong type, invalid value or dangling reference is a one-line `ConfigError` naming the
//! line and the key. Secrets are references (`SecretRef`), resolved on demand into a redacted
//! `Secret`. The JSON Schema, the reference doc and the example file come from this crate too.
//!
//! Architecture invariant: this crate reads only the config file and secret files. It knows no
//! provider client, server or tool; those crates receive the validated types.

mod alerts;
mod broker;
mod channels;
mod cron;
mod dream;
mod egress;
mod error;
mod mcp;
mod raw;
mod reference;
mod secret;
mod speech;
mod validate;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clawdia_core::{ModelRef, Usage};
use schemars::JsonSchema;
use serde::Deserialize;

pub use alerts::{AlertRoute, AlertsConfig, HookConfig, OwnerConfig, WebhookConfig, WebhookFormat};
pub use broker::{BridgeConfig, BrokerConfig};
pub use channels::{
    ChannelsConfig, DmPolicy, EmailConfig, MailSecurity, MailServer, TelegramConfig, TelegramMode,
    VoiceReply, WebConfig, is_email_address,
};
pub use dream::DreamConfig;
pub use error::ConfigError;
pub use mcp::{McpConfig, McpEnv, McpServerConfig};
pub use raw::BrainFusion;
pub use reference::{default_config_toml, example_toml, json_schema, reference_markdown};
pub use secret::{Secret, SecretRef};
pub use speech::{SpeechConfig, SpeechEngine};

/// The name of the config file inside the home directory.
pub const FILE_NAME: &str = "clawdia.toml";

/// Reads and validates `home/clawdia.toml`.
pub fn load(home: &Path) -> Result<Config, ConfigError> {
    let path = home.join(FILE_NAME);
    let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::io(&path, &error))?;
    parse(&text, home)
}

/// Parses and validates config text; relative paths resolve against `home`.
pub fn parse(text: &str, home: &Path) -> Result<Config, ConfigError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|error| ConfigError::syntax(text, &error))?;
    let raw: raw::RawConfig =
        serde_path_to_error::deserialize(deserializer).map_err(|error| ConfigError::serde(text, error))?;
    let home = std::path::absolute(home).unwrap_or_else(|_| home.to_path_buf());
    validate::config(raw, text, home)
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The home directory (absolute) that relative paths were resolved against.
    pub home: PathBuf,
    pub gateway: GatewayConfig,
    pub providers: BTreeMap<String, ProviderConfig>,
    pub agents: BTreeMap<String, AgentConfig>,
    /// Keyed by `provider/model`.
    pub prices: BTreeMap<String, Price>,
    pub brain: BrainConfig,
    pub cron: CronConfig,
    /// `[mcp]`: MCP servers and the agents granted each.
    pub mcp: McpConfig,
    /// `[logs]`: the gateway's log file rotation.
    pub logs: LogsConfig,
    /// Every secret reference that carries `rotated_at` and `rotate_every_days`.
    pub secret_rotation: Vec<SecretRotation>,
    /// `[broker]`: requests awaiting the owner.
    pub broker: BrokerConfig,
    /// `[bridge]`: the signed one-way channel back to user agents.
    pub bridge: BridgeConfig,
    /// `[owner]`: who approvals and alerts are for.
    pub owner: OwnerConfig,
    /// `[alerts]`: which events reach the owner, and the routes they take.
    pub alerts: AlertsConfig,
    /// `[channels]`: the owner's chat channels (`web`).
    pub channels: ChannelsConfig,
    /// `[speech]`: the speech-to-text and text-to-speech engines.
    pub speech: SpeechConfig,
}

/// A secret with a rotation schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRotation {
    /// Where it is configured, e.g. `providers.anthropic.api_key`.
    pub key: String,
    /// The reference, e.g. `env ANTHROPIC_API_KEY` (never the value).
    pub reference: String,
    /// `YYYY-MM-DD` as written.
    pub rotated_at: String,
    /// Midnight UTC of `rotated_at`, in Unix milliseconds.
    pub rotated_at_ms: i64,
    pub every_days: u32,
}

/// The scheduler's settings and the jobs defined in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct CronConfig {
    pub enabled: bool,
    pub allow_host_jobs: bool,
    pub sandbox: Sandbox,
    /// Absolute.
    pub workspace: PathBuf,
    pub default_timeout: Duration,
    pub kill_grace: Duration,
    pub catch_up_grace: Duration,
    pub failure_hook: Option<String>,
    pub history_days: u64,
    pub jobs: Vec<CronJobConfig>,
    pub heartbeats: Vec<HeartbeatConfig>,
    pub maintenance: MaintenanceConfig,
}

/// A job from `[cron.jobs.NAME]`; the scheduler parses the schedule text.
#[derive(Debug, Clone, PartialEq)]
pub struct CronJobConfig {
    pub name: String,
    pub schedule: CronSchedule,
    pub action: CronAction,
    pub timeout_seconds: u64,
    pub tools_allow: Option<Vec<String>>,
    pub failure_alert: Option<u32>,
    pub enabled: bool,
    /// `catch_up = "skip"`.
    pub skip_missed: bool,
}

/// A schedule as written (checked by the scheduler, which owns the parsers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronSchedule {
    Cron { expr: String, tz: Option<String> },
    Every(String),
    At { at: String, tz: Option<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CronAction {
    Exec {
        command: String,
        host: bool,
        /// `host:port` entries the sandboxed command may reach through the egress proxy.
        egress: Vec<String>,
    },
    AgentTurn {
        agent: String,
        prompt: String,
        session: Option<String>,
    },
}

/// `[cron.heartbeat.AGENT]` with `enabled = true`.
#[derive(Debug, Clone, PartialEq)]
pub struct HeartbeatConfig {
    pub agent: String,
    pub every: String,
    pub prompt: String,
    pub session: String,
    /// Minutes after local midnight: `(start, end)`; `end < start` wraps midnight.
    pub active_hours: Option<(u16, u16)>,
    pub tz: String,
    pub daily_tokens: Option<u64>,
    pub daily_usd: Option<f64>,
    pub ok_token: String,
    pub tools_allow: Option<Vec<String>>,
}

/// `[cron.maintenance]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceConfig {
    pub daily: bool,
    pub weekly: bool,
    pub monthly: bool,
    /// `(hour, minute)` local time in `tz`.
    pub time: (u8, u8),
    pub tz: String,
    pub prune_days: u64,
}

/// The knowledge brain's search settings and embedder.
#[derive(Debug, Clone, PartialEq)]
pub struct BrainConfig {
    pub fusion: BrainFusion,
    pub rrf_k: f64,
    pub fts_weight: f64,
    pub vector_weight: f64,
    /// With several chunks per page: weight of the page's own full-text match in its chunks' scores.
    pub page_weight: f64,
    pub max_chunks_per_page: usize,
    /// Slug prefix → score multiplier.
    pub boosts: Vec<(String, f64)>,
    /// Slug prefixes never returned.
    pub exclude: Vec<String>,
    pub embedder: EmbedderConfig,
    /// `[brain.dream]`: the dream cycle.
    pub dream: DreamConfig,
}

/// Where brain embeddings come from.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedderConfig {
    /// Full-text search only.
    None,
    /// An in-process model from a folder in Hugging Face layout.
    Local { model: String, dir: PathBuf, threads: Option<usize> },
    /// An OpenAI-compatible `/embeddings` endpoint.
    OpenAi { base_url: String, api_key: Option<SecretRef>, model: String, dimensions: Option<usize> },
}

impl Config {
    pub fn agent(&self, name: &str) -> Option<&AgentConfig> {
        self.agents.get(name)
    }

    pub fn price(&self, model: &ModelRef) -> Option<&Price> {
        self.prices.get(&model.to_string())
    }

    /// Every secret the config reads from a file (`{ file = "..." }`): the gateway token,
    /// provider and embedder keys, MCP server and host-command environment values. Absolute,
    /// sorted, without duplicates.
    pub fn secret_files(&self) -> Vec<PathBuf> {
        let mut references: Vec<&SecretRef> = vec![&self.gateway.token];
        references.extend(self.providers.values().filter_map(|provider| provider.api_key.as_ref()));
        if let EmbedderConfig::OpenAi { api_key: Some(key), .. } = &self.brain.embedder {
            references.push(key);
        }
        for server in self.mcp.servers.values() {
            references.extend(server.env.iter().filter_map(|(_, value)| match value {
                McpEnv::Secret(secret) => Some(secret),
                McpEnv::Plain(_) => None,
            }));
        }
        for agent in self.agents.values() {
            for command in &agent.elevated.commands {
                references.extend(command.env.iter().map(|(_, secret)| secret));
            }
        }
        let mut files: Vec<PathBuf> = references
            .into_iter()
            .filter_map(|reference| match reference {
                SecretRef::File(path) => Some(path.clone()),
                SecretRef::Env(_) => None,
            })
            .collect();
        files.sort();
        files.dedup();
        files
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub bind: IpAddr,
    /// `0` means an ephemeral port.
    pub port: u16,
    pub token: SecretRef,
    pub max_request_bytes: usize,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub write_timeout: Duration,
    pub max_concurrent_turns: usize,
    pub turn_queue: Duration,
    /// How long turns in flight may run on after SIGTERM/SIGINT before they are cancelled.
    pub drain: Duration,
}

/// `[logs]`: `logs/clawdia.log` is rotated at `max_bytes`, keeping `keep` older files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogsConfig {
    /// At least 1.
    pub max_bytes: u64,
    pub keep: usize,
}

impl Default for LogsConfig {
    /// 10 MiB, 5 rotated files.
    fn default() -> LogsConfig {
        LogsConfig { max_bytes: raw::defaults::LOG_MAX_BYTES, keep: raw::defaults::LOG_KEEP }
    }
}

/// The wire format a provider speaks. TOML: `"anthropic"`, `"openai"` or `"local"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum ProviderKind {
    /// The Anthropic Messages API.
    #[serde(rename = "anthropic")]
    Anthropic,
    /// The OpenAI-compatible Chat Completions API.
    #[serde(rename = "openai")]
    OpenAi,
    /// A GGUF model from the home's `models/` folder, run in process.
    #[serde(rename = "local")]
    Local,
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Starts with `http://` or `https://`, no trailing `/`; empty for `local`.
    pub base_url: String,
    pub api_key: Option<SecretRef>,
    pub connect_timeout: Duration,
    /// Longest silence between bytes of a response.
    pub read_timeout: Duration,
    /// How long the provider is skipped after a failure.
    pub cooldown: Duration,
    /// Tries of a model after a transient failure, before the chain moves on (0 to 10).
    pub retries: u32,
    /// The longest wait before one retry (1 s to 1 h).
    pub retry_max_wait: Duration,
    pub headers: BTreeMap<String, String>,
    /// The in-process model settings; `Some` exactly when `kind` is `local`.
    pub local: Option<LocalProviderConfig>,
}

/// How a `local` provider runs its models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalProviderConfig {
    /// Absolute: `<home>/models`; a model name is a folder in it.
    pub models_dir: PathBuf,
    /// `None`: one per core.
    pub threads: Option<usize>,
    /// Zero keeps the model loaded.
    pub idle_unload: Duration,
    pub context_length: usize,
}

#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub name: String,
    pub model: ModelRef,
    pub fallbacks: Vec<ModelRef>,
    /// Absolute.
    pub workspace: PathBuf,
    pub tools: ToolPolicy,
    pub budget: Budget,
    pub prompt: PromptLimits,
    pub max_tool_iterations: u32,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    pub web_fetch: WebFetchConfig,
    pub sandbox: Sandbox,
    pub exec: ExecConfig,
    pub elevated: ElevatedConfig,
}

/// `[agents.NAME.elevated]`: host commands allowed outside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ElevatedConfig {
    /// Sender patterns (`cli`, `api:alice`, `api:*`, ...) whose turns may run them.
    pub senders: Vec<String>,
    pub commands: Vec<HostCommandConfig>,
}

/// One allowed host binary with its argument patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCommandConfig {
    /// Absolute, normalized.
    pub path: PathBuf,
    /// One pattern per argument (`*` within an argument; a final `**` for any rest).
    pub args: Vec<String>,
    /// Injected at the boundary; resolved when the command runs.
    pub env: Vec<(String, SecretRef)>,
    pub timeout: Duration,
    pub description: Option<String>,
}

/// How an agent's `exec` commands are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sandbox {
    /// bubblewrap, else the built-in sandbox, else refuse.
    #[default]
    Auto,
    Bwrap,
    Builtin,
    /// No sandbox: the owner's explicit choice.
    Off,
}

/// Limits of the `exec` tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecConfig {
    pub timeout: Duration,
    pub max_timeout: Duration,
    pub max_output_bytes: usize,
    pub memory_bytes: u64,
    pub cpu_seconds: u64,
    pub processes: u64,
    pub open_files: u64,
    pub file_size_bytes: u64,
    /// `host:port` entries commands may reach through the egress proxy; empty: no network.
    pub egress: Vec<String>,
}

/// Tool or group names; `deny` wins over `allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPolicy {
    pub allow: Vec<String>,
    pub deny: Vec<String>,
    /// Calls to these tool or group names wait for the owner's approval.
    pub ask: Vec<String>,
    /// Workspace-relative globs the write tools are confined to; `None`: the whole workspace.
    pub write: Option<Vec<String>>,
}

/// Daily limits; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Budget {
    pub daily_tokens: Option<u64>,
    pub daily_usd: Option<f64>,
}

/// Limits on workspace files injected into the system prompt, in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptLimits {
    pub file_max_chars: usize,
    pub total_max_chars: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebFetchConfig {
    pub timeout_secs: u64,
    pub max_bytes: usize,
    /// When false, loopback, private and link-local targets are refused.
    pub allow_private: bool,
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
    pub cache_read_per_mtok: f64,
    pub cache_write_per_mtok: f64,
}

impl Price {
    /// The cost in USD of `usage` at these prices.
    pub fn cost(&self, usage: &Usage) -> f64 {
        let per_token = |tokens: u64, per_mtok: f64| tokens as f64 * per_mtok / 1_000_000.0;
        per_token(usage.input_tokens, self.input_per_mtok)
            + per_token(usage.output_tokens, self.output_per_mtok)
            + per_token(usage.cache_read_tokens, self.cache_read_per_mtok)
            + per_token(usage.cache_write_tokens, self.cache_write_per_mtok)
    }
}

#[cfg(test)]
mod tests;
