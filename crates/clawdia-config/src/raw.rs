//! Stage one: the file exactly as written. These serde structs mirror `clawdia.toml` key for key
//! (`deny_unknown_fields` everywhere), keep byte spans (`toml::Spanned`) on every value that a
//! later check may reject, and carry the doc comments that become the JSON Schema descriptions
//! and the generated reference. Defaults are applied in `validate`, from the constants below,
//! which the schema also shows.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

use crate::ProviderKind;

/// Every default, in one place; `validate` applies them and the schema documents them.
pub(crate) mod defaults {
    pub const BIND: &str = "127.0.0.1";
    pub const PORT: u16 = 18789;
    pub const TOKEN_FILE: &str = "secrets/gateway-token";
    pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
    /// Above the 2,000 idle connections a hostile client was seen to open; the gateway raises its
    /// open-file limit to fit (and lowers this to fit a hard limit that is smaller).
    pub const MAX_CONNECTIONS: usize = 4096;
    pub const HEADER_TIMEOUT_SECS: u64 = 10;
    pub const BODY_TIMEOUT_SECS: u64 = 30;
    pub const WRITE_TIMEOUT_SECS: u64 = 60;
    pub const MAX_CONCURRENT_TURNS: usize = 16;
    pub const TURN_QUEUE_SECS: u64 = 30;
    pub const DRAIN_SECS: u64 = 20;
    pub const LOG_MAX_BYTES: u64 = 10 * 1024 * 1024;
    pub const LOG_KEEP: usize = 5;
    pub const CONNECT_TIMEOUT_SECS: u64 = 10;
    pub const READ_TIMEOUT_SECS: u64 = 60;
    pub const COOLDOWN_SECS: u64 = 30;
    pub const RETRIES: u32 = 2;
    pub const RETRY_MAX_WAIT_SECS: u64 = 10;
    pub const WORKSPACES_DIR: &str = "workspaces";
    /// `exec` is in: its commands run in the sandbox (and it refuses when no sandbox works).
    pub const TOOLS_ALLOW: [&str; 4] = ["fs", "web", "brain", "exec"];
    pub const FILE_MAX_CHARS: usize = 6000;
    pub const TOTAL_MAX_CHARS: usize = 16000;
    pub const MAX_TOOL_ITERATIONS: u32 = 12;
    pub const MAX_TOKENS: u32 = 4096;
    pub const WEB_FETCH_TIMEOUT_SECS: u64 = 20;
    pub const WEB_FETCH_MAX_BYTES: usize = 512 * 1024;
    pub const EXEC_TIMEOUT_SECS: u64 = 30;
    /// Below the agent's 120 s cap on any tool call, with room for the kill grace.
    pub const EXEC_MAX_TIMEOUT_SECS: u64 = 110;
    /// Only the owner at the terminal may trigger host commands unless the config says more.
    pub const ELEVATED_SENDERS: [&str; 1] = ["cli"];
    pub const EXEC_MAX_OUTPUT_BYTES: usize = 32 * 1024;
    pub const EXEC_MEMORY_MB: u64 = 4096;
    pub const EXEC_CPU_SECONDS: u64 = 60;
    pub const EXEC_PROCESSES: u64 = 256;
    pub const EXEC_OPEN_FILES: u64 = 1024;
    pub const EXEC_FILE_SIZE_MB: u64 = 256;
    pub const RRF_K: f64 = 10.0;
    pub const FTS_WEIGHT: f64 = 1.0;
    pub const VECTOR_WEIGHT: f64 = 1.0;
    pub const PAGE_WEIGHT: f64 = 1.0;
    pub const MAX_CHUNKS_PER_PAGE: usize = 1;
    pub const EMBEDDING_MODEL: &str = "all-MiniLM-L6-v2";
    pub const MODELS_DIR: &str = "models";
    pub const LOCAL_IDLE_UNLOAD_SECS: u64 = 300;
    pub const LOCAL_CONTEXT_LENGTH: usize = 2048;
    pub const CRON_WORKSPACE: &str = "workspaces/cron";
    pub const CRON_TIMEOUT_SECS: u64 = 600;
    pub const CRON_KILL_GRACE_SECS: u64 = 5;
    pub const CRON_CATCH_UP_GRACE_SECS: u64 = 3600;
    pub const CRON_HISTORY_DAYS: u64 = 90;
    pub const HEARTBEAT_EVERY: &str = "30m";
    pub const HEARTBEAT_SESSION: &str = "main";
    pub const HEARTBEAT_OK_TOKEN: &str = "HEARTBEAT_OK";
    pub const HEARTBEAT_PROMPT: &str = "Heartbeat: check HEARTBEAT.md in your workspace and anything that needs the owner's attention now. If nothing does, reply with exactly HEARTBEAT_OK.";
    pub const MAINTENANCE_TIME: &str = "03:30";
    pub const MAINTENANCE_PRUNE_DAYS: u64 = 14;
}

