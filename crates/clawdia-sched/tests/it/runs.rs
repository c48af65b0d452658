//! Runs: exec and agent jobs end to end through `run_job` and the scheduler loop, with the
//! history in a real cron.db; failure alerts; the heartbeat; catch-up; one run at a time.

use std::sync::Arc;
use std::time::Duration;

use clawdia_core::{Severity, TurnOrigin};
use clawdia_sched::job::{Action, CatchUp, Heartbeat, Job, Source};
use clawdia_sched::{CronDb, Schedule, Status, Trigger, run_job, scheduler};

use crate::{Audit, FakeGateway, context, context_with};

fn job(name: &str, action: Action) -> Job {
    Job {
        name: name.into(),
        schedule: Schedule::every("1h").unwrap(),
        action,
        timeout_seconds: 30,
        tools_allow: None,
        failure_alert: None,
        enabled: true,
        catch_up: CatchUp::Once,
    }
}

fn host(command: &str) -> Action {
    Action::Exec { command: command.into(), host: true, egress: Vec::new() }
}

fn agent(prompt: &str) -> Action {
    Action::AgentTurn { agent: "main".into(), prompt: prompt.into(), session: None, heartbeat: None }
}

/// Polls `condition` every 20 ms for up to 30 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[tokio::test]
async fn exec_runs_are_recorded_and_survive_a_reopen() {
    let home = tempfile::tempdir().unwrap();
    let context = context(home.path(), None, Arc::new(Audit::default()));
    let ok = run_job(&context, &job("hello", host("echo hello; pwd")), Trigger::Manual, None).await;
    assert_eq!((ok.status, ok.exit_code), (Status::Ok, Some(0)), "{ok:?}");
    assert!(ok.output.contains("hello") && ok.output.contains("workspaces/cron"), "{}", ok.output);
    let bad = run_job(&context, &job("hello", host("echo broken >&2; exit 3")), Trigger::Manual, None).await;
    assert_eq!((bad.status, bad.exit_code), (Status::Failed, Some(3)));
    drop(context);
    let db = CronDb::open(&home.path().join("state")).unwrap();
    let history = db.history("hello", 10).unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!((history[0].status, history[0].exit_code), (Status::Failed, Some(3)));
    assert!(history[0].output_tail.contains("broken"));
    assert!(history[0].ended_ms.unwrap() >= history[0].started_ms);
    assert_eq!((history[1].status, history[1].trigger.as_str()), (Status::Ok, "manual"));
}

#[tokio::test]
async fn host_jobs_need_the_owners_permission() {
    let home = tempfile::tempdir().unwrap();
    let context = context_with(home.path(), None, Arc::new(Audit::default()), |s| s.allow_host_jobs = false);
    let report = run_job(&context, &job("h", host("echo should-not-run")), Trigger::Manual, None).await;
    assert_eq!(report.status, Status::Failed);
    assert!(
        report.output.contains("allow_host_jobs") && !report.output.contains("should-not-run"),
        "{}",
        report.output
    );
}

#[tokio::test]
async fn consecutive_failures_alert_at_high_severity_and_run_the_hook() {
    let home = tempfile::tempdir().unwrap();
    let audit = Arc::new(Audit::default());
    let hook_out = home.path().join("alert.txt");
    let hook = format!("echo \"$CLAWDIA_JOB $CLAWDIA_FAILURES $CLAWDIA_OUTPUT\" >> {}", hook_out.display());
    let context = context_with(home.path(), None, audit.clone(), |s| s.failure_hook = Some(hook));
    let mut failing = job("flaky", host("echo disk full; exit 1"));
    failing.failure_alert = Some(2);
    run_job(&context, &failing, Trigger::Manual, None).await;
    assert!(!audit.kinds().contains(&"job_failing".to_string()), "one failure is not yet an alert");
    run_job(&context, &failing, Trigger::Manual, None).await;
    let events = audit.0.lock().unwrap().clone();
    let alert = events.iter().find(|e| e.kind == "job_failing").expect("an alert after 2 failures");
    assert!(
        alert.severity >= Severity::HIGH
            && alert.detail.contains("flaky")
            && alert.detail.contains("disk full")
    );
    assert_eq!(std::fs::read_to_string(&hook_out).unwrap().trim(), "flaky 2 disk full");
    // The owner gets one alert for the streak (none for the first failure).
    let alerts = audit.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].kind.as_str(), alerts[0].severity), ("job_failing", Severity::HIGH));
    assert_eq!(alerts[0].title, "Job `flaky` failed 2 times in a row");
    assert!(alerts[0].body.contains("disk full"), "{}", alerts[0].body);
    // A success resets the streak.
    run_job(&context, &job("flaky", host("true")), Trigger::Manual, None).await;
    assert_eq!(context.db.job_streak("flaky").unwrap(), 0);
}

