//! The owner's outbox in the composition root: `state/outbox.db` opened from `[alerts]`, the
//! audit sink that turns events at or above `alerts.min_severity` into alerts, and the delivery
//! task the gateway runs beside the HTTP server. Everything else reaches the outbox as an
//! `Arc<dyn Notifier>`; only this module names the concrete type.

use std::sync::Arc;
#[cfg(test)]
use std::time::Duration;

use clawdia_config::Config;
use clawdia_core::{Alert, AuditEvent, AuditSink, Notifier, Severity};
use clawdia_outbox::{Outbox, Settings};

use crate::{Runtime, RuntimeError};

/// Audit kinds whose alert the source raises itself, with a better title and body (the
/// scheduler's failing jobs, heartbeat messages and rotation reminders, the daemon's failing
/// components, the gate's approval requests), or that must never become alerts (a failed
/// delivery alerting would loop). They stay in the audit log; with a low `min_severity` the
/// owner would otherwise hear of each twice.
const NOT_FORWARDED: [&str; 6] = [
    "job_failing",
    "heartbeat_message",
    "secret_rotation_due",
    "component_failed",
    "approval_requested",
    "alert_delivery_failed",
];

/// Opens the outbox of `config`; its delivery failures are recorded in `audit` (the plain
/// audit log, never the alerting sink).
pub fn open(config: &Config, audit: Arc<dyn AuditSink>) -> Result<Arc<Outbox>, RuntimeError> {
    let outbox = Outbox::open(Settings::from_config(config), Some(audit))
        .map_err(|e| RuntimeError::Store { dir: crate::state_dir(&config.home), message: e.to_string() })?;
    Ok(Arc::new(outbox))
}

/// An audit sink that records every event in `inner` and also sends those at or above `min`
/// to the owner — at most one per kind and agent within `repeat`; the first after a quiet spell
/// says how many were held back. A flood (a client hammering a blocked budget, a model retrying
/// a refused host command) is one notification, not hundreds on the owner's phone.
pub struct AlertingAudit {
    inner: Arc<dyn AuditSink>,
    notifier: Arc<dyn Notifier>,
    min: Severity,
    repeat: std::time::Duration,
    sent: std::sync::Mutex<Sent>,
}

/// (kind, agent) -> (when its last alert went, how many were held back since).
type Sent = std::collections::HashMap<(String, Option<String>), (i64, u64)>;

impl AlertingAudit {
    pub fn new(
        inner: Arc<dyn AuditSink>,
        notifier: Arc<dyn Notifier>,
        min: Severity,
        repeat: std::time::Duration,
    ) -> AlertingAudit {
        AlertingAudit { inner, notifier, min, repeat, sent: Default::default() }
    }