/// Clawdia's configuration, `$HOME/clawdia.toml`. Unknown keys are errors; relative paths are
/// relative to the home directory; secrets are references, never inline values. A secret
/// reference may also carry `rotated_at = "YYYY-MM-DD"` and `rotate_every_days = N`: the monthly
/// maintenance then lists it when its rotation is due.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "clawdia.toml")]
pub(crate) struct RawConfig {
    /// The gateway: the address it listens on and the token clients must present.
    #[serde(default)]
    pub gateway: RawGateway,
    /// Model providers by name. An agent names a model as `provider/model`, where `provider` is a
    /// key of this table.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawProvider>")]
    pub providers: BTreeMap<String, Spanned<RawProvider>>,
    /// Agents by name (lowercase letters, digits, `_`, `-`). Each has a model, fallbacks, a
    /// workspace, a tool policy and a budget.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawAgent>")]
    pub agents: BTreeMap<String, Spanned<RawAgent>>,
    /// Prices by `"provider/model"`, in USD per million tokens, used for cost reports and
    /// `daily_usd` budgets. A model without a price costs 0.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawPrice>")]
    pub prices: BTreeMap<String, Spanned<RawPrice>>,
    /// The knowledge brain: search tuning and the embedding model.
    #[serde(default)]
    pub brain: RawBrain,
    /// The scheduler: jobs, the heartbeat and maintenance, run by `clawdia up`.
    #[serde(default)]
    pub cron: RawCron,
    /// MCP servers whose tools agents may use (started on first use, sandboxed).
    #[serde(default)]
    pub mcp: crate::mcp::RawMcp,
    /// Requests awaiting the owner: the tool gate's approval requests.
    #[serde(default)]
    pub broker: crate::broker::RawBroker,
    /// The signed one-way bridge the administrator side reports to user agents on.
    #[serde(default)]
    pub bridge: crate::broker::RawBridge,
    /// The owner: who approvals and alerts are for, and how to reach them on each channel.
    #[serde(default)]
    pub owner: crate::alerts::RawOwner,
    /// Alerts for the owner: which events, and the routes they take (`state/outbox.db` queues
    /// them; delivery is retried until each route accepts).
    #[serde(default)]
    pub alerts: crate::alerts::RawAlerts,
    /// The owner's chat channels: `[channels.web]`, the browser UI at `/`.
    #[serde(default)]
    pub channels: crate::channels::RawChannels,
    /// Speech engines for voice notes and calls: speech to text and text to speech, each
    /// `"local/<model>"` or `"PROVIDER/MODEL"` of an OpenAI-compatible provider.
    #[serde(default)]
    pub speech: crate::speech::RawSpeech,
    /// The gateway's log file in `logs/`: its size and how many rotated files are kept.
    #[serde(default)]
    pub logs: RawLogs,
}

/// The scheduler (`state/cron.db`). Jobs defined here and jobs added with `clawdia cron add`
/// behave the same.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Cron")]
pub(crate) struct RawCron {
    /// Run scheduled jobs while the gateway runs (`clawdia cron run` works either way).
    #[schemars(extend("default" = true))]
    pub enabled: Option<bool>,
    /// Allow jobs marked `host = true` to run shell commands directly on the host, outside the
    /// sandbox, with the gateway's rights.
    #[schemars(extend("default" = false))]
    pub allow_host_jobs: Option<bool>,
    /// How `exec` jobs are isolated: `auto`, `bwrap`, `builtin` or `off` (as for agents).
    #[schemars(with = "Option<SandboxKind>", extend("default" = "auto"))]
    pub sandbox: Option<Spanned<SandboxKind>>,
    /// The working folder of `exec` jobs (the only writable folder in their sandbox); relative to
    /// the home.
    #[schemars(with = "Option<String>", extend("default" = defaults::CRON_WORKSPACE))]
    pub workspace: Option<Spanned<String>>,
    /// Hard cap on one run when a job gives no `timeout_seconds`.
    #[schemars(with = "Option<u64>", extend("default" = defaults::CRON_TIMEOUT_SECS))]
    pub default_timeout_seconds: Option<Spanned<u64>>,
    /// Seconds between `SIGTERM` and `SIGKILL` when a job's process tree is killed.
    #[schemars(with = "Option<u64>", extend("default" = defaults::CRON_KILL_GRACE_SECS))]
    pub kill_grace_seconds: Option<Spanned<u64>>,
    /// After downtime, a job with `catch_up = "once"` runs once if its last missed run is at most
    /// this many seconds old; older misses are skipped.
    #[schemars(with = "Option<u64>", extend("default" = defaults::CRON_CATCH_UP_GRACE_SECS))]
    pub catch_up_grace_seconds: Option<Spanned<u64>>,
    /// A shell command run on the host when a job reaches its `failure_alert` streak; it gets
    /// `CLAWDIA_JOB`, `CLAWDIA_FAILURES` and `CLAWDIA_OUTPUT` in its environment.
    #[schemars(with = "Option<String>")]
    pub failure_hook: Option<Spanned<String>>,
    /// Days of run history kept (the weekly maintenance prunes older runs).
    #[schemars(with = "Option<u64>", extend("default" = defaults::CRON_HISTORY_DAYS))]
    pub history_days: Option<Spanned<u64>>,
    /// Jobs by name (lowercase letters, digits, `_`, `-`, `.`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawJob>")]
    pub jobs: BTreeMap<String, Spanned<RawJob>>,
    /// Heartbeats by agent name: a periodic light turn on the agent's main session. Off unless
    /// `enabled = true`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, RawHeartbeat>")]
    pub heartbeat: BTreeMap<String, Spanned<RawHeartbeat>>,
    /// Built-in maintenance jobs.
    #[serde(default)]
    pub maintenance: RawMaintenance,
}

