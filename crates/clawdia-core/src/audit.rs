//! The audit seam: security and operations events with a numeric severity, written to SQLite
//! and the logs. Level 10 and above is "high": shown by `clawdia status`, later alerted.

use serde::{Deserialize, Serialize};

/// Severity level, 0 (debug) to 15 (critical). Named levels for the common cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Severity(pub u8);

impl Severity {
    pub const INFO: Severity = Severity(3);
    pub const NOTICE: Severity = Severity(5);
    pub const WARNING: Severity = Severity(7);
    pub const HIGH: Severity = Severity(10);
    pub const CRITICAL: Severity = Severity(13);

    pub fn is_high(self) -> bool {
        self >= Severity::HIGH
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// A stable snake_case kind: `auth_failure`, `tool_denied`, `path_escape`, `budget_block`,
    /// `provider_fallback`, ...
    pub kind: String,
    pub severity: Severity,
    pub agent: Option<String>,
    pub session: Option<String>,
    /// One human-readable line.
    pub detail: String,
}

impl AuditEvent {
    pub fn new(kind: &str, severity: Severity, detail: impl Into<String>) -> AuditEvent {
        AuditEvent { kind: kind.to_string(), severity, agent: None, session: None, detail: detail.into() }
    }

    pub fn agent(mut self, agent: &str) -> AuditEvent {
        self.agent = Some(agent.to_string());
        self
    }

    pub fn session(mut self, session: &str) -> AuditEvent {
        self.session = Some(session.to_string());
        self
    }
}

/// Where audit events go. Recording never fails the caller: sinks report their own errors.
pub trait AuditSink: Send + Sync {
    fn record(&self, event: AuditEvent);
}
