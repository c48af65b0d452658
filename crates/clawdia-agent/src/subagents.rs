//! Bounded sub-agents: `spawn_subagent {task}` starts a child turn of the same agent in a
//! session of its own and returns at once; `subagents {action: list|wait|cancel}` lets the
//! parent follow, collect or stop its children. Bounds, all by construction:
//! - a child gets the tools its parent's turn was offered, minus the sub-agent tools (so a child
//!   can never spawn: depth 1, no runaway trees);
//! - it runs as the same agent, so the parent's daily budget covers it;
//! - at most `MAX_CONCURRENT` children of an agent run at once; the rest queue;
//! - when a child ends, its result is announced into the parent's session (under that
//!   session's lock, so never in the middle of a parent turn) unless the parent already
//!   collected it with `wait`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use clawdia_core::{
    Gateway, Message, Tool, ToolContext, ToolError, ToolSpec, TurnEvent, TurnEvents, TurnOrigin, TurnRequest,
};
use tokio::sync::{Semaphore, watch};

use crate::{Agents, trust};

/// Children of one agent running at once; the rest wait for a slot.
pub const MAX_CONCURRENT: usize = 2;
/// Children one session may have (running, queued or finished and remembered).
const MAX_CHILDREN_PER_SESSION: usize = 16;
/// The longest a `wait` blocks (below the dispatch point's tool time cap).
const MAX_WAIT: Duration = Duration::from_secs(100);
/// The policy group of the sub-agent tools.
pub const GROUP: &str = "subagents";
const SPAWN: &str = "spawn_subagent";
const MANAGE: &str = "subagents";
/// The sub-agent tools' names.
pub const TOOL_NAMES: [&str; 2] = [SPAWN, MANAGE];

#[derive(Debug, Clone, PartialEq)]
enum State {
    Queued,
    Running,
    Done(String),
    Failed(String),
    Cancelled,
}

impl State {
    fn finished(&self) -> bool {
        matches!(self, State::Done(_) | State::Failed(_) | State::Cancelled)
    }

    fn describe(&self) -> String {
        match self {
            State::Queued => "queued".into(),
            State::Running => "running".into(),
            State::Done(text) => format!("done: {text}"),
            State::Failed(error) => format!("failed: {error}"),
            State::Cancelled => "cancelled".into(),
        }
    }
}

struct Child {
    id: String,
    parent_session: String,
    task: String,
    state: watch::Receiver<State>,
    /// The parent took the result with `wait`: no announcement.
    collected: Arc<std::sync::atomic::AtomicBool>,
    /// The parent cancelled it.
    cancelled: std::sync::atomic::AtomicBool,
    abort: tokio::task::AbortHandle,
}

/// Shared by the sub-agent tools of every agent and the turn loop.
#[derive(Default)]
pub struct Hub {
    agents: OnceLock<Weak<Agents>>,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
    children: Mutex<Vec<Child>>,
    /// The tool names offered in each running turn, by session: a child gets no more.
    offered: Mutex<HashMap<String, Vec<String>>>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Hub").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Hub {
    pub(crate) fn attach(&self, agents: Weak<Agents>) {
        let _ = self.agents.set(agents);
    }

    pub(crate) fn turn_started(&self, session: &str, offered: Vec<String>) {
        lock(&self.offered).insert(session.to_string(), offered);
    }

    pub(crate) fn turn_ended(&self, session: &str) {
        lock(&self.offered).remove(session);
    }

