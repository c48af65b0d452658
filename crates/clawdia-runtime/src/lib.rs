//! The composition root: the only crate that names concrete types from every capability crate.
//! `build` turns a validated config into a running gateway (providers with fallback, the
//! SQLite store, agents with their tools); `serve` puts the HTTP API on a socket; `home`
//! creates a home; `remote` talks to a gateway that is already running.

pub mod approvals;
pub mod bridge;
pub mod daemon;
pub mod dream;
pub mod elevation;
pub mod email;
pub mod home;
pub mod knowledge;
pub mod local_fallback;
pub mod mcp;
pub mod offline;
pub mod outbox;
pub mod remote;
pub mod sched;
pub mod telegram;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use clawdia_agent::{AgentSpec, Agents, Budget, Pricer, PromptLimits, ToolPolicy};
use clawdia_config::{Config, ProviderKind};
use clawdia_core::{
    AuditSink, ChatRequest, ChatResponse, DeltaSink, ModelClient, ModelError, ModelRef, Notifier, Severity,
    Tool, Usage,
};
use clawdia_llm::{AnthropicClient, OpenAiClient, ProviderSettings, RetryPolicy, Router};
use clawdia_store::Store;

pub use knowledge::open_brain;

/// Why the gateway could not be built or started. Each message is one line with a fix hint.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{0}")]
    Config(#[from] clawdia_config::ConfigError),
    #[error("cannot open the state databases in {dir}: {message}")]
    Store { dir: PathBuf, message: String },
    #[error("gateway token: {message} ({hint})")]
    Token { message: String, hint: &'static str },
    #[error("refusing to bind {0}: a non-loopback address needs a gateway token of at least 16 characters")]
    InsecureBind(IpAddr),
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: SocketAddr, message: String },
    /// The scheduler's database or a job in the config.
    #[error("{0}")]
    Cron(String),
    #[error("provider `{provider}`: {message}")]
    Provider { provider: String, message: String },
    #[error("{0}")]
    Io(String),
}

/// A built gateway: config, store and agents, ready to serve or to run turns in-process.
pub struct Runtime {
    pub config: Config,
    pub store: Arc<Store>,
    pub agents: Arc<Agents>,
    /// The gateway the channels, the API and the CLI decide through: the agents, with the
    /// request broker's elevation requests among the approvals.
    pub gateway: Arc<dyn clawdia_core::Gateway>,
    /// The request broker.
    pub elevations: Arc<elevation::Elevations>,
    pub brain: Arc<clawdia_brain::Brain>,
    /// `state/cron.db`, its config jobs in sync with the config.
    pub cron: Arc<clawdia_sched::CronDb>,
    /// The providers with fallback, as the agents use them (the dream cycle's scorer too).
    pub models: Arc<dyn clawdia_core::Models>,
    /// Prices model calls from `[prices]`.
    pub pricer: Pricer,
    /// Alerts for the owner (`state/outbox.db`, delivered by the running gateway).
    pub notifier: Arc<dyn Notifier>,
    /// The audit log as every component records into it: events at or above
    /// `alerts.min_severity` also reach the owner.
    pub audit: Arc<dyn AuditSink>,
    /// The outbox behind `notifier`, for the delivery task.
    outbox: Arc<clawdia_outbox::Outbox>,
    /// The `[mcp.servers]` the agents were granted (none started yet), when any are configured.
    pub mcp: Option<Arc<clawdia_mcp::Mcp>>,
}

/// The state folder of a home.
pub fn state_dir(home: &Path) -> PathBuf {
    home.join("state")
}

/// Builds the gateway from `config`. Providers whose key cannot be resolved are still built:
/// their calls fail with a clear `unauthorized` error and the chain falls back.
/// Installs the process-wide TLS provider (ring) for commands that fetch over HTTPS without
/// building a runtime; idempotent.
pub fn install_crypto_provider() {
    clawdia_llm::install_crypto_provider();
}

