//! `clawdia doctor`: checks the installation and prints one line per check, with a fix hint for
//! each failure. Exits non-zero when any check fails; a warning or a note (a provider no agent
//! uses, whose key is unset or whose host is unreachable) does not fail it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{Failure, Outcome};

/// One check's result, as `doctor` prints it and the web UI lists it.
#[derive(Debug, Clone)]
pub struct Check {
    /// `ok`, `warn`, `note` or `fail`.
    pub status: &'static str,
    pub check: String,
    /// The fix (or, for a note, what to know); empty for `ok`.
    pub detail: String,
}

struct Report {
    failed: usize,
    checks: Vec<Check>,
    /// Print each check as it is made (the CLI) or only collect them (the web UI).
    print: bool,
}

impl Report {
    fn push(&mut self, status: &'static str, what: &str, detail: &str) {
        self.checks.push(Check { status, check: what.to_string(), detail: detail.to_string() });
    }
    fn ok(&mut self, what: &str) {
        if self.print {
            println!("ok    {what}");
        }
        self.push("ok", what, "");
    }
    fn warn(&mut self, what: &str, hint: &str) {
        if self.print {
            println!("warn  {what}\n      fix: {hint}");
        }
        self.push("warn", what, hint);
    }
    /// Something worth knowing that needs no fix now.
    fn note(&mut self, what: &str, hint: &str) {
        if self.print {
            println!("note  {what}\n      {hint}");
        }
        self.push("note", what, hint);
    }
    fn fail(&mut self, what: &str, hint: &str) {
        self.failed += 1;
        if self.print {
            println!("FAIL  {what}\n      fix: {hint}");
        }
        self.push("fail", what, hint);
    }
    /// A failure whose fix was already printed for an earlier check.
    fn fail_as_above(&mut self, what: &str) {
        self.failed += 1;
        if self.print {
            println!("FAIL  {what} (fix above)");
        }
        self.push("fail", what, "see the check above");
    }
}

/// Every check's result for the home at `home`, without printing (the web UI's Doctor page).
pub async fn checks(home: PathBuf) -> Vec<Check> {
    let mut report = Report { failed: 0, checks: Vec::new(), print: false };
    check_all(home, &mut report).await;
    report.checks
}

pub async fn run(home: PathBuf) -> Outcome {
    let mut report = Report { failed: 0, checks: Vec::new(), print: true };
    check_all(home, &mut report).await;
    if report.failed > 0 {
        return Err(Failure::from(format!("{} check(s) failed", report.failed)));
    }
    println!("all checks passed");
    Ok(())
}

async fn check_all(home: PathBuf, report: &mut Report) {
    check_home(&home, report);
    let config = match clawdia_config::load(&home) {
        Ok(config) => {
            report.ok(&format!("config {} is valid", home.join("clawdia.toml").display()));
            Some(config)
        }
        Err(error) => {
            report.fail(
                &format!("config: {error}"),
                "edit clawdia.toml (see `clawdia config reference`), or run `clawdia init`",
            );
            None
        }
    };
    if let Some(config) = &config {
        match clawdia_runtime::gateway_token(config, config.gateway.bind) {
            Ok(_) => report.ok("gateway token is readable"),
            Err(error) => report.fail(
                &error.to_string(),
                "run `clawdia init --force-token` (it keeps the config and writes a new token to the file it names)",
            ),
        }
        let used = used_providers(config);
        for provider in config.providers.values() {
            if used.contains(provider.name.as_str()) {
                check_provider(provider, report).await;
            } else {
                report.note(
                    &format!("provider `{}` is not used by any agent; not checked", provider.name),
                    "name it in an agent's `model` or `fallbacks` to use it, or remove the section",
                );
            }
        }
        for agent in config.agents.values() {
            if agent.workspace.is_dir() {
                report.ok(&format!("agent `{}` workspace {}", agent.name, agent.workspace.display()));
            } else {
                report.warn(
                    &format!("agent `{}` workspace {} does not exist", agent.name, agent.workspace.display()),
                    "`clawdia up` creates it with starter files, or create it by hand",
                );
            }
        }
        check_local_tools(config, report);
        if let Some(telegram) = &config.channels.telegram {
            check_telegram(telegram, config.owner.telegram, report).await;
        }
    }
    check_sandbox(config.as_ref(), report).await;
    check_databases(&home, report);
}