#[tokio::test]
async fn agent_turns_go_through_the_gateway_with_narrowed_tools_and_record_cost() {
    let home = tempfile::tempdir().unwrap();
    let gateway = FakeGateway::new("Summary: all quiet.");
    let context = context(home.path(), Some(gateway.clone()), Arc::new(Audit::default()));
    let mut turn = job("digest", agent("Summarize my inbox"));
    turn.tools_allow = Some(vec!["read".into(), "web".into()]);
    let report = run_job(&context, &turn, Trigger::Manual, None).await;
    assert_eq!(report.status, Status::Ok, "{report:?}");
    assert_eq!(report.output, "Summary: all quiet.");
    let request = gateway.requests.lock().unwrap()[0].clone();
    assert_eq!(request.tools_allow, Some(vec!["read".to_string(), "web".to_string()]));
    assert_eq!(
        (request.origin, request.context.is_light(), request.message.as_str()),
        (TurnOrigin::Scheduler, false, "Summarize my inbox")
    );
    let run = &context.db.history("digest", 1).unwrap()[0];
    assert_eq!((run.tokens, run.cost_usd, run.session.as_deref()), (120, 0.0125, Some("s-new")));
}

#[tokio::test]
async fn a_hanging_turn_is_cut_at_the_timeout() {
    let home = tempfile::tempdir().unwrap();
    let gateway = Arc::new(FakeGateway { reply: String::new(), hang: true, requests: Default::default() });
    let context = context(home.path(), Some(gateway), Arc::new(Audit::default()));
    let mut turn = job("stuck", agent("think forever"));
    turn.timeout_seconds = 1;
    let report = run_job(&context, &turn, Trigger::Manual, None).await;
    assert_eq!(report.status, Status::Timeout);
    assert_eq!(context.db.history("stuck", 1).unwrap()[0].session.as_deref(), Some("s-new"));
}

fn heartbeat(tokens: Option<u64>, hours: Option<(u16, u16)>) -> Job {
    let mut beat = job(
        "heartbeat.main",
        Action::AgentTurn {
            agent: "main".into(),
            prompt: "anything?".into(),
            session: Some("main".into()),
            heartbeat: Some(Heartbeat {
                active_hours: hours,
                tz: "UTC".into(),
                daily_tokens: tokens,
                daily_usd: None,
                ok_token: "HEARTBEAT_OK".into(),
            }),
        },
    );
    beat.catch_up = CatchUp::Skip;
    beat
}

#[tokio::test]
async fn the_heartbeat_stays_silent_on_its_token_and_speaks_otherwise() {
    let home = tempfile::tempdir().unwrap();
    let audit = Arc::new(Audit::default());
    let quiet = FakeGateway::new("HEARTBEAT_OK");
    let context = context(home.path(), Some(quiet.clone()), audit.clone());
    let report =
        run_job(&context, &heartbeat(None, None), Trigger::Schedule, Some(clawdia_sched::now_ms())).await;
    assert_eq!(report.status, Status::Ok);
    assert!(!audit.kinds().contains(&"heartbeat_message".to_string()), "HEARTBEAT_OK is not delivered");
    assert!(audit.alerts().is_empty(), "HEARTBEAT_OK is no alert: {:?}", audit.alerts());
    let request = quiet.requests.lock().unwrap()[0].clone();
    assert!(
        request.context == clawdia_core::TurnContext::Heartbeat && request.session.as_deref() == Some("main")
    );

    let home = tempfile::tempdir().unwrap();
    let audit = Arc::new(Audit::default());
    let context =
        crate::context(home.path(), Some(FakeGateway::new("Your 3pm meeting moved to 4pm.")), audit.clone());
    run_job(&context, &heartbeat(None, None), Trigger::Schedule, Some(clawdia_sched::now_ms())).await;
    let events = audit.0.lock().unwrap().clone();
    let message = events.iter().find(|e| e.kind == "heartbeat_message").expect("delivered");
    assert!(message.detail.contains("moved to 4pm"));
    let alerts = audit.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].kind.as_str(), alerts[0].agent.as_deref()), ("heartbeat", Some("main")));
    assert_eq!(alerts[0].body, "Your 3pm meeting moved to 4pm.");
}

