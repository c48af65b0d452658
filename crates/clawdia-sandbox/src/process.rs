//! Process-tree control, shared by the sandbox and (later) the scheduler and the MCP client:
//! every child is spawned as the leader of its own process group, so the whole tree it starts
//! can be signalled at once; `kill_tree` sends `SIGTERM`, waits a grace period, then `SIGKILL`s
//! the group; a `ProcessTree` that is dropped while running kills its group. The daemon calls
//! `become_child_subreaper` so orphaned grandchildren are reparented to it, not to PID 1, and
//! `spawn_orphan_reaper` so those orphans do not stay zombies.
//!
//! Also here: the resource limits applied in the child between fork and exec, and the pids
//! cgroup that enforces the process limit for root (which `RLIMIT_NPROC` does not bind).

use std::io;
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::{Limits, SandboxError};

/// Makes this process the reaper of orphaned descendants (`PR_SET_CHILD_SUBREAPER`), so a
/// grandchild whose parent exits stays the daemon's to wait for and kill.
pub fn become_child_subreaper() -> Result<(), SandboxError> {
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| SandboxError::Setup(format!("cannot become a child subreaper: {e}")))
}

/// For a child subreaper: every `period`, reaps children of this process that were already
/// zombies at the previous scan. Orphans reparented to the daemon are nobody else's to wait
/// for; children spawned through tokio are reaped by tokio as soon as they exit, so a zombie that
/// lingers a whole period is an orphan.
pub fn spawn_orphan_reaper(period: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut previous: Vec<i32> = Vec::new();
        loop {
            tokio::time::sleep(period).await;
            let zombies = zombie_children();
            for pid in zombies.iter().filter(|pid| previous.contains(pid)) {
                let _ =
                    nix::sys::wait::waitpid(Pid::from_raw(*pid), Some(nix::sys::wait::WaitPidFlag::WNOHANG));
            }
            previous = zombies;
        }
    })
}

/// This process's children that are zombies (from `/proc/self/task/*/children`).
fn zombie_children() -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children.split_whitespace().filter_map(|pid| pid.parse().ok()).collect::<Vec<i32>>()
        })
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
                .unwrap_or(false)
        })
        .collect()
}

/// Whether any process of group `pgid` still exists (zombies included).
pub fn group_alive(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
}

/// Terminates process group `pgid`: `SIGTERM`, up to `grace` for it to go, then `SIGKILL`. For
/// callers that do not own the leader's `Child`: a leader that nobody reaps stays a zombie and
/// keeps the group alive, so then the full grace is waited before the `SIGKILL`.
pub async fn kill_tree(pgid: i32, grace: Duration) {
    if pgid <= 1 {
        return;
    }
    let group = Pid::from_raw(pgid);
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = tokio::time::Instant::now() + grace;
    while group_alive(pgid) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = killpg(group, Signal::SIGKILL);
}

/// A spawned process-group leader and its tree. Dropping it while it runs kills the group.
#[derive(Debug)]
pub struct ProcessTree {
    child: tokio::process::Child,
    pgid: i32,
    exited: bool,
}

impl ProcessTree {
    /// Spawns `command` as the leader of a new process group.
    pub fn spawn(command: &mut tokio::process::Command) -> io::Result<ProcessTree> {
        command.process_group(0).kill_on_drop(true);
        let child = command.spawn()?;
        let pgid =
            child.id().and_then(|id| i32::try_from(id).ok()).ok_or_else(|| io::Error::other("no pid"))?;
        Ok(ProcessTree { child, pgid, exited: false })
    }

    /// The process group id (the leader's pid).
    pub fn pgid(&self) -> i32 {
        self.pgid
    }

    /// The leader's `Child` (for its piped stdin/stdout/stderr).
    pub fn child_mut(&mut self) -> &mut tokio::process::Child {
        &mut self.child
    }

    /// Whether the leader has exited, without waiting (then the rest of the group is killed).
    pub fn try_exited(&mut self) -> bool {
        if !self.exited && matches!(self.child.try_wait(), Ok(Some(_))) {
            self.exited = true;
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        }
        self.exited
    }

    /// Waits for the leader to exit, then kills whatever is left of its group.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        self.exited = true;
        let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        Ok(status)
    }

    /// `SIGTERM` to the group, up to `grace` for the leader to exit, then `SIGKILL` to the group.
    pub async fn terminate(&mut self, grace: Duration) -> io::Result<ExitStatus> {
        let group = Pid::from_raw(self.pgid);
        let _ = killpg(group, Signal::SIGTERM);
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status?,
            Err(_) => {
                let _ = killpg(group, Signal::SIGKILL);
                self.child.wait().await?
            }
        };
        self.exited = true;
        let _ = killpg(group, Signal::SIGKILL);
        Ok(status)
    }
}

impl Drop for ProcessTree {
    fn drop(&mut self) {
        if !self.exited {
            let _ = killpg(Pid::from_raw(self.pgid), Signal::SIGKILL);
        }
    }
}

