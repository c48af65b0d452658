//! The daemon behind `clawdia up`: every long-running part of the gateway (the HTTP server, the
//! scheduler, the brain's embedder, and whatever registers a [`Component`]: the outbox delivery,
//! later the channels) runs as a supervised component under ONE cancellation token.
//!
//! A component's task that ends with an error, ends on its own or panics is restarted after
//! 1 s, 2 s, 4 s ... (capped at 60 s; the count starts over after a run that lasted over a
//! minute); each failure is written to the status board and recorded as a `component_failed`
//! audit event, and the first failure of a streak (and every tenth after it) is raised to the
//! owner through the [`Notifier`]. The daemon never goes down for it. Cancelling the token (SIGTERM/SIGINT) stops them all: the server stops accepting and
//! drains its turns for `[gateway] drain_secs`, then cancels them; each component reports
//! `stopped`, or `failed` if it did not stop in time.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use clawdia_core::{
    Alert, AuditEvent, AuditSink, ComponentState, Notifier, Severity, StatusBoard, UnixMillis,
};
use tokio::task::JoinHandle;
pub use tokio_util::sync::CancellationToken;

use crate::{GatewayFile, Runtime, RuntimeError};

/// One run of a component: it works until `token` is cancelled, then returns `Ok(())`. Returning
/// earlier (with an error or not) counts as a failure.
pub type ComponentTask = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A named long-running part of the daemon and how to start one run of it.
pub struct Component {
    name: String,
    start: Box<dyn FnMut(CancellationToken) -> ComponentTask + Send>,
}

impl Component {
    /// `start` is called for the first run and again for every restart, with the daemon's token.
    pub fn new<F, Fut>(name: &str, mut start: F) -> Component
    where
        F: FnMut(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Component { name: name.to_string(), start: Box::new(move |token| Box::pin(start(token))) }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

/// How long a failed component waits before its next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
    /// A run that lasted longer than this ends a failure streak: its failure waits `first` again.
    pub reset_after: Duration,
}

impl Backoff {
    /// 1 s, doubling, capped at 60 s; a run of more than a minute starts over.
    pub const DEFAULT: Backoff = Backoff {
        first: Duration::from_secs(1),
        max: Duration::from_secs(60),
        reset_after: Duration::from_secs(60),
    };

    /// The wait before restart number `attempt` (1 for the first restart after a failure).
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.first.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// The supervisor: the token, the status board, and one supervising task per component.
pub struct Daemon {
    token: CancellationToken,
    board: Arc<StatusBoard>,
    notifier: Arc<dyn Notifier>,
    audit: Arc<dyn AuditSink>,
    backoff: Backoff,
    started_at: UnixMillis,
    supervisors: Vec<(String, JoinHandle<()>)>,
}

impl Daemon {
    pub fn new(notifier: Arc<dyn Notifier>, audit: Arc<dyn AuditSink>) -> Daemon {
        Daemon {
            token: CancellationToken::new(),
            board: Arc::new(StatusBoard::new()),
            notifier,
            audit,
            backoff: Backoff::DEFAULT,
            started_at: clawdia_core::time::now_ms(),
            supervisors: Vec::new(),
        }
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Daemon {
        self.backoff = backoff;
        self
    }

    /// The one token every component runs under; cancelling it stops the daemon.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    pub fn board(&self) -> Arc<StatusBoard> {
        self.board.clone()
    }

    /// What `/v1/status` serves.
    pub fn status_source(&self) -> clawdia_server::StatusSource {
        let board = self.board.clone();
        clawdia_server::StatusSource {
            started_at: self.started_at,
            components: Arc::new(move || board.snapshot()),
        }
    }

    /// Lists `name` as `disabled` (nothing needs it), with the reason logged.
    pub fn disabled(&self, name: &str, why: &str) {
        tracing::info!(component = name, "not started: {why}");
        self.board.register(name, ComponentState::Disabled);
    }

    /// Starts `component` under the daemon's token and keeps it running.
    pub fn supervise(&mut self, component: Component) {
        let name = component.name.clone();
        self.board.register(&name, ComponentState::Starting);
        let supervisor = Supervisor {
            name: name.clone(),
            token: self.token.clone(),
            board: self.board.clone(),
            notifier: self.notifier.clone(),
            audit: self.audit.clone(),
            backoff: self.backoff,
        };
        self.supervisors.push((name, tokio::spawn(supervisor.run(component.start))));
    }