/// One scheduled job: exactly one of `cron`, `every`, `at`; exactly one of `exec` or
/// `agent` + `prompt`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Job")]
pub(crate) struct RawJob {
    /// A cron expression: 5 fields (minute hour day month weekday) or 6 (seconds first).
    #[schemars(with = "Option<String>")]
    pub cron: Option<Spanned<String>>,
    /// The IANA time zone of `cron` (and of a civil `at` time), e.g. `Europe/Berlin`.
    #[schemars(with = "Option<String>", extend("default" = "UTC"))]
    pub tz: Option<Spanned<String>>,
    /// An interval: `30s`, `5m`, `1h30m`, `1d`.
    #[schemars(with = "Option<String>")]
    pub every: Option<Spanned<String>>,
    /// One moment: `2026-12-24T18:00:00+01:00`, or `2026-12-24T18:00` in `tz`.
    #[schemars(with = "Option<String>")]
    pub at: Option<Spanned<String>>,
    /// A shell command (`/bin/sh -c`), run in the sandbox in the cron workspace.
    #[schemars(with = "Option<String>")]
    pub exec: Option<Spanned<String>>,
    /// Run `exec` on the host, outside the sandbox (needs `allow_host_jobs = true`).
    #[schemars(extend("default" = false))]
    pub host: Option<bool>,
    /// Hosts a sandboxed `exec` job may reach through the filtering proxy, with the syntax of
    /// `[agents.NAME.exec] egress` (`"host:port"`, `"host"` for 443 and 80, `"*.example.com"`).
    /// Default: no network. Jobs added by an agent's `cron` tool never get any.
    #[schemars(with = "Option<Vec<String>>", extend("default" = []))]
    pub egress: Option<Vec<Spanned<String>>>,
    /// The agent that gets `prompt`.
    #[schemars(with = "Option<String>")]
    pub agent: Option<Spanned<String>>,
    /// The message sent to `agent` on each run.
    #[schemars(with = "Option<String>")]
    pub prompt: Option<Spanned<String>>,
    /// Continue this session on every run (default: a new session per run).
    #[schemars(with = "Option<String>")]
    pub session: Option<Spanned<String>>,
    /// Hard cap on one run, in seconds (default: `default_timeout_seconds`).
    #[schemars(with = "Option<u64>")]
    pub timeout_seconds: Option<Spanned<u64>>,
    /// Tools (names or groups) an agent turn may use, within the agent's policy.
    pub tools_allow: Option<Vec<String>>,
    /// Alert after this many consecutive failures (audit log at high severity, `failure_hook`).
    #[schemars(with = "Option<u32>")]
    pub failure_alert: Option<Spanned<u32>>,
    /// A disabled job stays listed but never fires on its schedule.
    #[schemars(extend("default" = true))]
    pub enabled: Option<bool>,
    /// After downtime: `once` (run once if missed within `catch_up_grace_seconds`) or `skip`.
    #[schemars(with = "Option<CatchUpKind>", extend("default" = "once"))]
    pub catch_up: Option<CatchUpKind>,
}

/// What a job does about runs missed while the gateway was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CatchUpKind {
    /// Run once if the last missed run is within the grace window.
    Once,
    /// Skip missed runs.
    Skip,
}

/// A heartbeat: a periodic light turn (no workspace files, the last few exchanges) on the
/// agent's main session, with its own budget; a reply containing `ok_token` is not delivered.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Heartbeat")]
pub(crate) struct RawHeartbeat {
    /// Heartbeats are off unless this is true.
    #[schemars(extend("default" = false))]
    pub enabled: Option<bool>,
    /// The interval.
    #[schemars(with = "Option<String>", extend("default" = defaults::HEARTBEAT_EVERY))]
    pub every: Option<Spanned<String>>,
    /// The message sent on each beat.
    #[schemars(with = "Option<String>", extend("default" = defaults::HEARTBEAT_PROMPT))]
    pub prompt: Option<Spanned<String>>,
    /// The session the heartbeat continues.
    #[schemars(with = "Option<String>", extend("default" = defaults::HEARTBEAT_SESSION))]
    pub session: Option<Spanned<String>>,
    /// Local hours when it may run, `HH:MM-HH:MM` in `tz` (may wrap midnight); unset: always.
    #[schemars(with = "Option<String>")]
    pub active_hours: Option<Spanned<String>>,
    /// The time zone of `active_hours`.
    #[schemars(with = "Option<String>", extend("default" = "UTC"))]
    pub tz: Option<Spanned<String>>,
    /// The heartbeat's own daily token cap (on top of the agent's budget).
    pub daily_tokens: Option<u64>,
    /// The heartbeat's own daily USD cap (on top of the agent's budget).
    #[schemars(with = "Option<f64>")]
    pub daily_usd: Option<Spanned<f64>>,
    /// A reply containing this token is treated as "nothing to report" and not delivered.
    #[schemars(with = "Option<String>", extend("default" = defaults::HEARTBEAT_OK_TOKEN))]
    pub ok_token: Option<Spanned<String>>,
    /// Tools (names or groups) the heartbeat may use, within the agent's policy.
    pub tools_allow: Option<Vec<String>>,
}

