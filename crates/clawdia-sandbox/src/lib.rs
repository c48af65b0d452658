//! Runs shell commands in a kernel sandbox, and controls process trees.
//!
//! Two mechanisms build the same sandbox: bubblewrap when `bwrap` is installed and works, else
//! the built-in path (namespaces through a re-executed helper, then Landlock and seccomp). In
//! both, the command gets fresh user, mount, pid, network, IPC and UTS namespaces; a read-only
//! root; the workspace read-write and nothing else writable but a private `/tmp`; hidden paths
//! (the home's `secrets/`, `state/`) masked; loopback only (with an egress allowlist, also a
//! filtering proxy to the listed `host:port` pairs: `egress`); no capabilities; no-new-privs;
//! rlimits; only the environment the policy gives; its own process group; a timeout that kills
//! the whole tree; capped output. If the sandbox cannot be set up the command does not run:
//! `run` returns a one-line `SandboxError`, never a silent unsandboxed run. Running without a
//! sandbox exists only as the explicit `Mechanism::Unsandboxed`. `spawn_stdio` starts a
//! long-lived program in the same sandbox instead, its stdin and stdout piped to the caller, who
//! owns its life (MCP servers; `stdio`).
//!
//! The helper is the calling binary itself: its `main` must call `init_main_if_requested`
//! first, before any thread starts (the built-in path needs a single-threaded process).
//!
//! Architecture invariant: this is a foundation crate (it depends on no other clawdia crate);
//! it knows nothing about agents, tools or config; callers turn their settings into a `Policy`.

mod builtin;
mod bwrap;
mod confine;
pub mod egress;
mod host;
mod output;
mod policy;
mod process;
mod shell;
mod stdio;

use std::ffi::OsString;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt as _;

pub use egress::is_public;
pub use host::{run_host, run_host_with_input};
pub use policy::{DEFAULT_PATH, Limits, Network, Policy};
pub use process::{
    ProcessTree, become_child_subreaper, group_alive, kill_tree, pids_cgroup_hierarchy, spawn_orphan_reaper,
};
pub use shell::{HostShell, spawn_host_shell};
pub use stdio::{STDERR_TAIL_BYTES, StderrTail, StdioChild, exec_command, spawn_stdio};

use output::CappedOutput;
use process::{PidsCgroup, apply_rlimits};

/// The hidden first argument that turns the binary into the built-in sandbox's helper.
pub const INIT_ARG: &str = "__sandbox-init";
/// The hidden first argument for the last stage inside bubblewrap.
pub const EXEC_ARG: &str = "__sandbox-exec";

/// How to enable the user namespaces both mechanisms need.
const USERNS_HINT: &str = "enable unprivileged user namespaces (sysctl user.max_user_namespaces=15000, and \
     kernel.unprivileged_userns_clone=1 where it exists; in a container, allow it to create them)";

/// The hint shown when no sandbox works and bubblewrap is not installed.
pub const FIX_HINT: &str = "install bubblewrap (apt install bubblewrap) or enable unprivileged user namespaces \
     (sysctl user.max_user_namespaces=15000, and kernel.unprivileged_userns_clone=1 where it exists)";

/// How commands are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    /// bubblewrap at `bwrap`, with `helper` (this binary) for the last stage inside.
    Bubblewrap { bwrap: PathBuf, helper: PathBuf },
    /// The built-in namespaces + Landlock + seccomp path, re-executing `helper`.
    Builtin { helper: PathBuf },
    /// No sandbox: only a process group, rlimits, a clean environment and the timeout. Only for
    /// an owner who configured `sandbox = "off"`.
    Unsandboxed,
}

impl Mechanism {
    /// `bubblewrap`, `built-in` or `off`.
    pub fn name(&self) -> &'static str {
        match self {
            Mechanism::Bubblewrap { .. } => "bubblewrap",
            Mechanism::Builtin { .. } => "built-in",
            Mechanism::Unsandboxed => "off",
        }
    }
}

