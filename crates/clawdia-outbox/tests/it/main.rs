//! The outbox end to end on loopback: real HTTP servers playing ntfy, Gotify and a generic JSON
//! receiver (asserting the headers and bodies they get), a webhook that is down and comes back
//! (the alert arrives later, exactly once), a hanging webhook that does not hold up the log
//! route, hook commands
//! that record their stdin (and one that fails until it is fixed), alerts that survive the outbox
//! being dropped and reopened, alerts queued by another process's outbox, and the time from
//! `notify` to a hook reading its stdin.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, StatusCode};
use clawdia_config::{AlertRoute, HookConfig, SecretRef, WebhookFormat};
use clawdia_core::{Alert, AuditEvent, AuditSink, Notifier, Severity};
use clawdia_outbox::{Outbox, Settings, Webhook};

/// What a receiver got: path, headers, body.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: String,
}

/// A tiny HTTP receiver on `listener` answering `status` to every POST and recording it.
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(listener: tokio::net::TcpListener, status: StatusCode) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = got.clone();
        let app =
            axum::Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap, body: String| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(Received { path: uri.path().to_string(), headers, body });
                    status
                }
            });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { got, url, task }
    }

    async fn on_free_port(status: StatusCode) -> Receiver {
        Receiver::start(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(), status).await
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Default)]
struct Audit(Mutex<Vec<AuditEvent>>);

