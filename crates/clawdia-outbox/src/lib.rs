//! The owner's outbox: `Outbox` implements the core `Notifier` seam over a durable queue in
//! `state/outbox.db`. `notify` stores the alert and one delivery per configured route in one
//! transaction and wakes the delivery task; it never waits for a route and never fails the
//! caller (a queue that cannot be written is logged). The delivery task (`Outbox::run`) keeps
//! one worker per route, so a route that is down never delays another: each worker claims its
//! due deliveries, sends them (`routes`: the `log` file, the `hook` command, the `webhook`
//! POST), marks each delivered right after the route accepts it, and reschedules a failure with
//! exponential backoff (1 s, doubling, capped at `retry_max`), forever: an alert raised while a
//! route is down arrives once it is back. Pending deliveries are picked up at start, and the
//! queue is polled every `poll` so alerts queued by another process (a CLI command) go out too.
//!
//! Delivery is at least once, and exactly once unless the process dies between a route
//! accepting an alert and the record of it; every route sees the alert's stable id, so a
//! receiver can drop that duplicate. Failures are logged and audited at WARNING, never raised
//! as alerts (no loops).
//!
//! Architecture invariant: a capability crate. It depends on clawdia-core, clawdia-config,
//! clawdia-sqlite and clawdia-sandbox only; its SQL stays here.

pub mod queue;
pub mod routes;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clawdia_config::{AlertRoute, Config, HookConfig};
use clawdia_core::{Alert, AuditEvent, AuditSink, Notifier, Severity};
use tokio::sync::Notify;

pub use queue::{Delivery, Queue, Queued};
pub use routes::Webhook;

/// Why the outbox could not be opened. One line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboxError {
    #[error("{0}")]
    Db(String),
    #[error("outbox: {0}")]
    Setup(String),
}

/// Where and how alerts are delivered.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The home: `logs/alerts.log` lives under it, and hooks run in it.
    pub home: PathBuf,
    /// The state folder holding `outbox.db`.
    pub state_dir: PathBuf,
    pub routes: Vec<AlertRoute>,
    pub hook: Option<HookConfig>,
    pub webhook: Option<Webhook>,
    /// The longest pause between two tries of a delivery.
    pub retry_max: Duration,
    /// How often the queue is read for alerts other processes queued.
    pub poll: Duration,
    /// How long a hook may run.
    pub hook_timeout: Duration,
    /// How long a webhook request may take, connecting included.
    pub webhook_timeout: Duration,
    /// Delivered alerts older than this are removed.
    pub keep: Duration,
}

impl Settings {
    /// The settings of `[alerts]`, with the state folder `home/state`.
    pub fn from_config(config: &Config) -> Settings {
        let alerts = &config.alerts;
        Settings {
            home: config.home.clone(),
            state_dir: config.home.join("state"),
            routes: alerts.routes.clone(),
            hook: alerts.hook.clone(),
            webhook: alerts.webhook.as_ref().map(|webhook| Webhook {
                url: webhook.url.clone(),
                format: webhook.format,
                token: webhook.token.clone(),
            }),
            retry_max: alerts.retry_max,
            poll: Duration::from_secs(2),
            hook_timeout: Duration::from_secs(30),
            webhook_timeout: Duration::from_secs(15),
            keep: Duration::from_secs(30 * 86_400),
        }
    }
}

/// The pause before the next try of a delivery that has failed `failures` times: 1 s, then
/// doubling, never more than `max`.
pub fn backoff(failures: u32, max: Duration) -> Duration {
    let exponent = failures.saturating_sub(1).min(30);
    Duration::from_secs(1u64 << exponent).min(max)
}

/// The outbox: a durable queue and the routes it delivers to.
pub struct Outbox {
    queue: Arc<Queue>,
    settings: Settings,
    /// One per route in `settings.routes`, same order.
    wakers: Vec<Arc<Notify>>,
    /// Built only when a webhook is configured: loading the TLS roots costs start-up time.
    client: Option<reqwest::Client>,
    /// Where delivery failures are recorded: the plain audit log, never a sink that alerts.
    audit: Option<Arc<dyn AuditSink>>,
    /// The `web` route's open browsers, once the gateway serves them.
    live: std::sync::OnceLock<Arc<dyn clawdia_core::LiveAlerts>>,
    /// The `telegram` route's bot, once the gateway runs it.
    telegram: std::sync::OnceLock<Arc<dyn clawdia_core::AlertChannel>>,
    /// The `email` route's mail sender, once the gateway runs it.
    email: std::sync::OnceLock<Arc<dyn clawdia_core::AlertChannel>>,
}

