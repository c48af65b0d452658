//! The owner's outbox seam: anything that should reach the owner (a high-severity audit event, a
//! failing job, a heartbeat that found something, a maintenance report, an approval request)
//! becomes an [`Alert`] handed to a [`Notifier`]. The notifier queues it durably and returns at
//! once; delivery to the routes (`logs/alerts.log`, a command hook, a webhook, later the chat
//! channels) happens elsewhere, retried, so raising an alert never blocks or fails the caller.

use serde::{Deserialize, Serialize};

use crate::audit::Severity;

/// One notification for the owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// A stable snake_case kind: `job_failing`, `heartbeat`, `maintenance_report`,
    /// `approval_request`, an audit event's kind, ...
    pub kind: String,
    pub severity: Severity,
    /// One line, shown as the notification's title.
    pub title: String,
    /// The details; may span lines.
    pub body: String,
    /// The agent concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The approval request this alert asks the owner to decide, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
}

impl Alert {
    pub fn new(kind: &str, severity: Severity, title: impl Into<String>, body: impl Into<String>) -> Alert {
        Alert {
            kind: kind.to_string(),
            severity,
            title: title.into(),
            body: body.into(),
            agent: None,
            approval: None,
        }
    }

    pub fn agent(mut self, agent: &str) -> Alert {
        self.agent = Some(agent.to_string());
        self
    }

    pub fn approval(mut self, id: &str) -> Alert {
        self.approval = Some(id.to_string());
        self
    }
}

/// Where alerts for the owner go. `notify` never blocks on delivery and never fails the
/// caller: a notifier that cannot even queue an alert reports that itself (log, audit).
pub trait Notifier: Send + Sync {
    fn notify(&self, alert: Alert);
}

/// A notifier that drops every alert: for callers built without an outbox (unit tests, one-off
/// CLI commands that have no owner to tell).
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify(&self, _alert: Alert) {}
}

/// Shows alerts live where the owner is looking (the open browsers of the web UI): the outbox's
/// `web` route hands each alert here, with its id and when it was raised.
pub trait LiveAlerts: Send + Sync {
    fn show(&self, id: &str, raised_at: crate::UnixMillis, alert: &Alert);
}

/// A route that delivers alerts itself (a chat channel: Telegram): the outbox hands it each
/// alert due on that route and retries when it fails.
#[async_trait::async_trait]
pub trait AlertChannel: Send + Sync {
    async fn deliver(&self, id: &str, raised_at: crate::UnixMillis, alert: &Alert) -> Result<(), String>;
}