impl AuditSink for Audit {
    fn record(&self, event: AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

fn settings(home: &Path, routes: &[AlertRoute]) -> Settings {
    Settings {
        home: home.to_path_buf(),
        state_dir: home.join("state"),
        routes: routes.to_vec(),
        hook: None,
        webhook: None,
        retry_max: Duration::from_secs(1),
        poll: Duration::from_secs(2),
        hook_timeout: Duration::from_secs(30),
        webhook_timeout: Duration::from_secs(5),
        keep: Duration::from_secs(86_400),
    }
}

fn webhook(url: String, format: WebhookFormat, token: Option<SecretRef>) -> Option<Webhook> {
    Some(Webhook { url, format, token })
}

/// Starts delivery; the returned sender stops it.
fn start(outbox: &Arc<Outbox>) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(outbox.clone().run(async move {
        let _ = stopped.await;
    }));
    (stop, task)
}

async fn eventually(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn failing_job() -> Alert {
    Alert::new("job_failing", Severity::HIGH, "job `backup` failed 3 times", "exit 4: disk full")
        .agent("main")
}

fn log_lines(home: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(home.join("logs/alerts.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test]
async fn ntfy_gotify_and_json_receivers_get_their_formats() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("token"), "tk-secret\n").unwrap();
    let token = Some(SecretRef::File(home.path().join("token")));
    let ntfy = Receiver::on_free_port(StatusCode::OK).await;
    let gotify = Receiver::on_free_port(StatusCode::OK).await;
    let json = Receiver::on_free_port(StatusCode::NO_CONTENT).await;
    let cases = [
        (format!("{}/clawdia", ntfy.url), WebhookFormat::Ntfy, &ntfy, "ntfy"),
        (format!("{}/message", gotify.url), WebhookFormat::Gotify, &gotify, "gotify"),
        (format!("{}/hooks/alerts", json.url), WebhookFormat::Json, &json, "json"),
    ];
    let mut ids = Vec::new();
    for (url, format, receiver, name) in cases {
        let mut settings = settings(&home.path().join(name), &[AlertRoute::Webhook]);
        settings.webhook = webhook(url, format, token.clone());
        let outbox = Arc::new(Outbox::open(settings, None).unwrap());
        let (_stop, _task) = start(&outbox);
        let id = outbox.push(&failing_job()).unwrap();
        eventually(name, Duration::from_secs(10), || receiver.received().len() == 1).await;
        eventually("the record of the delivery", Duration::from_secs(5), || {
            outbox.deliveries().unwrap().iter().all(|d| d.delivered)
        })
        .await;
        ids.push(id);
    }

    let got = &ntfy.received()[0];
    assert_eq!(got.path, "/clawdia");
    assert_eq!(got.body, "exit 4: disk full");
    assert_eq!(got.headers["title"], "job `backup` failed 3 times");
    assert_eq!(got.headers["priority"], "4");
    assert_eq!(got.headers["tags"], "clawdia,job_failing");
    assert_eq!(got.headers["authorization"], "Bearer tk-secret");
    assert_eq!(got.headers["x-clawdia-alert-id"], ids[0].as_str());

    let got = &gotify.received()[0];
    assert_eq!(got.path, "/message");
    assert_eq!(got.headers["x-gotify-key"], "tk-secret");
    assert!(got.headers.get("authorization").is_none());
    let body: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["title"], "job `backup` failed 3 times");
    assert_eq!(body["message"], "exit 4: disk full");
    assert_eq!(body["priority"], 8);

    let got = &json.received()[0];
    assert_eq!(got.path, "/hooks/alerts");
    assert_eq!(got.headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["id"], ids[2].as_str());
    assert!(ids[2].starts_with("alert-") && ids.iter().all(|id| id.len() > 20), "{ids:?}");
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'), "{body}");
    assert_eq!(
        (&body["kind"], &body["severity"], &body["title"], &body["agent"]),
        (&"job_failing".into(), &10.into(), &"job `backup` failed 3 times".into(), &"main".into())
    );
}

#[tokio::test]
async fn a_webhook_that_is_down_gets_the_alert_later_exactly_once() {
    let home = tempfile::tempdir().unwrap();
    // A port nobody listens on (yet).
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let audit = Arc::new(Audit::default());
    let mut settings = settings(home.path(), &[AlertRoute::Log, AlertRoute::Webhook]);
    settings.webhook = webhook(format!("http://{addr}/alerts"), WebhookFormat::Json, None);
    let outbox = Arc::new(Outbox::open(settings, Some(audit.clone() as Arc<dyn AuditSink>)).unwrap());
    let (stop, task) = start(&outbox);
    outbox.notify(failing_job());
    eventually("the log line", Duration::from_secs(5), || log_lines(home.path()).len() == 1).await;
    eventually("a failed webhook try", Duration::from_secs(10), || {
        outbox.deliveries().unwrap().iter().any(|d| d.route == "webhook" && d.attempts >= 1)
    })
    .await;
    let pending = outbox.deliveries().unwrap();
    let webhook_row = pending.iter().find(|d| d.route == "webhook").unwrap();
    assert!(!webhook_row.delivered);
    assert!(webhook_row.last_error.as_deref().unwrap_or("").contains(&addr.to_string()), "{webhook_row:?}");
    {
        let events = audit.0.lock().unwrap();
        assert_eq!(events[0].kind, "alert_delivery_failed");
        assert_eq!(events[0].severity, Severity::WARNING);
        assert!(events[0].detail.contains("route `webhook`"), "{}", events[0].detail);
    }

    // The receiver comes up: the alert arrives, once.
    let receiver = Receiver::start(tokio::net::TcpListener::bind(addr).await.unwrap(), StatusCode::OK).await;
    eventually("the late delivery", Duration::from_secs(10), || receiver.received().len() == 1).await;
    eventually("its record", Duration::from_secs(5), || {
        outbox.deliveries().unwrap().iter().all(|d| d.delivered)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(receiver.received().len(), 1, "delivered more than once");
    assert_eq!(log_lines(home.path()).len(), 1, "the log line was written twice");
    let body: serde_json::Value = serde_json::from_str(&receiver.received()[0].body).unwrap();
    assert_eq!(body["id"], log_lines(home.path())[0]["id"], "both routes carry the same alert id");
    stop.send(()).unwrap();
    task.await.unwrap();

    // The log file is the owner's alone.
    let mode = |path: PathBuf| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(home.path().join("logs/alerts.log")), 0o600);
    assert_eq!(mode(home.path().join("logs")), 0o700);
}

#[tokio::test]
async fn a_hanging_webhook_never_holds_up_the_log_route() {
    let home = tempfile::tempdir().unwrap();
    // Accepts connections and never answers: each try lasts the whole webhook timeout (5 s).
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let mut settings = settings(home.path(), &[AlertRoute::Webhook, AlertRoute::Log]);
    settings.webhook = webhook(format!("http://{addr}/hang"), WebhookFormat::Json, None);
    let outbox = Arc::new(Outbox::open(settings, None).unwrap());
    let (_stop, _task) = start(&outbox);
    let begun = Instant::now();
    for n in 0..3 {
        outbox.notify(Alert::new("probe", Severity::HIGH, format!("probe {n}"), ""));
    }
    eventually("three log lines", Duration::from_secs(10), || log_lines(home.path()).len() == 3).await;
    let waited = begun.elapsed();
    assert!(waited < Duration::from_secs(4), "the log waited {waited:?} behind the hanging webhook");
    let rows = outbox.deliveries().unwrap();
    assert!(rows.iter().filter(|d| d.route == "webhook").all(|d| !d.delivered), "{rows:?}");
    assert_eq!(rows.iter().filter(|d| d.route == "log" && d.delivered).count(), 3, "{rows:?}");
    drop(silent);
}

#[tokio::test]
async fn a_webhook_answering_an_error_is_retried_not_counted_as_delivered() {
    let home = tempfile::tempdir().unwrap();
    let refusing = Receiver::on_free_port(StatusCode::SERVICE_UNAVAILABLE).await;
    let mut settings = settings(home.path(), &[AlertRoute::Webhook]);
    settings.webhook = webhook(format!("{}/x", refusing.url), WebhookFormat::Ntfy, None);
    let outbox = Arc::new(Outbox::open(settings, None).unwrap());
    let (_stop, _task) = start(&outbox);
    outbox.notify(failing_job());
    eventually("two tries", Duration::from_secs(10), || refusing.received().len() >= 2).await;
    let row = &outbox.deliveries().unwrap()[0];
    assert!(!row.delivered && row.attempts >= 2, "{row:?}");
    assert!(row.last_error.as_deref().unwrap_or("").contains("HTTP 503"), "{row:?}");
}

#[tokio::test]
async fn the_hook_reads_the_alert_on_stdin_and_a_failing_hook_succeeds_once_fixed() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    // Fails (exit 3) until the flag file exists; then records its stdin, one file per run.
    let hook = script(
        dir,
        "notify.sh",
        &format!(
            "input=$(cat)\n[ -e {dir}/fixed ] || {{ echo not ready >&2; exit 3; }}\nn=$(ls {dir}/got-* 2>/dev/null | wc -l)\nprintf '%s' \"$input\" > {dir}/got-$n.json\nprintf '%s' \"$1 $CLAWDIA_ALERT_KIND\" > {dir}/args",
            dir = dir.display()
        ),
    );
    let audit = Arc::new(Audit::default());
    let mut settings = settings(dir, &[AlertRoute::Hook]);
    settings.hook = Some(HookConfig { program: hook, args: vec!["--json".into()] });
    let outbox = Arc::new(Outbox::open(settings, Some(audit.clone() as Arc<dyn AuditSink>)).unwrap());
    let (_stop, _task) = start(&outbox);
    let id = outbox.push(&failing_job()).unwrap();
    eventually("a failed hook run", Duration::from_secs(10), || {
        outbox.deliveries().unwrap()[0].attempts >= 1
    })
    .await;
    let row = &outbox.deliveries().unwrap()[0];
    assert!(!row.delivered);
    assert!(row.last_error.as_deref().unwrap_or("").contains("exited with 3: not ready"), "{row:?}");
    assert!(audit.0.lock().unwrap().iter().any(|e| e.kind == "alert_delivery_failed"));

    std::fs::write(dir.join("fixed"), "").unwrap();
    eventually("the fixed hook's delivery", Duration::from_secs(10), || {
        outbox.deliveries().unwrap()[0].delivered
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(!dir.join("got-1.json").exists(), "the hook ran again after it succeeded");
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("got-0.json")).unwrap()).unwrap();
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["kind"], "job_failing");
    assert_eq!(got["body"], "exit 4: disk full");
    assert_eq!(std::fs::read_to_string(dir.join("args")).unwrap(), "--json job_failing");
}

#[tokio::test]
async fn alerts_queued_before_a_restart_are_delivered_after_it() {
    let home = tempfile::tempdir().unwrap();
    let receiver = Receiver::on_free_port(StatusCode::OK).await;
    let make = || {
        let mut settings = settings(home.path(), &[AlertRoute::Log, AlertRoute::Webhook]);
        settings.webhook = webhook(format!("{}/a", receiver.url), WebhookFormat::Json, None);
        Outbox::open(settings, None).unwrap()
    };
    // Queued by an outbox whose delivery never ran (a gateway killed right after notify).
    let first = make();
    let id = first.push(&failing_job()).unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.received().is_empty() && log_lines(home.path()).is_empty());

