//! Integration tests for clawdia-store: the public API against real SQLite files in temporary
//! state dirs, including two stores on one dir and a child process killed with SIGKILL.

mod audit;
mod concurrency;
mod crash;
mod import;
mod sessions;

use clawdia_core::{Message, ToolCall};
use clawdia_store::Store;
use tempfile::TempDir;

/// A store on a fresh temporary state dir (kept alive by the returned guard).
pub fn fresh() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path()).expect("open store");
    (dir, store)
}

/// An assistant message calling `ids` (tool name `tool_<id>`).
pub fn calls(ids: &[&str]) -> Message {
    Message::Assistant {
        text: String::new(),
        tool_calls: ids
            .iter()
            .map(|id| ToolCall {
                id: id.to_string(),
                name: format!("tool_{id}"),
                arguments: format!("{{\"id\":\"{id}\"}}"),
            })
            .collect(),
    }
}

pub fn result(id: &str) -> Message {
    Message::ToolResult {
        call_id: id.to_string(),
        name: format!("tool_{id}"),
        content: format!("result of {id}"),
        is_error: false,
    }
}

/// The synthetic result `open` adds for an unanswered call.
pub fn synthetic(id: &str) -> Message {
    Message::ToolResult {
        call_id: id.to_string(),
        name: format!("tool_{id}"),
        content: clawdia_store::SYNTHETIC_RESULT_TEXT.to_string(),
        is_error: true,
    }
}

/// The messages of a session as stored, without seq and time.
pub fn stored(store: &Store, id: &str) -> Vec<Message> {
    store.messages(id).expect("messages").into_iter().map(|stored| stored.message).collect()
}

/// Reads the child's stdout until a line ending in `marker` (libtest may print its own text
/// first on the same line). Fails if the child exits first; a child that never prints it gets
/// its stdin closed after a minute, which ends it, so a broken test fails instead of hanging.
/// Returns the child's stdin, to be held open until the child is killed.
pub fn wait_for_line(child: &mut std::process::Child, marker: &str) -> Option<std::process::ChildStdin> {
    use std::io::BufRead;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    let (found, wait) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || match wait.recv_timeout(std::time::Duration::from_secs(60)) {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
        _ => stdin,
    });
    for line in std::io::BufReader::new(stdout).lines() {
        if line.expect("child stdout").trim_end().ends_with(marker) {
            let _ = found.send(());
            return watchdog.join().expect("watchdog");
        }
    }
    panic!("the child process ended without printing {marker}");
}