/// Why a command could not be run. One line each, naming the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// No mechanism works here (with the reasons and how to fix it).
    #[error("no sandbox is available: {0}")]
    Unavailable(String),
    /// The policy asks for something not implemented; the surface stays closed.
    #[error("{0}")]
    Unsupported(String),
    #[error("invalid sandbox policy: {0}")]
    InvalidPolicy(String),
    /// A step of building the sandbox failed; the command did not run.
    #[error("sandbox setup failed: {0}")]
    Setup(String),
    #[error("cannot start the sandbox: {0}")]
    Spawn(String),
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The exit code (`128 + N` when the command died of signal N inside the sandbox).
    pub exit_code: Option<i32>,
    /// The signal that ended the sandbox's top process (after a timeout: `SIGTERM`/`SIGKILL`).
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// stdout and stderr merged, capped, with `[... N bytes of output omitted ...]` where cut.
    pub output: String,
    /// Bytes of output produced in all.
    pub output_bytes: u64,
    pub truncated: bool,
    pub duration: Duration,
}

/// What the helper needs, passed as JSON in its second argument.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Spec {
    pub command: String,
    pub workspace: PathBuf,
    #[serde(default = "writable")]
    pub workspace_writable: bool,
    pub hidden: Vec<PathBuf>,
    /// Paths under the private `/tmp` or `/dev/shm` bound back in read-only (canonical).
    #[serde(default)]
    pub visible: Vec<PathBuf>,
    pub env: Vec<(String, String)>,
    pub processes: Option<u64>,
    /// Where setup errors go (and `exec` just before the command starts); close-on-exec.
    pub status_fd: Option<i32>,
    /// With an egress allowlist: the socket the last stage hands the proxy listener through
    /// (`egress::hand_over_listener`); close-on-exec.
    #[serde(default)]
    pub egress_fd: Option<i32>,
}

fn writable() -> bool {
    true
}

/// The line the last stage writes to the status pipe right before `execve`.
const STARTED: &str = "exec";

/// Call first thing in `main`: when the binary was started as the sandbox helper, this runs
/// the helper and exits; otherwise it returns at once.
pub fn init_main_if_requested() {
    let mut args = std::env::args_os().skip(1);
    let Some(first) = args.next() else { return };
    let init = first == INIT_ARG;
    if !init && first != EXEC_ARG {
        return;
    }
    let spec: Option<Spec> = args.next().and_then(|arg| serde_json::from_slice(arg.as_bytes()).ok());
    let Some(spec) = spec else {
        builtin::report(None, "malformed sandbox helper arguments");
        std::process::exit(builtin::SETUP_FAILED);
    };
    if let Some(fd) = spec.status_fd {
        // SAFETY: sets the close-on-exec flag of a descriptor number; no memory is touched.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    if let Some(fd) = spec.egress_fd {
        // SAFETY: as above.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    let code = if init {
        builtin::helper_main(&spec)
    } else {
        match confine::confine_and_exec(&spec) {
            Err(message) => {
                builtin::report(spec.status_fd, &message);
                builtin::SETUP_FAILED
            }
            Ok(never) => match never {},
        }
    };
    std::process::exit(code)
}

/// Runs `/bin/sh -c command` under `mechanism` and `policy`, calling `on_output` with output as
/// it arrives (stdout and stderr merged, up to the cap).
pub async fn run(
    mechanism: &Mechanism,
    policy: &Policy,
    command: &str,
    on_output: impl FnMut(&[u8]),
) -> Result<Outcome, SandboxError> {
    // With an egress allowlist: the filtering proxy, served until the run ends (`egress.rs`).
    let egress = egress::Egress::start(&policy.network, !matches!(mechanism, Mechanism::Unsandboxed))?;
    if matches!(mechanism, Mechanism::Unsandboxed) && !policy.workspace_writable {
        return Err(SandboxError::Unsupported(
            "a read-only workspace needs a sandbox (this agent's sandbox is off)".into(),
        ));
    }
    let extra_env = if egress.is_some() { egress::environment() } else { Vec::new() };
    let egress_fd = egress.as_ref().map(egress::Egress::child_fd);
    let Prepared { command, cgroup, status_read, status_write, sandboxed } =
        prepare(mechanism, policy, command.to_string(), extra_env, egress_fd)?;
    let run = supervise(command, policy, mechanism.name(), None, on_output).await?;
    drop(status_write);
    drop(cgroup);
    if sandboxed {
        check_started(status_read, run.status.code(), run.timed_out, &run.output).await?;
    }
    let mut outcome = run.outcome();
    if let Some(egress) = egress {
        egress.finish(&mut outcome);
    }
    Ok(outcome)
}

