//! Creating a home (`clawdia init`): the folder layout, a commented config, a gateway token in
//! `secrets/` (mode 0600), the `main` agent's workspace with short starter files (every byte of
//! them is sent with every model call, so they stay small), and the dream cycle's prompts in
//! `prompts/`. What the owner is asked to fill in (USER.md) is guidance inside an HTML comment,
//! which prompt assembly leaves out: an unfilled file sends nothing, never a placeholder.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The starter workspace files: (name, text).
pub const STARTER_FILES: [(&str, &str); 5] = [
    (
        "IDENTITY.md",
        "Name: Clawdia\nRole: the owner's personal assistant, running on the owner's own machine.\n",
    ),
    ("SOUL.md", "Be direct and brief. Say when you are unsure. Never invent facts about the owner.\n"),
    (
        "USER.md",
        "<!-- About you, the owner: your name, what you do, how you like answers. Write it below\n     this comment; the agent reads this file on every turn. Comments like this one are not sent. -->\n",
    ),
    (
        "AGENTS.md",
        "Use tools when they help; paths are relative to your workspace. Ask before anything irreversible.\n",
    ),
    ("MEMORY.md", ""),
];

/// What `init` did, for the summary it prints.
#[derive(Debug, Default)]
pub struct InitReport {
    pub created: Vec<PathBuf>,
    pub kept: Vec<PathBuf>,
}

/// Errors name the path.
fn io(path: &Path, error: std::io::Error) -> String {
    format!("{}: {error}", path.display())
}

fn make_dir(path: &Path, mode: u32) -> Result<(), String> {
    std::fs::DirBuilder::new().recursive(true).mode(mode).create(path).map_err(|e| io(path, e))
}

/// Writes `text` to `path` with `mode`, unless it exists and `force` is false.
fn write_file(
    path: &Path,
    text: &[u8],
    mode: u32,
    force: bool,
    report: &mut InitReport,
) -> Result<(), String> {
    if path.exists() && !force {
        report.kept.push(path.to_path_buf());
        return Ok(());
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(|e| io(path, e))?;
    file.write_all(text).map_err(|e| io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| io(path, e))?;
    report.created.push(path.to_path_buf());
    Ok(())
}

/// What `init` may replace.
#[derive(Debug, Clone, Copy, Default)]
pub struct InitOptions {
    /// Rewrite the config and the starter files.
    pub force: bool,
    /// Write a new gateway token over the existing one (an existing config is then kept unless
    /// `force` is set too): the way out of an empty, damaged or leaked token file.
    pub force_token: bool,
}

/// Creates the home. Without `force` or `force_token` an existing config is an error and
/// nothing is touched; with `force` the config and starter files are rewritten. The token is
/// replaced only with `force_token`, in the file the existing config names (default
/// `secrets/gateway-token`). The token comes from the OS random number generator; if that
/// fails, init fails before creating anything (there is no weaker fallback).
pub fn init(home: &Path, options: InitOptions) -> Result<InitReport, String> {
    let InitOptions { force, force_token } = options;
    let config_path = home.join(clawdia_config::FILE_NAME);
    if config_path.exists() && !force && !force_token {
        return Err(format!(
            "{} already exists; use --force to overwrite it (or --force-token to write only a new gateway token)",
            config_path.display()
        ));
    }
    let token_value = clawdia_core::random::hex(32)
        .map_err(|error| format!("cannot make a gateway token, so nothing was created: {error}"))?;
    let token = token_path(home, force_token)?;
    let mut report = InitReport::default();
    make_dir(home, 0o700)?;
    for sub in ["state", "secrets", "models", "logs"] {
        make_dir(&home.join(sub), 0o700)?;
    }
    let config = crate::offline::init_config(home);
    write_file(&config_path, config.as_bytes(), 0o600, force, &mut report)?;
    let value = format!("{token_value}\n");
    if let Some(parent) = token.parent() {
        make_dir(parent, 0o700)?;
    }
    write_file(&token, value.as_bytes(), 0o600, force_token, &mut report)?;
    let workspace = home.join("workspaces/main");
    for sub in ["memory", "skills", "docs"] {
        make_dir(&workspace.join(sub), 0o700)?;
    }
    for (name, text) in STARTER_FILES {
        write_file(&workspace.join(name), text.as_bytes(), 0o600, force, &mut report)?;
    }
    // The dream cycle's prompts, which the owner edits (an existing one is never replaced).
    let prompts = clawdia_brain::dream::prompts::write_defaults(&home.join("prompts"))?;
    report.created.extend(prompts);
    Ok(report)
}

/// Where `init` writes the gateway token: `secrets/gateway-token`, or with `force_token` the
/// file an existing, valid config names. A token configured as an environment variable cannot
/// be written, so that is an error.
fn token_path(home: &Path, force_token: bool) -> Result<PathBuf, String> {
    let default = home.join("secrets/gateway-token");
    if !force_token || !home.join(clawdia_config::FILE_NAME).exists() {
        return Ok(default);
    }
    let config = clawdia_config::load(home).map_err(|error| {
        format!("{error} (fix the config first: --force-token writes the token file it names)")
    })?;
    match &config.gateway.token {
        clawdia_config::SecretRef::File(path) => Ok(path.clone()),
        clawdia_config::SecretRef::Env(name) => Err(format!(
            "the gateway token comes from the environment variable {name}; set it there (--force-token writes only a token file)"
        )),
    }
}

/// Creates the workspace folder of an agent that has none yet (an agent added to the config by
/// hand), with the starter files.
pub fn ensure_workspace(workspace: &Path) -> Result<bool, String> {
    if workspace.exists() {
        return Ok(false);
    }
    let mut report = InitReport::default();
    for sub in ["memory", "skills", "docs"] {
        make_dir(&workspace.join(sub), 0o700)?;
    }
    for (name, text) in STARTER_FILES {
        write_file(&workspace.join(name), text.as_bytes(), 0o600, false, &mut report)?;
    }
    Ok(true)
}

/// The home: `--home`, else `$CLAWDIA_HOME`, else `~/.clawdia`.
pub fn resolve_home(flag: Option<PathBuf>) -> PathBuf {
    if let Some(home) = flag {
        return home;
    }
    if let Some(home) = std::env::var_os("CLAWDIA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(home);
    }
    let base = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    base.join(".clawdia")
}