#[tokio::test]
async fn the_heartbeat_keeps_to_its_hours_and_its_own_budget() {
    let home = tempfile::tempdir().unwrap();
    let gateway = FakeGateway::new("HEARTBEAT_OK");
    let context = context(home.path(), Some(gateway.clone()), Arc::new(Audit::default()));
    let now = clawdia_sched::now_ms();
    // A one-minute window that is not now.
    let minute = ((now / 60_000) % 1440) as u16;
    let closed = ((minute + 600) % 1440, (minute + 601) % 1440);
    let report = run_job(&context, &heartbeat(None, Some(closed)), Trigger::Schedule, Some(now)).await;
    assert_eq!(report.status, Status::Skipped);
    assert!(report.output.contains("outside active hours"));
    // 100 tokens a day: the first beat (120 tokens) runs, the second is skipped.
    let first = run_job(&context, &heartbeat(Some(100), None), Trigger::Schedule, Some(now)).await;
    assert_eq!(first.status, Status::Ok);
    let second = run_job(&context, &heartbeat(Some(100), None), Trigger::Schedule, Some(now)).await;
    assert_eq!(second.status, Status::Skipped);
    assert!(second.output.contains("heartbeat budget used"), "{}", second.output);
    assert_eq!(gateway.requests.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_of_a_job_at_a_time() {
    let home = tempfile::tempdir().unwrap();
    let context = context(home.path(), None, Arc::new(Audit::default()));
    let slow = job("slow", host("touch started; sleep 2"));
    let first = {
        let context = context.clone();
        let slow = slow.clone();
        tokio::spawn(async move { run_job(&context, &slow, Trigger::Manual, None).await })
    };
    let started = home.path().join("workspaces/cron/started");
    eventually("the first run started", || started.exists()).await;
    let second = run_job(&context, &slow, Trigger::Manual, None).await;
    assert_eq!(second.status, Status::Skipped);
    assert!(second.output.contains("previous run is still going"), "{}", second.output);
    assert_eq!(first.await.unwrap().status, Status::Ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_fires_jobs_and_picks_up_jobs_added_meanwhile() {
    let home = tempfile::tempdir().unwrap();
    let context = context(home.path(), None, Arc::new(Audit::default()));
    let mut ticking = job("tick", host("echo tick"));
    ticking.schedule = Schedule::every("300ms").unwrap();
    context.db.add_job(&ticking, clawdia_sched::now_ms()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let loop_task = tokio::spawn(scheduler::run(context.clone(), async move {
        let _ = stopped.await;
    }));
    let db = context.db.clone();
    eventually("three scheduled runs", || {
        db.history("tick", 10)
            .unwrap()
            .iter()
            .filter(|r| r.status == Status::Ok && r.trigger == "schedule")
            .count()
            >= 3
    })
    .await;
    // Another process (the CLI) adds a job: the loop picks it up.
    let other = CronDb::open(&home.path().join("state")).unwrap();
    let mut late = job("late", host("echo late"));
    late.schedule = Schedule::every("300ms").unwrap();
    other.add_job(&late, clawdia_sched::now_ms()).unwrap();
    eventually("the added job ran", || !db.history("late", 1).unwrap().is_empty()).await;
    other.remove_job("late").unwrap();
    let _ = stop.send(());
    loop_task.await.unwrap().unwrap();
    let runs = db.history("tick", 100).unwrap();
    assert!(runs.iter().all(|r| r.due_ms.is_some_and(|due| r.started_ms >= due)), "never early");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_runs_are_caught_up_once_within_the_grace_window_or_skipped() {
    let home = tempfile::tempdir().unwrap();
    let context = context(home.path(), None, Arc::new(Audit::default()));
    let now = clawdia_sched::now_ms();
    let once = job("once", host("echo caught up"));
    let mut skip = job("skipper", host("echo should not run"));
    skip.catch_up = CatchUp::Skip;
    let mut stale = job("stale", host("echo too old"));
    stale.schedule = Schedule::every("7d").unwrap(); // due 3 days ago, next in 4
    // Created ten days ago (an `every` schedule is anchored at its creation).
    for j in [&once, &skip, &stale] {
        context.db.add_job(j, now - 10 * 86_400_000).unwrap();
    }
    // The gateway was down: each was due in the past.
    context.db.set_next_due("once", Some(now - 60_000)).unwrap();
    context.db.set_next_due("skipper", Some(now - 60_000)).unwrap();
    context.db.set_next_due("stale", Some(now - 3 * 86_400_000)).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let loop_task = tokio::spawn(scheduler::run(context.clone(), async move {
        let _ = stopped.await;
    }));
    let db = context.db.clone();
    eventually("the catch-up run", || db.history("once", 5).unwrap().iter().any(|r| r.status == Status::Ok))
        .await;
    eventually("the skips", || {
        !db.history("skipper", 5).unwrap().is_empty() && !db.history("stale", 5).unwrap().is_empty()
    })
    .await;
    let _ = stop.send(());
    loop_task.await.unwrap().unwrap();
    let once_runs = db.history("once", 5).unwrap();
    assert_eq!(once_runs.len(), 1);
    assert_eq!(once_runs[0].trigger, "catch_up");
    let skipped = &db.history("skipper", 5).unwrap()[0];
    assert_eq!(skipped.status, Status::Skipped);
    assert!(skipped.output_tail.contains("catch_up = skip"));
    let stale_run = &db.history("stale", 5).unwrap()[0];
    assert_eq!(stale_run.status, Status::Skipped);
    assert!(stale_run.output_tail.contains("grace"), "{}", stale_run.output_tail);
    // Next due times are in the future again.
    for stored in db.jobs().unwrap() {
        assert!(stored.next_due_ms.unwrap() > now, "{}", stored.job.name);
    }
}

#[test]
fn config_jobs_are_synced_and_protected() {
    let home = tempfile::tempdir().unwrap();
    let db = CronDb::open(home.path()).unwrap();
    let a = job("from-config", host("true"));
    db.sync_config_jobs(std::slice::from_ref(&a), 1).unwrap();
    db.add_job(&job("from-cli", host("true")), 2).unwrap();
    let jobs = db.jobs().unwrap();
    assert_eq!(
        jobs.iter().map(|j| (j.job.name.as_str(), j.source)).collect::<Vec<_>>(),
        [("from-cli", Source::Cli), ("from-config", Source::Config)]
    );
    assert!(db.remove_job("from-config").unwrap_err().to_string().contains("clawdia.toml"));
    assert!(db.add_job(&a, 3).unwrap_err().to_string().contains("already exists"));
    // Dropped from the config: gone; CLI jobs stay.
    db.sync_config_jobs(&[], 4).unwrap();
    assert_eq!(db.jobs().unwrap().len(), 1);
    db.remove_job("from-cli").unwrap();
    assert!(db.remove_job("from-cli").is_err());
}

#[test]
fn the_owner_pauses_and_resumes_a_job_across_config_syncs() {
    let home = tempfile::tempdir().unwrap();
    let db = CronDb::open(home.path()).unwrap();
    let a = job("from-config", host("true"));
    db.sync_config_jobs(std::slice::from_ref(&a), 1).unwrap();
    let version = db.jobs_version().unwrap();
    db.set_enabled("from-config", false).unwrap();
    assert!(db.jobs_version().unwrap() > version, "the scheduler must reload");
    assert!(!db.job("from-config").unwrap().job.enabled);
    // The config is synced again at the next start: the pause holds.
    db.sync_config_jobs(std::slice::from_ref(&a), 2).unwrap();
    assert!(!db.job("from-config").unwrap().job.enabled);
    db.set_enabled("from-config", true).unwrap();
    assert!(db.job("from-config").unwrap().job.enabled);
    // A job its definition disables cannot be resumed from here; unknown jobs are named.
    let off = Job { enabled: false, ..job("off-in-config", host("true")) };
    db.sync_config_jobs(&[a, off], 3).unwrap();
    let refused = db.set_enabled("off-in-config", true).unwrap_err().to_string();
    assert!(refused.contains("enabled = false"), "{refused}");
    assert!(db.set_enabled("nope", false).is_err());
}

#[tokio::test]
async fn maintenance_reports_and_due_secrets_reach_the_owner_and_a_failed_task_alerts_instead() {
    use clawdia_sched::job::Task;
    let home = tempfile::tempdir().unwrap();
    let audit = Arc::new(Audit::default());
    let context = context_with(home.path(), None, audit.clone(), |settings| {
        settings.secret_rotation = vec![clawdia_config::SecretRotation {
            key: "providers.zai.api_key".into(),
            reference: "env ZAI_API_KEY".into(),
            rotated_at: "2020-01-01".into(),
            rotated_at_ms: 1_577_836_800_000,
            every_days: 90,
        }];
    });
    let weekly = job("maintenance.weekly-prune", Action::Maintenance { task: Task::WeeklyPrune });
    assert_eq!(run_job(&context, &weekly, Trigger::Manual, None).await.status, Status::Ok);
    let alerts = audit.alerts();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].kind.as_str(), alerts[0].severity), ("maintenance_report", Severity::INFO));
    assert_eq!(alerts[0].title, "Weekly prune");
    assert!(alerts[0].body.contains("run history older than 90 days"), "{}", alerts[0].body);

    let monthly = job("maintenance.monthly-optimize", Action::Maintenance { task: Task::MonthlyOptimize });
    assert_eq!(run_job(&context, &monthly, Trigger::Manual, None).await.status, Status::Ok);
    let alerts = audit.alerts();
    let kinds: Vec<&str> = alerts.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["maintenance_report", "secret_rotation_due", "maintenance_report"]);
    assert_eq!(alerts[1].title, "1 secret(s) due for rotation");
    assert!(alerts[1].body.starts_with("providers.zai.api_key (env ZAI_API_KEY): rotated 2020-01-01"));
    assert_eq!(alerts[2].title, "Monthly maintenance");

    // A task that fails sends no report; its failure alert goes out instead.
    let mut dream = job("brain.dream", Action::Maintenance { task: Task::Dream });
    dream.failure_alert = Some(1);
    assert_eq!(run_job(&context, &dream, Trigger::Manual, None).await.status, Status::Failed);
    let alerts = audit.alerts();
    assert_eq!(alerts.len(), 4, "{alerts:?}");
    assert_eq!(alerts[3].kind, "job_failing");
    assert!(alerts[3].body.contains("not available here"), "{}", alerts[3].body);
}

/// Housekeeping whose dream cycle reports `report`, succeeding or not.
struct Dreamer {
    report: &'static str,
    ok: bool,
}

#[async_trait::async_trait]
impl clawdia_sched::Housekeeping for Dreamer {
    fn high_severity_events(&self, _since_ms: i64) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }

    async fn optimize_databases(&self) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }

    async fn dream(&self) -> Result<clawdia_sched::TaskDone, clawdia_sched::TaskDone> {
        let done = clawdia_sched::TaskDone { report: self.report.to_string(), tokens: 1200, cost_usd: 0.01 };
        if self.ok { Ok(done) } else { Err(done) }
    }
}