/// Built-in maintenance jobs, each off unless enabled.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Maintenance")]
pub(crate) struct RawMaintenance {
    /// Every day: a digest of the last day's high-severity audit events and failed jobs.
    #[schemars(extend("default" = false))]
    pub daily: Option<bool>,
    /// Every Sunday: prune old sandboxes, temp files, logs and run history, with a report.
    #[schemars(extend("default" = false))]
    pub weekly: Option<bool>,
    /// On the 1st of each month: VACUUM, ANALYZE and integrity check of the state databases,
    /// brain optimize, and the secrets due for rotation, with a report.
    #[schemars(extend("default" = false))]
    pub monthly: Option<bool>,
    /// Local time (`HH:MM`, in `tz`) the maintenance jobs run.
    #[schemars(with = "Option<String>", extend("default" = defaults::MAINTENANCE_TIME))]
    pub time: Option<Spanned<String>>,
    /// The time zone of `time`.
    #[schemars(with = "Option<String>", extend("default" = "UTC"))]
    pub tz: Option<Spanned<String>>,
    /// Files in temp and log folders older than this many days are pruned weekly.
    #[schemars(with = "Option<u64>", extend("default" = defaults::MAINTENANCE_PRUNE_DAYS))]
    pub prune_days: Option<Spanned<u64>>,
}

/// The knowledge brain (`state/brain.db`): hybrid search settings and the embedder.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Brain")]
pub(crate) struct RawBrain {
    /// How the full-text and vector result lists are combined: `convex` (each list's scores
    /// normalized min-max per query, times the list's weight, summed) or `rrf` (reciprocal rank
    /// fusion, `weight / (rrf_k + rank)`).
    #[schemars(with = "Option<BrainFusion>", extend("default" = "convex"))]
    pub fusion: Option<Spanned<BrainFusion>>,
    /// The `k` of reciprocal rank fusion: each result list adds `1 / (rrf_k + rank)`. Larger values
    /// flatten the difference between top and lower ranks.
    #[schemars(with = "Option<f64>", extend("default" = defaults::RRF_K))]
    pub rrf_k: Option<Spanned<f64>>,
    /// Weight of the full-text (BM25) list in the fusion: it adds `fts_weight / (rrf_k + rank)`.
    #[schemars(with = "Option<f64>", extend("default" = defaults::FTS_WEIGHT))]
    pub fts_weight: Option<Spanned<f64>>,
    /// Weight of the vector (embedding) list in the fusion: it adds
    /// `vector_weight / (rrf_k + rank)`. 0 turns the vector arm off.
    #[schemars(with = "Option<f64>", extend("default" = defaults::VECTOR_WEIGHT))]
    pub vector_weight: Option<Spanned<f64>>,
    /// When several chunks per page may be shown (`max_chunks_per_page` other than 1): weight of
    /// the whole page's full-text match, added to each of its chunks (a passage of a page that
    /// matches as a whole ranks higher). 0 ranks chunks on their own.
    #[schemars(with = "Option<f64>", extend("default" = defaults::PAGE_WEIGHT))]
    pub page_weight: Option<Spanned<f64>>,
    /// Most results from one page (the rest of its chunks make room for other pages). With 1, full
    /// text ranks whole pages and each result shows the page's best-matching chunk; otherwise
    /// it ranks chunks.
    #[schemars(with = "Option<usize>", extend("default" = defaults::MAX_CHUNKS_PER_PAGE))]
    pub max_chunks_per_page: Option<Spanned<usize>>,
    /// Score multipliers by slug prefix, so curated pages outrank bulk imports, e.g.
    /// `{ "notes/" = 1.5, "import/" = 0.8 }`.
    #[schemars(with = "Option<BTreeMap<String, f64>>", extend("default" = {}))]
    pub boosts: Option<BTreeMap<String, Spanned<f64>>>,
    /// Slug prefixes that never appear in results (removed before ranking).
    #[schemars(extend("default" = []))]
    pub exclude: Option<Vec<String>>,
    /// The embedding model used for vector search.
    #[serde(default)]
    pub embedder: RawEmbedder,
    /// The dream cycle: new chat transcripts distilled into pages, facts and takes.
    #[serde(default)]
    pub dream: crate::dream::RawDream,
}

/// The embedding model. Changing it re-embeds the brain instead of mixing vector spaces.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Embedder")]
pub(crate) struct RawEmbedder {
    /// `local` (an in-process model from `models/<model>` in the home), `openai` (an
    /// OpenAI-compatible `/embeddings` endpoint: OpenAI, Ollama, vLLM) or `none` (full-text search
    /// only).
    #[schemars(with = "Option<EmbedderKind>", extend("default" = "local"))]
    pub kind: Option<Spanned<EmbedderKind>>,
    /// The model: a folder name under `models/` for `local`, the model id for `openai`.
    #[schemars(with = "Option<String>", extend("default" = defaults::EMBEDDING_MODEL))]
    pub model: Option<Spanned<String>>,
    /// For `openai`: the API root including the version path (the client appends
    /// `/embeddings`), e.g. `http://127.0.0.1:11434/v1`.
    #[schemars(with = "Option<String>")]
    pub base_url: Option<Spanned<String>>,
    /// For `openai`: the API key as a secret reference; omit for local servers.
    pub api_key: Option<RawSecret>,
    /// For `openai`: the vector length, when the endpoint supports choosing it.
    pub dimensions: Option<usize>,
    /// For `local`: CPU threads used for embedding (default: all cores).
    pub threads: Option<usize>,
}

/// Which embedder the brain uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EmbedderKind {
    /// The in-process model from the home's `models/` folder.
    Local,
    /// An OpenAI-compatible `/embeddings` endpoint.
    Openai,
    /// No embeddings: full-text search only.
    None,
}

