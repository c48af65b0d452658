//! The agent loop. `Agents` implements the gateway seam: it serializes turns per session, checks
//! the agent's budget before every model call, runs the model chain, dispatches tool calls
//! through one function that checks policy first, wraps every tool result in trust markers, and
//! stores only complete messages.
//!
//! Architecture invariant: this crate names no provider, database or HTTP type. Models, tools,
//! the session store and the audit sink arrive as `clawdia-core` trait objects.

mod approvals;
mod dispatch;
pub mod gate;
pub mod metrics;
mod ondemand;
pub mod policy;
pub mod prompt;
pub mod subagents;
pub mod trust;
mod turn;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use clawdia_core::{
    AgentInfo, ApprovalError, ApprovalStore, AuditSink, Decided, Decision, Gateway, ModelRef, Models,
    Notifier, SessionStore, SkillRouter, Tool, ToolSource, TurnError, TurnEvents, TurnOutcome, TurnRequest,
    Usage,
};

pub use metrics::Metrics;
pub use policy::ToolPolicy;
pub use prompt::PromptLimits;

/// Daily spend caps; `None` = unlimited. Days are UTC days.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budget {
    pub daily_tokens: Option<u64>,
    pub daily_usd: Option<f64>,
}

/// Everything the loop needs to know about one agent.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub name: String,
    /// Primary model first, then the fallbacks in order.
    pub chain: Vec<ModelRef>,
    pub workspace: PathBuf,
    pub policy: ToolPolicy,
    pub budget: Budget,
    pub prompt_limits: PromptLimits,
    pub max_tool_iterations: u32,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
    /// Whose turns may use the `elevated` group (`host_exec`): sender patterns (`cli`,
    /// `api:alice`, `cron:*`).
    pub elevated_senders: Vec<String>,
}

/// Prices a model call in USD.
pub type Pricer = Arc<dyn Fn(&ModelRef, &Usage) -> f64 + Send + Sync>;

struct Agent {
    spec: AgentSpec,
    /// Every tool registered for the agent, allowed or not (dispatch tells the two apart).
    tools: HashMap<String, Arc<dyn Tool>>,
    /// Run-time tool sources granted to this agent (MCP servers), asked at each turn's start.
    sources: Vec<Arc<dyn ToolSource>>,
    prompt: prompt::PromptCache,
    /// The names `offered_specs` gives, decided once when the agent is added (the policy does
    /// not change while the gateway runs): `agents()` is asked on every API turn.
    listed: Vec<String>,
}

impl Agent {
    /// The built-in tools the gate offers an ordinary turn of this agent (the owner at the
    /// CLI, no narrowing), on-demand ones included, sorted by name.
    fn offered_specs(&self) -> Vec<clawdia_core::ToolSpec> {
        let narrowing = gate::Narrowing::default();
        let gate = gate::Gate {
            agent: self,
            narrowing: &narrowing,
            origin: clawdia_core::TurnOrigin::Cli,
            sender: None,
        };
        let mut specs: Vec<_> = self
            .tools
            .values()
            .filter(|tool| gate.offers(&tool.spec().name, tool.group(), false))
            .map(|tool| tool.spec().clone())
            .collect();
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        specs
    }
}

/// The agents of one gateway and the services they share.
pub struct Agents {
    agents: HashMap<String, Agent>,
    models: Arc<dyn Models>,
    store: Arc<dyn SessionStore>,
    audit: Arc<dyn AuditSink>,
    pricer: Pricer,
    metrics: Arc<Metrics>,
    session_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Routes each turn's message to skills; `None`: no skills.
    skills: Option<Arc<dyn SkillRouter>>,
    /// Sub-agents: their slots, children and the tools each running turn was offered.
    hub: Arc<subagents::Hub>,
    /// Where calls the gate asks the owner about wait; `None`: such calls are refused.
    approvals: Option<Arc<dyn ApprovalStore>>,
    /// How long a request waits for the owner.
    approval_ttl: std::time::Duration,
    /// The owner's outbox (approval requests go there).
    notifier: Arc<dyn Notifier>,
}

impl Agents {
    pub fn new(
        models: Arc<dyn Models>,
        store: Arc<dyn SessionStore>,
        audit: Arc<dyn AuditSink>,
        pricer: Pricer,
    ) -> Agents {
        Agents {
            agents: HashMap::new(),
            models,
            store,
            audit,
            pricer,
            metrics: Arc::new(Metrics::default()),
            session_locks: Mutex::new(HashMap::new()),
            skills: None,
            hub: Arc::new(subagents::Hub::default()),
            approvals: None,
            approval_ttl: std::time::Duration::from_secs(86_400),
            notifier: Arc::new(clawdia_core::NoNotifier),
        }
    }

    /// Keeps approval requests in `store`, each living `ttl` unless decided.
    pub fn set_approvals(&mut self, store: Arc<dyn ApprovalStore>, ttl: std::time::Duration) {
        self.approvals = Some(store);
        self.approval_ttl = ttl;
    }

    /// Sends what the owner must know (approval requests) to `notifier`.
    pub fn set_notifier(&mut self, notifier: Arc<dyn Notifier>) {
        self.notifier = notifier;
    }

    /// Expires every pending approval request past its TTL and settles approved calls that never
    /// reported back, telling each session (the continuation turns' events go to `events`);
    /// returns how many requests it settled.
    pub async fn expire_approvals(&self, events: &dyn TurnEvents) -> usize {
        approvals::expire_due(self, events).await
    }

    /// The sub-agent tools (`spawn_subagent`, `subagents`; group `subagents`), to register with
    /// agents whose policy may allow them. They work once the agents are `shared`.
    pub fn subagent_tools(&self) -> Vec<Arc<dyn Tool>> {
        subagents::tools(&self.hub)
    }