    /// Cancels the token and waits up to `grace` for every component to stop; one that does not
    /// is aborted and marked `failed`.
    pub async fn stop(self, grace: Duration) {
        self.token.cancel();
        let deadline = tokio::time::Instant::now() + grace;
        for (name, mut supervisor) in self.supervisors {
            if tokio::time::timeout_at(deadline, &mut supervisor).await.is_err() {
                supervisor.abort();
                let error = format!("did not stop within {} s", grace.as_secs());
                tracing::warn!(component = %name, "{error}");
                self.board.give_up(&name, &error);
            }
        }
    }
}

/// Aborts a component's run when the supervisor itself is dropped or aborted.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct Supervisor {
    name: String,
    token: CancellationToken,
    board: Arc<StatusBoard>,
    notifier: Arc<dyn Notifier>,
    audit: Arc<dyn AuditSink>,
    backoff: Backoff,
}

impl Supervisor {
    async fn run(self, mut start: Box<dyn FnMut(CancellationToken) -> ComponentTask + Send>) {
        let name = self.name.as_str();
        let mut attempt = 0u32;
        let mut restarted = false;
        loop {
            let began = tokio::time::Instant::now();
            let task = tokio::spawn(start(self.token.clone()));
            let _guard = AbortOnDrop(task.abort_handle());
            if restarted {
                self.board.restarted(name);
            } else {
                self.board.set(name, ComponentState::Running);
            }
            let outcome = task.await;
            if self.token.is_cancelled() {
                if let Some(error) = failure(outcome) {
                    tracing::warn!(component = name, "stopped with an error: {error}");
                }
                self.board.set(name, ComponentState::Stopped);
                return;
            }
            let error = failure(outcome).unwrap_or_else(|| "it stopped on its own".to_string());
            if began.elapsed() > self.backoff.reset_after {
                attempt = 0;
            }
            attempt += 1;
            let delay = self.backoff.delay(attempt);
            let next_try =
                clawdia_core::time::now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            self.board.failed(name, &error, attempt, next_try);
            self.report(&error, attempt, delay);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = self.token.cancelled() => {
                    self.board.set(name, ComponentState::Stopped);
                    return;
                }
            }
            restarted = true;
        }
    }

    /// The log line and the audit event for every failure; the owner's alert for the first
    /// failure of a streak and every tenth after it (at the 60 s cap, one each ten minutes), so a
    /// component that keeps failing does not flood the owner. The audit event is below the
    /// default `alerts.min_severity`, so it does not reach the owner a second time.
    fn report(&self, error: &str, attempt: u32, delay: Duration) {
        let name = &self.name;
        let error = clawdia_core::one_line(error);
        let wait = format!("{:.0} s", delay.as_secs_f64().max(1.0));
        tracing::error!(component = %name, attempt, "failed: {error}; restarting in {wait}");
        self.audit.record(AuditEvent::new(
            "component_failed",
            Severity::WARNING,
            format!("{name}: {error}; restart {attempt} in {wait}"),
        ));
        if attempt == 1 || attempt.is_multiple_of(ALERT_EVERY) {
            let streak = if attempt == 1 { String::new() } else { format!(" ({attempt} failures in a row)") };
            self.notifier.notify(Alert::new(
                "component_failed",
                Severity::HIGH,
                format!("Clawdia: {name} failed{streak} and restarts in {wait}"),
                format!(
                    "The gateway's {name} stopped: {error}. It is restarted with backoff; `clawdia status` shows its state."
                ),
            ));
        }
    }
}

/// After the first alert of a failure streak, one more every this many failures.
const ALERT_EVERY: u32 = 10;

/// Why a run ended, if it was not a clean `Ok(())`: its error or its panic's message.
fn failure(outcome: Result<Result<(), String>, tokio::task::JoinError>) -> Option<String> {
    match outcome {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(error),
        Err(join) if join.is_panic() => {
            Some(format!("panicked: {}", clawdia_core::text::panic_message(&*join.into_panic())))
        }
        Err(join) => Some(join.to_string()),
    }
}

/// What the HTTP server serves besides the API: the web channel, and the webhook route of a
/// Telegram bot in webhook mode.
#[derive(Default)]
pub struct Surfaces {
    pub web: Option<clawdia_server::web::Web>,
    pub telegram_hook: Option<Arc<dyn clawdia_core::InboundHook>>,
}

