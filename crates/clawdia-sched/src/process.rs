//! Host commands that cannot wedge the gateway. `clawdia_sandbox::spawn_host_shell` starts the
//! command (a clean environment, the leader of its own process group, killed if the gateway
//! dies); while it runs its descendants are recorded from `/proc` every 100 ms; every process it
//! starts inherits a per-run marker in its environment.
//! At the end (exit, or the timeout) everything that belongs to the run gets `SIGTERM`, a grace
//! period, then `SIGKILL`, repeatedly until nothing is left: the process group, every recorded
//! descendant (a double fork with `setsid` leaves the group but not the record, and it is
//! reparented to the gateway, a child subreaper), and any process carrying the marker. Killed
//! processes that were reparented to us are reaped here, so no zombie stays behind.
//!
//! Sandboxed commands do not need this: the sandbox's PID namespace dies with its first process.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt as _;

use crate::procfs;

/// The environment variable that marks a run's processes.
pub const MARKER: &str = "CLAWDIA_CRON_RUN";

/// How a host command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostOutcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// The last `tail_bytes` of stdout and stderr, merged.
    pub output_tail: String,
    /// Processes still found after the leader ended (killed).
    pub leftovers: usize,
}

/// What to run and its limits.
#[derive(Debug, Clone)]
pub struct HostCommand<'a> {
    pub command: &'a str,
    pub cwd: &'a Path,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub kill_grace: Duration,
    pub tail_bytes: usize,
    /// Unique per run: the marker's value.
    pub run_id: String,
}

