//! Integration tests of the scheduler: real `cron.db` files in temp folders, real processes
//! (`sh -c` scripts), a recording audit sink and a scripted in-process gateway. Outcomes are
//! asserted, never durations (timeouts are generous).

mod locks;
mod runs;
mod wedge;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clawdia_core::{
    AgentInfo, Alert, AuditEvent, AuditSink, Gateway, Notifier, TurnError, TurnEvent, TurnEvents,
    TurnOutcome, TurnRequest, Usage,
};
use clawdia_sched::{Context, CronDb, Holder, Settings};

/// Keeps every audit event (`.0`) and every alert for the owner (`.1`).
#[derive(Default)]
pub struct Audit(pub Mutex<Vec<AuditEvent>>, pub Mutex<Vec<Alert>>);

impl AuditSink for Audit {
    fn record(&self, event: AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Notifier for Audit {
    fn notify(&self, alert: Alert) {
        self.1.lock().unwrap().push(alert);
    }
}

impl Audit {
    pub fn kinds(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|e| e.kind.clone()).collect()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        self.1.lock().unwrap().clone()
    }
}

/// A gateway that answers each turn with `reply`, records the requests, and can hang.
pub struct FakeGateway {
    pub reply: String,
    pub hang: bool,
    pub requests: Mutex<Vec<TurnRequest>>,
}

impl FakeGateway {
    pub fn new(reply: &str) -> Arc<FakeGateway> {
        Arc::new(FakeGateway { reply: reply.into(), hang: false, requests: Mutex::new(Vec::new()) })
    }
}

#[async_trait]
impl Gateway for FakeGateway {
    fn agents(&self) -> Vec<AgentInfo> {
        Vec::new()
    }

    async fn run_turn(
        &self,
        request: TurnRequest,
        events: &dyn TurnEvents,
    ) -> Result<TurnOutcome, TurnError> {
        self.requests.lock().unwrap().push(request.clone());
        let session = request.session.clone().unwrap_or_else(|| "s-new".into());
        events.event(TurnEvent::Started { session: session.clone(), agent: request.agent.clone() });
        if self.hang {
            std::future::pending::<()>().await;
        }
        Ok(TurnOutcome {
            session_id: session,
            text: self.reply.clone(),
            usage: Usage { input_tokens: 100, output_tokens: 20, ..Usage::default() },
            cost_usd: 0.0125,
            model: None,
            attempts: Vec::new(),
            used_fallback: false,
            hit_max_tokens: false,
        })
    }
}

pub fn settings(home: &Path) -> Settings {
    Settings {
        home: home.to_path_buf(),
        workspace: home.join("workspaces/cron"),
        allow_host_jobs: true,
        sandbox: clawdia_sandbox::Choice::Auto,
        helper: home.join("no-helper"),
        hidden: Vec::new(),
        kill_grace: Duration::from_millis(300),
        catch_up_grace: Duration::from_secs(3600),
        failure_hook: None,
        history_days: 90,
        prune_days: 14,
        secret_rotation: Vec::new(),
        drain: Duration::from_secs(5),
    }
}

pub fn context(home: &Path, gateway: Option<Arc<FakeGateway>>, audit: Arc<Audit>) -> Arc<Context> {
    context_with(home, gateway, audit, |_| {})
}

pub fn context_with(
    home: &Path,
    gateway: Option<Arc<FakeGateway>>,
    audit: Arc<Audit>,
    edit: impl FnOnce(&mut Settings),
) -> Arc<Context> {
    let mut settings = settings(home);
    edit(&mut settings);
    Arc::new(Context {
        db: Arc::new(CronDb::open(&home.join("state")).unwrap()),
        audit: audit.clone(),
        notifier: audit,
        gateway: gateway.map(|g| g as Arc<dyn Gateway>),
        housekeeping: None,
        settings,
        holder: Holder::me(),
    })
}