    let second = Arc::new(make());
    let (_stop, _task) = start(&second);
    eventually("delivery after the restart", Duration::from_secs(10), || {
        receiver.received().len() == 1 && log_lines(home.path()).len() == 1
    })
    .await;
    let body: serde_json::Value = serde_json::from_str(&receiver.received()[0].body).unwrap();
    assert_eq!(body["id"], id.as_str());
    assert_eq!(log_lines(home.path())[0]["id"], id.as_str());
}

#[tokio::test]
async fn alerts_another_process_queues_are_picked_up_by_polling() {
    let home = tempfile::tempdir().unwrap();
    let mut daemon_settings = settings(home.path(), &[AlertRoute::Log]);
    daemon_settings.poll = Duration::from_millis(200);
    let daemon = Arc::new(Outbox::open(daemon_settings, None).unwrap());
    let (_stop, _task) = start(&daemon);
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A CLI command's outbox: same file, no delivery task, so no wake-up reaches the daemon.
    let cli = Outbox::open(settings(home.path(), &[AlertRoute::Log]), None).unwrap();
    let id = cli
        .push(&Alert::new("heartbeat", Severity::NOTICE, "main: a message", "the disk is 93% full"))
        .unwrap();
    eventually("the polled delivery", Duration::from_secs(5), || log_lines(home.path()).len() == 1).await;
    assert_eq!(log_lines(home.path())[0]["id"], id.as_str());
    assert_eq!(log_lines(home.path())[0]["kind"], "heartbeat");
}

