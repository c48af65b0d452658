//! `broker.db`: requests awaiting the owner: the tool gate's approval requests (`requests`), the
//! request broker's elevation requests (`elevations`), and the nonces the bridge has seen. Every state change is one
//! `UPDATE ... WHERE status = ?` (compare-and-set), so two deciders racing — the CLI and the
//! gateway, or two browsers — cannot both win, and a decided request is never decided again.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use clawdia_core::elevation::{Elevation, ElevationStatus, Filed};
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
        TurnOrigin::Broker,
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

/// The elevation requests of the request broker and the bridge's nonces. Every state change
/// is a compare-and-set on `status`.
impl Broker {
    /// Stores a new request; `false` when one with its id is there already (an inbox file seen
    /// twice).
    pub fn insert_elevation(&self, elevation: &Elevation) -> Result<bool, StoreError> {
        let filed =
            serde_json::to_string(&elevation.filed).map_err(|e| StoreError::Database(e.to_string()))?;
        let inserted = self
            .db()
            .execute(
                "INSERT OR IGNORE INTO elevations (id, status, filed, assessment, note, result, created_at, updated_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    elevation.id,
                    elevation.status.as_str(),
                    filed,
                    elevation.assessment,
                    elevation.note,
                    elevation.result,
                    elevation.created_at,
                    elevation.updated_at,
                    elevation.expires_at
                ],
            )
            .map_err(db_error("storing an elevation request"))?;
        Ok(inserted == 1)
    }

    /// One request by id.
    pub fn elevation(&self, id: &str) -> Result<Option<Elevation>, StoreError> {
        let db = self.db();
        let found = db
            .query_row(
                &format!("SELECT {ELEVATION_COLUMNS} FROM elevations WHERE id = ?1"),
                [id],
                elevation_row,
            )
            .optional()
            .map_err(db_error("reading an elevation request"))?;
        found.map(|row| row.map_err(StoreError::Database)).transpose()
    }

    /// Requests, newest first; only those in `statuses` when given.
    pub fn elevations(
        &self,
        statuses: &[ElevationStatus],
        limit: usize,
    ) -> Result<Vec<Elevation>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare(&format!(
                "SELECT {ELEVATION_COLUMNS} FROM elevations ORDER BY created_at DESC, id LIMIT ?1"
            ))
            .map_err(db_error("reading elevation requests"))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows =
            statement.query_map([limit], elevation_row).map_err(db_error("reading elevation requests"))?;
        let mut out = Vec::new();
        for row in rows {
            match row.map_err(db_error("reading elevation requests"))? {
                Ok(elevation) if statuses.is_empty() || statuses.contains(&elevation.status) => {
                    out.push(elevation)
                }
                Ok(_) => {}
                Err(problem) => tracing::warn!("broker.db: an elevation request was skipped: {problem}"),
            }
        }
        Ok(out)
    }

    /// Moves request `id` from one of `from` to `to` (and sets the fields given); the request as
    /// it is now, or `None` when it was not in one of `from` (someone else moved it first).
    pub fn move_elevation(
        &self,
        id: &str,
        from: &[ElevationStatus],
        to: ElevationStatus,
        change: ElevationChange,
        now: i64,
    ) -> Result<Option<Elevation>, StoreError> {
        let mut db = self.db();
        let transaction = db.transaction().map_err(db_error("moving an elevation request"))?;
        let current: Option<(String, String)> = transaction
            .query_row("SELECT status, filed FROM elevations WHERE id = ?1", [id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(db_error("moving an elevation request"))?;
        let Some((current, filed)) = current else { return Ok(None) };
        if !from.iter().any(|status| status.as_str() == current) {
            return Ok(None);
        }
        // New commands (a modification the owner asked for) replace the proposed ones.
        let filed = match change.commands {
            None => filed,
            Some(commands) => {
                let mut parsed: Filed = serde_json::from_str(&filed)
                    .map_err(|e| StoreError::Database(format!("broker.db: {e}")))?;
                parsed.commands = commands;
                serde_json::to_string(&parsed).map_err(|e| StoreError::Database(e.to_string()))?
            }
        };
        let redacted =
            |text: Option<String>| text.map(|text| clawdia_core::redact::redact(&text).into_owned());
        transaction
            .execute(
                "UPDATE elevations SET status = ?2, updated_at = ?3,
                     assessment = COALESCE(?4, assessment), note = COALESCE(?5, note), result = COALESCE(?6, result),
                     filed = ?7
                 WHERE id = ?1",
                params![
                    id,
                    to.as_str(),
                    now,
                    redacted(change.assessment),
                    redacted(change.note),
                    redacted(change.result),
                    filed
                ],
            )
            .map_err(db_error("moving an elevation request"))?;
        transaction.commit().map_err(db_error("moving an elevation request"))?;
        drop(db);
        self.elevation(id)
    }

    /// Records a bridge message's nonce; `false` when it was seen before. Nonces older than
    /// `forget_before` (Unix seconds) are dropped: their messages fall outside the window anyway.
    pub fn record_nonce(&self, nonce: &str, ts: i64, forget_before: i64) -> Result<bool, StoreError> {
        let db = self.db();
        db.execute("DELETE FROM bridge_nonces WHERE ts < ?1", [forget_before])
            .map_err(db_error("pruning bridge nonces"))?;
        let inserted = db
            .execute("INSERT OR IGNORE INTO bridge_nonces (nonce, ts) VALUES (?1, ?2)", params![nonce, ts])
            .map_err(db_error("recording a bridge nonce"))?;
        Ok(inserted == 1)
    }
}

/// Fields a state change sets (the others are kept).
#[derive(Debug, Clone, Default)]
pub struct ElevationChange {
    pub assessment: Option<String>,
    pub note: Option<String>,
    pub result: Option<String>,
    /// Replaces the proposed commands.
    pub commands: Option<Vec<Vec<String>>>,
}

const ELEVATION_COLUMNS: &str =
    "id, status, filed, assessment, note, result, created_at, updated_at, expires_at";

fn elevation_row(row: &Row<'_>) -> rusqlite::Result<Result<Elevation, String>> {
    let status: String = row.get(1)?;
    let filed: String = row.get(2)?;
    let Some(status) = ElevationStatus::parse(&status) else {
        return Ok(Err(format!("unknown status `{status}`")));
    };
    let filed: Filed = match serde_json::from_str(&filed) {
        Ok(filed) => filed,
        Err(error) => return Ok(Err(format!("unreadable request: {error}"))),
    };
    Ok(Ok(Elevation {
        id: row.get(0)?,
        status,
        filed,
        assessment: row.get(3)?,
        note: row.get(4)?,
        result: row.get(5)?,
        created_at: row.get(6)?,
        updated_at: row.get(7)?,
        expires_at: row.get(8)?,
    }))
}

#[cfg(test)]
mod elevation_tests {
    use clawdia_core::elevation::Urgency;

    use super::*;

    fn request(id: &str) -> Elevation {
        Elevation {
            id: id.into(),
            status: ElevationStatus::Received,
            filed: Filed {
                action: "restart nginx".into(),
                reason: "config changed".into(),
                commands: vec![vec!["/usr/bin/systemctl".into(), "restart".into(), "nginx".into()]],
                urgency: Urgency::Normal,
                agent: Some("main".into()),
                session: None,
            },
            assessment: None,
            note: None,
            result: None,
            created_at: 1,
            updated_at: 1,
            expires_at: 100,
        }
    }

    #[test]
    fn a_request_is_stored_once_and_moves_only_from_the_expected_state() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        assert!(broker.insert_elevation(&request("e1")).unwrap());
        assert!(!broker.insert_elevation(&request("e1")).unwrap(), "an inbox file seen twice");
        let change = ElevationChange { assessment: Some("low risk".into()), ..Default::default() };
        let moved = broker
            .move_elevation("e1", &[ElevationStatus::Received], ElevationStatus::AwaitingOperator, change, 5)
            .unwrap()
            .unwrap();
        assert_eq!(
            (moved.status, moved.assessment.as_deref(), moved.updated_at),
            (ElevationStatus::AwaitingOperator, Some("low risk"), 5)
        );
        // A second decider loses: the request is no longer awaiting.
        let approve = |note: &str| {
            broker
                .move_elevation(
                    "e1",
                    &[ElevationStatus::AwaitingOperator],
                    ElevationStatus::Approved,
                    ElevationChange { note: Some(note.into()), ..Default::default() },
                    6,
                )
                .unwrap()
        };
        assert!(approve("yes").is_some());
        assert!(approve("yes again").is_none());
        assert_eq!(broker.elevation("e1").unwrap().unwrap().note.as_deref(), Some("yes"));
        assert_eq!(broker.elevations(&[ElevationStatus::Approved], 10).unwrap().len(), 1);
        assert!(broker.elevations(&[ElevationStatus::Denied], 10).unwrap().is_empty());
        assert!(
            broker
                .move_elevation(
                    "nope",
                    &[ElevationStatus::Received],
                    ElevationStatus::Denied,
                    ElevationChange::default(),
                    7
                )
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_nonce_is_accepted_once_and_old_ones_are_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let broker = Broker::open(dir.path()).unwrap();
        assert!(broker.record_nonce("aa", 1_000, 0).unwrap());
        assert!(!broker.record_nonce("aa", 1_000, 0).unwrap());
        // Reopened: still seen.
        drop(broker);
        let broker = Broker::open(dir.path()).unwrap();
        assert!(!broker.record_nonce("aa", 1_000, 500).unwrap());
        assert!(broker.record_nonce("bb", 2_000, 1_500).unwrap(), "pruning keeps working");
    }
}