/// The gateway: the HTTP/WebSocket API that channels, the CLI and the web UI talk to.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Gateway")]
pub(crate) struct RawGateway {
    /// IP address to listen on (not a host name). `127.0.0.1` keeps the gateway on this machine;
    /// `0.0.0.0` or `::` listens on every interface.
    #[schemars(with = "Option<String>", extend("default" = defaults::BIND))]
    pub bind: Option<Spanned<String>>,
    /// TCP port. `0` picks a free port.
    #[schemars(extend("default" = defaults::PORT))]
    pub port: Option<u16>,
    /// The bearer token clients must present, as a secret reference. `clawdia init` writes a
    /// random token to the default file with mode 0600.
    #[schemars(extend("default" = { "file": defaults::TOKEN_FILE }))]
    pub token: Option<RawSecret>,
    /// Largest request body accepted, in bytes; a larger one gets 413.
    #[schemars(with = "Option<usize>", extend("default" = defaults::MAX_REQUEST_BYTES))]
    pub max_request_bytes: Option<Spanned<usize>>,
    /// Most client connections open at once. When all are taken, the connection that has waited
    /// longest without a request in progress is closed to make room; only when every one is busy
    /// does a new connection get `503` with `Retry-After`. Lowered at start-up (with a warning)
    /// when the open-file limit cannot hold it.
    #[schemars(with = "Option<usize>", extend("default" = defaults::MAX_CONNECTIONS))]
    pub max_connections: Option<Spanned<usize>>,
    /// Seconds a connection may take to send a complete request head, counted from when it
    /// opens or finished its previous request (keep-alive): idle and half-sent connections are
    /// closed after this.
    #[schemars(with = "Option<u64>", extend("default" = defaults::HEADER_TIMEOUT_SECS))]
    pub header_timeout_secs: Option<Spanned<u64>>,
    /// Seconds a request body may take to arrive in full; a slower one gets `408`.
    #[schemars(with = "Option<u64>", extend("default" = defaults::BODY_TIMEOUT_SECS))]
    pub body_timeout_secs: Option<Spanned<u64>>,
    /// Seconds a response may wait for a client that stopped reading it before the connection
    /// is closed.
    #[schemars(with = "Option<u64>", extend("default" = defaults::WRITE_TIMEOUT_SECS))]
    pub write_timeout_secs: Option<Spanned<u64>>,
    /// Turns (`/v1/chat/completions`, `/v1/turns`) running at once over HTTP. One more waits
    /// for a free slot (its body unread) for up to `turn_queue_secs`.
    #[schemars(with = "Option<usize>", extend("default" = defaults::MAX_CONCURRENT_TURNS))]
    pub max_concurrent_turns: Option<Spanned<usize>>,
    /// Seconds a turn waits for a free slot before it gets `503` with `Retry-After`; `0`
    /// refuses at once.
    #[schemars(extend("default" = defaults::TURN_QUEUE_SECS))]
    pub turn_queue_secs: Option<u64>,
    /// On SIGTERM or SIGINT, seconds the turns in flight and the scheduled runs in progress may
    /// take to finish (nothing new starts) before they are cancelled and the gateway exits; `0`
    /// cancels them at once.
    #[schemars(extend("default" = defaults::DRAIN_SECS))]
    pub drain_secs: Option<u64>,
}

/// The gateway's log file, `logs/clawdia.log` in the home, written beside stderr by
/// `clawdia up`. When it reaches `max_bytes` it is renamed `clawdia.log.1` (the older ones
/// shift to `.2`, ...) and a new one starts; at most `keep` rotated files are kept.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Logs")]
pub(crate) struct RawLogs {
    /// Size in bytes at which the log file is rotated.
    #[schemars(with = "Option<u64>", extend("default" = defaults::LOG_MAX_BYTES))]
    pub max_bytes: Option<Spanned<u64>>,
    /// Rotated files kept (`clawdia.log.1` is the newest); `0` keeps none, so the log restarts
    /// empty when it is full.
    #[schemars(extend("default" = defaults::LOG_KEEP))]
    pub keep: Option<usize>,
}