    fn slot(&self, agent: &str) -> Arc<Semaphore> {
        lock(&self.slots)
            .entry(agent.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(MAX_CONCURRENT)))
            .clone()
    }

    fn spawn(self: &Arc<Self>, context: &ToolContext, task: String) -> Result<String, ToolError> {
        let agents = self
            .agents
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| ToolError::Failed("sub-agents are not available in this process".into()))?;
        {
            let children = lock(&self.children);
            let mine = children.iter().filter(|c| c.parent_session == context.session_id).count();
            if mine >= MAX_CHILDREN_PER_SESSION {
                return Err(ToolError::Refused(format!(
                    "this session already has {mine} sub-agents (the most allowed); collect or cancel some"
                )));
            }
        }
        let tools: Vec<String> = lock(&self.offered)
            .get(&context.session_id)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|name| name != SPAWN && name != MANAGE)
            .collect();
        let id =
            format!("sub-{}", clawdia_core::random::hex(4).map_err(|e| ToolError::Failed(e.to_string()))?);
        let session = format!("{}~{id}", context.session_id);
        let (sender, receiver) = watch::channel(State::Queued);
        let collected = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let slot = self.slot(&context.agent);
        let queued = slot.available_permits() == 0;
        let request = TurnRequest {
            from_owner: true,
            agent: context.agent.clone(),
            session: Some(session.clone()),
            message: task.clone(),
            origin: TurnOrigin::Subagent,
            // The child acts for whoever sent the parent's turn: `subagent:<parent sender>`.
            sender: Some(context.sender_id()),
            history: Vec::new(),
            tools_allow: Some(tools),
            context: clawdia_core::TurnContext::Full,
            options: Default::default(),
        };
        let parent = context.session_id.clone();
        let agent_name = context.agent.clone();
        let announce_flag = collected.clone();
        let child_id = id.clone();
        let weak = Arc::downgrade(&agents);
        let task_for_child = task.clone();
        let handle = tokio::spawn(async move {
            let Ok(_permit) = slot.acquire_owned().await else { return };
            let _ = sender.send(State::Running);
            let Some(agents) = weak.upgrade() else { return };
            let outcome = agents.run_turn(request, &Silent).await;
            let state = match outcome {
                Ok(outcome) => State::Done(outcome.text),
                Err(error) => State::Failed(error.to_string()),
            };
            let _ = sender.send(state.clone());
            announce(&agents, &agent_name, &parent, &child_id, &task_for_child, &state, &announce_flag).await;
        });
        let abort = handle.abort_handle();
        lock(&self.children).push(Child {
            id: id.clone(),
            parent_session: context.session_id.clone(),
            task,
            state: receiver,
            collected,
            cancelled: std::sync::atomic::AtomicBool::new(false),
            abort,
        });
        let queue = if queued { " (queued: the agent's sub-agent slots are busy)" } else { "" };
        Ok(format!(
            "started sub-agent {id}{queue}. Its result will be announced in this session when it ends; \
             `subagents` with action `wait` collects it now, `cancel` stops it."
        ))
    }

    pub(crate) fn list(&self, session: &str) -> String {
        let children = lock(&self.children);
        let lines: Vec<String> = children
            .iter()
            .filter(|child| child.parent_session == session)
            .map(|child| {
                let state = child.state.borrow().clone();
                let cancelled = child.cancelled.load(std::sync::atomic::Ordering::SeqCst);
                let shown = if !state.finished() && cancelled {
                    State::Cancelled.describe()
                } else {
                    state.describe()
                };
                format!("{} [{shown}] {}", child.id, child.task)
            })
            .collect();
        if lines.is_empty() { "no sub-agents in this session".into() } else { lines.join("\n") }
    }

    async fn wait(&self, session: &str, id: &str, timeout: Duration) -> Result<String, ToolError> {
        let (mut state, collected) = {
            let children = lock(&self.children);
            let child = children
                .iter()
                .find(|child| child.id == id && child.parent_session == session)
                .ok_or_else(|| ToolError::NotFound(format!("no sub-agent `{id}` in this session")))?;
            (child.state.clone(), child.collected.clone())
        };
        let finished = tokio::time::timeout(timeout, state.wait_for(State::finished))
            .await
            .map(|result| result.map(|state| state.describe()));
        match finished {
            Ok(Ok(described)) => {
                collected.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(format!("{id} {described}"))
            }
            Ok(Err(_)) => Ok(format!("{id} {}", State::Cancelled.describe())),
            Err(_) => Ok(format!("{id} is still {} after {}s", state.borrow().describe(), timeout.as_secs())),
        }
    }

    fn cancel(&self, session: &str, id: &str) -> Result<String, ToolError> {
        let children = lock(&self.children);
        let child = children
            .iter()
            .find(|child| child.id == id && child.parent_session == session)
            .ok_or_else(|| ToolError::NotFound(format!("no sub-agent `{id}` in this session")))?;
        if child.state.borrow().finished() {
            return Ok(format!("{id} had already ended: {}", child.state.borrow().describe()));
        }
        child.abort.abort();
        child.cancelled.store(true, std::sync::atomic::Ordering::SeqCst);
        child.collected.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(format!("cancelled {id}"))
    }
}