/// For each agent with a local model in its chain: which of its tools that model has room for.
/// Tools left out are a warning (the agent works, without them), with the allow list that fits.
fn check_local_tools(config: &clawdia_config::Config, report: &mut Report) {
    let uses_local = |agent: &clawdia_config::AgentConfig| {
        std::iter::once(&agent.model).chain(&agent.fallbacks).any(|model| {
            config.providers.get(&model.provider).is_some_and(|provider| provider.local.is_some())
        })
    };
    if !config.agents.values().any(uses_local) {
        return;
    }
    let runtime = match clawdia_runtime::build(config.clone()) {
        Ok(runtime) => runtime,
        Err(error) => {
            report.fail(&format!("cannot build the agents: {error}"), "fix the problem named above");
            return;
        }
    };
    let lean: Vec<String> =
        clawdia_runtime::offline::LOCAL_TOOLS.iter().map(|tool| format!("\"{tool}\"")).collect();
    for agent in config.agents.values().filter(|&agent| uses_local(agent)) {
        let name = &agent.name;
        for fit in clawdia_runtime::offline::local_tool_fits(&runtime, agent) {
            match fit {
                Ok(fit) if fit.left_out.is_empty() => report.ok(&format!(
                    "agent `{name}`: {} ({}-token context) is offered all {} tool(s): {}",
                    fit.model,
                    fit.context_length,
                    fit.kept.len(),
                    fit.kept.join(", ")
                )),
                Ok(fit) => report.warn(
                    &format!(
                        "agent `{name}`: {} ({}-token context) has room for {} of {} tools; left out: {}",
                        fit.model,
                        fit.context_length,
                        fit.kept.len(),
                        fit.kept.len() + fit.left_out.len(),
                        fit.left_out.join(", ")
                    ),
                    &format!(
                        "allow only the tools it needs in [agents.{name}.tools], e.g. allow = [{}] (what `clawdia init` writes for a local model)",
                        lean.join(", ")
                    ),
                ),
                Err(error) => report.fail(
                    &format!("agent `{name}`: cannot measure the local model's prompt: {error}"),
                    "reinstall the model (`clawdia models rm NAME`, then `clawdia models pull NAME`)",
                ),
            }
        }
    }
}

/// The providers some model call can reach: the agents' models and fallbacks, and the dream
/// cycle's scorer.
fn used_providers(config: &clawdia_config::Config) -> std::collections::BTreeSet<&str> {
    let agents =
        config.agents.values().flat_map(|agent| std::iter::once(&agent.model).chain(&agent.fallbacks));
    agents.chain(config.brain.dream.scorer_model.as_ref()).map(|model| model.provider.as_str()).collect()
}

