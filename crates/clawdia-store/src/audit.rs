//! `audit.db`: the `AuditSink` implementation and the newest-first query `clawdia status` uses.
//!
//! Recording never fails the caller: a database error is logged and the event is still emitted
//! as a tracing event (warn from severity 7, info below), so it reaches the logs either way.
//! Secret values are masked (`clawdia_core::redact`) before the event goes to either.

use clawdia_core::{AuditEvent, AuditSink, Severity, StoreError};
use rusqlite::params;

use crate::{AuditRecord, Store, db_error};
use clawdia_core::redact::redact_string;
use clawdia_core::time::now_ms;

impl AuditSink for Store {
    fn record(&self, mut event: AuditEvent) {
        event.detail = redact_string(event.detail);
        event.session = event.session.map(redact_string);
        if event.severity >= Severity::WARNING {
            tracing::warn!(
                kind = %event.kind,
                severity = event.severity.0,
                agent = event.agent.as_deref(),
                session = event.session.as_deref(),
                detail = %event.detail,
                "audit"
            );
        } else {
            tracing::info!(
                kind = %event.kind,
                severity = event.severity.0,
                agent = event.agent.as_deref(),
                session = event.session.as_deref(),
                detail = %event.detail,
                "audit"
            );
        }
        if let Err(error) = self.insert_audit(&event, now_ms()) {
            tracing::error!(%error, kind = %event.kind, "could not write an audit event");
        }
    }
}

impl Store {
    /// The newest `limit` audit records at or above `min_severity`, newest first.
    pub fn recent_audit(&self, min_severity: Severity, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let connection = self.audit_db();
        let mut statement = connection
            .prepare_cached(
                "SELECT id, at, kind, severity, agent, session, detail FROM audit
                 WHERE severity >= ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(db_error("reading the audit log"))?;
        let rows = statement
            .query_map(params![min_severity.0, limit], |row| {
                let severity: i64 = row.get(3)?;
                Ok(AuditRecord {
                    id: row.get(0)?,
                    at: row.get(1)?,
                    event: AuditEvent {
                        kind: row.get(2)?,
                        severity: Severity(u8::try_from(severity.clamp(0, 255)).unwrap_or(u8::MAX)),
                        agent: row.get(4)?,
                        session: row.get(5)?,
                        detail: row.get(6)?,
                    },
                })
            })
            .map_err(db_error("reading the audit log"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error("reading the audit log"))
    }

    fn insert_audit(&self, event: &AuditEvent, at: i64) -> Result<(), StoreError> {
        let connection = self.audit_db();
        connection
            .prepare_cached(
                "INSERT INTO audit (at, kind, severity, agent, session, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    at,
                    event.kind,
                    event.severity.0,
                    event.agent,
                    event.session,
                    event.detail
                ])
            })
            .map_err(db_error("writing the audit log"))?;
        Ok(())
    }
}