/// Appends the child's outcome to the parent session (as a message from outside the owner,
/// inside trust markers), under the parent session's lock.
async fn announce(
    agents: &Agents,
    agent: &str,
    parent: &str,
    id: &str,
    task: &str,
    state: &State,
    collected: &std::sync::atomic::AtomicBool,
) {
    let lock = agents.session_lock(parent);
    {
        let _guard = lock.lock().await;
        if !collected.load(std::sync::atomic::Ordering::SeqCst) {
            let boundary = clawdia_core::random::hex(8)
                .ok()
                .and_then(|fresh| agents.store.open(agent, parent, &fresh).ok())
                .map(|stored| stored.meta.boundary);
            let body = format!("task: {task}\n{}", state.describe());
            let text = match boundary {
                Some(boundary) => trust::wrap(&boundary, &format!("subagent:{id}"), &body),
                None => body,
            };
            let message = Message::user(format!("[sub-agent {id} finished]\n{text}"));
            if let Err(error) = agents.store.append(parent, &[message]) {
                tracing::warn!(%error, parent, id, "could not announce a sub-agent's result");
            }
        }
    }
    agents.release_session_lock(parent, lock);
}

/// Drops a child turn's stream (nobody watches it live).
struct Silent;

impl TurnEvents for Silent {
    fn event(&self, _event: TurnEvent) {}
}

/// `spawn_subagent {task}`.
pub struct SpawnTool {
    hub: Arc<Hub>,
    spec: ToolSpec,
}

/// `subagents {action, id?, timeout_seconds?}`.
pub struct ManageTool {
    hub: Arc<Hub>,
    spec: ToolSpec,
}

/// The two sub-agent tools (group `subagents`) over `hub`.
pub fn tools(hub: &Arc<Hub>) -> Vec<Arc<dyn Tool>> {
    let spawn = SpawnTool {
        hub: hub.clone(),
        spec: ToolSpec {
            name: SPAWN.into(),
            description: "Start a sub-agent on a self-contained task; it runs in the background with \
                          your tools (it cannot spawn others) and its result is announced in this \
                          session. Use for parallel work like summarising several documents."
                .into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {"task": {"type": "string", "description": "The complete task, with everything the sub-agent needs to know."}},
                "required": ["task"],
                "additionalProperties": false
            }),
        },
    };
    let manage = ManageTool {
        hub: hub.clone(),
        spec: ToolSpec {
            name: MANAGE.into(),
            description: "List this session's sub-agents, wait for one's result, or cancel one.".into(),
            parameters: serde_json::json!({
                "type": "object",
                "properties": {
                    "action": {"type": "string", "enum": ["list", "wait", "cancel"]},
                    "id": {"type": "string", "description": "The sub-agent id (wait, cancel)."},
                    "timeout_seconds": {"type": "integer", "minimum": 1, "maximum": 100}
                },
                "required": ["action"],
                "additionalProperties": false
            }),
        },
    };
    vec![Arc::new(spawn), Arc::new(manage)]
}

#[async_trait]
impl Tool for SpawnTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn group(&self) -> &str {
        GROUP
    }

    async fn call(&self, context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError> {
        let task = arguments["task"].as_str().map(str::trim).unwrap_or_default();
        if task.is_empty() {
            return Err(ToolError::InvalidArguments("`task` must be a non-empty string".into()));
        }
        self.hub.spawn(context, task.to_string())
    }
}

#[async_trait]
impl Tool for ManageTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn group(&self) -> &str {
        GROUP
    }

    async fn call(&self, context: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError> {
        let id = || {
            arguments["id"]
                .as_str()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| ToolError::InvalidArguments("`id` is required for wait and cancel".into()))
        };
        match arguments["action"].as_str() {
            Some("list") => Ok(self.hub.list(&context.session_id)),
            Some("wait") => {
                let seconds = arguments["timeout_seconds"].as_u64().unwrap_or(MAX_WAIT.as_secs());
                let timeout = Duration::from_secs(seconds.clamp(1, MAX_WAIT.as_secs()));
                self.hub.wait(&context.session_id, id()?, timeout).await
            }
            Some("cancel") => self.hub.cancel(&context.session_id, id()?),
            _ => Err(ToolError::InvalidArguments("`action` must be list, wait or cancel".into())),
        }
    }
}