/// Which sandbox `exec` and MCP servers use, and a failed check for anything that leaves
/// commands unsandboxed: no working mechanism, or an agent or MCP server with `sandbox = "off"`.
async fn check_sandbox(config: Option<&clawdia_config::Config>, report: &mut Report) {
    use clawdia_config::Sandbox;
    use clawdia_sandbox::Choice;
    let probe = clawdia_runtime::sandbox_probe().await;
    // Each fix is printed once, with the first check that needs it; later ones refer to it.
    let mut fixes_shown: Vec<String> = Vec::new();
    let mut fail = |report: &mut Report, what: String, hint: String| {
        if fixes_shown.contains(&hint) {
            report.fail_as_above(&what);
        } else {
            report.fail(&what, &hint);
            fixes_shown.push(hint);
        }
    };
    match probe.best() {
        Ok(mechanism) => report.ok(&format!("sandbox: {} works", mechanism.name())),
        Err(_) => {
            fail(report, format!("sandbox: no sandbox works here: {}", probe.problem()), probe.fix_hint())
        }
    }
    if let Err(why) = &probe.bubblewrap
        && probe.builtin.is_ok()
    {
        report.warn(
            &format!("sandbox: bubblewrap unavailable ({why}); using the built-in sandbox"),
            "apt install bubblewrap",
        );
    }
    for warning in &probe.warnings {
        report.warn(&format!("sandbox: {warning}"), "run the gateway as an ordinary user");
    }
    let Some(config) = config else { return };
    for agent in config.agents.values() {
        let name = &agent.name;
        let choice = match agent.sandbox {
            Sandbox::Off => {
                report.fail(
                    &format!("agent `{name}`: sandbox = \"off\": exec runs commands on this machine with the gateway's rights"),
                    "remove `sandbox = \"off\"` (the default \"auto\" uses bubblewrap or the built-in sandbox)",
                );
                continue;
            }
            Sandbox::Auto => Choice::Auto,
            Sandbox::Bwrap => Choice::Bubblewrap,
            Sandbox::Builtin => Choice::Builtin,
        };
        match (probe.select(choice), probe.unavailable(choice)) {
            (Ok(mechanism), _) => {
                report.ok(&format!("agent `{name}`: exec runs in the {} sandbox", mechanism.name()))
            }
            (Err(_), Some((problem, fix))) => {
                fail(report, format!("agent `{name}`: exec is unavailable: {problem}"), fix)
            }
            (Err(error), None) => {
                fail(report, format!("agent `{name}`: exec is unavailable: {error}"), probe.fix_hint())
            }
        }
    }
    // MCP servers run in the same sandbox; `off` runs a third-party program with the gateway's rights.
    for server in config.mcp.servers.values() {
        let name = &server.name;
        let choice = match server.sandbox {
            Sandbox::Off => {
                report.fail(
                    &format!("MCP server `{name}`: sandbox = \"off\": it runs on this machine with the gateway's rights"),
                    "remove `sandbox = \"off\"` from [mcp.servers.NAME] (the default \"auto\" sandboxes it)",
                );
                continue;
            }
            Sandbox::Auto => Choice::Auto,
            Sandbox::Bwrap => Choice::Bubblewrap,
            Sandbox::Builtin => Choice::Builtin,
        };
        match (probe.select(choice), probe.unavailable(choice)) {
            (Ok(mechanism), _) => report.ok(&format!(
                "MCP server `{name}`: runs in the {} sandbox when first used (`clawdia mcp probe {name}` tries it)",
                mechanism.name()
            )),
            (Err(_), Some((problem, fix))) => fail(report, format!("MCP server `{name}` cannot start: {problem}"), fix),
            (Err(error), None) => fail(report, format!("MCP server `{name}` cannot start: {error}"), probe.fix_hint()),
        }
    }
}

fn check_home(home: &Path, report: &mut Report) {
    let Ok(meta) = std::fs::metadata(home) else {
        report.fail(&format!("home {} does not exist", home.display()), "run `clawdia init`");
        return;
    };
    if meta.permissions().mode() & 0o002 != 0 {
        report.fail(
            &format!("home {} is world-writable", home.display()),
            &format!("chmod 700 {}", home.display()),
        );
    }
    let secrets = home.join("secrets");
    let Ok(entries) = std::fs::read_dir(&secrets) else {
        report.warn(&format!("no secrets folder at {}", secrets.display()), "run `clawdia init`");
        return;
    };
    let mut loose = Vec::new();
    for entry in entries.flatten() {
        if let Ok(meta) = entry.metadata()
            && meta.is_file()
            && meta.permissions().mode() & 0o077 != 0
        {
            loose.push(entry.path());
        }
    }
    if loose.is_empty() {
        report.ok("secrets are readable by the owner only");
    } else {
        for path in loose {
            report.fail(
                &format!("{} is readable by others", path.display()),
                &format!("chmod 600 {}", path.display()),
            );
        }
    }
}