pub fn build(config: Config) -> Result<Runtime, RuntimeError> {
    clawdia_llm::install_crypto_provider();
    let dir = state_dir(&config.home);
    let store = Arc::new(
        Store::open(&dir).map_err(|e| RuntimeError::Store { dir: dir.clone(), message: e.to_string() })?,
    );
    let mut router = Router::new();
    for provider in config.providers.values() {
        let (client, cooldown) = provider_client(provider)?;
        router.add(&provider.name, client, cooldown, retry_policy(provider));
    }
    let local_providers = config
        .providers
        .values()
        .filter(|provider| provider.kind == ProviderKind::Local)
        .map(|provider| provider.name.clone())
        .collect();
    let models: Arc<dyn clawdia_core::Models> =
        Arc::new(local_fallback::LocalFallbackNote::new(router, local_providers));
    let prices = config.prices.clone();
    let pricer: Pricer = Arc::new(move |model: &ModelRef, usage: &Usage| {
        prices.get(&model.to_string()).map(|p| p.cost(usage)).unwrap_or(0.0)
    });
    let outbox = outbox::open(&config, store.clone())?;
    let notifier: Arc<dyn Notifier> = outbox.clone();
    let audit: Arc<dyn AuditSink> = Arc::new(outbox::AlertingAudit::new(
        store.clone(),
        notifier.clone(),
        Severity(config.alerts.min_severity),
        config.alerts.repeat,
    ));
    let brain = open_brain(&config)?;
    let cron = sched::open_cron(&config)?;
    let mut agents = Agents::new(models.clone(), store.clone(), audit.clone(), pricer.clone());
    for agent in config.agents.values() {
        let mut tools = agent_tools(agent);
        tools.extend(clawdia_brain::tools::brain_tools(brain.clone()));
        tools.extend(exec_tool(&config, agent));
        tools.extend(host_exec_tool(agent, audit.clone(), None));
        tools.push(sched::cron_tool(&cron, audit.clone()));
        tools.push(Arc::new(clawdia_tools::RequestElevation::new(elevation::inbox_dir(&config.home))));
        tools.extend(agents.subagent_tools());
        agents.add(agent_spec(agent), tools);
    }
    agents.set_approvals(approvals::open(&config)?, config.broker.ttl);
    agents.set_notifier(notifier.clone());
    let mcp = mcp::attach(&config, &mut agents, audit.clone());
    agents.set_skills(Arc::new(clawdia_skills::Skills::new(Some(config.home.join("skills")))));
    let agents = agents.shared();
    let broker = Arc::new(
        clawdia_store::Broker::open(&dir)
            .map_err(|e| RuntimeError::Store { dir: dir.clone(), message: e.to_string() })?,
    );
    let elevations = Arc::new(elevation::Elevations::new(
        config.clone(),
        broker,
        agents.clone(),
        notifier.clone(),
        audit.clone(),
    ));
    let gateway: Arc<dyn clawdia_core::Gateway> =
        Arc::new(elevation::Brokered { agents: agents.clone(), elevations: elevations.clone() });
    Ok(Runtime {
        config,
        store,
        agents,
        gateway,
        elevations,
        brain,
        cron,
        models,
        pricer,
        notifier,
        audit,
        outbox,
        mcp,
    })
}

fn agent_spec(agent: &clawdia_config::AgentConfig) -> AgentSpec {
    let mut chain = vec![agent.model.clone()];
    chain.extend(agent.fallbacks.iter().cloned());
    AgentSpec {
        name: agent.name.clone(),
        chain,
        workspace: agent.workspace.clone(),
        policy: ToolPolicy {
            allow: allow_list(agent),
            deny: agent.tools.deny.clone(),
            ask: agent.tools.ask.clone(),
        },
        budget: Budget { daily_tokens: agent.budget.daily_tokens, daily_usd: agent.budget.daily_usd },
        prompt_limits: PromptLimits {
            file_max_chars: agent.prompt.file_max_chars,
            total_max_chars: agent.prompt.total_max_chars,
        },
        max_tool_iterations: agent.max_tool_iterations,
        max_tokens: agent.max_tokens,
        temperature: agent.temperature,
        elevated_senders: agent.elevated.senders.clone(),
    }
}

fn agent_tools(agent: &clawdia_config::AgentConfig) -> Vec<Arc<dyn Tool>> {
    let mut tools = clawdia_tools::fs_tools_writing(agent.tools.write.clone());
    tools.push(clawdia_tools::web_fetch(clawdia_tools::WebFetchLimits {
        timeout: Duration::from_secs(agent.web_fetch.timeout_secs),
        max_bytes: agent.web_fetch.max_bytes,
        allow_private: agent.web_fetch.allow_private,
    }));
    tools
}