impl Outbox {
    /// Opens `state/outbox.db` (creating it) and, when a webhook is configured, builds its
    /// client.
    pub fn open(settings: Settings, audit: Option<Arc<dyn AuditSink>>) -> Result<Outbox, OutboxError> {
        let queue = Arc::new(Queue::open(&settings.state_dir)?);
        let client = match settings.webhook {
            None => None,
            Some(_) => {
                install_crypto_provider();
                let client = reqwest::Client::builder()
                    .connect_timeout(settings.webhook_timeout.min(Duration::from_secs(10)))
                    .timeout(settings.webhook_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .tcp_nodelay(true)
                    .pool_idle_timeout(Duration::from_secs(60))
                    .user_agent(concat!("clawdia/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| OutboxError::Setup(format!("cannot build the webhook client: {e}")))?;
                Some(client)
            }
        };
        let wakers = settings.routes.iter().map(|_| Arc::new(Notify::new())).collect();
        Ok(Outbox {
            queue,
            settings,
            wakers,
            client,
            audit,
            live: std::sync::OnceLock::new(),
            telegram: std::sync::OnceLock::new(),
            email: std::sync::OnceLock::new(),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Connects the `web` route to the open browsers (the running gateway does, once); until
    /// then its deliveries wait.
    pub fn attach_live(&self, live: Arc<dyn clawdia_core::LiveAlerts>) {
        let _ = self.live.set(live);
        if let Some(index) = self.settings.routes.iter().position(|route| *route == AlertRoute::Web) {
            self.wakers[index].notify_one();
        }
    }

    /// Connects the `telegram` route to the bot (the running gateway does, once); until then
    /// its deliveries wait.
    pub fn attach_telegram(&self, channel: Arc<dyn clawdia_core::AlertChannel>) {
        let _ = self.telegram.set(channel);
        if let Some(index) = self.settings.routes.iter().position(|route| *route == AlertRoute::Telegram) {
            self.wakers[index].notify_one();
        }
    }

    /// Connects the `email` route to the mail channel's sender (the running gateway does, once);
    /// until then its deliveries wait.
    pub fn attach_email(&self, channel: Arc<dyn clawdia_core::AlertChannel>) {
        let _ = self.email.set(channel);
        if let Some(index) = self.settings.routes.iter().position(|route| *route == AlertRoute::Email) {
            self.wakers[index].notify_one();
        }
    }

    /// The latest `limit` alerts, newest first (the web UI's notifications feed).
    pub fn recent(&self, limit: usize) -> Result<Vec<Queued>, OutboxError> {
        self.queue.recent(limit)
    }

    /// Every delivery in the queue, oldest alert first.
    pub fn deliveries(&self) -> Result<Vec<Delivery>, OutboxError> {
        self.queue.deliveries()
    }

    /// Queues `alert` for every route; the alert's id, or why it could not be queued.
    pub fn push(&self, alert: &Alert) -> Result<String, OutboxError> {
        let id = clawdia_core::random::hex(12)
            .map(|hex| format!("alert-{hex}"))
            .map_err(|e| OutboxError::Setup(e.to_string()))?;
        let routes: Vec<&str> = self.settings.routes.iter().map(|route| route.name()).collect();
        if routes.is_empty() {
            // `routes = []`: alerts are off; nothing to keep.
            return Ok(id);
        }
        self.queue.push(&id, clawdia_core::time::now_ms(), alert, &routes)?;
        for waker in &self.wakers {
            waker.notify_one();
        }
        Ok(id)
    }

    /// Delivers until `stop` resolves: one worker per route, each sending what is due (what an
    /// earlier run left pending first), woken by `notify` and every `poll`.
    pub async fn run(self: Arc<Self>, stop: impl Future<Output = ()> + Send) {
        let queue = self.queue.clone();
        let keep_ms = i64::try_from(self.settings.keep.as_millis()).unwrap_or(i64::MAX / 4);
        let pruned =
            tokio::task::spawn_blocking(move || queue.prune(clawdia_core::time::now_ms() - keep_ms)).await;
        if let Ok(Err(error)) = pruned {
            tracing::warn!(%error, "cannot prune old alerts");
        }
        let mut workers = tokio::task::JoinSet::new();
        for (index, route) in self.settings.routes.iter().enumerate() {
            workers.spawn(self.clone().worker(*route, self.wakers[index].clone()));
        }
        stop.await;
        workers.abort_all();
        while workers.join_next().await.is_some() {}
    }

    async fn worker(self: Arc<Self>, route: AlertRoute, waker: Arc<Notify>) {
        loop {
            self.deliver_due(route).await;
            let queue = self.queue.clone();
            let name = route.name();
            let next =
                tokio::task::spawn_blocking(move || queue.next_due(name)).await.ok().and_then(Result::ok);
            let mut pause = self.settings.poll;
            if let Some(Some(next_ms)) = next {
                let until = u64::try_from(next_ms - clawdia_core::time::now_ms()).unwrap_or(0);
                pause = pause.min(Duration::from_millis(until));
            }
            let _ = tokio::time::timeout(pause, waker.notified()).await;
        }
    }

    /// Sends every due delivery of `route`, oldest first.
    async fn deliver_due(&self, route: AlertRoute) {
        loop {
            let queue = self.queue.clone();
            let lease = self.lease(route);
            let claimed = tokio::task::spawn_blocking(move || {
                queue.claim_due(route.name(), clawdia_core::time::now_ms(), lease, 32)
            })
            .await;
            let due = match claimed {
                Ok(Ok(due)) => due,
                Ok(Err(error)) => {
                    tracing::warn!(route = route.name(), %error, "cannot read the outbox");
                    return;
                }
                Err(_) => return,
            };
            if due.is_empty() {
                return;
            }
            for delivery in due {
                let sent = self.send(route, &delivery.queued).await;
                self.record(route, &delivery, sent).await;
            }
        }
    }

    /// How long a claimed delivery stays claimed: the send's time limit and a margin.
    fn lease(&self, route: AlertRoute) -> Duration {
        let limit = match route {
            AlertRoute::Log | AlertRoute::Web => Duration::from_secs(5),
            AlertRoute::Telegram | AlertRoute::Email => Duration::from_secs(30),
            AlertRoute::Hook => self.settings.hook_timeout + Duration::from_secs(5),
            AlertRoute::Webhook => self.settings.webhook_timeout,
        };
        limit + Duration::from_secs(10)
    }

    async fn send(&self, route: AlertRoute, queued: &Queued) -> Result<(), String> {
        match route {
            AlertRoute::Log => routes::append_log(&self.settings.home, queued),
            AlertRoute::Web => match self.live.get() {
                Some(live) => {
                    live.show(&queued.id, queued.created_ms, &queued.alert);
                    Ok(())
                }
                None => Err("the web UI is not being served (the gateway is not running)".to_string()),
            },
            AlertRoute::Telegram => match self.telegram.get() {
                Some(channel) => channel.deliver(&queued.id, queued.created_ms, &queued.alert).await,
                None => Err("the Telegram bot is not running (the gateway is not running)".to_string()),
            },
            AlertRoute::Email => match self.email.get() {
                Some(channel) => channel.deliver(&queued.id, queued.created_ms, &queued.alert).await,
                None => Err("the mail channel is not running (the gateway is not running)".to_string()),
            },
            AlertRoute::Hook => match &self.settings.hook {
                Some(hook) => {
                    routes::run_hook(&self.settings.home, hook, self.settings.hook_timeout, queued).await
                }
                None => Err("no hook command is configured".to_string()),
            },
            AlertRoute::Webhook => match (&self.settings.webhook, &self.client) {
                (Some(webhook), Some(client)) => routes::post_webhook(client, webhook, queued).await,
                _ => Err("no webhook is configured".to_string()),
            },
        }
    }

    async fn record(&self, route: AlertRoute, delivery: &queue::Due, sent: Result<(), String>) {
        let queue = self.queue.clone();
        let seq = delivery.seq;
        let now = clawdia_core::time::now_ms();
        let failures = delivery.attempts + 1;
        let outcome = match &sent {
            Ok(()) => {
                if delivery.attempts > 0 {
                    tracing::info!(route = route.name(), alert = %delivery.queued.id, tries = failures, "alert delivered after retries");
                }
                tokio::task::spawn_blocking(move || queue.delivered(seq, route.name(), now)).await
            }
            Err(error) => {
                let pause = backoff(failures, self.settings.retry_max);
                let next_ms = now + i64::try_from(pause.as_millis()).unwrap_or(i64::MAX / 4);
                let detail = format!(
                    "route `{}` could not deliver alert {} ({}), try {failures}, next in {}s: {error}",
                    route.name(),
                    delivery.queued.id,
                    delivery.queued.alert.kind,
                    pause.as_secs()
                );
                tracing::warn!("{detail}");
                // The first failure, then tries 2, 4, 8, ...: a route down for a day does not
                // flood the audit log.
                if failures.is_power_of_two()
                    && let Some(audit) = &self.audit
                {
                    audit.record(AuditEvent::new("alert_delivery_failed", Severity::WARNING, detail));
                }
                let error = error.clone();
                tokio::task::spawn_blocking(move || queue.failed(seq, route.name(), &error, next_ms)).await
            }
        };
        if let Ok(Err(error)) = outcome {
            tracing::warn!(route = route.name(), %error, "cannot record a delivery in the outbox");
        }
    }
}

impl Notifier for Outbox {
    fn notify(&self, alert: Alert) {
        if let Err(error) = self.push(&alert) {
            tracing::error!(%error, kind = %alert.kind, title = %alert.title, "cannot queue an alert for the owner");
        }
    }
}

/// Installs the process-wide TLS provider (ring) webhooks over HTTPS need; idempotent.
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_starts_at_a_second_doubles_and_is_capped() {
        let max = Duration::from_secs(300);
        let pauses: Vec<u64> = (1..=11).map(|n| backoff(n, max).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(backoff(u32::MAX, max), max);
        assert_eq!(backoff(3, Duration::from_secs(2)), Duration::from_secs(2));
    }
}
