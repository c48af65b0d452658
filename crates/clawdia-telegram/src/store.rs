//! `state/telegram.db`: every update as received, stored before the poll that fetched it is
//! acknowledged (the next `getUpdates` offset is derived from what is stored), with its state
//! (`pending`, then `done` once handled); each chat's agent and session; pairing requests from
//! people the owner has not let in yet, and the users the owner let in.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, params};

/// The file's name inside the state folder.
pub const FILE_NAME: &str = "telegram.db";

const SETTINGS: clawdia_sqlite::Settings = clawdia_sqlite::Settings {
    name: FILE_NAME,
    busy_timeout: Duration::from_secs(5),
    cache_kib: 256,
    statement_cache: 16,
    mmap_mib: 0,
};

/// Forward-only migrations, tracked by `PRAGMA user_version`; append, never edit.
const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE updates (
        update_id   INTEGER PRIMARY KEY,
        received_at INTEGER NOT NULL,
        body        TEXT NOT NULL,
        state       TEXT NOT NULL,
        note        TEXT
    );
    CREATE INDEX updates_pending ON updates (state, update_id);
    CREATE TABLE chats (
        chat_id INTEGER PRIMARY KEY,
        agent   TEXT NOT NULL,
        session TEXT
    );
    CREATE TABLE pairings (
        code        TEXT PRIMARY KEY NOT NULL,
        user_id     INTEGER NOT NULL,
        username    TEXT,
        chat_id     INTEGER NOT NULL,
        created_at  INTEGER NOT NULL,
        approved_at INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE allowed (
        user_id  INTEGER PRIMARY KEY,
        added_at INTEGER NOT NULL,
        how      TEXT NOT NULL
    );
",
    "
    -- The key that signs approval buttons (made once, never leaves the file).
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value BLOB NOT NULL
    ) WITHOUT ROWID;
",
];

/// A database error, with what was being done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("telegram.db: {0}")]
pub struct StoreError(String);

fn db_error(doing: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |error| StoreError(format!("{doing}: {error}"))
}

/// A pairing request approved by the owner: who, and the chat to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approved {
    pub user_id: i64,
    pub username: Option<String>,
    pub chat_id: i64,
}

