//! Clawdia's durable state in SQLite: sessions and their transcripts, the usage ledger that
//! budgets read, and the audit log. `Store` implements the `SessionStore` and `AuditSink` seams
//! of `clawdia-core`; everything else here (export, OpenClaw import, integrity check) serves the
//! CLI.
//!
//! Two database files live in the state dir: `sessions.db` (sessions, messages, usage) and
//! `audit.db` (audit events), each behind its own mutex so an audit write never waits for a
//! transcript write. Both run in WAL mode with short write transactions, so the gateway and a
//! CLI process can use the same files at the same time.
//!
//! Architecture invariant: this crate depends on no clawdia crate but `clawdia-core`, and all SQL
//! of these two databases lives here. Nothing read from disk (files, database rows) is trusted:
//! bad contents become `StoreError::Database` or a reported problem, never a panic.

mod audit;
mod broker;
mod export;
mod integrity;
mod openclaw;
mod repair;
mod schema;
mod sessions;
mod web;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use clawdia_core::{AuditEvent, Message, StoreError};
use rusqlite::Connection;
use serde::Serialize;

pub use broker::{Broker, ElevationChange};
pub use repair::SYNTHETIC_RESULT_TEXT;
pub use web::Browsers;

/// The SQLite store. `Send + Sync`: each database is one connection behind a mutex, with its
/// prepared statements cached on the connection.
pub struct Store {
    sessions: Mutex<Connection>,
    audit: Mutex<Connection>,
    dir: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish_non_exhaustive()
    }
}

/// One transcript entry as stored: its position, when it was written, and the message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredMessage {
    /// Position in the transcript, from 1, without gaps.
    pub seq: u64,
    /// Unix milliseconds.
    pub at: i64,
    pub message: Message,
}

/// One audit log row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub event: AuditEvent,
}

/// What `import_openclaw_jsonl` did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportReport {
    /// The new session holding the imported transcript.
    pub session_id: String,
    /// Messages taken from the file (not counting synthetic results).
    pub imported: usize,
    /// Synthetic error results added for tool calls the file never answered.
    pub repaired: usize,
    /// Lines (numbered from 1) or parts of lines that were not imported, with the reason.
    pub skipped_lines: Vec<(usize, String)>,
}

impl Store {
    /// Opens (creating when missing) `sessions.db` and `audit.db` in `state_dir`, creating the
    /// directory with mode 0700, and migrates both schemas forward.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        schema::create_state_dir(state_dir)?;
        let sessions =
            schema::open_database(&state_dir.join(schema::SESSIONS_FILE), schema::SESSIONS_MIGRATIONS)?;
        let audit = schema::open_database(&state_dir.join(schema::AUDIT_FILE), schema::AUDIT_MIGRATIONS)?;
        Ok(Store { sessions: Mutex::new(sessions), audit: Mutex::new(audit), dir: state_dir.to_path_buf() })
    }

    /// The state dir this store was opened on.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn sessions_db(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no open transaction behind (rusqlite rolls back
        // on drop), so a poisoned connection is still usable.
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn audit_db(&self) -> MutexGuard<'_, Connection> {
        self.audit.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Maps a SQLite error into the seam's error, with what we were doing.
fn db_error(context: &str) -> impl FnOnce(rusqlite::Error) -> StoreError + '_ {
    move |error| StoreError::Database(format!("{context}: {error}"))
}