/// `exec`: commands run in the agent's sandbox with the home's `secrets/` and `state/` and the
/// other agents' workspaces hidden; the agent's gate decides whether it is offered. The sandbox
/// helper is this very binary (its `main` calls `sandbox::init_main_if_requested` first).
fn exec_tool(config: &Config, agent: &clawdia_config::AgentConfig) -> Option<Arc<dyn Tool>> {
    let mut hidden = vec![config.home.join("secrets"), state_dir(&config.home)];
    hidden.extend(
        config
            .agents
            .values()
            .map(|other| other.workspace.clone())
            .filter(|other| !agent.workspace.starts_with(other)),
    );
    let exec = &agent.exec;
    let sandbox = match agent.sandbox {
        clawdia_config::Sandbox::Auto => clawdia_sandbox::Choice::Auto,
        clawdia_config::Sandbox::Bwrap => clawdia_sandbox::Choice::Bubblewrap,
        clawdia_config::Sandbox::Builtin => clawdia_sandbox::Choice::Builtin,
        clawdia_config::Sandbox::Off => clawdia_sandbox::Choice::Off,
    };
    Some(clawdia_tools::exec(clawdia_tools::ExecSettings {
        sandbox,
        helper: sandbox_helper(),
        hidden,
        read_only_workspace: agent.tools.write.is_some(),
        limits: clawdia_sandbox::Limits {
            address_space: Some(exec.memory_bytes),
            cpu_seconds: Some(exec.cpu_seconds),
            processes: Some(exec.processes),
            open_files: Some(exec.open_files),
            file_size: Some(exec.file_size_bytes),
        },
        default_timeout: exec.timeout,
        max_timeout: exec.max_timeout,
        kill_grace: Duration::from_secs(2),
        max_output_bytes: exec.max_output_bytes,
        egress: exec.egress.clone(),
    }))
}

/// The agent's allow list; listing host commands in `[agents.NAME.elevated]` grants the
/// `elevated` group (`host_exec`), which `tools.deny` can still take away.
fn allow_list(agent: &clawdia_config::AgentConfig) -> Vec<String> {
    let mut allow = agent.tools.allow.clone();
    if !agent.elevated.commands.is_empty() && !allow.iter().any(|entry| entry == "elevated") {
        allow.push("elevated".to_string());
    }
    allow
}

/// `host_exec` for an agent with `[agents.NAME.elevated]` commands: credentials are resolved
/// from their secret references each time a command runs, never earlier. `senders` replaces the
/// agent's sender patterns (the request broker's executor: the owner's approval authorizes).
fn host_exec_tool(
    agent: &clawdia_config::AgentConfig,
    audit: Arc<dyn AuditSink>,
    senders: Option<Vec<String>>,
) -> Option<Arc<dyn Tool>> {
    let elevated = &agent.elevated;
    if elevated.commands.is_empty() {
        return None;
    }
    let commands = elevated
        .commands
        .iter()
        .map(|command| clawdia_tools::HostCommand {
            path: command.path.clone(),
            args: command.args.clone(),
            env: command
                .env
                .iter()
                .map(|(name, reference)| {
                    let reference = reference.clone();
                    let source: clawdia_tools::CredentialSource = Arc::new(move || {
                        reference
                            .resolve()
                            .map(|secret| secret.expose().to_string())
                            .map_err(|e| e.to_string())
                    });
                    (name.clone(), source)
                })
                .collect(),
            timeout: command.timeout,
            description: command.description.clone(),
        })
        .collect();
    let settings = clawdia_tools::HostExecSettings {
        senders: senders.unwrap_or_else(|| elevated.senders.clone()),
        commands,
        kill_grace: Duration::from_secs(2),
        max_output_bytes: agent.exec.max_output_bytes,
    };
    Some(Arc::new(clawdia_tools::HostExec::new(settings, audit)))
}

/// The binary that serves as the sandbox helper: the running `clawdia`.
pub fn sandbox_helper() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
}

/// Which sandbox mechanisms work on this machine (probed afresh), for `clawdia doctor`.
pub async fn sandbox_probe() -> clawdia_sandbox::Probe {
    clawdia_sandbox::detect(&sandbox_helper()).await
}

/// `[providers.NAME] retries` and `retry_max_wait_secs`; a `local` model is never retried (its
/// failures are not the network's).
fn retry_policy(provider: &clawdia_config::ProviderConfig) -> RetryPolicy {
    if provider.local.is_some() {
        return RetryPolicy::NONE;
    }
    RetryPolicy { retries: provider.retries, max_wait: provider.retry_max_wait, ..RetryPolicy::default() }
}

