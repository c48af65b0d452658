//! Long-lived sandboxed programs spoken to over stdin/stdout (MCP servers): the same sandbox as
//! `run` (namespaces, read-only root, hidden paths, loopback only, rlimits, Landlock, seccomp,
//! clean environment; bubblewrap or the built-in helper), but instead of running to completion
//! the child keeps running with its stdin and stdout piped to the caller. Its stderr is read
//! into a capped tail for diagnostics. The child leads its own process group; `StdioChild::kill`
//! (or dropping it) ends the whole tree, and in the sandboxed mechanisms the pid namespace dies
//! with it, grandchildren included.
//!
//! With an egress allowlist (`Network::Allow`) the program gets the same filtering proxy as a
//! `run` command (`egress.rs`), served for as long as the child lives; refusals are logged
//! (target `clawdia::egress`) and counted in [`StdioChild::egress_refusals`].
//!
//! There is no timeout here: the caller times each request and kills the child when one hangs.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt as _;
use tokio::process::{ChildStdin, ChildStdout};

use crate::egress::{self, Egress};
use crate::process::PidsCgroup;
use crate::{Mechanism, Policy, Prepared, ProcessTree, STARTED, SandboxError, prepare};

/// How much of the child's stderr is kept (the most recent bytes).
pub const STDERR_TAIL_BYTES: usize = 8 * 1024;

/// How long the sandbox may take to start the program before the spawn is abandoned.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running sandboxed program with piped stdin and stdout.
#[derive(Debug)]
pub struct StdioChild {
    tree: ProcessTree,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Arc<Mutex<Vec<u8>>>,
    _cgroup: Option<PidsCgroup>,
    /// The egress proxy, served until the child is dropped.
    egress: Option<Egress>,
}

impl StdioChild {
    /// The child's stdin and stdout, once (for a transport that owns both).
    pub fn take_pipes(&mut self) -> Option<(ChildStdin, ChildStdout)> {
        Some((self.stdin.take()?, self.stdout.take()?))
    }

    /// The process group id (the sandbox's top process).
    pub fn pgid(&self) -> i32 {
        self.tree.pgid()
    }

    /// The last `STDERR_TAIL_BYTES` of the child's stderr, as lossy UTF-8.
    pub fn stderr_tail(&self) -> String {
        stderr_text(&self.stderr)
    }

    /// A handle on the stderr tail that outlives the child (for reporting after a kill).
    pub fn stderr_handle(&self) -> StderrTail {
        StderrTail(self.stderr.clone())
    }

    /// Whether the top process has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        self.tree.try_exited()
    }

    /// What the egress proxy has refused so far, on one line (`None` without an allowlist or
    /// before the first refusal).
    pub fn egress_refusals(&self) -> Option<String> {
        self.egress.as_ref().and_then(Egress::refusals)
    }

    /// How many requests the egress proxy has refused so far (0 without an allowlist).
    pub fn egress_refused(&self) -> usize {
        self.egress.as_ref().map_or(0, Egress::refused_total)
    }

    /// Ends the whole tree: `SIGTERM`, up to `grace`, then `SIGKILL`.
    pub async fn kill(&mut self, grace: Duration) {
        let _ = self.tree.terminate(grace).await;
    }
}

/// The stderr tail of a child, readable after the child is gone.
#[derive(Debug, Clone)]
pub struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    pub fn text(&self) -> String {
        stderr_text(&self.0)
    }
}