/// Runs the gateway as a daemon: binds nothing itself (`listener` is bound, so a port that
/// cannot be had fails before this), supervises the HTTP server, the scheduler, the embedder and
/// `extra` (the outbox delivery and later channels register here), writes `state/gateway.json`
/// (then calls `ready`), and stops everything when `shutdown` resolves. The runtime's notifier
/// gets the alerts of failing components.
pub async fn run(
    runtime: &Runtime,
    listener: tokio::net::TcpListener,
    token: &str,
    extra: Vec<Component>,
    surfaces: Surfaces,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RuntimeError> {
    use clawdia_core::AuditSink as _;
    let addr = listener.local_addr().map_err(|e| RuntimeError::Io(e.to_string()))?;
    let mut daemon = Daemon::new(runtime.notifier.clone(), runtime.audit.clone());
    let metrics = runtime.agents.metrics();
    let limits = crate::server_limits(&runtime.config.gateway, crate::open_files_limit());
    let drain = limits.drain;
    let state = clawdia_server::ServerState::new(
        runtime.gateway.clone(),
        runtime.audit.clone(),
        token,
        Arc::new(move || metrics.render()),
        limits,
    )
    .with_status(daemon.status_source());
    let state = match surfaces.web {
        Some(web) => state.with_web(web),
        None => state,
    };
    let state = match surfaces.telegram_hook {
        Some(hook) => state.with_telegram_hook(hook),
        None => state,
    };
    match crate::sched::scheduler_component(runtime) {
        Some(component) => daemon.supervise(component),
        None => daemon.disabled("scheduler", "[cron] enabled = false"),
    }
    match runtime.brain.embedder() {
        Some(_) => daemon.supervise(embedder(runtime.brain.clone())),
        None => daemon.disabled("embedder", "no embedder is configured ([brain.embedder])"),
    }
    match &runtime.mcp {
        Some(mcp) => daemon.supervise(crate::mcp::watcher(mcp.clone(), daemon.board())),
        None => daemon.disabled("mcp", "no [mcp.servers] are configured"),
    }
    for component in extra {
        daemon.supervise(component);
    }
    // Last, so every component is listed by the time the first request can be answered.
    daemon.supervise(server(listener, addr, state));
    let file = crate::gateway_file(&runtime.config.home);
    let announce = GatewayFile { pid: std::process::id(), addr, version: env!("CARGO_PKG_VERSION").into() };
    if let Ok(json) = serde_json::to_vec(&announce) {
        let _ = std::fs::write(&file, json);
    }
    runtime.store.record(AuditEvent::new("gateway_started", Severity::INFO, format!("listening on {addr}")));
    tracing::info!(%addr, "clawdia gateway listening");
    // Announced once `state/gateway.json` is written: a command started on the announcement
    // finds the gateway.
    ready();
    let cancelled = daemon.token();
    tokio::select! {
        () = shutdown => {}
        () = cancelled.cancelled() => {}
    }
    tracing::info!(drain_secs = drain.as_secs(), "shutting down: draining turns in flight");
    let board = daemon.board();
    daemon.stop(drain + STOP_GRACE).await;
    let states: Vec<String> = board
        .snapshot()
        .iter()
        .map(|component| format!("{} {}", component.name, component.state.name()))
        .collect();
    tracing::info!("components at exit: {}", states.join(", "));
    let _ = std::fs::remove_file(&file);
    runtime.store.record(AuditEvent::new(
        "gateway_stopped",
        Severity::INFO,
        format!("stopped listening on {addr}"),
    ));
    Ok(())
}

/// Beyond the drain, how long the components may take to stop (the scheduler kills running
/// jobs' process trees, with their grace).
const STOP_GRACE: Duration = Duration::from_secs(30);

/// The HTTP server: the first run serves the listener bound at startup; a restart binds the same
/// address again.
fn server(
    listener: tokio::net::TcpListener,
    addr: std::net::SocketAddr,
    state: clawdia_server::ServerState,
) -> Component {
    let bound = Arc::new(Mutex::new(Some(listener)));
    Component::new("server", move |token: CancellationToken| {
        let bound = bound.clone();
        let state = state.clone();
        async move {
            let first = bound.lock().unwrap_or_else(PoisonError::into_inner).take();
            let listener = match first {
                Some(listener) => listener,
                None => tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
            };
            clawdia_server::serve(listener, state, token.cancelled_owned())
                .await
                .map_err(|e| format!("server error: {e}"))
        }
    })
}

/// The brain's background embedder (it waits for writes, embeds what is pending).
fn embedder(brain: Arc<clawdia_brain::Brain>) -> Component {
    Component::new("embedder", move |token: CancellationToken| {
        let brain = brain.clone();
        async move {
            let Some(task) = brain.spawn_embedder() else {
                return Err("no embedder is configured".to_string());
            };
            let _guard = AbortOnDrop(task.abort_handle());
            tokio::select! {
                joined = task => Err(failure(joined.map(|()| Ok(()))).unwrap_or_else(|| "the embedder loop ended".to_string())),
                () = token.cancelled() => Ok(()),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_and_stops_at_a_minute() {
        let backoff = Backoff::DEFAULT;
        let secs: Vec<u64> = (1..=9).map(|attempt| backoff.delay(attempt).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff.delay(0), Duration::from_secs(1));
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn a_component_that_keeps_failing_alerts_once_then_every_tenth_failure() {
        let alerts = Arc::new(Alerts::default());
        let audit = Arc::new(Audit::default());
        let fast = Backoff { first: Duration::from_millis(1), max: Duration::from_millis(2), ..QUICK };
        let mut daemon = Daemon::new(alerts.clone(), audit.clone()).with_backoff(fast);
        daemon.supervise(Component::new("broken", |_token: CancellationToken| async move {
            Err::<(), String>("config file missing".to_string())
        }));
        let board = daemon.board();
        watch(&board, "broken", |s| s.restarts >= 21).await;
        daemon.stop(Duration::from_secs(2)).await;
        let alerts = alerts.0.lock().unwrap();
        let titles: Vec<&str> = alerts.iter().map(|a| a.title.as_str()).collect();
        assert!((3..=4).contains(&alerts.len()), "{titles:?}");
        assert!(titles[0].ends_with("broken failed and restarts in 1 s"), "{titles:?}");
        assert!(titles[1].contains("(10 failures in a row)"), "{titles:?}");
        assert!(titles[2].contains("(20 failures in a row)"), "{titles:?}");
        let audited = audit.0.lock().unwrap().iter().filter(|e| e.kind == "component_failed").count();
        assert!(audited >= 21, "every failure is audited: {audited}");
    }

    #[derive(Default)]
    struct Alerts(Mutex<Vec<Alert>>);

    impl Notifier for Alerts {
        fn notify(&self, alert: Alert) {
            self.0.lock().unwrap().push(alert);
        }
    }

    #[derive(Default)]
    struct Audit(Mutex<Vec<AuditEvent>>);

    impl AuditSink for Audit {
        fn record(&self, event: AuditEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    const QUICK: Backoff = Backoff {
        first: Duration::from_millis(40),
        max: Duration::from_secs(5),
        reset_after: Duration::from_secs(10),
    };

    fn daemon() -> (Daemon, Arc<Alerts>, Arc<Audit>) {
        let alerts = Arc::new(Alerts::default());
        let audit = Arc::new(Audit::default());
        (Daemon::new(alerts.clone(), audit.clone()).with_backoff(QUICK), alerts, audit)
    }

    /// The distinct states `name` goes through until `until` holds (sampled every millisecond).
    async fn watch(
        board: &StatusBoard,
        name: &str,
        until: impl Fn(&clawdia_core::ComponentStatus) -> bool,
    ) -> Vec<ComponentState> {
        let mut history: Vec<ComponentState> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let status = board.get(name).expect("registered");
            if history.last() != Some(&status.state) {
                history.push(status.state);
            }
            if until(&status) {
                return history;
            }
            assert!(tokio::time::Instant::now() < deadline, "gave up waiting; states so far: {history:?}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test]
    async fn a_component_that_fails_twice_is_restarted_with_backoff_and_alerts_each_time() {
        let (mut daemon, alerts, audit) = daemon();
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = runs.clone();
        let began = tokio::time::Instant::now();
        daemon.supervise(Component::new("flaky", move |token: CancellationToken| {
            let run = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if run <= 2 {
                    return Err(format!("cannot open flaky.db (run {run})"));
                }
                token.cancelled().await;
                Ok(())
            }
        }));
        let board = daemon.board();
        let history = watch(&board, "flaky", |s| s.restarts == 2 && s.state == ComponentState::Running).await;
        // Two waits: 40 ms, then 80 ms.
        assert!(began.elapsed() >= Duration::from_millis(120), "no backoff: {:?}", began.elapsed());
        let names: Vec<&str> = history.iter().map(ComponentState::name).collect();
        assert_eq!(
            names,
            ["starting", "running", "restarting", "running", "restarting", "running"],
            "{history:?}"
        );
        let attempts: Vec<u32> = history
            .iter()
            .filter_map(|state| match state {
                ComponentState::Restarting { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .collect();
        assert_eq!(attempts, [1, 2]);
        let status = board.get("flaky").expect("registered");
        assert_eq!(status.error.as_deref(), Some("cannot open flaky.db (run 2)"));
        {
            // One alert for the streak (the owner is not told twice within seconds), every
            // failure audited.
            let alerts = alerts.0.lock().unwrap();
            assert_eq!(alerts.len(), 1, "{alerts:?}");
            assert_eq!((alerts[0].kind.as_str(), alerts[0].severity), ("component_failed", Severity::HIGH));
            assert!(alerts[0].body.contains("cannot open flaky.db (run 1)"), "{:?}", alerts[0]);
            assert!(alerts[0].title.contains("flaky"), "{:?}", alerts[0]);
            let audit = audit.0.lock().unwrap();
            let failed: Vec<_> = audit.iter().filter(|e| e.kind == "component_failed").collect();
            assert_eq!(failed.len(), 2);
            assert!(failed[0].detail.starts_with("flaky: cannot open flaky.db (run 1)"), "{failed:?}");
            assert!(failed[1].detail.starts_with("flaky: cannot open flaky.db (run 2)"), "{failed:?}");
        }
        // The third run is healthy: it stays up and stops cleanly with the daemon.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 3);
        daemon.stop(Duration::from_secs(2)).await;
        let stopped = board.get("flaky").expect("registered");
        assert_eq!((stopped.state, stopped.restarts), (ComponentState::Stopped, 2));
        assert_eq!(alerts.0.lock().unwrap().len(), 1, "a clean stop raised an alert");
    }

    #[tokio::test]
    async fn a_panicking_component_is_restarted_and_the_others_keep_running() {
        let (mut daemon, alerts, _) = daemon();
        let runs = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let counted = runs.clone();
        daemon.supervise(Component::new("panicky", move |token: CancellationToken| {
            let run = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                if run == 0 {
                    panic!("index out of bounds");
                }
                token.cancelled().await;
                Ok(())
            }
        }));
        daemon.supervise(Component::new("steady", |token: CancellationToken| async move {
            token.cancelled().await;
            Ok(())
        }));
        daemon.disabled("embedder", "none configured");
        let board = daemon.board();
        watch(&board, "panicky", |s| s.restarts == 1 && s.state == ComponentState::Running).await;
        let panicky = board.get("panicky").expect("registered");
        assert_eq!(panicky.error.as_deref(), Some("panicked: index out of bounds"));
        assert_eq!(board.get("steady").map(|s| (s.state, s.restarts)), Some((ComponentState::Running, 0)));
        assert_eq!(board.get("embedder").map(|s| s.state), Some(ComponentState::Disabled));
        assert_eq!(alerts.0.lock().unwrap().len(), 1);
        daemon.stop(Duration::from_secs(2)).await;
        let states: Vec<_> = board.snapshot().into_iter().map(|s| (s.name, s.state.name())).collect();
        assert_eq!(
            states,
            [
                ("panicky".to_string(), "stopped"),
                ("steady".to_string(), "stopped"),
                ("embedder".to_string(), "disabled")
            ]
        );
    }

    #[tokio::test]
    async fn a_component_that_ignores_the_token_is_marked_failed_and_the_stop_still_returns() {
        let (mut daemon, _, _) = daemon();
        daemon.supervise(Component::new("stubborn", |_token: CancellationToken| async move {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }));
        daemon.supervise(Component::new("polite", |token: CancellationToken| async move {
            token.cancelled().await;
            Ok(())
        }));
        let board = daemon.board();
        watch(&board, "stubborn", |s| s.state == ComponentState::Running).await;
        let began = tokio::time::Instant::now();
        daemon.stop(Duration::from_millis(200)).await;
        assert!(began.elapsed() < Duration::from_secs(2), "stop waited {:?}", began.elapsed());
        let stubborn = board.get("stubborn").expect("registered");
        assert_eq!(stubborn.state, ComponentState::Failed);
        assert!(stubborn.error.as_deref().is_some_and(|e| e.contains("did not stop")), "{stubborn:?}");
        assert_eq!(board.get("polite").map(|s| s.state), Some(ComponentState::Stopped));
    }
}