/// A sandbox about to start: the command (stdio not yet set), the pids cgroup it joins (keep it
/// alive while the tree runs) and the status pipe of the last stage (drop the write end once
/// spawned).
pub(crate) struct Prepared {
    pub command: tokio::process::Command,
    pub cgroup: Option<PidsCgroup>,
    pub status_read: std::io::PipeReader,
    pub status_write: std::io::PipeWriter,
    pub sandboxed: bool,
}

/// Builds the command that runs `/bin/sh -c shell` under `mechanism` and `policy`: the checked
/// workspace and hidden paths, the policy's environment plus `extra_env`, the helper's spec,
/// and, between fork and exec, the rlimits, the cgroup, the inherited status (and egress)
/// descriptors and the parent-death signal. Shared by `run` and `spawn_stdio`.
pub(crate) fn prepare(
    mechanism: &Mechanism,
    policy: &Policy,
    shell: String,
    extra_env: Vec<(String, String)>,
    egress_fd: Option<i32>,
) -> Result<Prepared, SandboxError> {
    let workspace = policy
        .workspace
        .canonicalize()
        .map_err(|e| SandboxError::InvalidPolicy(format!("workspace {}: {e}", policy.workspace.display())))?;
    if !workspace.is_dir() {
        return Err(SandboxError::InvalidPolicy(format!(
            "workspace {} is not a folder",
            workspace.display()
        )));
    }
    let hidden: Vec<PathBuf> = policy.hidden.iter().filter_map(|path| path.canonicalize().ok()).collect();
    if let Some(cover) = hidden.iter().find(|h| workspace.starts_with(h)) {
        return Err(SandboxError::InvalidPolicy(format!(
            "workspace {} is inside the hidden path {}",
            workspace.display(),
            cover.display()
        )));
    }
    // What must stay readable under the private mounts: the policy's paths, and for bubblewrap
    // the helper it runs inside (a binary built or installed under `/tmp`).
    let helper = match mechanism {
        Mechanism::Bubblewrap { helper, .. } => Some(helper),
        _ => None,
    };
    let mut visible: Vec<PathBuf> = Vec::new();
    for path in policy.visible.iter().chain(helper) {
        let Ok(path) = path.canonicalize() else { continue };
        if policy::under_private_mount(&path) && !visible.contains(&path) {
            visible.push(path);
        }
    }
    let mut env = policy.environment();
    for (key, value) in &mut env {
        if key == "HOME" && Path::new(value.as_str()) == policy.workspace {
            *value = workspace.to_string_lossy().into_owned();
        }
    }
    for (key, value) in extra_env {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    }
    let sandboxed = !matches!(mechanism, Mechanism::Unsandboxed);
    let (status_read, status_write) =
        std::io::pipe().map_err(|e| SandboxError::Spawn(format!("cannot create a pipe: {e}")))?;
    let spec = Spec {
        command: shell,
        workspace: workspace.clone(),
        workspace_writable: policy.workspace_writable,
        hidden,
        visible,
        env,
        processes: policy.limits.processes,
        status_fd: sandboxed.then(|| status_write.as_raw_fd()),
        egress_fd,
    };
    let spec_json = serde_json::to_string(&spec).map_err(|e| SandboxError::Spawn(e.to_string()))?;
    #[allow(
        clippy::disallowed_methods,
        reason = "the sandbox's own spawn: bubblewrap, the built-in helper, or the owner's `sandbox = \"off\"`"
    )]
    let mut command = match mechanism {
        Mechanism::Bubblewrap { bwrap, helper } => {
            let mut command = tokio::process::Command::new(bwrap);
            command.args(bwrap::arguments(&spec, helper, &spec_json));
            command
        }
        Mechanism::Builtin { helper } => {
            let mut command = tokio::process::Command::new(helper);
            command.args([OsString::from(INIT_ARG), OsString::from_vec(spec_json.into_bytes())]);
            command
        }
        Mechanism::Unsandboxed => {
            let mut command = tokio::process::Command::new("/bin/sh");
            command.arg("-c").arg(&spec.command).current_dir(&workspace);
            command
        }
    };
    command.env_clear();
    if !sandboxed {
        command.envs(spec.env.iter().cloned());
    }
    let cgroup = policy.limits.processes.filter(|_| nix::unistd::geteuid().is_root()).and_then(|max| {
        // The sandbox's own monitor processes count too.
        PidsCgroup::create(max + 8)
    });
    let limits = policy.limits;
    let status_fd = spec.status_fd;
    // Everything the child uses between fork and exec is owned by the closure (plain numbers,
    // `Copy` limits, and `join`, which holds its own reference to the open `cgroup.procs`):
    // nothing in it borrows from or points into `prepare`'s locals or `Prepared`, which move.
    let join = cgroup.as_ref().map(PidsCgroup::joiner);
    // SAFETY: the closure runs in the child between fork and exec and only makes
    // async-signal-safe syscalls (setrlimit, write, fcntl, prctl) on values it owns; it
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            apply_rlimits(&limits, !sandboxed)?;
            if let Some(join) = &join {
                join.join()?;
            }
            for fd in [status_fd, egress_fd].into_iter().flatten() {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(Prepared { command, cgroup, status_read, status_write, sandboxed })
}