fn stderr_text(buffer: &Mutex<Vec<u8>>) -> String {
    let bytes = buffer.lock().unwrap_or_else(|e| e.into_inner());
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `program` and `args` as one `sh -c` command that execs the program with exactly these
/// arguments (each single-quoted), so no shell stays between the sandbox and the program.
pub fn exec_command(program: &str, args: &[String]) -> String {
    let quote = |word: &str| format!("'{}'", word.replace('\'', "'\\''"));
    let mut command = format!("exec {}", quote(program));
    for arg in args {
        command.push(' ');
        command.push_str(&quote(arg));
    }
    command
}

/// The program's own files that the sandbox's private `/tmp` (or `/dev/shm`) would hide: the
/// program (by path, or found on the sandbox's `PATH`) and every argument naming an existing
/// absolute path (a server script). Each becomes visible read-only as the whole top folder
/// below the private mount that holds it (`/tmp/servers/x/dist/index.js` -> `/tmp/servers`), so
/// a script's modules and packages beside or above it resolve too; a file right in `/tmp` is
/// bound alone.
pub(crate) fn own_files(program: &str, args: &[String], policy: &Policy) -> Vec<PathBuf> {
    let search_path = policy
        .environment()
        .into_iter()
        .find(|(key, _)| key == "PATH")
        .map(|(_, value)| value)
        .unwrap_or_default();
    let program = if program.contains('/') {
        Some(PathBuf::from(program))
    } else {
        std::env::split_paths(&search_path).map(|dir| dir.join(program)).find(|p| p.is_file())
    };
    let named = args.iter().filter(|arg| arg.starts_with('/')).map(PathBuf::from);
    let mut visible: Vec<PathBuf> = Vec::new();
    for path in program.into_iter().chain(named) {
        let Ok(path) = path.canonicalize() else { continue };
        let Some(top) = crate::policy::PRIVATE_MOUNTS.iter().find_map(|mount| {
            let rest = path.strip_prefix(mount).ok()?;
            let first = rest.components().next()?;
            Some(Path::new(mount).join(first))
        }) else {
            continue;
        };
        if !visible.contains(&top) {
            visible.push(top);
        }
    }
    visible
}

/// Starts `program args...` under `mechanism` and `policy` with stdin and stdout piped. The
/// policy's `timeout`, `output_cap` and `kill_grace` do not apply (the caller owns the life of
/// the child); everything else does. Returns once the program was exec'd inside the sandbox,
/// or the one-line reason the sandbox could not be built.
pub async fn spawn_stdio(
    mechanism: &Mechanism,
    policy: &Policy,
    program: &str,
    args: &[String],
) -> Result<StdioChild, SandboxError> {
    if program.trim().is_empty() {
        return Err(SandboxError::InvalidPolicy("the program is empty".into()));
    }
    let egress = Egress::start(&policy.network, !matches!(mechanism, Mechanism::Unsandboxed))?;
    let extra_env = if egress.is_some() { egress::environment() } else { Vec::new() };
    let egress_fd = egress.as_ref().map(Egress::child_fd);
    let mut policy = policy.clone();
    policy.visible.extend(own_files(program, args, &policy));
    let Prepared { mut command, cgroup, status_read, status_write, sandboxed } =
        prepare(mechanism, &policy, exec_command(program, args), extra_env, egress_fd)?;
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut tree = ProcessTree::spawn(&mut command)
        .map_err(|e| SandboxError::Spawn(format!("{}: {e}", mechanism.name())))?;
    drop(command);
    drop(status_write);
    let stdin = tree.child_mut().stdin.take();
    let stdout = tree.child_mut().stdout.take();
    let stderr = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut pipe) = tree.child_mut().stderr.take() {
        let tail = stderr.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            while let Ok(n) = pipe.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                tail.extend_from_slice(&buffer[..n]);
                let excess = tail.len().saturating_sub(STDERR_TAIL_BYTES);
                tail.drain(..excess);
            }
        });
    }
    let mut child = StdioChild { tree, stdin, stdout, stderr, _cgroup: cgroup, egress };
    if sandboxed && let Err(error) = wait_started(&mut child, status_read).await {
        child.kill(Duration::from_millis(200)).await;
        return Err(error);
    }
    Ok(child)
}

/// Waits for the last stage's `exec` line on the status pipe. The helper keeps the pipe open
/// while the program runs (it only forks), so the answer is a line, not end-of-file: `exec`, or
/// a setup error; or the sandbox exits first.
async fn wait_started(child: &mut StdioChild, status: std::io::PipeReader) -> Result<(), SandboxError> {
    let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(status))
        .map_err(|e| SandboxError::Spawn(format!("cannot read the sandbox status: {e}")))?;
    let mut text = Vec::new();
    let mut buffer = [0u8; 512];
    let deadline = tokio::time::sleep(START_TIMEOUT);
    tokio::pin!(deadline);
    loop {
        let lines = String::from_utf8_lossy(&text).into_owned();
        let complete: Vec<&str> =
            lines.split_inclusive('\n').filter(|l| l.ends_with('\n')).map(str::trim_end).collect();
        let errors: Vec<&str> = complete.iter().copied().filter(|l| *l != STARTED && !l.is_empty()).collect();
        if !errors.is_empty() {
            return Err(SandboxError::Setup(errors.join("; ")));
        }
        if complete.contains(&STARTED) {
            return Ok(());
        }
        tokio::select! {
            read = reader.read(&mut buffer) => match read {
                Ok(0) | Err(_) => {
                    // Everything holding the pipe is gone: the sandbox died before the program
                    // started (an error line, if any, was handled above).
                    let said = child.stderr_tail();
                    let said = said.lines().next().map(|l| format!(": {l}")).unwrap_or_default();
                    return Err(SandboxError::Setup(format!("the sandbox exited before the program started{said}")));
                }
                Ok(n) => text.extend_from_slice(&buffer[..n]),
            },
            _ = &mut deadline => {
                return Err(SandboxError::Setup(format!(
                    "the program did not start within {}s", START_TIMEOUT.as_secs()
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::exec_command;

    #[test]
    fn exec_command_quotes_every_word() {
        let args = vec!["a b".to_string(), "it's".to_string(), "$HOME".to_string()];
        assert_eq!(exec_command("/usr/bin/node", &args), r#"exec '/usr/bin/node' 'a b' 'it'\''s' '$HOME'"#);
    }
}