/// Sets the rlimits of `limits` on the calling process, except the process count when
/// `with_processes` is false (the sandbox sets that one inside its user namespace, where it
/// counts only the sandbox's processes). Only raw syscalls: safe between fork and exec.
pub(crate) fn apply_rlimits(limits: &Limits, with_processes: bool) -> io::Result<()> {
    let set = |resource: Resource, value: Option<u64>| -> io::Result<()> {
        match value {
            Some(value) => setrlimit(resource, value, value).map_err(io::Error::from),
            None => Ok(()),
        }
    };
    set(Resource::RLIMIT_AS, limits.address_space)?;
    set(Resource::RLIMIT_CPU, limits.cpu_seconds)?;
    set(Resource::RLIMIT_NOFILE, limits.open_files)?;
    set(Resource::RLIMIT_FSIZE, limits.file_size)?;
    if with_processes {
        set(Resource::RLIMIT_NPROC, limits.processes)?;
    }
    Ok(())
}

/// A per-run cgroup (v1 `pids` controller) capping the number of tasks. Root is exempt from
/// `RLIMIT_NPROC`, so this is what contains a fork bomb when the gateway runs as root. Removed
/// when dropped (once empty).
///
/// Its `cgroup.procs` is opened here, in the parent, and shared with the child through a
/// [`CgroupJoin`] that the pre-exec closure owns: the child only writes to a descriptor the
/// closure itself keeps open, so nothing it uses between fork and exec is borrowed from, or
/// points into, a value that can move or be dropped in the meantime.
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
    procs: Arc<OwnedFd>,
}

/// What the child needs to join a [`PidsCgroup`] between fork and exec: an owned reference to
/// the open `cgroup.procs`. Owned by the pre-exec closure (which lives on the heap inside the
/// command), so the descriptor stays open for as long as the command can be spawned.
#[derive(Debug)]
pub(crate) struct CgroupJoin(Arc<OwnedFd>);

static CGROUP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The folder of this process's cgroup in the v1 `pids` hierarchy, if one is mounted: where the
/// per-run cgroups of a gateway running as root are created.
pub fn pids_cgroup_hierarchy() -> Option<PathBuf> {
    PidsCgroup::hierarchy()
}

impl PidsCgroup {
    /// The folder of this process's cgroup in the v1 `pids` hierarchy, if one is mounted.
    pub(crate) fn hierarchy() -> Option<PathBuf> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let (root, mount_point) = mountinfo.lines().find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut right = right.split(' ');
            let (fstype, _source, options) = (right.next()?, right.next()?, right.next()?);
            if fstype != "cgroup" || !options.split(',').any(|o| o == "pids") {
                return None;
            }
            let mut fields = left.split(' ');
            let root = fields.nth(3)?;
            let mount_point = fields.next()?;
            Some((root.to_string(), PathBuf::from(mount_point)))
        })?;
        let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let own = cgroups.lines().find_map(|line| {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
            controllers.split(',').any(|c| c == "pids").then(|| path.to_string())
        })?;
        let relative = own.strip_prefix(root.as_str()).unwrap_or(&own).trim_start_matches('/');
        Some(mount_point.join(relative))
    }

    /// Creates a cgroup allowing `max` tasks, or `None` when there is no writable hierarchy.
    pub(crate) fn create(max: u64) -> Option<PidsCgroup> {
        let parent = PidsCgroup::hierarchy()?;
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(|| sweep_stale_cgroups(&parent));
        let n = CGROUP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = parent.join(format!("clawdia-sandbox-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).ok()?;
        // From here on, dropping `cgroup` removes the folder again.
        let procs = std::fs::OpenOptions::new().write(true).open(dir.join("cgroup.procs"));
        let cgroup = match procs {
            Ok(procs) => PidsCgroup { procs: Arc::new(OwnedFd::from(procs)), dir },
            Err(_) => {
                let _ = std::fs::remove_dir(&dir);
                return None;
            }
        };
        std::fs::write(cgroup.dir.join("pids.max"), max.to_string()).ok()?;
        Some(cgroup)
    }

    /// The handle a child uses to join this cgroup (see [`CgroupJoin::join`]).
    pub(crate) fn joiner(&self) -> CgroupJoin {
        CgroupJoin(Arc::clone(&self.procs))
    }
}

/// Removes the empty per-run cgroups that gateways no longer running left behind (a cgroup
/// whose last tasks took longer to leave than [`PidsCgroup`]'s drop waits). Best effort: a
/// cgroup that still holds tasks cannot be removed and stays.
fn sweep_stale_cgroups(parent: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix("clawdia-sandbox-"))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

impl CgroupJoin {
    /// Moves the calling process into the cgroup by writing `0` to its open `cgroup.procs`.
    /// One `write` on a descriptor this value keeps open: safe between fork and exec.
    pub(crate) fn join(&self) -> io::Result<()> {
        // SAFETY: `self.0` is an open descriptor owned by this value (the `Arc` keeps it open,
        // and the caller owns `self`); the buffer is a static byte string. write(2) is
        // async-signal-safe and touches no memory but that buffer.
        let written = unsafe { libc::write(self.0.as_raw_fd(), b"0".as_ptr().cast(), 1) };
        if written != 1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // The tree is dead by now; its tasks may take a moment to leave the cgroup.
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
