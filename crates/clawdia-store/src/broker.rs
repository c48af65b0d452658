//! `broker.db`: requests awaiting the owner. Today these are the tool gate's approval requests;
//! the request broker adds kinds of its own to the same table later. Every state change is one
//! `UPDATE ... WHERE status = ?` (compare-and-set), so two deciders racing — the CLI and the
//! gateway, or two browsers — cannot both win, and a decided request is never decided again.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use clawdia_core::{Approval, ApprovalStatus, ApprovalStore, StoreError, Transition, TurnOrigin};
use rusqlite::{Connection, OptionalExtension, Row, params};

use crate::schema;

/// The broker's database.
pub struct Broker {
    db: Mutex<Connection>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, kind, status, agent, session, call_id, tool, arguments, origin, sender, reason, \
                       created_at, expires_at, decided_at, note, result";

fn db_error(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |error| StoreError::Database(format!("broker.db: {context}: {error}"))
}

fn origin_text(origin: TurnOrigin) -> &'static str {
    origin.as_str()
}

fn parse_origin(text: &str) -> Option<TurnOrigin> {
    [
        TurnOrigin::Cli,
        TurnOrigin::Api,
        TurnOrigin::Scheduler,
        TurnOrigin::Subagent,
        TurnOrigin::Telegram,
        TurnOrigin::Email,
    ]
    .into_iter()
    .find(|origin| origin.as_str() == text || (text == "scheduler" && *origin == TurnOrigin::Scheduler))
}

fn row(row: &Row<'_>) -> rusqlite::Result<Result<Approval, String>> {
    let status: String = row.get(2)?;
    let origin: String = row.get(8)?;
    let Some(status) = ApprovalStatus::parse(&status) else {
        return Ok(Err(format!("unknown status `{status}`")));
    };
    let Some(origin) = parse_origin(&origin) else {
        return Ok(Err(format!("unknown origin `{origin}`")));
    };
    Ok(Ok(Approval {
        id: row.get(0)?,
        kind: row.get(1)?,
        status,
        agent: row.get(3)?,
        session: row.get(4)?,
        call_id: row.get(5)?,
        tool: row.get(6)?,
        arguments: row.get(7)?,
        origin,
        sender: row.get(9)?,
        reason: row.get(10)?,
        created_at: row.get(11)?,
        expires_at: row.get(12)?,
        decided_at: row.get(13)?,
        note: row.get(14)?,
        result: row.get(15)?,
    }))
}