/// How a supervised process tree ended.
pub(crate) struct Supervised {
    pub status: std::process::ExitStatus,
    pub output: CappedOutput,
    pub timed_out: bool,
    pub duration: Duration,
}

impl Supervised {
    pub(crate) fn outcome(self) -> Outcome {
        Outcome {
            exit_code: self.status.code(),
            signal: self.status.signal(),
            timed_out: self.timed_out,
            output_bytes: self.output.total(),
            truncated: self.output.truncated(),
            output: self.output.finish(),
            duration: self.duration,
        }
    }
}

/// Spawns `command` (whose stdout and stderr must already be set) as a process-group leader,
/// streams its merged output to `on_output` up to the policy's cap, and ends the whole tree
/// after the policy's timeout (TERM, grace, KILL). `command` is consumed so that the parent's
/// copies of the pipes' write ends are closed.
pub(crate) async fn supervise(
    mut command: tokio::process::Command,
    policy: &Policy,
    what: &str,
    input: Option<&[u8]>,
    mut on_output: impl FnMut(&[u8]),
) -> Result<Supervised, SandboxError> {
    let (output_read, output_write) =
        std::io::pipe().map_err(|e| SandboxError::Spawn(format!("cannot create a pipe: {e}")))?;
    let stderr =
        output_write.try_clone().map_err(|e| SandboxError::Spawn(format!("cannot create a pipe: {e}")))?;
    let input_writer = match input {
        None => {
            command.stdin(Stdio::null());
            None
        }
        Some(bytes) => {
            let (read, write) =
                std::io::pipe().map_err(|e| SandboxError::Spawn(format!("cannot create a pipe: {e}")))?;
            command.stdin(read);
            Some((write, bytes.to_vec()))
        }
    };
    command.stdout(output_write).stderr(stderr);
    let started = Instant::now();
    let mut tree =
        ProcessTree::spawn(&mut command).map_err(|e| SandboxError::Spawn(format!("{what}: {e}")))?;
    drop(command); // closes our copies of the pipes' write ends (and stdin's read end)
    // The input is written beside the supervision, then closed (end of file for the command); a
    // command that exits or is killed without reading it ends the write (broken pipe).
    let feeder = input_writer.map(|(write, bytes)| feed(write, bytes));
    let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(output_read))
        .map_err(|e| SandboxError::Spawn(format!("cannot read the output: {e}")))?;
    let mut output = CappedOutput::new(policy.output_cap);
    let mut buffer = vec![0u8; 16 * 1024];
    let mut eof = false;
    let mut push = |output: &mut CappedOutput, bytes: &[u8]| {
        let streamed = output.total().min(policy.output_cap as u64) as usize;
        let room = policy.output_cap - streamed;
        if room > 0 {
            on_output(&bytes[..room.min(bytes.len())]);
        }
        output.push(bytes);
    };
    let deadline = tokio::time::sleep(policy.timeout);
    tokio::pin!(deadline);
    let waited = loop {
        tokio::select! {
            read = reader.read(&mut buffer), if !eof => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => push(&mut output, &buffer[..n]),
            },
            status = tree.wait() => break Some(status),
            _ = &mut deadline => break None,
        }
    };
    let timed_out = waited.is_none();
    let status = match waited {
        Some(status) => status,
        None => tree.terminate(policy.kill_grace).await,
    }
    .map_err(|e| SandboxError::Spawn(format!("cannot wait for the command: {e}")))?;
    // The tree is gone; read what is left in the pipe (bounded: an escaped process could hold
    // the write end open).
    let drain = async {
        while !eof {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => push(&mut output, &buffer[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(policy.kill_grace.max(Duration::from_millis(200)), drain).await;
    let duration = started.elapsed();
    drop(tree);
    if let Some(feeder) = feeder {
        feeder.abort();
    }
    Ok(Supervised { status, output, timed_out, duration })
}

/// Writes `bytes` to a command's stdin pipe in a task of its own, then closes it.
fn feed(write: std::io::PipeWriter, bytes: Vec<u8>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        let Ok(mut sender) = tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(write)) else {
            return;
        };
        let _ = sender.write_all(&bytes).await;
    })
}

