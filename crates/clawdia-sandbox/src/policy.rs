//! What a sandboxed command may do: the workspace it may write, the paths it must not see, its
//! network, its resource limits, its environment and its time. A `Policy` is plain data; both
//! mechanisms (bubblewrap and the built-in path) enforce the same one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The environment a sandboxed command starts with when nothing else is given. The host's
/// environment is never inherited: API keys in the gateway's environment stay outside.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The network a sandboxed command sees.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// A private network namespace with only loopback: no connection leaves the sandbox, and
    /// the host's loopback services are unreachable.
    None,
    /// The same private namespace, plus egress to these allowlist entries only, through a
    /// filtering HTTP proxy in the gateway that the command reaches at `127.0.0.1:3128`
    /// (`HTTP_PROXY` and friends are set). Entry syntax and what is refused: `egress`. A
    /// malformed entry makes `run` fail with `InvalidPolicy` before anything starts. Without a
    /// sandbox (`Mechanism::Unsandboxed`) neither variant confines anything.
    Allow(Vec<String>),
}

impl Network {
    /// The network a configured allowlist gives: `None` when it is empty, else `Allow`.
    pub fn allowing(entries: &[String]) -> Network {
        if entries.is_empty() { Network::None } else { Network::Allow(entries.to_vec()) }
    }
}

/// Kernel resource limits (rlimits), applied to every process of the sandbox. `None` leaves the
/// gateway's own limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Most bytes of virtual address space per process (`RLIMIT_AS`).
    pub address_space: Option<u64>,
    /// Most CPU seconds per process (`RLIMIT_CPU`); the wall-clock timeout is separate.
    pub cpu_seconds: Option<u64>,
    /// Most processes (`RLIMIT_NPROC`, and a pids cgroup where one is writable: root is exempt
    /// from `RLIMIT_NPROC`).
    pub processes: Option<u64>,
    /// Most open file descriptors per process (`RLIMIT_NOFILE`).
    pub open_files: Option<u64>,
    /// Largest file a process may write, in bytes (`RLIMIT_FSIZE`).
    pub file_size: Option<u64>,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            address_space: Some(4 << 30),
            cpu_seconds: Some(60),
            processes: Some(256),
            open_files: Some(1024),
            file_size: Some(256 << 20),
        }
    }
}

/// Everything the sandbox enforces for one command.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The only host folder the command may write (bound read-write at the same path); also its
    /// working directory.
    pub workspace: PathBuf,
    /// Whether the command may write the workspace (false for agents whose writes are confined
    /// to globs: the sandbox cannot enforce a glob, so it allows no write at all).
    pub workspace_writable: bool,
    /// Paths that must be unreadable inside (an empty tmpfs is mounted over folders, `/dev/null`
    /// over files), e.g. the home's `secrets/` and `state/`.
    pub hidden: Vec<PathBuf>,
    /// Host paths under the sandbox's private `/tmp` or `/dev/shm` that must stay readable
    /// inside (bound read-only over the private mount): a program's own files, such as an MCP
    /// server kept under `/tmp`. Paths elsewhere are visible (read-only) anyway; hidden paths
    /// stay hidden even inside these.
    pub visible: Vec<PathBuf>,
    pub network: Network,
    pub limits: Limits,
    /// Extra environment variables, on top of the safe defaults (`PATH`, `HOME`, `LANG`, ...).
    pub env: Vec<(String, String)>,
    /// Wall-clock time before the whole process tree is terminated.
    pub timeout: Duration,
    /// How long a terminated tree gets between `SIGTERM` and `SIGKILL`.
    pub kill_grace: Duration,
    /// Most output bytes kept (stdout and stderr merged); the rest is cut with a visible marker.
    pub output_cap: usize,
}

/// The folders each sandbox replaces with a private, empty one.
pub(crate) const PRIVATE_MOUNTS: [&str; 2] = ["/tmp", "/dev/shm"];

/// Whether `path` (canonical) lies under a folder the sandbox makes private, so it is invisible
/// inside unless bound back in.
pub(crate) fn under_private_mount(path: &Path) -> bool {
    PRIVATE_MOUNTS.iter().any(|mount| path.starts_with(mount) && path != Path::new(mount))
}

impl Policy {
    /// A closed policy for `workspace`: no network, default limits, 60 s, 64 KiB of output.
    pub fn new(workspace: impl Into<PathBuf>) -> Policy {
        Policy {
            workspace: workspace.into(),
            workspace_writable: true,
            hidden: Vec::new(),
            visible: Vec::new(),
            network: Network::None,
            limits: Limits::default(),
            env: Vec::new(),
            timeout: Duration::from_secs(60),
            kill_grace: Duration::from_secs(2),
            output_cap: 64 * 1024,
        }
    }

    /// The full environment of the command: safe defaults, then the explicit variables (which
    /// override a default of the same name).
    pub fn environment(&self) -> Vec<(String, String)> {
        let workspace = self.workspace.to_string_lossy().into_owned();
        let mut env: Vec<(String, String)> = [
            ("PATH", DEFAULT_PATH.to_string()),
            ("HOME", workspace),
            ("LANG", "C.UTF-8".to_string()),
            ("LC_ALL", "C.UTF-8".to_string()),
            ("TMPDIR", "/tmp".to_string()),
            ("TERM", "dumb".to_string()),
            ("SHELL", "/bin/sh".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (key, value) in &self.env {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        env
    }
}
