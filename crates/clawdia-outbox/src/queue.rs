//! `state/outbox.db`: the durable queue. One row per alert, one delivery row per (alert,
//! route) with its state (`pending` or `delivered`), the number of tries, when it is next due
//! and the last error. A delivery is claimed before it is sent by moving its due time past the
//! send's time limit (a lease), so two processes, or two passes of one, never send it at once,
//! and a process that dies mid-send leaves it due again once the lease runs out.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use clawdia_core::{Alert, Severity};
use rusqlite::{Connection, OptionalExtension as _, params};

use crate::OutboxError;

/// The file's name inside the state folder.
pub const FILE_NAME: &str = "outbox.db";

const SETTINGS: clawdia_sqlite::Settings = clawdia_sqlite::Settings {
    name: FILE_NAME,
    busy_timeout: Duration::from_secs(5),
    cache_kib: 256,
    statement_cache: 16,
    mmap_mib: 0,
};

/// Forward-only migrations, tracked by `PRAGMA user_version`; append, never edit.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE alerts (
        seq        INTEGER PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        created_ms INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        severity   INTEGER NOT NULL,
        title      TEXT NOT NULL,
        body       TEXT NOT NULL,
        agent      TEXT,
        approval   TEXT
    );
    CREATE TABLE deliveries (
        alert_seq    INTEGER NOT NULL REFERENCES alerts (seq) ON DELETE CASCADE,
        route        TEXT NOT NULL,
        status       TEXT NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_ms      INTEGER NOT NULL,
        last_error   TEXT,
        delivered_ms INTEGER,
        PRIMARY KEY (alert_seq, route)
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_due ON deliveries (route, status, next_ms);
"];

/// The alert in columns `id, created_ms, kind, severity, title, body, agent, approval` of
/// `row`, starting at column `first`.
fn queued_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Queued> {
    Ok(Queued {
        id: row.get(first)?,
        created_ms: row.get(first + 1)?,
        alert: Alert {
            kind: row.get(first + 2)?,
            severity: Severity(row.get(first + 3)?),
            title: row.get(first + 4)?,
            body: row.get(first + 5)?,
            agent: row.get(first + 6)?,
            approval: row.get(first + 7)?,
        },
    })
}

/// An alert as stored, with what every route shows: its id and when it was raised.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    pub id: String,
    pub created_ms: i64,
    pub alert: Alert,
}

/// A delivery due now, claimed by this process.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub seq: i64,
    /// Tries before this one.
    pub attempts: u32,
    pub queued: Queued,
}

/// One delivery, for `pending`-style listings and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub alert_id: String,
    pub kind: String,
    pub route: String,
    pub delivered: bool,
    pub attempts: u32,
    pub last_error: Option<String>,
}

pub struct Queue {
    connection: Mutex<Connection>,
    path: PathBuf,
}

impl Queue {
    /// Opens (creating and migrating) `state_dir/outbox.db`.
    pub fn open(state_dir: &Path) -> Result<Queue, OutboxError> {
        let error = |e: clawdia_sqlite::OpenError| OutboxError::Db(e.to_string());
        clawdia_sqlite::create_private_dir(state_dir).map_err(error)?;
        let path = state_dir.join(FILE_NAME);
        let connection = clawdia_sqlite::open(&path, &SETTINGS, MIGRATIONS).map_err(error)?;
        connection
            .execute_batch("PRAGMA foreign_keys = ON;")
            .map_err(|e| OutboxError::Db(format!("{}: {e}", path.display())))?;
        Ok(Queue { connection: Mutex::new(connection), path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T, OutboxError> {
        let mut connection = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut connection).map_err(|e| OutboxError::Db(format!("{FILE_NAME}: {e}")))
    }

    /// Stores `alert` under `id` with one pending delivery per route, due now, in one
    /// transaction.
    pub fn push(&self, id: &str, created_ms: i64, alert: &Alert, routes: &[&str]) -> Result<(), OutboxError> {
        self.with(|connection| {
            let transaction = connection.transaction()?;
            transaction.execute(
                "INSERT INTO alerts (id, created_ms, kind, severity, title, body, agent, approval)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    id,
                    created_ms,
                    alert.kind,
                    alert.severity.0,
                    alert.title,
                    alert.body,
                    alert.agent,
                    alert.approval
                ],
            )?;
            let seq = transaction.last_insert_rowid();
            for route in routes {
                transaction.execute(
                    "INSERT INTO deliveries (alert_seq, route, status, next_ms) VALUES (?1, ?2, 'pending', ?3)",
                    params![seq, route, created_ms],
                )?;
            }
            transaction.commit()
        })
    }

    /// Claims up to `limit` deliveries of `route` due at `now_ms`, oldest alert first: each
    /// becomes due again only at `now_ms + lease` unless it is marked first.
    pub fn claim_due(
        &self,
        route: &str,
        now_ms: i64,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Due>, OutboxError> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4);
        self.with(|connection| {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let due = {
                let mut statement = transaction.prepare_cached(
                    "SELECT d.alert_seq, d.attempts, a.id, a.created_ms, a.kind, a.severity, a.title, a.body,
                            a.agent, a.approval
                     FROM deliveries d JOIN alerts a ON a.seq = d.alert_seq
                     WHERE d.route = ?1 AND d.status = 'pending' AND d.next_ms <= ?2
                     ORDER BY d.alert_seq LIMIT ?3",
                )?;
                let rows = statement.query_map(params![route, now_ms, limit as i64], |row| {
                    Ok(Due { seq: row.get(0)?, attempts: row.get(1)?, queued: queued_at(row, 2)? })
                })?;
                rows.collect::<rusqlite::Result<Vec<Due>>>()?
            };
            for delivery in &due {
                transaction.execute(
                    "UPDATE deliveries SET next_ms = ?3 WHERE alert_seq = ?1 AND route = ?2",
                    params![delivery.seq, route, now_ms.saturating_add(lease_ms)],
                )?;
            }
            transaction.commit()?;
            Ok(due)
        })
    }