/// The Telegram bot: its token resolves and the Bot API knows it (`getMe`); the owner's id is
/// set, or approvals and alerts cannot reach them there.
async fn check_telegram(telegram: &clawdia_config::TelegramConfig, owner: Option<i64>, report: &mut Report) {
    let token = match telegram.token.resolve() {
        Ok(token) => token,
        Err(error) => {
            report.fail(
                &format!("telegram bot: {error}"),
                "set the variable or file named in [channels.telegram] token",
            );
            return;
        }
    };
    clawdia_runtime::install_crypto_provider();
    let reached =
        match clawdia_telegram::api::Api::new(&telegram.api_root, token.expose(), Duration::from_secs(5)) {
            Ok(api) => tokio::time::timeout(Duration::from_secs(10), api.get_me())
                .await
                .map_err(|_| "no answer within 10 s".to_string())
                .and_then(|answer| answer.map_err(|e| e.to_string())),
            Err(error) => Err(error.to_string()),
        };
    match reached {
        Ok(me) => report.ok(&format!(
            "telegram bot @{} answers at {}",
            me.username.as_deref().unwrap_or("?"),
            telegram.api_root
        )),
        Err(error) => report.fail(
            &format!("telegram bot: {error}"),
            "check the token with @BotFather and that this host reaches the Bot API",
        ),
    }
    if owner.is_none() {
        report.warn(
            "telegram: [owner] telegram is not set, so no message counts as the owner's and alerts cannot go there",
            "set [owner] telegram to your Telegram user id",
        );
    }
}

async fn check_provider(provider: &clawdia_config::ProviderConfig, report: &mut Report) {
    let name = &provider.name;
    if let Some(local) = &provider.local {
        let installed: Vec<String> = clawdia_local::models::list(&local.models_dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|model| model.usable && model.kind == Some(clawdia_local::models::ModelKind::Chat))
            .map(|model| model.name)
            .collect();
        if installed.is_empty() {
            report.fail(
                &format!("provider `{name}`: no local chat model in {}", local.models_dir.display()),
                "run `clawdia models pull SmolLM2-135M-Instruct` (or `clawdia models add NAME --from PATH`)",
            );
        } else {
            report.ok(&format!("provider `{name}`: local chat models {}", installed.join(", ")));
        }
        return;
    }
    if let Some(key) = &provider.api_key {
        match key.resolve() {
            Ok(_) => report.ok(&format!("provider `{name}`: API key is set")),
            Err(error) => {
                report.fail(
                    &format!("provider `{name}`: {error}"),
                    "set the variable or file named in clawdia.toml",
                );
                return;
            }
        }
    }
    let Some((host, port)) = host_port(&provider.base_url) else {
        report.fail(
            &format!("provider `{name}`: cannot read a host from {}", provider.base_url),
            "fix base_url",
        );
        return;
    };
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(Duration::from_secs(3), connect).await {
        Ok(Ok(_)) => report.ok(&format!("provider `{name}`: {host}:{port} is reachable")),
        Ok(Err(error)) => report.fail(
            &format!("provider `{name}`: cannot connect to {host}:{port}: {error}"),
            "check base_url and the network; turns will fall back to the next model",
        ),
        Err(_) => report.fail(
            &format!("provider `{name}`: no answer from {host}:{port} within 3s"),
            "check base_url and the network; turns will fall back to the next model",
        ),
    }
}

/// `https://host:port/path` → (host, port).
fn host_port(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let default = if scheme == "https" { 443 } else { 80 };
    if let Some(stripped) = authority.strip_prefix('[') {
        let (host, after) = stripped.split_once(']')?;
        let port = after.strip_prefix(':').and_then(|p| p.parse().ok()).unwrap_or(default);
        return Some((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), port.parse().ok()?)),
        None => Some((authority.to_string(), default)),
    }
}

fn check_databases(home: &Path, report: &mut Report) {
    let dir = clawdia_runtime::state_dir(home);
    match clawdia_store::Store::open(&dir) {
        Ok(store) => match store.integrity_check() {
            Ok(problems) if problems.is_empty() => report.ok("databases pass the integrity check"),
            Ok(problems) => {
                for problem in problems {
                    report.fail(&format!("database: {problem}"), "run `clawdia sessions repair`");
                }
            }
            Err(error) => {
                report.fail(&format!("database check failed: {error}"), "run `clawdia sessions repair`")
            }
        },
        Err(error) => {
            report.fail(&format!("cannot open {}: {error}", dir.display()), "check the folder's permissions")
        }
    }
}