impl Broker {
    /// Opens (creating when missing) `broker.db` in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Broker, StoreError> {
        schema::create_state_dir(state_dir)?;
        let db = schema::open_database(&state_dir.join(schema::BROKER_FILE), schema::BROKER_MIGRATIONS)?;
        Ok(Broker { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The requests matching `filter` (a `WHERE` clause with one parameter, `?1`).
    fn select(&self, filter: &str, value: i64, doing: &'static str) -> Result<Vec<Approval>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(&format!("SELECT {COLUMNS} FROM requests WHERE {filter}"))
            .map_err(db_error(doing))?;
        let rows = statement.query_map([value], row).map_err(db_error(doing))?;
        Broker::collect(rows)
    }

    fn collect(
        rows: impl Iterator<Item = rusqlite::Result<Result<Approval, String>>>,
    ) -> Result<Vec<Approval>, StoreError> {
        let mut out = Vec::new();
        for row in rows {
            match row.map_err(db_error("reading requests"))? {
                Ok(approval) => out.push(approval),
                Err(problem) => tracing::warn!("broker.db: a request was skipped: {problem}"),
            }
        }
        Ok(out)
    }
}

impl ApprovalStore for Broker {
    fn create(&self, approval: &Approval) -> Result<(), StoreError> {
        let redacted = |text: &str| clawdia_core::redact::redact(text).into_owned();
        self.db()
            .prepare_cached(&format!(
                "INSERT INTO requests ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
            ))
            .and_then(|mut statement| {
                statement.execute(params![
                    approval.id,
                    approval.kind,
                    approval.status.as_str(),
                    approval.agent,
                    approval.session,
                    approval.call_id,
                    approval.tool,
                    approval.arguments,
                    origin_text(approval.origin),
                    approval.sender,
                    redacted(&approval.reason),
                    approval.created_at,
                    approval.expires_at,
                    approval.decided_at,
                    approval.note,
                    approval.result.as_deref().map(redacted),
                ])
            })
            .map(drop)
            .map_err(db_error("storing a request"))
    }

    fn get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        let db = self.db();
        let found = db
            .prepare_cached(&format!("SELECT {COLUMNS} FROM requests WHERE id = ?1"))
            .and_then(|mut statement| statement.query_row([id], row).optional())
            .map_err(db_error("reading a request"))?;
        match found {
            None => Ok(None),
            Some(Ok(approval)) => Ok(Some(approval)),
            Some(Err(problem)) => Err(StoreError::Database(format!("broker.db: request `{id}`: {problem}"))),
        }
    }

    fn list(&self, pending_only: bool, limit: usize) -> Result<Vec<Approval>, StoreError> {
        let db = self.db();
        let filter = if pending_only { "WHERE status = 'pending'" } else { "" };
        let mut statement = db
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM requests {filter} ORDER BY created_at DESC, id LIMIT ?1"
            ))
            .map_err(db_error("listing requests"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = statement.query_map([limit], row).map_err(db_error("listing requests"))?;
        Broker::collect(rows)
    }

    fn transition(&self, change: Transition<'_>) -> Result<bool, StoreError> {
        let result = change.result.map(|text| clawdia_core::redact::redact(text).into_owned());
        let changed = self
            .db()
            .prepare_cached(
                "UPDATE requests SET status = ?3,
                    decided_at = COALESCE(decided_at, ?4),
                    note = COALESCE(?5, note),
                    result = COALESCE(?6, result)
                 WHERE id = ?1 AND status = ?2",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    change.id,
                    change.from.as_str(),
                    change.to.as_str(),
                    change.at,
                    change.note,
                    result,
                ])
            })
            .map_err(db_error("updating a request"))?;
        Ok(changed == 1)
    }

    fn stranded(&self, before: i64) -> Result<Vec<Approval>, StoreError> {
        self.select(
            "status = 'approved' AND decided_at <= ?1 ORDER BY decided_at",
            before,
            "finding stranded requests",
        )
    }

    fn due_to_expire(&self, now: i64) -> Result<Vec<Approval>, StoreError> {
        self.select(
            "status = 'pending' AND expires_at <= ?1 ORDER BY expires_at",
            now,
            "finding expired requests",
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn stranded_requests_are_approved_ones_decided_before_the_cutoff() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        for (id, at) in [("old", 100), ("new", 900)] {
            broker.create(&request(id, 10)).unwrap();
            let change = Transition {
                id,
                from: ApprovalStatus::Pending,
                to: ApprovalStatus::Approved,
                at,
                note: None,
                result: None,
            };
            assert!(broker.transition(change).unwrap());
        }
        broker.create(&request("waiting", 10)).unwrap();
        let stranded: Vec<String> = broker.stranded(500).unwrap().into_iter().map(|a| a.id).collect();
        assert_eq!(stranded, ["old"]);
    }

    use super::*;

    fn request(id: &str, created_at: i64) -> Approval {
        Approval {
            id: id.to_string(),
            kind: "tool_call".into(),
            status: ApprovalStatus::Pending,
            agent: "main".into(),
            session: "s1".into(),
            call_id: "call_1".into(),
            tool: "exec".into(),
            arguments: r#"{"command":"ls"}"#.into(),
            origin: TurnOrigin::Cli,
            sender: None,
            reason: "`exec` is in ask".into(),
            created_at,
            expires_at: created_at + 1_000,
            decided_at: None,
            note: None,
            result: None,
        }
    }

    #[test]
    fn a_request_is_decided_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        broker.create(&request("a1", 10)).unwrap();
        broker.create(&request("b2", 20)).unwrap();
        let approve = |from| Transition {
            id: "a1",
            from,
            to: ApprovalStatus::Approved,
            at: 50,
            note: Some("ok"),
            result: None,
        };
        // Positive control: the first decision applies.
        assert!(broker.transition(approve(ApprovalStatus::Pending)).unwrap());
        // A second decision, or a deny racing it, does not.
        assert!(!broker.transition(approve(ApprovalStatus::Pending)).unwrap());
        let deny = Transition {
            id: "a1",
            from: ApprovalStatus::Pending,
            to: ApprovalStatus::Denied,
            at: 60,
            note: None,
            result: None,
        };
        assert!(!broker.transition(deny).unwrap());
        drop(broker);
        let broker = Broker::open(dir.path()).unwrap();
        let a1 = broker.get("a1").unwrap().unwrap();
        assert_eq!(
            (a1.status, a1.decided_at, a1.note.as_deref()),
            (ApprovalStatus::Approved, Some(50), Some("ok"))
        );
        assert_eq!(broker.list(true, 10).unwrap().iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["b2"]);
        assert_eq!(broker.list(false, 10).unwrap().len(), 2);
        assert_eq!(broker.due_to_expire(1_019).unwrap().len(), 0);
        assert_eq!(broker.due_to_expire(1_020).unwrap()[0].id, "b2");
        assert!(broker.get("zz").unwrap().is_none());
    }
}