/// One model provider endpoint.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Provider")]
pub(crate) struct RawProvider {
    /// Wire format: `anthropic` (Messages API), `openai` (Chat Completions, as spoken by z.ai
    /// GLM, OpenRouter, Groq, vLLM, Ollama and llama.cpp) or `local` (a GGUF model from the
    /// home's `models/` folder run inside the gateway; agents name it `NAME/<model folder>`).
    pub kind: ProviderKind,
    /// Base URL, `http://` or `https://`; a trailing `/` is ignored. Required for `anthropic` and
    /// `openai`, not used by `local`. For `openai` include the version path (the client appends
    /// `/chat/completions`); for `anthropic` leave it out (the client appends `/v1/messages`).
    #[schemars(with = "Option<String>")]
    pub base_url: Option<Spanned<String>>,
    /// The API key as a secret reference. Omit it for local servers that need no key.
    pub api_key: Option<RawSecret>,
    /// Seconds allowed to establish a connection.
    #[schemars(with = "Option<u64>", extend("default" = defaults::CONNECT_TIMEOUT_SECS))]
    pub connect_timeout_secs: Option<Spanned<u64>>,
    /// Longest silence allowed between bytes of a response, in seconds.
    #[schemars(with = "Option<u64>", extend("default" = defaults::READ_TIMEOUT_SECS))]
    pub read_timeout_secs: Option<Spanned<u64>>,
    /// Seconds the provider is skipped after a failure (rate limit, outage) before it is tried
    /// again; fallbacks are used meanwhile. `0` disables the cooldown.
    #[schemars(extend("default" = defaults::COOLDOWN_SECS))]
    pub cooldown_secs: Option<u64>,
    /// How many times a model of this provider is tried again after a transient failure (429
    /// rate limit; 500, 502, 503, 504 or 529 overloaded; a connection refused or reset; a
    /// timeout) before the agent's fallbacks are tried: 200 ms, then 400 ms, ... apart, or as
    /// long as the provider's `Retry-After` asks. Never after part of the reply was already
    /// streamed, never for refusals such as 400, 401, 403 or 404. At most 10; `0` disables
    /// retries.
    #[schemars(with = "Option<u32>", extend("default" = defaults::RETRIES))]
    pub retries: Option<Spanned<u32>>,
    /// The longest wait before one retry, in seconds (1 to 3600). A provider whose `Retry-After`
    /// asks for longer is not retried: the fallbacks are tried at once, and the provider cools
    /// down for as long as it asked.
    #[schemars(with = "Option<u64>", extend("default" = defaults::RETRY_MAX_WAIT_SECS))]
    pub retry_max_wait_secs: Option<Spanned<u64>>,
    /// Extra HTTP headers sent with every request (e.g. OpenRouter's `HTTP-Referer`).
    #[schemars(with = "Option<BTreeMap<String, String>>", extend("default" = {}))]
    pub headers: Option<BTreeMap<String, Spanned<String>>>,
    /// For `local`: CPU threads used to run the model (default: one per core).
    #[schemars(with = "Option<usize>")]
    pub threads: Option<Spanned<usize>>,
    /// For `local`: seconds without a request after which the model is unloaded from memory (it
    /// loads again on the next request). `0` keeps it loaded.
    #[schemars(extend("default" = defaults::LOCAL_IDLE_UNLOAD_SECS))]
    pub idle_unload_secs: Option<u64>,
    /// For `local`: most tokens of prompt plus reply; older messages are dropped to fit. The
    /// model's own limit applies when it is lower.
    #[schemars(with = "Option<usize>", extend("default" = defaults::LOCAL_CONTEXT_LENGTH))]
    pub context_length: Option<Spanned<usize>>,
}

/// One agent: a model with fallbacks, a workspace, tools and limits.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Agent")]
pub(crate) struct RawAgent {
    /// The primary model, as `provider/model` (e.g. `anthropic/claude-sonnet-4-5`).
    #[schemars(with = "String")]
    pub model: Spanned<String>,
    /// Models tried in order when the primary fails (rate limit, outage, timeout), each as
    /// `provider/model`.
    #[schemars(with = "Option<Vec<String>>", extend("default" = []))]
    pub fallbacks: Option<Vec<Spanned<String>>>,
    /// The agent's working directory for file tools and commands; relative to the home. Default:
    /// `workspaces/<agent name>`.
    #[schemars(with = "Option<String>")]
    pub workspace: Option<Spanned<String>>,
    /// Which tools the agent may use.
    #[serde(default)]
    pub tools: RawTools,
    /// Daily spending limits; unset means unlimited.
    #[serde(default)]
    pub budget: RawBudget,
    /// Limits on the workspace files (AGENTS.md, SOUL.md, ..., yesterday's and today's
    /// memory/YYYY-MM-DD.md; HEARTBEAT.md in heartbeat turns) injected into the system prompt.
    #[serde(default)]
    pub prompt: RawPrompt,
    /// Most model calls in one turn before the agent must answer (tool-use loop limit).
    #[schemars(with = "Option<u32>", extend("default" = defaults::MAX_TOOL_ITERATIONS))]
    pub max_tool_iterations: Option<Spanned<u32>>,
    /// Most tokens the model may generate in one reply.
    #[schemars(with = "Option<u32>", extend("default" = defaults::MAX_TOKENS))]
    pub max_tokens: Option<Spanned<u32>>,
    /// Sampling temperature, 0 to 2. Unset: the provider's default.
    #[schemars(with = "Option<f32>")]
    pub temperature: Option<Spanned<f32>>,
    /// Limits of the `web_fetch` tool.
    #[serde(default)]
    pub web_fetch: RawWebFetch,
    /// How `exec` commands are isolated: `auto` (bubblewrap when installed, else the built-in
    /// namespaces + Landlock + seccomp sandbox; `exec` refuses when neither works), `bwrap`,
    /// `builtin`, or `off` (commands run directly on the host with the gateway's rights;
    /// `clawdia doctor` flags it).
    #[schemars(with = "Option<SandboxKind>", extend("default" = "auto"))]
    pub sandbox: Option<Spanned<SandboxKind>>,
    /// Limits of the `exec` tool.
    #[serde(default)]
    pub exec: RawExec,
    /// Host commands the agent may run outside the sandbox (the `host_exec` tool, group
    /// `elevated`): only the listed binaries with matching arguments, and only in turns from the
    /// listed senders. Empty: no host commands.
    #[serde(default)]
    pub elevated: RawElevated,
}

