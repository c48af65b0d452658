//! What `/proc` tells about processes: a process's start time (field 22 of `/proc/PID/stat`, in
//! clock ticks since boot) so a reused PID is told apart from the original, its parent, process
//! group and session, its children, and whether its environment carries a marker. Also this
//! host's identity (host name and machine id) and boot id, which locks record.

use std::path::Path;

/// The fields of `/proc/PID/stat` the scheduler uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub session: i32,
    /// Clock ticks after boot.
    pub start_time: u64,
}

/// Reads `/proc/PID/stat`; `None` when the process does not exist.
pub fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a stat line. The command name (field 2) is in parentheses and may itself contain
/// spaces and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): field N is at index N - 3.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        session: fields.get(3)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The start time of `pid`, or `None` when it does not exist.
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|s| s.start_time)
}

/// Whether `pid` exists and is not a zombie.
pub fn running(pid: i32) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z' && s.state != 'X')
}

/// Direct children of `pid` (every thread's `children` file).
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in tasks.flatten() {
        if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
            out.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// `pid` and all its descendants, with their start times.
pub fn descendants(pid: i32) -> Vec<(i32, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![pid];
    while let Some(next) = stack.pop() {
        for child in children(next) {
            if let Some(start) = start_time(child)
                && !out.iter().any(|(p, _)| *p == child)
            {
                out.push((child, start));
                stack.push(child);
            }
        }
    }
    out
}

/// Every PID in `/proc`.
pub fn all_pids() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries.flatten().filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok())).collect()
}

/// Whether `pid`'s environment contains the exact `KEY=value` entry.
pub fn environ_contains(pid: i32, entry: &[u8]) -> bool {
    let Ok(bytes) = std::fs::read(format!("/proc/{pid}/environ")) else { return false };
    bytes.split(|b| *b == 0).any(|e| e == entry)
}

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// This host: `hostname/machine-id` (either part may be missing; containers may share a
/// machine id, host names tell them apart).
pub fn host_id() -> String {
    let host = read_trimmed("/proc/sys/kernel/hostname").unwrap_or_else(|| "localhost".into());
    match read_trimmed("/etc/machine-id").or_else(|| read_trimmed("/var/lib/dbus/machine-id")) {
        Some(machine) => format!("{host}/{machine}"),
        None => host,
    }
}

/// This boot (`/proc/sys/kernel/random/boot_id`): PIDs and start times are per boot.
pub fn boot_id() -> String {
    read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default()
}
