//! The audit log: inserts, the severity filter and newest-first order of `recent_audit`, the
//! tracing event every record emits, and carrying on when the database write fails.

use std::sync::{Arc, Mutex};

use clawdia_core::{AuditEvent, AuditSink, Severity};

use crate::fresh;

#[test]
fn recent_audit_filters_by_severity_newest_first() {
    let (_dir, store) = fresh();
    let events = [
        AuditEvent::new("provider_fallback", Severity::INFO, "zai timed out; used anthropic"),
        AuditEvent::new("tool_denied", Severity::WARNING, "exec denied by policy").agent("main"),
        AuditEvent::new("auth_failure", Severity::HIGH, "bad token from 10.0.0.7"),
        AuditEvent::new("path_escape", Severity::CRITICAL, "read ../../etc/shadow")
            .agent("main")
            .session("s-1"),
        AuditEvent::new("budget_block", Severity::NOTICE, "daily budget reached").agent("main"),
    ];
    for event in events.clone() {
        store.record(event);
    }

    let high = store.recent_audit(Severity::HIGH, 10).unwrap();
    let kinds: Vec<&str> = high.iter().map(|record| record.event.kind.as_str()).collect();
    assert_eq!(kinds, ["path_escape", "auth_failure"]);
    assert_eq!(high[0].event, events[3]);
    assert_eq!(high[1].event, events[2]);
    assert!(high[0].id > high[1].id && high[0].at >= high[1].at);

    let all = store.recent_audit(Severity(0), 100).unwrap();
    let all_events: Vec<AuditEvent> = all.into_iter().map(|record| record.event).collect();
    assert_eq!(all_events, events.iter().rev().cloned().collect::<Vec<_>>());

    let newest_two = store.recent_audit(Severity(0), 2).unwrap();
    let kinds: Vec<&str> = newest_two.iter().map(|record| record.event.kind.as_str()).collect();
    assert_eq!(kinds, ["budget_block", "path_escape"]);
    assert!(store.recent_audit(Severity(15), 10).unwrap().is_empty());
}

#[derive(Debug, Clone, PartialEq)]
struct Captured {
    level: tracing::Level,
    fields: Vec<(String, String)>,
}

/// A minimal subscriber that keeps every event's level and fields.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

struct FieldVisitor<'a>(&'a mut Vec<(String, String)>);

impl tracing::field::Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push((field.name().to_string(), value.to_string()));
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_string(), format!("{value:?}")));
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Vec::new();
        event.record(&mut FieldVisitor(&mut fields));
        let level = *event.metadata().level();
        self.0.lock().unwrap().push(Captured { level, fields });
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

fn field<'a>(captured: &'a Captured, name: &str) -> Option<&'a str> {
    captured.fields.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

#[test]
fn each_record_is_also_a_tracing_event_at_its_level() {
    let (_dir, store) = fresh();
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        store.record(AuditEvent::new("provider_fallback", Severity::NOTICE, "used the fallback"));
        store.record(
            AuditEvent::new("tool_denied", Severity::WARNING, "exec denied").agent("main").session("s-9"),
        );
    });
    let events = capture.0.lock().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].level, tracing::Level::INFO);
    assert_eq!(field(&events[0], "kind"), Some("provider_fallback"));
    assert_eq!(field(&events[0], "agent"), None);
    assert_eq!(events[1].level, tracing::Level::WARN);
    assert_eq!(field(&events[1], "kind"), Some("tool_denied"));
    assert_eq!(field(&events[1], "agent"), Some("main"));
    assert_eq!(field(&events[1], "session"), Some("s-9"));
    assert_eq!(field(&events[1], "detail"), Some("exec denied"));
    assert_eq!(store.recent_audit(Severity(0), 10).unwrap().len(), 2);
}

#[test]
fn a_failing_audit_write_is_logged_and_the_caller_carries_on() {
    let (dir, store) = fresh();
    let connection = rusqlite::Connection::open(dir.path().join("audit.db")).unwrap();
    connection.execute_batch("DROP TABLE audit").unwrap();
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        store.record(AuditEvent::new("auth_failure", Severity::HIGH, "bad token"));
    });
    let events = capture.0.lock().unwrap().clone();
    let levels: Vec<tracing::Level> = events.iter().map(|event| event.level).collect();
    assert_eq!(levels, [tracing::Level::WARN, tracing::Level::ERROR], "{events:?}");
    assert!(field(&events[1], "error").is_some_and(|error| error.contains("no such table")), "{events:?}");
    assert!(store.recent_audit(Severity(0), 1).is_err());
    // The sessions database is unaffected.
    assert!(clawdia_core::SessionStore::open(&store, "main", "s-1", "b").is_ok());
}

#[test]
fn secret_values_are_masked_in_audit_rows_and_stored_messages() {
    use clawdia_core::{Message, SessionStore};
    let key = "sk-store-mask-71c0e4b2a9";
    clawdia_core::redact::register(key);
    let (dir, store) = fresh();
    store.record(AuditEvent::new(
        "provider_fallback",
        Severity::WARNING,
        format!("p/m failed: bad key {key}"),
    ));
    let detail = &store.recent_audit(Severity(0), 1).unwrap()[0].event.detail;
    assert_eq!(detail, "p/m failed: bad key [redacted]");

    store.open("main", "s-mask", "b").unwrap();
    let reply = format!("the proxy said: invalid key \"{key}\"");
    store.append("s-mask", &[Message::user("hi"), Message::assistant(reply)]).unwrap();
    let stored = store.messages("s-mask").unwrap();
    assert_eq!(stored[0].message, Message::user("hi"), "text without a secret is stored as is");
    assert_eq!(stored[1].message, Message::assistant("the proxy said: invalid key \"[redacted]\""));
    for name in ["sessions.db", "sessions.db-wal", "audit.db", "audit.db-wal"] {
        let bytes = std::fs::read(dir.path().join(name)).unwrap_or_default();
        assert!(!String::from_utf8_lossy(&bytes).contains(key), "{name} holds the key");
    }
}