/// `[agents.NAME.elevated]`: the allowlist of host commands.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Elevated")]
pub(crate) struct RawElevated {
    /// Whose turns may run host commands: `cli` (the owner at the terminal), `api` (an API client
    /// that gave no `user`), `api:NAME` (one that did), `cron:JOB` (a scheduled job or heartbeat;
    /// the old `scheduler` means `cron:*`), `subagent:...` (a sub-agent acting for that sender);
    /// `ORIGIN:*` matches every identified sender of an origin.
    #[schemars(with = "Option<Vec<String>>", extend("default" = defaults::ELEVATED_SENDERS))]
    pub senders: Option<Vec<Spanned<String>>>,
    /// The host binaries and argument patterns allowed.
    #[schemars(extend("default" = []))]
    pub commands: Option<Vec<RawHostCommand>>,
}

/// One allowed host command: `[[agents.NAME.elevated.commands]]`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HostCommand")]
pub(crate) struct RawHostCommand {
    /// The binary, as an absolute path (no `PATH` lookup, no shell).
    #[schemars(with = "String")]
    pub path: Spanned<String>,
    /// One pattern per argument, in order: literal text where `*` matches any characters within
    /// that argument; a final `**` matches any further arguments. `[]`: no arguments.
    #[schemars(with = "Option<Vec<String>>", extend("default" = []))]
    pub args: Option<Vec<Spanned<String>>>,
    /// Environment variables injected at the boundary (credentials the command needs), as secret
    /// references; the model never sees their values, and they are masked in the output.
    #[schemars(extend("default" = {}))]
    pub env: Option<BTreeMap<String, RawSecret>>,
    /// Seconds before the command and everything it started are killed.
    #[schemars(with = "Option<u64>", extend("default" = defaults::EXEC_TIMEOUT_SECS))]
    pub timeout_seconds: Option<Spanned<u64>>,
    /// What the command is for, shown to the model.
    pub description: Option<String>,
}

/// How the brain combines its two result lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BrainFusion {
    /// Reciprocal rank fusion.
    Rrf,
    /// A convex combination of per-query normalized scores.
    Convex,
}

/// Which sandbox runs the agent's commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SandboxKind {
    /// bubblewrap when it works, else the built-in sandbox, else `exec` refuses.
    Auto,
    /// bubblewrap only.
    Bwrap,
    /// The built-in sandbox only.
    Builtin,
    /// No sandbox (only a time limit, rlimits and a clean environment).
    Off,
}

/// Limits of the `exec` tool; every command runs with them.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Exec")]
pub(crate) struct RawExec {
    /// Seconds a command may run when the call does not say; then it and everything it started
    /// are killed (`SIGTERM`, then `SIGKILL`).
    #[schemars(with = "Option<u64>", extend("default" = defaults::EXEC_TIMEOUT_SECS))]
    pub timeout_seconds: Option<Spanned<u64>>,
    /// The most seconds a call may ask for (at most 110: the agent abandons any tool call after
    /// 120 s).
    #[schemars(with = "Option<u64>", extend("default" = defaults::EXEC_MAX_TIMEOUT_SECS))]
    pub max_timeout_seconds: Option<Spanned<u64>>,
    /// Most bytes of output (stdout and stderr merged) the model sees; the middle of longer
    /// output is cut, with a marker.
    #[schemars(with = "Option<usize>", extend("default" = defaults::EXEC_MAX_OUTPUT_BYTES))]
    pub max_output_bytes: Option<Spanned<usize>>,
    /// Virtual memory per process, in MiB (`RLIMIT_AS`).
    #[schemars(with = "Option<u64>", extend("default" = defaults::EXEC_MEMORY_MB))]
    pub memory_mb: Option<Spanned<u64>>,
    /// CPU seconds per process (`RLIMIT_CPU`).
    #[schemars(with = "Option<u64>", extend("default" = defaults::EXEC_CPU_SECONDS))]
    pub cpu_seconds: Option<Spanned<u64>>,
    /// Most processes (and threads) at once inside the sandbox.
    #[schemars(with = "Option<u64>", extend("default" = defaults::EXEC_PROCESSES))]
    pub processes: Option<Spanned<u64>>,
    /// Most open files per process.
    #[schemars(with = "Option<u64>", extend("default" = defaults::EXEC_OPEN_FILES))]
    pub open_files: Option<Spanned<u64>>,
    /// Largest file a command may write, in MiB.
    #[schemars(with = "Option<u64>", extend("default" = defaults::EXEC_FILE_SIZE_MB))]
    pub file_size_mb: Option<Spanned<u64>>,
    /// Hosts commands may reach, only through the gateway's filtering HTTP proxy (the sandbox
    /// sets `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` to it; `CONNECT` and plain HTTP). Each entry
    /// is `"host:port"`, `"host"` (ports 443 and 80), `"*.example.com"` (any name below it), or
    /// an address (`"10.0.0.5:8080"`, `"[::1]:8080"`): loopback and private destinations are
    /// reachable only through an entry naming the address, even when a listed name resolves to
    /// one. Anything else is refused with a 403. Empty: no network at all.
    #[schemars(with = "Option<Vec<String>>", extend("default" = []))]
    pub egress: Option<Vec<Spanned<String>>>,
}