#[tokio::test]
async fn no_routes_queue_nothing_and_deliver_nothing() {
    let home = tempfile::tempdir().unwrap();
    let outbox = Arc::new(Outbox::open(settings(home.path(), &[]), None).unwrap());
    let (_stop, _task) = start(&outbox);
    outbox.notify(failing_job());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(outbox.deliveries().unwrap().is_empty());
    assert!(!home.path().join("logs/alerts.log").exists());
    let connection = rusqlite::Connection::open(home.path().join("state/outbox.db")).unwrap();
    let stored: i64 = connection.query_row("SELECT COUNT(*) FROM alerts", [], |row| row.get(0)).unwrap();
    assert_eq!(stored, 0, "an alert no route will take was kept");
}

/// The time from `notify()` to the hook process having read its stdin, on an idle loopback.
#[tokio::test]
async fn notify_to_hook_stdin_latency() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let hook = script(
        dir,
        "stamp.sh",
        &format!(
            "cat > {d}/in.json\ndate +%s%N > {d}/stamp.tmp && mv {d}/stamp.tmp {d}/stamp",
            d = dir.display()
        ),
    );
    let mut settings = settings(dir, &[AlertRoute::Hook]);
    settings.hook = Some(HookConfig { program: hook, args: Vec::new() });
    let outbox = Arc::new(Outbox::open(settings, None).unwrap());
    let (_stop, _task) = start(&outbox);
    let mut samples = Vec::new();
    for round in 0..5 {
        let _ = std::fs::remove_file(dir.join("stamp"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent_ns = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        outbox.notify(Alert::new("latency_probe", Severity::HIGH, format!("probe {round}"), ""));
        eventually("the hook's stamp", Duration::from_secs(10), || dir.join("stamp").exists()).await;
        let stamp: u128 = std::fs::read_to_string(dir.join("stamp")).unwrap().trim().parse().unwrap();
        samples.push(Duration::from_nanos(u64::try_from(stamp.saturating_sub(sent_ns)).unwrap()));
    }
    samples.sort();
    println!(
        "notify -> hook stdin read: min {:?}, median {:?}, max {:?}",
        samples[0], samples[2], samples[4]
    );
    // Far below the 2 s poll: the hook was woken by notify, not found by polling.
    assert!(samples[2] < Duration::from_secs(1), "{samples:?}");
}
