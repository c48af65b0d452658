//! The gate's "ask the owner" path: a call in `tools.ask` is filed, not run; the owner's
//! decision runs the stored call once (or refuses it) and the agent continues the session.

use std::sync::atomic::{AtomicUsize, Ordering};

use clawdia_core::{
    Alert, Approval, ApprovalError, ApprovalStatus, ApprovalStore, Decision, Notifier, Transition,
};

use super::*;

#[derive(Default)]
struct MemoryApprovals(Mutex<Vec<Approval>>);

impl ApprovalStore for MemoryApprovals {
    fn create(&self, approval: &Approval) -> Result<(), StoreError> {
        self.0.lock().unwrap().push(approval.clone());
        Ok(())
    }
    fn get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        Ok(self.0.lock().unwrap().iter().find(|a| a.id == id).cloned())
    }
    fn list(&self, pending_only: bool, _limit: usize) -> Result<Vec<Approval>, StoreError> {
        let all = self.0.lock().unwrap();
        Ok(all.iter().filter(|a| !pending_only || a.status == ApprovalStatus::Pending).cloned().collect())
    }
    fn transition(&self, change: Transition<'_>) -> Result<bool, StoreError> {
        let mut all = self.0.lock().unwrap();
        let Some(found) = all.iter_mut().find(|a| a.id == change.id && a.status == change.from) else {
            return Ok(false);
        };
        found.status = change.to;
        found.decided_at.get_or_insert(change.at);
        if let Some(note) = change.note {
            found.note = Some(note.into());
        }
        if let Some(result) = change.result {
            found.result = Some(result.into());
        }
        Ok(true)
    }
    fn stranded(&self, before: i64) -> Result<Vec<Approval>, StoreError> {
        let all = self.0.lock().unwrap();
        Ok(all
            .iter()
            .filter(|a| a.status == ApprovalStatus::Approved && a.decided_at.is_some_and(|at| at <= before))
            .cloned()
            .collect())
    }
    fn due_to_expire(&self, now: i64) -> Result<Vec<Approval>, StoreError> {
        let all = self.0.lock().unwrap();
        Ok(all
            .iter()
            .filter(|a| a.status == ApprovalStatus::Pending && a.expires_at <= now)
            .cloned()
            .collect())
    }
}

#[derive(Default)]
struct Outbox(Mutex<Vec<Alert>>);

impl Notifier for Outbox {
    fn notify(&self, alert: Alert) {
        self.0.lock().unwrap().push(alert);
    }
}

/// Counts its runs and echoes its arguments.
struct Counted(ToolSpec, AtomicUsize);

#[async_trait]
impl Tool for Counted {
    fn spec(&self) -> &ToolSpec {
        &self.0
    }
    fn group(&self) -> &str {
        "exec"
    }
    async fn call(&self, _c: &ToolContext, arguments: serde_json::Value) -> Result<String, ToolError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        Ok(format!("ran {arguments}"))
    }
}

struct Asking {
    h: Harness,
    approvals: Arc<MemoryApprovals>,
    outbox: Arc<Outbox>,
    runs: Arc<Counted>,
}

/// `main` may use `echo` freely and `run` (group `exec`) only with the owner's approval.
fn asking(ttl: Duration) -> Asking {
    let mut h = harness();
    let runs = Arc::new(Counted(
        ToolSpec {
            name: "run".into(),
            description: "run".into(),
            parameters: serde_json::json!({"type": "object"}),
        },
        AtomicUsize::new(0),
    ));
    h.agents.add(
        main_spec(
            h.dir.path(),
            ToolPolicy {
                allow: vec!["test".into(), "exec".into()],
                deny: Vec::new(),
                ask: vec!["exec".into()],
            },
            Vec::new(),
        ),
        vec![echo("echo", "test"), runs.clone()],
    );
    let approvals = Arc::new(MemoryApprovals::default());
    let outbox = Arc::new(Outbox::default());
    h.agents.set_approvals(approvals.clone(), ttl);
    h.agents.set_notifier(outbox.clone());
    Asking { h, approvals, outbox, runs }
}

fn last_user_text(request: &ChatRequest) -> String {
    request
        .messages
        .iter()
        .rev()
        .find_map(|m| match m {
            clawdia_core::Message::User { .. } => Some(serde_json::to_string(m).unwrap()),
            _ => None,
        })
        .unwrap()
}