/// Runs `/bin/sh -c command` on the host; kills its whole tree at the end.
pub async fn run_host(spec: HostCommand<'_>) -> std::io::Result<HostOutcome> {
    let mut env = spec.env.clone();
    env.push((MARKER.to_string(), spec.run_id.clone()));
    let clawdia_sandbox::HostShell { mut tree, output } =
        clawdia_sandbox::spawn_host_shell(spec.command, spec.cwd, &env)?;
    let leader = tree.pgid();
    let marker = format!("{MARKER}={}", spec.run_id).into_bytes();
    let seen: Arc<Mutex<HashMap<i32, u64>>> = Arc::default();
    let tracker = {
        let seen = seen.clone();
        tokio::spawn(async move {
            loop {
                record(&seen, procfs::descendants(leader));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut reader = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(output))?;
    let mut tail = Tail::new(spec.tail_bytes);
    let mut buffer = vec![0u8; 16 * 1024];
    let mut eof = false;
    let deadline = tokio::time::sleep(spec.timeout);
    tokio::pin!(deadline);
    let waited = loop {
        tokio::select! {
            read = reader.read(&mut buffer), if !eof => match read {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => tail.push(&buffer[..n]),
            },
            status = tree.wait() => break Some(status),
            _ = &mut deadline => break None,
        }
    };
    let timed_out = waited.is_none();
    record(&seen, procfs::descendants(leader));
    tracker.abort();
    let status = match waited {
        Some(status) => status?,
        None => {
            // Signal everything of the run first so nothing slips out between the group and
            // the rest; then the leader's own TERM-grace-KILL.
            let known = members(leader, &seen, &marker);
            signal_all(leader, &known, Signal::SIGTERM);
            tree.terminate(spec.kill_grace).await?
        }
    };
    // After a timeout every process of the run already had its TERM and the grace: straight to
    // KILL. After a normal exit, leftovers get their own TERM and grace.
    let grace = if timed_out { Duration::ZERO } else { spec.kill_grace };
    let leftovers = kill_everything(leader, &seen, &marker, grace).await;
    // Whatever is left in the pipe (bounded: the writers are dead now).
    let drain = async {
        while !eof {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => eof = true,
                Ok(n) => tail.push(&buffer[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(500), drain).await;
    use std::os::unix::process::ExitStatusExt as _;
    Ok(HostOutcome {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        output_tail: tail.finish(),
        leftovers,
    })
}

fn record(seen: &Mutex<HashMap<i32, u64>>, found: Vec<(i32, u64)>) {
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    for (pid, start) in found {
        seen.entry(pid).or_insert(start);
    }
}

/// Every live process of the run: recorded descendants (same start time: not a reused PID),
/// the group's members, and marked processes, with their current descendants.
fn members(leader: i32, seen: &Mutex<HashMap<i32, u64>>, marker: &[u8]) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out: Vec<i32> = Vec::new();
    {
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        for (pid, start) in seen.iter() {
            if procfs::start_time(*pid) == Some(*start) {
                out.push(*pid);
            }
        }
    }
    for pid in procfs::all_pids() {
        if pid == me || out.contains(&pid) {
            continue;
        }
        let in_group = procfs::stat(pid).is_some_and(|s| s.pgrp == leader);
        if in_group || procfs::environ_contains(pid, marker) {
            out.push(pid);
        }
    }
    let roots = out.clone();
    for root in roots {
        for (pid, _) in procfs::descendants(root) {
            if !out.contains(&pid) {
                out.push(pid);
            }
        }
    }
    out.retain(|pid| *pid != me && *pid > 1);
    out
}

fn signal_all(leader: i32, pids: &[i32], signal: Signal) {
    let _ = killpg(Pid::from_raw(leader), signal);
    for pid in pids {
        let _ = kill(Pid::from_raw(*pid), signal);
    }
}

/// TERM, grace, KILL, until no process of the run is left (at most a few rounds: a process
/// that keeps forking is outpaced by SIGKILL, which it cannot ignore). Reaps killed processes
/// that were reparented to us. Returns how many processes were found after the leader ended.
async fn kill_everything(
    leader: i32,
    seen: &Mutex<HashMap<i32, u64>>,
    marker: &[u8],
    grace: Duration,
) -> usize {
    let first = alive_members(leader, seen, marker);
    let count = first.len();
    if first.is_empty() {
        reap(seen);
        return 0;
    }
    // Remember them all, so the ones reparented to us are reaped however they die.
    record(seen, first.iter().filter_map(|p| procfs::start_time(*p).map(|s| (*p, s))).collect());
    if !grace.is_zero() {
        signal_all(leader, &first, Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && !alive_members(leader, seen, marker).is_empty() {
        reap(seen);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..50 {
        let left = alive_members(leader, seen, marker);
        if left.is_empty() {
            break;
        }
        record(seen, left.iter().filter_map(|p| procfs::start_time(*p).map(|s| (*p, s))).collect());
        signal_all(leader, &left, Signal::SIGKILL);
        tokio::time::sleep(Duration::from_millis(5)).await;
        reap(seen);
    }
    reap(seen);
    count
}

/// Members that are not yet dead (zombies do not count; `reap` collects ours).
fn alive_members(leader: i32, seen: &Mutex<HashMap<i32, u64>>, marker: &[u8]) -> Vec<i32> {
    members(leader, seen, marker).into_iter().filter(|pid| procfs::running(*pid)).collect()
}

/// Waits for recorded processes that are our children now (reparented to the subreaper), so
/// they do not stay zombies. Only PIDs of this run: the runtime's own children are not touched.
fn reap(seen: &Mutex<HashMap<i32, u64>>) {
    let me = std::process::id() as i32;
    let pids: Vec<(i32, u64)> =
        seen.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(p, s)| (*p, *s)).collect();
    for (pid, start) in pids {
        let Some(stat) = procfs::stat(pid) else { continue };
        if stat.ppid == me && stat.start_time == start && stat.state == 'Z' {
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        }
    }
}

/// Keeps the last `cap` bytes.
struct Tail {
    cap: usize,
    bytes: Vec<u8>,
    total: u64,
}

impl Tail {
    fn new(cap: usize) -> Tail {
        Tail { cap, bytes: Vec::new(), total: 0 }
    }

    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > self.cap * 2 {
            let cut = self.bytes.len() - self.cap;
            self.bytes.drain(..cut);
        }
    }

    fn finish(mut self) -> String {
        let mut prefix = String::new();
        if self.bytes.len() > self.cap {
            let cut = self.bytes.len() - self.cap;
            self.bytes.drain(..cut);
        }
        let kept = self.bytes.len() as u64;
        if self.total > kept {
            prefix = format!("[... {} earlier bytes omitted ...]\n", self.total - kept);
        }
        prefix + &String::from_utf8_lossy(&self.bytes)
    }
}

/// The last `cap` bytes of `text` (on a character boundary).
pub fn tail_of(text: &str, cap: usize) -> String {
    if text.len() <= cap {
        return text.to_string();
    }
    let mut start = text.len() - cap;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {start} earlier bytes omitted ...]\n{}", &text[start..])
}