/// Turns the status pipe into an error when the command never started.
async fn check_started(
    status: std::io::PipeReader,
    exit_code: Option<i32>,
    timed_out: bool,
    output: &CappedOutput,
) -> Result<(), SandboxError> {
    let mut text = String::new();
    if let Ok(mut reader) = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(status)) {
        let _ = tokio::time::timeout(Duration::from_secs(1), reader.read_to_string(&mut text)).await;
    }
    let errors: Vec<&str> = text.lines().filter(|line| *line != STARTED && !line.is_empty()).collect();
    if !errors.is_empty() {
        return Err(SandboxError::Setup(errors.join("; ")));
    }
    if text.lines().any(|line| line == STARTED) {
        return Ok(());
    }
    if timed_out {
        return Err(SandboxError::Setup("timed out before the command started".into()));
    }
    let said = output.first_line();
    let said = if said.is_empty() { String::new() } else { format!(": {said}") };
    let code = exit_code.map_or("a signal".to_string(), |c| format!("exit code {c}"));
    Err(SandboxError::Setup(format!("the sandbox exited ({code}) before the command started{said}")))
}

/// Which mechanisms work on this machine, each checked by running `true` in it.
#[derive(Debug, Clone)]
pub struct Probe {
    pub bubblewrap: Result<Mechanism, String>,
    pub builtin: Result<Mechanism, String>,
    /// Weaker guarantees worth telling the owner about.
    pub warnings: Vec<String>,
    /// Whether `bwrap` was found on `PATH` (whether or not it works).
    pub bubblewrap_installed: bool,
}

impl Probe {
    /// The preferred working mechanism (bubblewrap first), or why none works and how to fix it.
    pub fn best(&self) -> Result<Mechanism, SandboxError> {
        self.select(Choice::Auto)
    }

    /// Why neither mechanism works (both reasons), without the fix.
    pub fn problem(&self) -> String {
        let why = |result: &Result<Mechanism, String>| match result {
            Ok(mechanism) => format!("{} works", mechanism.name()),
            Err(why) => why.clone(),
        };
        format!("bubblewrap: {}; built-in: {}", why(&self.bubblewrap), why(&self.builtin))
    }

    /// How to get a working sandbox on this machine: installing bubblewrap is suggested only
    /// when it is not installed.
    pub fn fix_hint(&self) -> String {
        if self.bubblewrap_installed {
            format!("bubblewrap is installed but does not start here; {USERNS_HINT}")
        } else {
            FIX_HINT.to_string()
        }
    }
}

/// Which mechanism an owner asked for (`sandbox = "auto" | "bwrap" | "builtin" | "off"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Choice {
    /// bubblewrap when it works, else the built-in path, else refuse.
    #[default]
    Auto,
    Bubblewrap,
    Builtin,
    /// No sandbox at all: the owner's explicit decision.
    Off,
}