/// The agent's tool policy: `deny` wins over `allow`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ToolPolicy")]
pub(crate) struct RawTools {
    /// Tool names (`read`, `exec`, ...) or group names (`fs`, `web`, ...) the agent may use.
    #[schemars(extend("default" = defaults::TOOLS_ALLOW))]
    pub allow: Option<Vec<String>>,
    /// Tool or group names refused even when allowed.
    #[schemars(extend("default" = []))]
    pub deny: Option<Vec<String>>,
    /// Tool or group names (`exec`, `host_exec`, `write`, `mcp:github`) whose calls wait for the
    /// owner's approval (`clawdia broker approve ID`): the call is stored with its arguments, the
    /// owner is alerted, and the call runs, exactly as asked, only once approved. `ask` grants
    /// nothing: the tool must also be allowed, and `deny` still wins.
    #[schemars(extend("default" = []))]
    pub ask: Option<Vec<String>>,
    /// Workspace-relative globs the write tools are confined to, e.g. `["docs/**", "*.md"]`
    /// (`*` within a folder, `**` across folders, `dir/` for everything under it). A write or
    /// edit elsewhere is refused and audited, and `exec` sees the workspace read-only. Unset:
    /// the whole workspace is writable.
    #[schemars(with = "Option<Vec<String>>")]
    pub write: Option<Vec<Spanned<String>>>,
}

/// Daily limits, reset at midnight UTC. Unset means unlimited.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Budget")]
pub(crate) struct RawBudget {
    /// Most tokens (input + output + cache) per day.
    pub daily_tokens: Option<u64>,
    /// Most USD per day, computed from `[prices]`; must not be negative.
    #[schemars(with = "Option<f64>")]
    pub daily_usd: Option<Spanned<f64>>,
}

/// Prompt size limits, in characters.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PromptLimits")]
pub(crate) struct RawPrompt {
    /// Most characters injected from one workspace file; longer files are truncated.
    #[schemars(extend("default" = defaults::FILE_MAX_CHARS))]
    pub file_max_chars: Option<usize>,
    /// Most characters injected from all workspace files together.
    #[schemars(extend("default" = defaults::TOTAL_MAX_CHARS))]
    pub total_max_chars: Option<usize>,
}

/// Limits of the `web_fetch` tool.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "WebFetch")]
pub(crate) struct RawWebFetch {
    /// Seconds allowed for one fetch.
    #[schemars(with = "Option<u64>", extend("default" = defaults::WEB_FETCH_TIMEOUT_SECS))]
    pub timeout_secs: Option<Spanned<u64>>,
    /// Most bytes read from one response; the rest is cut off.
    #[schemars(with = "Option<usize>", extend("default" = defaults::WEB_FETCH_MAX_BYTES))]
    pub max_bytes: Option<Spanned<usize>>,
    /// Allow fetching loopback, private and link-local addresses. Off, so a prompt injection
    /// cannot reach services on this machine or network.
    #[schemars(extend("default" = false))]
    pub allow_private: Option<bool>,
}

/// Prices of one model in USD per million tokens.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Price")]
pub(crate) struct RawPrice {
    /// USD per million input tokens.
    #[schemars(with = "f64")]
    pub input_per_mtok: Spanned<f64>,
    /// USD per million output tokens.
    #[schemars(with = "f64")]
    pub output_per_mtok: Spanned<f64>,
    /// USD per million tokens read from the prompt cache.
    #[schemars(with = "Option<f64>", extend("default" = 0.0))]
    pub cache_read_per_mtok: Option<Spanned<f64>>,
    /// USD per million tokens written to the prompt cache.
    #[schemars(with = "Option<f64>", extend("default" = 0.0))]
    pub cache_write_per_mtok: Option<Spanned<f64>>,
}

/// A secret by reference, never inline: `{ env = "NAME" }` reads an environment variable,
/// `{ file = "path" }` reads a file (relative to the home; trailing whitespace trimmed).
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
#[schemars(rename = "SecretRef")]
pub(crate) enum RawSecret {
    /// Read the secret from an environment variable.
    Env {
        env: String,
        /// When the secret was last rotated, `YYYY-MM-DD`; with `rotate_every_days`, the monthly
        /// maintenance lists it when a rotation is due.
        rotated_at: Option<String>,
        /// How often the secret should be rotated, in days.
        rotate_every_days: Option<u32>,
    },
    /// Read the secret from a file.
    File {
        file: String,
        /// When the secret was last rotated, `YYYY-MM-DD`.
        rotated_at: Option<String>,
        /// How often the secret should be rotated, in days.
        rotate_every_days: Option<u32>,
    },
}

pub(crate) const INLINE_SECRET: &str = "secrets must be references, `{ env = \"NAME\" }` or \
     `{ file = \"path\" }`, never inline values";

/// Hand-written so that a plain string (an inline key) is refused without echoing it.
impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretTable {
    env: Option<String>,
    file: Option<String>,
    rotated_at: Option<String>,
    rotate_every_days: Option<u32>,
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = RawSecret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a secret reference, `{ env = \"NAME\" }` or `{ file = \"path\" }`")
    }

    fn visit_str<E: de::Error>(self, _value: &str) -> Result<RawSecret, E> {
        Err(E::custom(INLINE_SECRET))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawSecret, A::Error> {
        let table = SecretTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let (rotated_at, rotate_every_days) = (table.rotated_at, table.rotate_every_days);
        match (table.env, table.file) {
            (Some(env), None) if !env.trim().is_empty() => {
                Ok(RawSecret::Env { env, rotated_at, rotate_every_days })
            }
            (None, Some(file)) if !file.trim().is_empty() => {
                Ok(RawSecret::File { file, rotated_at, rotate_every_days })
            }
            (Some(_), None) => Err(de::Error::custom("`env` must name a variable")),
            (None, Some(_)) => Err(de::Error::custom("`file` must name a file")),
            _ => Err(de::Error::custom("give exactly one of `env` or `file`")),
        }
    }
}