    /// The agents behind an `Arc`, with sub-agents able to start turns.
    pub fn shared(self) -> Arc<Agents> {
        let agents = Arc::new(self);
        agents.hub.attach(Arc::downgrade(&agents));
        agents
    }

    /// Turns on skills: each turn's message is routed through `router`.
    pub fn set_skills(&mut self, router: Arc<dyn SkillRouter>) {
        self.skills = Some(router);
    }

    /// Registers an agent with the tools it could use; its policy decides which it may.
    pub fn add(&mut self, spec: AgentSpec, tools: Vec<Arc<dyn Tool>>) {
        let tools = tools.into_iter().map(|t| (t.spec().name.clone(), t)).collect();
        let mut agent = Agent {
            spec,
            tools,
            sources: Vec::new(),
            prompt: prompt::PromptCache::default(),
            listed: Vec::new(),
        };
        agent.listed = agent.offered_specs().into_iter().map(|spec| spec.name).collect();
        self.agents.insert(agent.spec.name.clone(), agent);
    }

    /// Grants `agent` the tools of `source` (e.g. an MCP server): they are listed at each turn's
    /// start and offered unless the agent's deny list names them or their group. Returns false
    /// when there is no such agent.
    pub fn add_tool_source(&mut self, agent: &str, source: Arc<dyn ToolSource>) -> bool {
        match self.agents.get_mut(agent) {
            Some(agent) => {
                agent.sources.push(source);
                true
            }
            None => false,
        }
    }

    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The system prompt `agent` would send in a session with `boundary` (for `doctor` and tests).
    pub fn system_prompt(&self, agent: &str, boundary: &str) -> Option<String> {
        let agent = self.agents.get(agent)?;
        Some(turn::build_system_prompt(agent, boundary, now_ms()))
    }

    /// The built-in tools `agent` is offered (its policy applied), as sent to the model (for
    /// `doctor`). Tools from a `ToolSource` (MCP servers) are listed at each turn's start and are
    /// not included.
    pub fn tool_specs(&self, agent: &str) -> Option<Vec<clawdia_core::ToolSpec>> {
        Some(self.agents.get(agent)?.offered_specs())
    }

    /// Locks session `id` for one turn; the map entry goes away with the last holder.
    fn session_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.session_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }

    fn release_session_lock(&self, id: &str, lock: Arc<tokio::sync::Mutex<()>>) {
        let mut locks = self.session_locks.lock().unwrap_or_else(|e| e.into_inner());
        // Two holders: the map and us. Nobody else is waiting, so the entry can go.
        if Arc::strong_count(&lock) == 2 {
            locks.remove(id);
        }
    }
}

#[async_trait]
impl Gateway for Agents {
    fn agents(&self) -> Vec<AgentInfo> {
        let mut list: Vec<AgentInfo> = self
            .agents
            .values()
            .map(|a| AgentInfo {
                name: a.spec.name.clone(),
                model: a.spec.chain[0].clone(),
                fallbacks: a.spec.chain[1..].to_vec(),
                tools: a.listed.clone(),
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    async fn run_turn(
        &self,
        request: TurnRequest,
        events: &dyn TurnEvents,
    ) -> Result<TurnOutcome, TurnError> {
        let agent =
            self.agents.get(&request.agent).ok_or_else(|| TurnError::UnknownAgent(request.agent.clone()))?;
        if request.message.trim().is_empty() {
            return Err(TurnError::Invalid("the message is empty".into()));
        }
        let session_id = match &request.session {
            Some(id) => {
                validate_session_id(id)?;
                id.clone()
            }
            None => clawdia_core::random::session_id()?,
        };
        Metrics::add(&self.metrics.turns, 1);
        let lock = self.session_lock(&session_id);
        let result = {
            let _guard = lock.lock().await;
            let mut forget = ForgetIfEmpty { store: &*self.store, session: &session_id, armed: true };
            let result = turn::run(self, agent, &session_id, request, events).await;
            forget.armed = result.is_err();
            result
        };
        self.release_session_lock(&session_id, lock);
        if result.is_err() {
            Metrics::add(&self.metrics.turn_errors, 1);
        }
        result
    }

    async fn decide(
        &self,
        id: &str,
        decision: Decision,
        events: &dyn TurnEvents,
    ) -> Result<Decided, ApprovalError> {
        approvals::decide(self, id, decision, events).await
    }

    fn approvals(
        &self,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<clawdia_core::Approval>, ApprovalError> {
        let store = self.approvals.as_ref().ok_or(ApprovalError::Unavailable)?;
        store.list(pending_only, limit).map_err(|e| ApprovalError::Store(e.to_string()))
    }
}

/// Deletes the turn's session when the turn failed (or was cancelled) before anything was
/// stored in it, so a failed first turn leaves no empty session behind. Runs under the
/// session's lock.
struct ForgetIfEmpty<'a> {
    store: &'a dyn SessionStore,
    session: &'a str,
    armed: bool,
}

impl Drop for ForgetIfEmpty<'_> {
    fn drop(&mut self) {
        if self.armed
            && let Err(error) = self.store.discard_if_empty(self.session)
        {
            tracing::warn!(session = self.session, "could not discard an empty session: {error}");
        }
    }
}

/// Session ids are caller-chosen (`X-Clawdia-Session`, the OpenAI `user` field): printable,
/// at most 128 characters.
fn validate_session_id(id: &str) -> Result<(), TurnError> {
    if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control()) {
        return Err(TurnError::Invalid("a session id must be 1 to 128 printable characters".into()));
    }
    Ok(())
}

pub(crate) use clawdia_core::time::now_ms;

#[cfg(test)]
mod tests;
