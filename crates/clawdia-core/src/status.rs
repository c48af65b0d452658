//! The daemon's component states: a registry of named components (the HTTP server, the
//! scheduler, the embedder, the outbox, ...) with each one's state, since when it holds it, how
//! often it was restarted and its last error. The supervisor in the runtime writes it; `/v1/status`
//! and `clawdia status` read cheap snapshots of it. Pure data: no IO beyond reading the clock.

use std::sync::{Mutex, PoisonError};

use crate::UnixMillis;

/// Where a component is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentState {
    /// Registered, its task not yet started.
    Starting,
    Running,
    /// It failed; the `attempt`-th restart is due at `next_try` (Unix ms).
    Restarting {
        attempt: u32,
        next_try: UnixMillis,
    },
    /// It could not be stopped or started and the daemon gave up on it.
    Failed,
    /// Stopped by the daemon (shutdown).
    Stopped,
    /// Not started because nothing needs it (no embedder configured, `[cron] enabled = false`).
    Disabled,
}

impl ComponentState {
    /// The state's name as users see it: `starting`, `running`, `restarting`, `failed`,
    /// `stopped`, `disabled`.
    pub fn name(&self) -> &'static str {
        match self {
            ComponentState::Starting => "starting",
            ComponentState::Running => "running",
            ComponentState::Restarting { .. } => "restarting",
            ComponentState::Failed => "failed",
            ComponentState::Stopped => "stopped",
            ComponentState::Disabled => "disabled",
        }
    }
}

/// One component as a snapshot shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentStatus {
    pub name: String,
    pub state: ComponentState,
    /// When it entered `state` (Unix ms).
    pub since: UnixMillis,
    /// Restarts after failures so far.
    pub restarts: u32,
    /// The last failure, one line; kept after a successful restart so the owner sees why.
    pub error: Option<String>,
}

/// The registry: components in the order they were registered. Cloning a snapshot is the only
/// way to read it, so readers never hold the lock.
#[derive(Debug, Default)]
pub struct StatusBoard {
    components: Mutex<Vec<ComponentStatus>>,
}

impl StatusBoard {
    pub fn new() -> StatusBoard {
        StatusBoard::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<ComponentStatus>) -> T) -> T {
        let mut components = self.components.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut components)
    }

    /// Adds `name` in `state` (or resets it to `state` when it is already registered, keeping its
    /// restarts and last error).
    pub fn register(&self, name: &str, state: ComponentState) {
        let now = crate::time::now_ms();
        self.with(|components| match components.iter_mut().find(|c| c.name == name) {
            Some(component) => {
                component.state = state;
                component.since = now;
            }
            None => components.push(ComponentStatus {
                name: name.to_string(),
                state,
                since: now,
                restarts: 0,
                error: None,
            }),
        });
    }

    /// Moves `name` to `state`; `since` changes only when the state does. An unknown name is
    /// registered.
    pub fn set(&self, name: &str, state: ComponentState) {
        let now = crate::time::now_ms();
        let known = self.with(|components| {
            let Some(component) = components.iter_mut().find(|c| c.name == name) else {
                return false;
            };
            if component.state != state {
                component.state = state;
                component.since = now;
            }
            true
        });
        if !known {
            self.register(name, state);
        }
    }

    /// Records a failure of `name` (the error shortened to one line) and its coming restart.
    pub fn failed(&self, name: &str, error: &str, attempt: u32, next_try: UnixMillis) {
        self.set(name, ComponentState::Restarting { attempt, next_try });
        let error = short(error);
        self.with(|components| {
            if let Some(component) = components.iter_mut().find(|c| c.name == name) {
                component.error = Some(error);
            }
        });
    }

    /// Counts a restart of `name` and marks it running again.
    pub fn restarted(&self, name: &str) {
        self.with(|components| {
            if let Some(component) = components.iter_mut().find(|c| c.name == name) {
                component.restarts += 1;
            }
        });
        self.set(name, ComponentState::Running);
    }

    /// Marks `name` failed for good with `error`.
    pub fn give_up(&self, name: &str, error: &str) {
        self.set(name, ComponentState::Failed);
        let error = short(error);
        self.with(|components| {
            if let Some(component) = components.iter_mut().find(|c| c.name == name) {
                component.error = Some(error);
            }
        });
    }

    /// Copies the state of a component that supervises itself (an MCP server restarts on its
    /// own): its state, restarts and last error as it reports them.
    pub fn observe(&self, name: &str, state: ComponentState, restarts: u32, error: Option<&str>) {
        self.set(name, state);
        self.with(|components| {
            if let Some(component) = components.iter_mut().find(|c| c.name == name) {
                component.restarts = restarts;
                if let Some(error) = error {
                    component.error = Some(short(error));
                }
            }
        });
    }

    /// Every component, in registration order.
    pub fn snapshot(&self) -> Vec<ComponentStatus> {
        self.with(|components| components.clone())
    }

    /// One component.
    pub fn get(&self, name: &str) -> Option<ComponentStatus> {
        self.with(|components| components.iter().find(|c| c.name == name).cloned())
    }
}