fn provider_client(
    provider: &clawdia_config::ProviderConfig,
) -> Result<(Arc<dyn ModelClient>, Duration), RuntimeError> {
    if let Some(local) = &provider.local {
        let client = clawdia_local::LocalChat::new(clawdia_local::LocalSettings {
            models_dir: local.models_dir.clone(),
            threads: local.threads,
            idle_unload: local.idle_unload,
            context_length: local.context_length,
        });
        return Ok((Arc::new(client), provider.cooldown));
    }
    let api_key = match &provider.api_key {
        None => None,
        Some(reference) => match reference.resolve() {
            Ok(secret) => Some(secret.expose().to_string()),
            Err(error) => {
                let client = Unavailable { reason: format!("provider `{}`: {error}", provider.name) };
                return Ok((Arc::new(client), provider.cooldown));
            }
        },
    };
    let settings = ProviderSettings {
        name: provider.name.clone(),
        base_url: provider.base_url.clone(),
        api_key,
        connect_timeout: provider.connect_timeout,
        read_timeout: provider.read_timeout,
        cooldown: provider.cooldown,
        headers: provider.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    let error =
        |e: ModelError| RuntimeError::Provider { provider: provider.name.clone(), message: e.to_string() };
    let client: Arc<dyn ModelClient> = match provider.kind {
        ProviderKind::Anthropic => Arc::new(AnthropicClient::new(settings).map_err(error)?),
        ProviderKind::OpenAi => Arc::new(OpenAiClient::new(settings).map_err(error)?),
        ProviderKind::Local => {
            return Err(RuntimeError::Provider {
                provider: provider.name.clone(),
                message: "a local provider without its settings".to_string(),
            });
        }
    };
    Ok((client, provider.cooldown))
}

/// A provider whose API key could not be resolved: every call fails with the reason, so the
/// chain falls back and the owner sees why.
struct Unavailable {
    reason: String,
}

#[async_trait]
impl ModelClient for Unavailable {
    async fn complete(
        &self,
        _request: &ChatRequest,
        _sink: &dyn DeltaSink,
    ) -> Result<ChatResponse, ModelError> {
        Err(ModelError::Unauthorized(self.reason.clone()))
    }
}

/// Where a running gateway announces itself (`state/gateway.json`), so `chat` and `status`
/// find it even on an ephemeral port.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GatewayFile {
    pub pid: u32,
    pub addr: SocketAddr,
    pub version: String,
}

pub fn gateway_file(home: &Path) -> PathBuf {
    state_dir(home).join("gateway.json")
}

/// Resolves the gateway token and checks the bind address against it.
pub fn gateway_token(config: &Config, bind: IpAddr) -> Result<String, RuntimeError> {
    let token = config.gateway.token.resolve().map_err(|error| RuntimeError::Token {
        message: error.to_string(),
        hint: match config.gateway.token {
            clawdia_config::SecretRef::File(_) => {
                "run `clawdia init --force-token` to write a new token there"
            }
            clawdia_config::SecretRef::Env(_) => "set that environment variable to the token",
        },
    })?;
    let token = token.expose().to_string();
    if !bind.is_loopback() && token.len() < 16 {
        return Err(RuntimeError::InsecureBind(bind));
    }
    Ok(token)
}

/// Binds the gateway's listener (loopback by default).
pub async fn bind(
    config: &Config,
    bind: Option<IpAddr>,
    port: Option<u16>,
) -> Result<(tokio::net::TcpListener, String), RuntimeError> {
    let ip = bind.unwrap_or(config.gateway.bind);
    let token = gateway_token(config, ip)?;
    let addr = SocketAddr::new(ip, port.unwrap_or(config.gateway.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| RuntimeError::Bind { addr, message: e.to_string() })?;
    Ok((listener, token))
}

/// Runs the gateway daemon (`daemon::run`) on `listener` until `shutdown` resolves: the HTTP
/// server, scheduler, embedder and MCP watcher, plus the owner's outbox delivery, the sweep
/// that expires approval requests, the Telegram bot (with `voice`, the speech engines, for
/// its voice notes) and the email channel; failing components alert the owner through the
/// outbox.
pub async fn serve(
    runtime: &Runtime,
    listener: tokio::net::TcpListener,
    token: &str,
    console: Arc<dyn clawdia_server::web::Console>,
    voice: Option<Arc<dyn clawdia_core::VoiceNotes>>,
    ready: impl FnOnce(),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), RuntimeError> {
    let mut components = vec![
        outbox::component(runtime),
        approvals::component(runtime),
        elevation::component(runtime.elevations.clone()),
    ];
    let telegram_hook = telegram::webhook_receiver(runtime)?;
    components.extend(telegram::component(runtime, voice, telegram_hook.clone()));
    // A bot that cannot be set up (an unreadable token) leaves its alerts queued; its component
    // reports the same failure.
    match telegram::alert_channel(runtime) {
        Ok(Some(channel)) => runtime.outbox.attach_telegram(channel),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "the telegram alert route cannot send"),
    }
    components.extend(email::component(runtime));
    match email::alert_channel(runtime) {
        Ok(Some(channel)) => runtime.outbox.attach_email(channel),
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "the email alert route cannot send"),
    }
    let web = web_channel(runtime, console)?;
    let surfaces = daemon::Surfaces {
        web,
        telegram_hook: telegram_hook.map(|hook| hook as Arc<dyn clawdia_core::InboundHook>),
    };
    daemon::run(runtime, listener, token, components, surfaces, ready, shutdown).await
}