    /// Records that `route` accepted the alert.
    pub fn delivered(&self, seq: i64, route: &str, now_ms: i64) -> Result<(), OutboxError> {
        self.with(|connection| {
            connection.execute(
                "UPDATE deliveries SET status = 'delivered', attempts = attempts + 1, delivered_ms = ?3,
                        last_error = NULL
                 WHERE alert_seq = ?1 AND route = ?2",
                params![seq, route, now_ms],
            )?;
            Ok(())
        })
    }

    /// Records a failed try; the delivery is due again at `next_ms`.
    pub fn failed(&self, seq: i64, route: &str, error: &str, next_ms: i64) -> Result<(), OutboxError> {
        self.with(|connection| {
            connection.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_error = ?3, next_ms = ?4
                 WHERE alert_seq = ?1 AND route = ?2 AND status = 'pending'",
                params![seq, route, error, next_ms],
            )?;
            Ok(())
        })
    }

    /// When the next pending delivery of `route` is due, if any.
    pub fn next_due(&self, route: &str) -> Result<Option<i64>, OutboxError> {
        self.with(|connection| {
            connection
                .query_row(
                    "SELECT MIN(next_ms) FROM deliveries WHERE route = ?1 AND status = 'pending'",
                    params![route],
                    |row| row.get::<_, Option<i64>>(0),
                )
                .optional()
                .map(Option::flatten)
        })
    }

    /// The latest `limit` alerts, newest first.
    pub fn recent(&self, limit: usize) -> Result<Vec<Queued>, OutboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|connection| {
            let mut statement = connection.prepare_cached(
                "SELECT id, created_ms, kind, severity, title, body, agent, approval
                 FROM alerts ORDER BY seq DESC LIMIT ?1",
            )?;
            let rows = statement.query_map(params![limit], |row| queued_at(row, 0))?;
            rows.collect()
        })
    }

    /// Every delivery, oldest alert first.
    pub fn deliveries(&self) -> Result<Vec<Delivery>, OutboxError> {
        self.with(|connection| {
            let mut statement = connection.prepare(
                "SELECT a.id, a.kind, d.route, d.status, d.attempts, d.last_error
                 FROM deliveries d JOIN alerts a ON a.seq = d.alert_seq ORDER BY d.alert_seq, d.route",
            )?;
            let rows = statement.query_map([], |row| {
                Ok(Delivery {
                    alert_id: row.get(0)?,
                    kind: row.get(1)?,
                    route: row.get(2)?,
                    delivered: row.get::<_, String>(3)? == "delivered",
                    attempts: row.get(4)?,
                    last_error: row.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Removes alerts raised before `before_ms` whose every delivery is done; returns how many.
    pub fn prune(&self, before_ms: i64) -> Result<usize, OutboxError> {
        self.with(|connection| {
            connection.execute(
                "DELETE FROM alerts WHERE created_ms < ?1 AND NOT EXISTS
                   (SELECT 1 FROM deliveries d WHERE d.alert_seq = alerts.seq AND d.status = 'pending')",
                params![before_ms],
            )
        })
    }
}