    /// Whether an alert for `event` goes out now, and how many like it were held back before.
    fn due(&self, event: &AuditEvent, now: i64) -> Option<u64> {
        let repeat = i64::try_from(self.repeat.as_millis()).unwrap_or(i64::MAX);
        if repeat == 0 {
            return Some(0);
        }
        let mut sent = self.sent.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (event.kind.clone(), event.agent.clone());
        match sent.get_mut(&key) {
            Some((last, held)) if now.saturating_sub(*last) < repeat => {
                *held += 1;
                None
            }
            Some((last, held)) => {
                let before = *held;
                (*last, *held) = (now, 0);
                Some(before)
            }
            None => {
                if sent.len() >= 1024 {
                    // Kinds and agents are few; a map this big is stale entries: start over.
                    sent.retain(|_, (last, _)| now.saturating_sub(*last) < repeat);
                }
                sent.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

impl AuditSink for AlertingAudit {
    fn record(&self, event: AuditEvent) {
        if event.severity >= self.min
            && !NOT_FORWARDED.contains(&event.kind.as_str())
            && let Some(held) = self.due(&event, clawdia_core::time::now_ms())
        {
            let mut alert = alert_of(&event);
            if held > 0 {
                alert.body.push_str(&format!(
                    "\n({held} more like it since the last alert were not sent separately; see the audit log)"
                ));
            }
            self.notifier.notify(alert);
        }
        self.inner.record(event);
    }
}

/// The alert for an audit event: the kind and the detail's first line as title; the detail,
/// agent and session as body.
pub fn alert_of(event: &AuditEvent) -> Alert {
    let detail = clawdia_core::one_line(&event.detail);
    let short: String = detail.chars().take(100).collect();
    let ellipsis = if detail.chars().count() > 100 { "…" } else { "" };
    let mut body = event.detail.clone();
    if let Some(agent) = &event.agent {
        body.push_str(&format!("\nagent: {agent}"));
    }
    if let Some(session) = &event.session {
        body.push_str(&format!("\nsession: {session}"));
    }
    let title = format!("{}: {short}{ellipsis}", event.kind.replace('_', " "));
    let alert = Alert::new(&event.kind, event.severity, title, body);
    match &event.agent {
        Some(agent) => alert.agent(agent),
        None => alert,
    }
}

/// Delivery as a daemon component: alerts queued earlier (by this process or another) first;
/// it stops with the daemon's token, and what is still pending stays queued for the next start.
pub fn component(runtime: &Runtime) -> crate::daemon::Component {
    let outbox = runtime.outbox.clone();
    crate::daemon::Component::new("outbox", move |token: crate::daemon::CancellationToken| {
        let outbox = outbox.clone();
        async move {
            outbox.run(token.cancelled_owned()).await;
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<AuditEvent>>, Mutex<Vec<Alert>>);

    impl AuditSink for Recorder {
        fn record(&self, event: AuditEvent) {
            self.0.lock().unwrap().push(event);
        }
    }

    impl Notifier for Recorder {
        fn notify(&self, alert: Alert) {
            self.1.lock().unwrap().push(alert);
        }
    }

    #[test]
    fn events_at_or_above_the_threshold_become_alerts_and_all_are_recorded() {
        let recorder = Arc::new(Recorder::default());
        let sink = AlertingAudit::new(recorder.clone(), recorder.clone(), Severity(10), Duration::ZERO);
        sink.record(AuditEvent::new("tool_denied", Severity(9), "below"));
        sink.record(
            AuditEvent::new("path_escape", Severity(10), "read of /etc/shadow refused\nsecond line")
                .agent("main")
                .session("s-1"),
        );
        sink.record(AuditEvent::new("job_failing", Severity(13), "raised by the scheduler itself"));
        sink.record(AuditEvent::new("alert_delivery_failed", Severity(15), "never loops"));
        sink.record(AuditEvent::new("component_failed", Severity(15), "the daemon alerts itself"));
        sink.record(AuditEvent::new("approval_requested", Severity(15), "the gate alerts itself"));
        assert_eq!(recorder.0.lock().unwrap().len(), 6, "every event is still audited");
        let alerts = recorder.1.lock().unwrap().clone();
        assert_eq!(alerts.len(), 1, "{alerts:?}");
        assert_eq!(alerts[0].kind, "path_escape");
        assert_eq!(alerts[0].title, "path escape: read of /etc/shadow refused second line");
        assert_eq!(alerts[0].body, "read of /etc/shadow refused\nsecond line\nagent: main\nsession: s-1");
        assert_eq!(alerts[0].agent.as_deref(), Some("main"));
    }

    #[test]
    fn a_flood_of_one_kind_is_one_alert_and_the_next_says_how_many_were_held_back() {
        let recorder = Arc::new(Recorder::default());
        let sink =
            AlertingAudit::new(recorder.clone(), recorder.clone(), Severity(10), Duration::from_secs(600));
        let blocked = || AuditEvent::new("budget_block", Severity::HIGH, "over budget").agent("main");
        let now = 1_000_000;
        assert_eq!(sink.due(&blocked(), now), Some(0));
        for _ in 0..50 {
            assert_eq!(sink.due(&blocked(), now + 1_000), None);
        }
        // Another agent, or another kind, is its own stream (positive control).
        assert_eq!(sink.due(&blocked().agent("docs"), now + 1_000), Some(0));
        let refused = AuditEvent::new("elevated_refused", Severity::HIGH, "x").agent("main");
        assert_eq!(sink.due(&refused, now + 1_000), Some(0));
        // After the quiet spell: one alert, counting the 50 held back.
        assert_eq!(sink.due(&blocked(), now + 600_000), Some(50));
        assert_eq!(sink.due(&blocked(), now + 600_001), None);
        // Through `record`: all audited, one alert.
        for _ in 0..5 {
            sink.record(blocked().agent("ops"));
        }
        assert_eq!(recorder.0.lock().unwrap().len(), 5);
        assert_eq!(recorder.1.lock().unwrap().len(), 1);
    }
}