impl Probe {
    /// The mechanism for `choice` on this machine, or why there is none and how to fix it.
    pub fn select(&self, choice: Choice) -> Result<Mechanism, SandboxError> {
        if let Some((problem, fix)) = self.unavailable(choice) {
            return Err(SandboxError::Unavailable(format!("{problem}; fix: {fix}")));
        }
        let probed = match choice {
            Choice::Off => return Ok(Mechanism::Unsandboxed),
            Choice::Bubblewrap => &self.bubblewrap,
            Choice::Builtin => &self.builtin,
            Choice::Auto if self.bubblewrap.is_ok() => &self.bubblewrap,
            Choice::Auto => &self.builtin,
        };
        probed.clone().map_err(SandboxError::Unavailable)
    }

    /// Why `choice` does not work here and how to fix it (one line each), or `None` when it
    /// works.
    pub fn unavailable(&self, choice: Choice) -> Option<(String, String)> {
        match choice {
            Choice::Off => None,
            Choice::Auto => match (&self.bubblewrap, &self.builtin) {
                (Err(_), Err(_)) => Some((self.problem(), self.fix_hint())),
                _ => None,
            },
            Choice::Bubblewrap => self.bubblewrap.as_ref().err().map(|why| {
                let fix = if self.bubblewrap_installed {
                    USERNS_HINT
                } else {
                    "apt install bubblewrap, or sandbox = \"auto\""
                };
                (format!("bubblewrap does not work here: {why}"), fix.to_string())
            }),
            Choice::Builtin => self.builtin.as_ref().err().map(|why| {
                (
                    format!("the built-in sandbox does not work here: {why}"),
                    "enable unprivileged user namespaces, or sandbox = \"auto\" with bubblewrap installed"
                        .to_string(),
                )
            }),
        }
    }
}

/// `detect(helper)`, run once per helper for the life of the process (the machine does not
/// change under a running gateway; `clawdia doctor` probes afresh).
pub async fn detect_cached(helper: &Path) -> Probe {
    type Cache = std::sync::Mutex<Vec<(PathBuf, std::sync::Arc<tokio::sync::OnceCell<Probe>>)>>;
    static CACHE: Cache = std::sync::Mutex::new(Vec::new());
    let cell = {
        let mut cache = CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match cache.iter().find(|(path, _)| path == helper) {
            Some((_, cell)) => cell.clone(),
            None => {
                let cell = std::sync::Arc::new(tokio::sync::OnceCell::new());
                cache.push((helper.to_path_buf(), cell.clone()));
                cell
            }
        }
    };
    cell.get_or_init(|| detect(helper)).await.clone()
}

/// Finds `bwrap` on `PATH`.
pub fn find_bwrap() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join("bwrap")).find(|candidate| {
        use std::os::unix::fs::PermissionsExt as _;
        candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Checks bubblewrap (if on `PATH`) and the built-in path by running `true` in each, with
/// `helper` as the binary that calls `init_main_if_requested`.
pub async fn detect(helper: &Path) -> Probe {
    let found = find_bwrap();
    let bubblewrap_installed = found.is_some();
    let bubblewrap = match found {
        None => Err("`bwrap` is not on PATH".to_string()),
        Some(bwrap) => check(Mechanism::Bubblewrap { bwrap, helper: helper.to_path_buf() }).await,
    };
    let builtin = check(Mechanism::Builtin { helper: helper.to_path_buf() }).await;
    let mut warnings = Vec::new();
    if nix::unistd::geteuid().is_root() && PidsCgroup::hierarchy().is_none_or(|dir| !dir.is_dir()) {
        warnings.push(
            "the gateway runs as root and no pids cgroup is writable: the sandbox's process limit \
             does not hold (run the gateway as an ordinary user)"
                .to_string(),
        );
    }
    Probe { bubblewrap, builtin, warnings, bubblewrap_installed }
}

/// Runs `true` under `mechanism` in a scratch workspace.
pub async fn check(mechanism: Mechanism) -> Result<Mechanism, String> {
    static PROBES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = PROBES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch = std::env::temp_dir().join(format!("clawdia-sandbox-probe-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&scratch).map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let mut policy = Policy::new(&scratch);
    policy.timeout = Duration::from_secs(10);
    let result = run(&mechanism, &policy, "true", |_| {}).await;
    let _ = std::fs::remove_dir(&scratch);
    match result {
        Ok(outcome) if outcome.exit_code == Some(0) => Ok(mechanism),
        Ok(outcome) => Err(format!("`true` failed in the sandbox: {}", outcome.output.trim())),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests;