/// The web channel, when `[channels.web]` is on: its browsers' store (`state/web.db`), the hub
/// its sockets share (also the outbox's `web` route) and the Control UI's `console`.
fn web_channel(
    runtime: &Runtime,
    console: Arc<dyn clawdia_server::web::Console>,
) -> Result<Option<clawdia_server::web::Web>, RuntimeError> {
    let settings = &runtime.config.channels.web;
    if !settings.enabled {
        return Ok(None);
    }
    let dir = state_dir(&runtime.config.home);
    let store = clawdia_store::Browsers::open(&dir)
        .map_err(|e| RuntimeError::Store { dir: dir.clone(), message: e.to_string() })?;
    let hub = Arc::new(clawdia_server::web::Hub::new().map_err(|e| RuntimeError::Io(e.to_string()))?);
    runtime.outbox.attach_live(hub.clone());
    let web_settings = clawdia_server::web::WebSettings {
        session_ttl: settings.session_ttl,
        public_url: settings.public_url.clone(),
    };
    Ok(Some(clawdia_server::web::Web::new(web_settings, Arc::new(store), console, hub)))
}

impl Runtime {
    /// The latest alerts raised for the owner, newest first.
    pub fn recent_alerts(&self, limit: usize) -> Result<Vec<clawdia_outbox::Queued>, RuntimeError> {
        self.outbox.recent(limit).map_err(|e| RuntimeError::Io(e.to_string()))
    }
}

/// File descriptors the gateway keeps for itself beyond client connections (databases, logs,
/// model files, sandboxes, MCP servers, outgoing HTTP).
const RESERVED_FILES: u64 = 256;

/// The server's limits from `[gateway]`, with `max_connections` lowered (and a warning logged)
/// when the open-file limit `open_files` cannot hold it.
pub fn server_limits(
    gateway: &clawdia_config::GatewayConfig,
    open_files: Option<u64>,
) -> clawdia_server::Limits {
    let mut max_connections = gateway.max_connections;
    if let Some(open_files) = open_files {
        let room = usize::try_from(open_files.saturating_sub(RESERVED_FILES).max(16)).unwrap_or(usize::MAX);
        if room < max_connections {
            tracing::warn!(
                configured = max_connections,
                open_files,
                "gateway.max_connections lowered to {room} to fit the open-file limit (raise `ulimit -Hn` for more)"
            );
            max_connections = room;
        }
    }
    clawdia_server::Limits {
        max_request_bytes: gateway.max_request_bytes,
        max_connections,
        header_timeout: gateway.header_timeout,
        body_timeout: gateway.body_timeout,
        write_timeout: gateway.write_timeout,
        max_concurrent_turns: gateway.max_concurrent_turns,
        turn_queue: gateway.turn_queue,
        drain: gateway.drain,
    }
}

/// The process's soft open-file limit, if it can be read.
pub fn open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    let status = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (status == 0).then_some(limit.rlim_cur)
}

/// Raises the soft open-file limit to the hard one (the default soft limit, 1024, is far below
/// what a gateway holding many client connections needs). Returns the limit now in force.
pub fn raise_open_files_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads the struct we own; raising the soft limit up to the hard one
        // needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        limit = raised;
    }
    Ok(limit.rlim_cur)
}

/// Reduces allocator arenas: the gateway's threads otherwise each grow their own glibc arena,
/// which shows up as idle RSS.
pub fn tune_allocator() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only adjusts allocator parameters; called once at startup before threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