/// A pairing request still waiting for the owner.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PairingRequest {
    pub code: String,
    pub user_id: i64,
    pub username: Option<String>,
    /// Unix ms.
    pub created_at: i64,
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

    /// The key approval buttons are signed with (made on first use, kept in the file).
    pub fn button_key(&self) -> Result<Vec<u8>, StoreError> {
        self.meta_secret("button_key")
    }

    /// The secret Telegram sends with each webhook post (made on first use, kept in the file):
    /// 64 hex digits, inside Telegram's alphabet for it.
    pub fn webhook_secret(&self) -> Result<String, StoreError> {
        let key = self.meta_secret("webhook_secret")?;
        Ok(key.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// 32 random bytes kept under `key` in `meta`, made on first use.
    fn meta_secret(&self, key: &str) -> Result<Vec<u8>, StoreError> {
        let db = self.db();
        let read = |db: &rusqlite::Connection| {
            db.query_row("SELECT value FROM meta WHERE key = ?1", params![key], |row| {
                row.get::<_, Vec<u8>>(0)
            })
            .optional()
            .map_err(db_error("reading a key"))
        };
        if let Some(found) = read(&db)? {
            return Ok(found);
        }
        let mut secret = vec![0u8; 32];
        clawdia_core::random::fill(&mut secret).map_err(|e| StoreError(e.to_string()))?;
        db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)", params![key, secret])
            .map_err(db_error("saving a key"))?;
        // Another process may have won the race: use what is stored.
        read(&db)?.ok_or_else(|| StoreError(format!("the {key} was not saved")))
    }

    /// Stores `updates` (ones already stored are left alone); how many were new.
    pub fn store_updates(&self, updates: &[(i64, serde_json::Value)], now: i64) -> Result<usize, StoreError> {
        let mut db = self.db();
        let transaction = db.transaction().map_err(db_error("storing updates"))?;
        let mut added = 0;
        for (id, body) in updates {
            added += transaction
                .execute(
                    "INSERT OR IGNORE INTO updates (update_id, received_at, body, state) VALUES (?1, ?2, ?3, 'pending')",
                    params![id, now, body.to_string()],
                )
                .map_err(db_error("storing updates"))?;
        }
        transaction.commit().map_err(db_error("storing updates"))?;
        Ok(added)
    }

    /// The `offset` for the next `getUpdates`: one past the newest stored update.
    pub fn next_offset(&self) -> Result<i64, StoreError> {
        self.db()
            .query_row("SELECT COALESCE(MAX(update_id) + 1, 0) FROM updates", [], |row| row.get(0))
            .map_err(db_error("reading the offset"))
    }

    /// Updates not handled yet, oldest first.
    pub fn pending(&self) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached("SELECT update_id, body FROM updates WHERE state = 'pending' ORDER BY update_id")
            .map_err(db_error("reading pending updates"))?;
        let rows = statement
            .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)))
            .map_err(db_error("reading pending updates"))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, body) = row.map_err(db_error("reading pending updates"))?;
            // A body that no longer parses is handled as empty (and so marked done).
            out.push((id, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null)));
        }
        Ok(out)
    }

    /// Marks update `id` handled, with a note on what came of it.
    pub fn finish(&self, id: i64, note: &str) -> Result<(), StoreError> {
        self.db()
            .execute("UPDATE updates SET state = 'done', note = ?2 WHERE update_id = ?1", params![id, note])
            .map_err(db_error("finishing an update"))?;
        Ok(())
    }

    /// Forgets handled updates received before `before` (the newest is always kept: it
    /// carries the offset).
    pub fn prune(&self, before: i64) -> Result<usize, StoreError> {
        self.db()
            .execute(
                "DELETE FROM updates WHERE state = 'done' AND received_at < ?1
                 AND update_id < (SELECT MAX(update_id) FROM updates)",
                params![before],
            )
            .map_err(db_error("pruning updates"))
    }

    /// The agent and session of `chat`, if it has talked before.
    pub fn chat(&self, chat: i64) -> Result<Option<(String, Option<String>)>, StoreError> {
        self.db()
            .query_row("SELECT agent, session FROM chats WHERE chat_id = ?1", params![chat], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()
            .map_err(db_error("reading a chat"))
    }

    pub fn set_chat(&self, chat: i64, agent: &str, session: Option<&str>) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO chats (chat_id, agent, session) VALUES (?1, ?2, ?3)
                 ON CONFLICT (chat_id) DO UPDATE SET agent = excluded.agent, session = excluded.session",
                params![chat, agent, session],
            )
            .map_err(db_error("saving a chat"))?;
        Ok(())
    }

    /// Whether the owner let `user` in (by pairing).
    pub fn is_allowed(&self, user: i64) -> Result<bool, StoreError> {
        self.db()
            .query_row("SELECT 1 FROM allowed WHERE user_id = ?1", params![user], |_| Ok(()))
            .optional()
            .map(|found| found.is_some())
            .map_err(db_error("reading allowed users"))
    }

    /// The pairing code of `user`'s open request, made now if there is none.
    pub fn request_pairing(
        &self,
        user: i64,
        username: Option<&str>,
        chat: i64,
        now: i64,
        fresh_code: impl FnOnce() -> Option<String>,
    ) -> Result<Option<String>, StoreError> {
        let db = self.db();
        let open: Option<String> = db
            .query_row(
                "SELECT code FROM pairings WHERE user_id = ?1 AND approved_at IS NULL",
                params![user],
                |row| row.get(0),
            )
            .optional()
            .map_err(db_error("reading pairing requests"))?;
        if let Some(code) = open {
            return Ok(Some(code));
        }
        let Some(code) = fresh_code() else { return Ok(None) };
        db.execute(
            "INSERT INTO pairings (code, user_id, username, chat_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![code, user, username, chat, now],
        )
        .map_err(db_error("adding a pairing request"))?;
        Ok(Some(code))
    }

    /// The requests still waiting, newest first.
    pub fn open_pairings(&self) -> Result<Vec<PairingRequest>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare(
                "SELECT code, user_id, username, created_at FROM pairings WHERE approved_at IS NULL ORDER BY created_at DESC LIMIT 100",
            )
            .map_err(db_error("reading pairing requests"))?;
        let rows = statement
            .query_map([], |row| {
                Ok(PairingRequest {
                    code: row.get(0)?,
                    user_id: row.get(1)?,
                    username: row.get(2)?,
                    created_at: row.get(3)?,
                })
            })
            .map_err(db_error("reading pairing requests"))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(db_error("reading pairing requests"))
    }

    /// Approves the open request with `code`: its user is let in.
    pub fn approve(&self, code: &str, now: i64) -> Result<Option<Approved>, StoreError> {
        let mut db = self.db();
        let transaction = db.transaction().map_err(db_error("approving a pairing"))?;
        let found: Option<Approved> = transaction
            .query_row(
                "SELECT user_id, username, chat_id FROM pairings WHERE code = ?1 AND approved_at IS NULL",
                params![code],
                |row| Ok(Approved { user_id: row.get(0)?, username: row.get(1)?, chat_id: row.get(2)? }),
            )
            .optional()
            .map_err(db_error("approving a pairing"))?;
        let Some(approved) = found else { return Ok(None) };
        transaction
            .execute("UPDATE pairings SET approved_at = ?2 WHERE code = ?1", params![code, now])
            .map_err(db_error("approving a pairing"))?;
        transaction
            .execute(
                "INSERT OR IGNORE INTO allowed (user_id, added_at, how) VALUES (?1, ?2, 'pairing')",
                params![approved.user_id, now],
            )
            .map_err(db_error("approving a pairing"))?;
        transaction.commit().map_err(db_error("approving a pairing"))?;
        Ok(Some(approved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn updates_are_kept_once_and_the_offset_follows_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.next_offset().unwrap(), 0);
        let batch = [(7, json!({"update_id": 7})), (8, json!({"update_id": 8}))];
        assert_eq!(store.store_updates(&batch, 1).unwrap(), 2);
        assert_eq!(store.store_updates(&batch, 2).unwrap(), 0, "a repeated poll stores nothing twice");
        assert_eq!(store.next_offset().unwrap(), 9);
        store.finish(7, "answered").unwrap();
        let pending: Vec<i64> = store.pending().unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(pending, [8]);
        // Reopened (a restart): the same state.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.next_offset().unwrap(), 9);
        assert_eq!(store.pending().unwrap().len(), 1);
        store.finish(8, "answered").unwrap();
        assert_eq!(store.prune(10).unwrap(), 1, "the newest stays for the offset");
        assert_eq!(store.next_offset().unwrap(), 9);
    }

    #[test]
    fn a_pairing_request_is_approved_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let code =
            store.request_pairing(42, Some("bob"), 42, 1, || Some("ABCD-EFGH".into())).unwrap().unwrap();
        // Asking again gives the same open code.
        let again =
            store.request_pairing(42, Some("bob"), 42, 2, || Some("WXYZ-2345".into())).unwrap().unwrap();
        assert_eq!(code, again);
        assert!(!store.is_allowed(42).unwrap());
        let open = store.open_pairings().unwrap();
        assert_eq!(
            (open.len(), open[0].code.as_str(), open[0].username.as_deref()),
            (1, code.as_str(), Some("bob"))
        );
        assert_eq!(store.approve("WXYZ-2345", 3).unwrap(), None);
        let approved = store.approve(&code, 3).unwrap().unwrap();
        assert_eq!((approved.user_id, approved.chat_id), (42, 42));
        assert!(store.is_allowed(42).unwrap());
        assert_eq!(store.approve(&code, 4).unwrap(), None);
        assert!(store.open_pairings().unwrap().is_empty(), "an approved request is no longer open");
    }
}