/// An error as one line of at most 300 characters.
fn short(error: &str) -> String {
    let line = crate::text::one_line(error);
    match line.char_indices().nth(300) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_then_a_restart_counts_once_and_keeps_the_error() {
        let board = StatusBoard::new();
        board.register("scheduler", ComponentState::Starting);
        board.register("embedder", ComponentState::Disabled);
        board.set("scheduler", ComponentState::Running);
        board.failed("scheduler", "cron.db is locked\nsecond line", 1, 5_000);
        let failed = board.get("scheduler").expect("registered");
        assert_eq!(failed.state, ComponentState::Restarting { attempt: 1, next_try: 5_000 });
        assert_eq!(failed.state.name(), "restarting");
        assert_eq!(failed.restarts, 0);
        let error = failed.error.expect("error kept");
        assert_eq!(error, "cron.db is locked second line");
        board.restarted("scheduler");
        let running = board.get("scheduler").expect("registered");
        assert_eq!((running.state, running.restarts), (ComponentState::Running, 1));
        assert!(running.error.is_some(), "the last error stays visible after a restart");
        let names: Vec<_> = board.snapshot().into_iter().map(|c| (c.name, c.state.name())).collect();
        assert_eq!(names, [("scheduler".to_string(), "running"), ("embedder".to_string(), "disabled")]);
    }

    #[test]
    fn since_moves_only_when_the_state_changes() {
        let board = StatusBoard::new();
        board.register("server", ComponentState::Running);
        let first = board.get("server").expect("registered").since;
        std::thread::sleep(std::time::Duration::from_millis(5));
        board.set("server", ComponentState::Running);
        assert_eq!(board.get("server").expect("registered").since, first);
        board.set("server", ComponentState::Stopped);
        let stopped = board.get("server").expect("registered");
        assert!(stopped.since > first, "a new state has a new since");
        assert_eq!(stopped.state.name(), "stopped");
        board.give_up("server", "did not stop");
        let failed = board.get("server").expect("registered");
        assert_eq!((failed.state.name(), failed.error.as_deref()), ("failed", Some("did not stop")));
    }

    #[test]
    fn an_observed_component_takes_the_restarts_and_error_it_reports() {
        let board = StatusBoard::new();
        board.register("mcp:files", ComponentState::Stopped);
        board.observe("mcp:files", ComponentState::Failed, 3, Some("exited with status 1\nstack"));
        let files = board.get("mcp:files").expect("registered");
        assert_eq!((files.state, files.restarts), (ComponentState::Failed, 3));
        assert_eq!(files.error.as_deref(), Some("exited with status 1 stack"));
        board.observe("mcp:files", ComponentState::Running, 4, None);
        let files = board.get("mcp:files").expect("registered");
        assert_eq!((files.state, files.restarts), (ComponentState::Running, 4));
        assert!(files.error.is_some(), "the last error stays visible");
    }

    #[test]
    fn an_unknown_name_is_registered_on_first_set() {
        let board = StatusBoard::new();
        board.set("outbox", ComponentState::Running);
        assert_eq!(board.snapshot().len(), 1);
        assert_eq!(board.get("outbox").map(|c| c.state), Some(ComponentState::Running));
    }
}