#[tokio::test]
async fn a_dream_run_reports_to_the_owner_and_a_failed_one_alerts() {
    use clawdia_sched::job::Task;
    for (ok, expected) in [(true, "dream_report"), (false, "job_failing")] {
        let home = tempfile::tempdir().unwrap();
        let audit = Arc::new(Audit::default());
        let plain = context(home.path(), None, audit.clone());
        let context = Arc::new(clawdia_sched::Context {
            db: plain.db.clone(),
            audit: audit.clone(),
            notifier: audit.clone(),
            gateway: None,
            housekeeping: Some(Arc::new(Dreamer { report: "Dream run 7: 3 slices scored, 1 distilled", ok })),
            settings: plain.settings.clone(),
            holder: clawdia_sched::Holder::me(),
        });
        let mut dream = job("brain.dream", Action::Maintenance { task: Task::Dream });
        dream.failure_alert = Some(1);
        run_job(&context, &dream, Trigger::Manual, None).await;
        let alerts = audit.alerts();
        let kinds: Vec<&str> = alerts.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, [expected], "ok = {ok}");
        assert!(alerts[0].body.contains("3 slices scored, 1 distilled"), "{}", alerts[0].body);
        if ok {
            assert_eq!(
                (alerts[0].title.as_str(), alerts[0].severity),
                ("Dream cycle report", Severity::INFO)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_a_run_in_progress_finishes_within_the_drain_and_a_longer_one_is_interrupted() {
    for (drain_ms, expected) in [(5_000, Status::Ok), (200, Status::Interrupted)] {
        let home = tempfile::tempdir().unwrap();
        let context = context_with(home.path(), None, Arc::new(Audit::default()), |settings| {
            settings.drain = Duration::from_millis(drain_ms);
        });
        let mut slow = job("slow", host("touch started; sleep 1; echo finished"));
        slow.schedule = Schedule::every("1h").unwrap();
        context.db.add_job(&slow, clawdia_sched::now_ms()).unwrap();
        context.db.set_next_due("slow", Some(clawdia_sched::now_ms())).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let loop_task = tokio::spawn(scheduler::run(context.clone(), async move {
            let _ = stopped.await;
        }));
        let started = home.path().join("workspaces/cron/started");
        eventually("the run started", || started.exists()).await;
        let _ = stop.send(());
        loop_task.await.unwrap().unwrap();
        let runs = context.db.history("slow", 5).unwrap();
        assert_eq!(runs.len(), 1, "drain {drain_ms} ms: {runs:?}");
        assert_eq!(runs[0].status, expected, "drain {drain_ms} ms: {}", runs[0].output_tail);
        if expected == Status::Ok {
            assert!(runs[0].output_tail.contains("finished"), "{}", runs[0].output_tail);
        }
    }
}