/// The model asks for `run` (needs approval) and `echo` (allowed) in one round.
async fn ask_once(a: &Asking) -> (TurnOutcome, String, Collect) {
    a.h.models.push(tool_reply(vec![call("c1", "run", r#"{"command":"ls /"}"#), call("c2", "echo", "{}")]));
    let events = Collect::default();
    let outcome = a.h.agents.run_turn(request(Some("s1"), "list the root"), &events).await.unwrap();
    let id = a.approvals.0.lock().unwrap()[0].id.clone();
    (outcome, id, events)
}

#[tokio::test]
async fn an_ask_call_is_filed_not_run_and_the_owner_is_alerted() {
    let a = asking(Duration::from_secs(3600));
    let (outcome, id, events) = ask_once(&a).await;
    assert_eq!(a.runs.1.load(Ordering::SeqCst), 0, "the call waits");
    // The turn ended after the round: one model call, a note naming the request.
    assert_eq!(a.h.models.requests.lock().unwrap().len(), 1);
    assert!(
        outcome.text.contains("Waiting for the owner's approval") && outcome.text.contains(&id),
        "{}",
        outcome.text
    );
    let results = results_of(&a.h, "s1");
    assert!(results[0].contains("not run yet") && results[0].contains(&id), "{}", results[0]);
    // Positive control: the allowed call of the same round ran.
    assert!(results[1].contains("echo {}"), "{}", results[1]);
    let stored = a.approvals.0.lock().unwrap()[0].clone();
    assert_eq!(
        (
            stored.status,
            stored.tool.as_str(),
            stored.arguments.as_str(),
            stored.call_id.as_str(),
            stored.session.as_str()
        ),
        (ApprovalStatus::Pending, "run", r#"{"command":"ls /"}"#, "c1", "s1")
    );
    let alerts = a.outbox.0.lock().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        (alerts[0].kind.as_str(), alerts[0].approval.as_deref()),
        ("approval_request", Some(id.as_str()))
    );
    assert!(
        alerts[0].body.contains("ls /") && alerts[0].body.contains(&format!("clawdia broker approve {id}"))
    );
    assert!(
        events.0.lock().unwrap().iter().any(
            |e| matches!(e, TurnEvent::ApprovalRequested { id: i, tool, .. } if *i == id && tool == "run")
        )
    );
    let kinds = a.h.audit.kinds();
    assert!(
        kinds.contains(&"approval_requested".to_string()) && kinds.contains(&"tool_allowed".to_string()),
        "{kinds:?}"
    );
    // The model is offered the asked tool: what waits is the call.
    let offered: Vec<String> =
        a.h.models.requests.lock().unwrap()[0].tools.iter().map(|t| t.name.clone()).collect();
    assert_eq!(offered, ["echo", "run"]);
}

#[tokio::test]
async fn approval_runs_the_stored_call_once_and_the_agent_continues() {
    let a = asking(Duration::from_secs(3600));
    let (_, id, _) = ask_once(&a).await;
    a.h.models.push(Ok(clawdia_core::Message::assistant("The root holds bin and etc.")));
    let events = Collect::default();
    let decision = Decision { approve: true, note: Some("go ahead".into()) };
    let decided = a.h.agents.decide(&id, decision.clone(), &events).await.unwrap();
    assert_eq!(a.runs.1.load(Ordering::SeqCst), 1);
    assert_eq!(decided.approval.status, ApprovalStatus::Done);
    assert_eq!(decided.approval.note.as_deref(), Some("go ahead"));
    assert!(decided.approval.result.as_deref().unwrap().contains(r#"ran {"command":"ls /"}"#));
    let turn = decided.turn.unwrap().unwrap();
    assert_eq!(turn.text, "The root holds bin and etc.");
    // The continuation told the model what ran, its result inside trust markers.
    let told = last_user_text(&a.h.models.requests.lock().unwrap()[1]);
    assert!(
        told.contains("approved your `run` call") && told.contains("ran {") && told.contains("<<<untrusted"),
        "{told}"
    );
    // Decided once: neither a replay nor a late deny applies, and nothing runs again.
    for again in [decision, Decision { approve: false, note: None }] {
        let error = a.h.agents.decide(&id, again, &events).await.unwrap_err();
        assert!(matches!(error, ApprovalError::AlreadyDecided { status: "done", .. }), "{error}");
    }
    assert_eq!(a.runs.1.load(Ordering::SeqCst), 1);
    assert!(matches!(
        a.h.agents.decide("nope", Decision { approve: true, note: None }, &events).await,
        Err(ApprovalError::NotFound(_))
    ));
}

#[tokio::test]
async fn an_approval_cannot_be_applied_to_a_different_call() {
    let a = asking(Duration::from_secs(3600));
    let (_, id, _) = ask_once(&a).await;
    // Someone rewrites the stored arguments: they no longer match the session's call.
    a.approvals.0.lock().unwrap()[0].arguments = r#"{"command":"rm -rf /"}"#.into();
    let decided =
        a.h.agents.decide(&id, Decision { approve: true, note: None }, &Collect::default()).await.unwrap();
    assert_eq!(a.runs.1.load(Ordering::SeqCst), 0, "nothing ran");
    assert_eq!(decided.approval.status, ApprovalStatus::Failed);
    assert!(decided.approval.result.as_deref().unwrap().contains("with the approved arguments"));
    assert!(decided.turn.is_none());
    assert!(a.h.audit.kinds().contains(&"approval_failed".to_string()));
}

#[tokio::test]
async fn a_denied_call_never_runs_and_the_model_is_told() {
    let a = asking(Duration::from_secs(3600));
    let (_, id, _) = ask_once(&a).await;
    a.h.models.push(Ok(clawdia_core::Message::assistant("Understood, I will not list it.")));
    let decided =
        a.h.agents
            .decide(&id, Decision { approve: false, note: Some("not today".into()) }, &Collect::default())
            .await
            .unwrap();
    assert_eq!(a.runs.1.load(Ordering::SeqCst), 0);
    assert_eq!(decided.approval.status, ApprovalStatus::Denied);
    assert_eq!(decided.turn.unwrap().unwrap().text, "Understood, I will not list it.");
    let told = last_user_text(&a.h.models.requests.lock().unwrap()[1]);
    assert!(told.contains("denied your `run` call") && told.contains("not today"), "{told}");
}

#[tokio::test]
async fn an_expired_request_is_refused_and_the_model_is_told() {
    let a = asking(Duration::ZERO);
    let (_, id, _) = ask_once(&a).await;
    a.h.models.push(Ok(clawdia_core::Message::assistant("It expired.")));
    let error =
        a.h.agents
            .decide(&id, Decision { approve: true, note: None }, &Collect::default())
            .await
            .unwrap_err();
    assert!(matches!(error, ApprovalError::Expired(_)), "{error}");
    assert_eq!(a.runs.1.load(Ordering::SeqCst), 0);
    assert_eq!(a.approvals.0.lock().unwrap()[0].status, ApprovalStatus::Expired);
    let told = last_user_text(&a.h.models.requests.lock().unwrap()[1]);
    assert!(told.contains("expired"), "{told}");
    // The sweep finds nothing left to expire; a second request expires through it.
    assert_eq!(a.h.agents.expire_approvals(&Collect::default()).await, 0);
    a.h.models.push(tool_reply(vec![call("c9", "run", r#"{"command":"id"}"#)]));
    a.h.agents.run_turn(request(Some("s2"), "who am i"), &Collect::default()).await.unwrap();
    assert_eq!(a.h.agents.expire_approvals(&Collect::default()).await, 1);
    assert_eq!(a.runs.1.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_sub_agent_cannot_ask_and_the_gate_says_why() {
    let a = asking(Duration::from_secs(3600));
    a.h.models.push(tool_reply(vec![call("c1", "run", "{}")]));
    a.h.models.push(Ok(clawdia_core::Message::assistant("could not")));
    let child = TurnRequest { origin: TurnOrigin::Subagent, ..request(Some("child"), "run it") };
    a.h.agents.run_turn(child, &Collect::default()).await.unwrap();
    assert_eq!(a.runs.1.load(Ordering::SeqCst), 0);
    assert!(a.approvals.0.lock().unwrap().is_empty());
    let results = results_of(&a.h, "child");
    assert!(results[0].contains("which a sub-agent cannot ask for"), "{}", results[0]);
}

#[tokio::test]
async fn without_an_approval_store_an_ask_call_is_refused() {
    let a = asking(Duration::from_secs(3600));
    let mut h = harness();
    // Same agent, no store set.
    h.agents.add(
        main_spec(
            h.dir.path(),
            ToolPolicy { allow: vec!["exec".into()], deny: Vec::new(), ask: vec!["run".into()] },
            Vec::new(),
        ),
        vec![a.runs.clone()],
    );
    h.models.push(tool_reply(vec![call("c1", "run", "{}")]));
    h.models.push(Ok(clawdia_core::Message::assistant("ok")));
    h.agents.run_turn(request(Some("s1"), "go"), &Collect::default()).await.unwrap();
    assert_eq!(a.runs.1.load(Ordering::SeqCst), 0);
    assert!(results_of(&h, "s1")[0].contains("keeps no approval requests"));
}

#[tokio::test]
async fn an_approved_call_cut_off_by_a_stop_is_marked_failed_never_rerun_and_the_agent_told() {
    let a = asking(Duration::from_secs(3600));
    let (_, id, _) = ask_once(&a).await;
    // The owner approved, then the gateway died before the call reported back.
    {
        let mut all = a.approvals.0.lock().unwrap();
        all[0].status = ApprovalStatus::Approved;
        all[0].decided_at = Some(clawdia_core::time::now_ms() - 10 * 60_000);
    }
    a.h.models.push(Ok(clawdia_core::Message::assistant("I will check whether it ran.")));
    assert_eq!(a.h.agents.expire_approvals(&Collect::default()).await, 1);
    assert_eq!(a.runs.1.load(Ordering::SeqCst), 0, "never run again");
    let stored = a.approvals.0.lock().unwrap()[0].clone();
    assert_eq!(stored.status, ApprovalStatus::Failed);
    assert!(stored.result.as_deref().unwrap().contains("did not report back"), "{stored:?}");
    let told = last_user_text(&a.h.models.requests.lock().unwrap()[1]);
    assert!(told.contains("did not report back") && told.contains(&id), "{told}");
    // Positive control: one approved just now is left alone (its call may still be running).
    a.approvals.0.lock().unwrap()[0].status = ApprovalStatus::Approved;
    a.approvals.0.lock().unwrap()[0].decided_at = Some(clawdia_core::time::now_ms());
    assert_eq!(a.h.agents.expire_approvals(&Collect::default()).await, 0);
}
