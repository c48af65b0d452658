//! `state/email.db`: where reading the mailbox got to (its UIDVALIDITY and the last UID taken),
//! every message taken, stored whole in the same transaction that advances the last UID and
//! before it is handled (`pending`, then `handling` while its turn runs, then `done`, or
//! `interrupted` when a restart found it mid-turn: never run twice), and which session each
//! thread's Message-IDs belong to.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, params};

/// The file's name inside the state folder.
pub const FILE_NAME: &str = "email.db";

const SETTINGS: clawdia_sqlite::Settings = clawdia_sqlite::Settings {
    name: FILE_NAME,
    busy_timeout: Duration::from_secs(5),
    cache_kib: 256,
    statement_cache: 16,
    mmap_mib: 0,
};

/// Forward-only migrations, tracked by `PRAGMA user_version`; append, never edit.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE mailbox (
        name        TEXT PRIMARY KEY NOT NULL,
        uidvalidity INTEGER NOT NULL,
        last_uid    INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE messages (
        seq         INTEGER PRIMARY KEY,
        mailbox     TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uid         INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        raw         BLOB NOT NULL,
        state       TEXT NOT NULL,
        note        TEXT,
        UNIQUE (mailbox, uidvalidity, uid)
    );
    CREATE INDEX messages_state ON messages (state, seq);
    CREATE TABLE threads (
        message_id TEXT PRIMARY KEY NOT NULL,
        agent      TEXT NOT NULL,
        session    TEXT NOT NULL
    ) WITHOUT ROWID;
"];

/// A database error, with what was being done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("email.db: {0}")]
pub struct StoreError(String);

fn db_error(doing: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |error| StoreError(format!("{doing}: {error}"))
}

/// A stored message waiting to be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub seq: i64,
    pub uid: u32,
    pub raw: Vec<u8>,
}

pub struct Store {
    db: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        clawdia_sqlite::create_private_dir(state_dir).map_err(|e| StoreError(e.to_string()))?;
        let db = clawdia_sqlite::open(&state_dir.join(FILE_NAME), &SETTINGS, MIGRATIONS)
            .map_err(|e| StoreError(e.to_string()))?;
        Ok(Store { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `(uidvalidity, last_uid)` of `mailbox`, if it was read before.
    pub fn position(&self, mailbox: &str) -> Result<Option<(u32, u32)>, StoreError> {
        self.db()
            .query_row("SELECT uidvalidity, last_uid FROM mailbox WHERE name = ?1", params![mailbox], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(db_error("reading the mailbox position"))
    }

    /// Starts reading `mailbox` (again) at `last_uid` under `uidvalidity`.
    pub fn reset_position(&self, mailbox: &str, uidvalidity: u32, last_uid: u32) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO mailbox (name, uidvalidity, last_uid) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET uidvalidity = ?2, last_uid = ?3",
                params![mailbox, uidvalidity, last_uid],
            )
            .map(|_| ())
            .map_err(db_error("saving the mailbox position"))
    }

    /// Stores message `uid` as `pending` and moves the position past it, in one transaction. A
    /// message already stored is not stored again.
    pub fn take(&self, mailbox: &str, uidvalidity: u32, uid: u32, raw: &[u8]) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(db_error("starting a transaction"))?;
        tx.execute(
            "INSERT OR IGNORE INTO messages (mailbox, uidvalidity, uid, received_at, raw, state)
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
            params![mailbox, uidvalidity, uid, clawdia_core::time::now_ms(), raw],
        )
        .map_err(db_error("storing a message"))?;
        tx.execute(
            "UPDATE mailbox SET last_uid = MAX(last_uid, ?3) WHERE name = ?1 AND uidvalidity = ?2",
            params![mailbox, uidvalidity, uid],
        )
        .map_err(db_error("advancing the mailbox position"))?;
        tx.commit().map_err(db_error("committing a message"))
    }

    /// Records message `uid` as `refused` with `note` without its content (too large to
    /// download) and moves the position past it.
    pub fn skip(&self, mailbox: &str, uidvalidity: u32, uid: u32, note: &str) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(db_error("starting a transaction"))?;
        tx.execute(
            "INSERT OR IGNORE INTO messages (mailbox, uidvalidity, uid, received_at, raw, state, note)
             VALUES (?1, ?2, ?3, ?4, x'', 'refused', ?5)",
            params![mailbox, uidvalidity, uid, clawdia_core::time::now_ms(), note],
        )
        .map_err(db_error("recording a message"))?;
        tx.execute(
            "UPDATE mailbox SET last_uid = MAX(last_uid, ?3) WHERE name = ?1 AND uidvalidity = ?2",
            params![mailbox, uidvalidity, uid],
        )
        .map_err(db_error("advancing the mailbox position"))?;
        tx.commit().map_err(db_error("committing a message"))
    }

    /// Messages a restart found mid-turn become `interrupted` (never run twice); their seqs.
    pub fn interrupt_handling(&self) -> Result<Vec<i64>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare("SELECT seq FROM messages WHERE state = 'handling' ORDER BY seq")
            .map_err(db_error("reading interrupted messages"))?;
        let seqs: Vec<i64> = statement
            .query_map([], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(db_error("reading interrupted messages"))?;
        db.execute(
            "UPDATE messages SET state = 'interrupted', note = 'the gateway stopped while its turn ran'
             WHERE state = 'handling'",
            [],
        )
        .map_err(db_error("marking interrupted messages"))?;
        Ok(seqs)
    }

    /// The messages stored and not handled yet, oldest first.
    pub fn pending(&self) -> Result<Vec<Stored>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare("SELECT seq, uid, raw FROM messages WHERE state = 'pending' ORDER BY seq")
            .map_err(db_error("reading pending messages"))?;
        statement
            .query_map([], |row| Ok(Stored { seq: row.get(0)?, uid: row.get(1)?, raw: row.get(2)? }))
            .and_then(Iterator::collect)
            .map_err(db_error("reading pending messages"))
    }

    /// Moves message `seq` to `state` with `note`.
    pub fn mark(&self, seq: i64, state: &str, note: &str) -> Result<(), StoreError> {
        self.db()
            .execute("UPDATE messages SET state = ?2, note = ?3 WHERE seq = ?1", params![seq, state, note])
            .map(|_| ())
            .map_err(db_error("marking a message"))
    }

    /// `(state, note)` of every message, oldest first (tests and status).
    pub fn states(&self) -> Result<Vec<(u32, String, Option<String>)>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare("SELECT uid, state, note FROM messages ORDER BY seq")
            .map_err(db_error("reading messages"))?;
        statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .and_then(Iterator::collect)
            .map_err(db_error("reading messages"))
    }

    /// The agent and session of the first of `message_ids` that belongs to a thread.
    pub fn thread(&self, message_ids: &[String]) -> Result<Option<(String, String)>, StoreError> {
        let db = self.db();
        for id in message_ids {
            let found = db
                .query_row("SELECT agent, session FROM threads WHERE message_id = ?1", params![id], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
                .map_err(db_error("reading a thread"))?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// Records that `message_ids` belong to `session` of `agent`.
    pub fn join_thread(&self, message_ids: &[String], agent: &str, session: &str) -> Result<(), StoreError> {
        let db = self.db();
        for id in message_ids {
            db.execute(
                "INSERT INTO threads (message_id, agent, session) VALUES (?1, ?2, ?3)
                 ON CONFLICT (message_id) DO UPDATE SET agent = ?2, session = ?3",
                params![id, agent, session],
            )
            .map_err(db_error("saving a thread"))?;
        }
        Ok(())
    }
}
