//! `web.db`: the `BrowserStore` implementation — one-time pairing codes and signed-in browser
//! sessions, each keyed by the SHA-256 of its secret, so the file alone signs nobody in. A code
//! is used up by one conditional update, so two browsers racing with the same code cannot both
//! get in. Expired codes and sessions are pruned when new ones are added.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use clawdia_core::{BrowserSession, BrowserStore, CodeCheck, StoreError, UnixMillis};
use rusqlite::{Connection, OptionalExtension as _, params};
use sha2::{Digest as _, Sha256};

use crate::schema;

/// How long a used or expired code or an ended session stays on file (for "already used" and
/// "expired" answers) before pruning.
const KEEP_MS: i64 = 7 * 86_400_000;

fn db_error(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |error| StoreError::Database(format!("web.db: {context}: {error}"))
}

fn hash(secret: &str) -> String {
    clawdia_core::hex(&Sha256::digest(secret.as_bytes()))
}

/// The web channel's browsers and pairing codes.
pub struct Browsers {
    db: Mutex<Connection>,
}

impl std::fmt::Debug for Browsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browsers").finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, label, created_at, last_seen_at, expires_at, csrf";

fn row(row: &rusqlite::Row<'_>) -> rusqlite::Result<BrowserSession> {
    Ok(BrowserSession {
        id: row.get(0)?,
        label: row.get(1)?,
        created_at: row.get(2)?,
        last_seen_at: row.get(3)?,
        expires_at: row.get(4)?,
        csrf: row.get(5)?,
    })
}

impl Browsers {
    /// Opens (creating when missing) `web.db` in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Browsers, StoreError> {
        schema::create_state_dir(state_dir)?;
        let db = schema::open_database(&state_dir.join(schema::WEB_FILE), schema::WEB_MIGRATIONS)?;
        Ok(Browsers { db: Mutex::new(db) })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl BrowserStore for Browsers {
    fn add_code(&self, code: &str, now: UnixMillis, expires_at: UnixMillis) -> Result<(), StoreError> {
        let db = self.db();
        db.execute("DELETE FROM codes WHERE expires_at < ?1", params![now - KEEP_MS])
            .map_err(db_error("pruning codes"))?;
        db.execute(
            "INSERT INTO codes (hash, created_at, expires_at) VALUES (?1, ?2, ?3)",
            params![hash(code), now, expires_at],
        )
        .map_err(db_error("adding a pairing code"))?;
        Ok(())
    }

    fn redeem_code(&self, code: &str, now: UnixMillis) -> Result<CodeCheck, StoreError> {
        let db = self.db();
        let hashed = hash(code);
        let taken = db
            .execute(
                "UPDATE codes SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2",
                params![hashed, now],
            )
            .map_err(db_error("using a pairing code"))?;
        if taken == 1 {
            return Ok(CodeCheck::Redeemed);
        }
        let found: Option<Option<i64>> = db
            .query_row("SELECT used_at FROM codes WHERE hash = ?1", params![hashed], |row| row.get(0))
            .optional()
            .map_err(db_error("reading a pairing code"))?;
        Ok(match found {
            None => CodeCheck::Unknown,
            Some(Some(_)) => CodeCheck::Used,
            Some(None) => CodeCheck::Expired,
        })
    }

    fn add_session(&self, session: &BrowserSession, secret: &str) -> Result<(), StoreError> {
        let db = self.db();
        db.execute(
            "DELETE FROM browsers WHERE expires_at < ?1 OR revoked_at < ?1",
            params![session.created_at - KEEP_MS],
        )
        .map_err(db_error("pruning sessions"))?;
        db.execute(
            "INSERT INTO browsers (id, secret_hash, csrf, label, created_at, last_seen_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                session.id,
                hash(secret),
                session.csrf,
                session.label,
                session.created_at,
                session.last_seen_at,
                session.expires_at
            ],
        )
        .map_err(db_error("adding a browser session"))?;
        Ok(())
    }

    fn session_by_secret(&self, secret: &str, now: UnixMillis) -> Result<Option<BrowserSession>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM browsers WHERE secret_hash = ?1 AND revoked_at IS NULL AND expires_at > ?2"
            ))
            .map_err(db_error("reading a browser session"))?;
        statement
            .query_row(params![hash(secret), now], row)
            .optional()
            .map_err(db_error("reading a browser session"))
    }

    fn touch(&self, id: &str, now: UnixMillis) -> Result<(), StoreError> {
        self.db()
            .execute("UPDATE browsers SET last_seen_at = ?2 WHERE id = ?1", params![id, now])
            .map_err(db_error("noting a browser's visit"))?;
        Ok(())
    }

    fn sessions(&self, now: UnixMillis) -> Result<Vec<BrowserSession>, StoreError> {
        let db = self.db();
        let mut statement = db
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM browsers WHERE revoked_at IS NULL AND expires_at > ?1
                 ORDER BY last_seen_at DESC, id"
            ))
            .map_err(db_error("listing browser sessions"))?;
        let rows = statement.query_map(params![now], row).map_err(db_error("listing browser sessions"))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(db_error("listing browser sessions"))
    }

    fn revoke(&self, id: &str, now: UnixMillis) -> Result<bool, StoreError> {
        let changed = self
            .db()
            .execute(
                "UPDATE browsers SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL AND expires_at > ?2",
                params![id, now],
            )
            .map_err(db_error("revoking a browser session"))?;
        Ok(changed == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(id: &str, now: i64) -> BrowserSession {
        BrowserSession {
            id: id.into(),
            label: "phone".into(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + 1_000,
            csrf: format!("csrf-{id}"),
        }
    }

    #[test]
    fn a_code_signs_in_once_and_says_why_it_cannot_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Browsers::open(dir.path()).unwrap();
        store.add_code("ABCD-EFGH", 100, 200).unwrap();
        store.add_code("JKMN-PQRS", 100, 150).unwrap();
        assert_eq!(store.redeem_code("WXYZ-2345", 120).unwrap(), CodeCheck::Unknown);
        assert_eq!(store.redeem_code("ABCD-EFGH", 120).unwrap(), CodeCheck::Redeemed);
        assert_eq!(store.redeem_code("ABCD-EFGH", 121).unwrap(), CodeCheck::Used);
        assert_eq!(store.redeem_code("JKMN-PQRS", 151).unwrap(), CodeCheck::Expired);
        // Only hashes are on file.
        let bytes = std::fs::read(dir.path().join("web.db")).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("ABCD-EFGH"));
    }

    #[test]
    fn sessions_are_found_by_secret_until_revoked_or_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = Browsers::open(dir.path()).unwrap();
        store.add_session(&session("a1", 10), "secret-a").unwrap();
        store.add_session(&session("b2", 20), "secret-b").unwrap();
        assert_eq!(store.session_by_secret("secret-a", 30).unwrap().unwrap().id, "a1");
        assert_eq!(store.session_by_secret("secret-a", 30).unwrap().unwrap().csrf, "csrf-a1");
        assert!(store.session_by_secret("secret-c", 30).unwrap().is_none());
        store.touch("a1", 40).unwrap();
        let listed: Vec<String> = store.sessions(50).unwrap().into_iter().map(|s| s.id).collect();
        assert_eq!(listed, ["a1", "b2"]);
        assert!(store.revoke("a1", 60).unwrap());
        assert!(!store.revoke("a1", 61).unwrap());
        assert!(store.session_by_secret("secret-a", 70).unwrap().is_none());
        assert!(store.session_by_secret("secret-b", 70).unwrap().is_some());
        // Expired at 1_020.
        assert!(store.session_by_secret("secret-b", 1_020).unwrap().is_none());
        assert!(store.sessions(1_020).unwrap().is_empty());
        // A reopened file keeps them.
        drop(store);
        let store = Browsers::open(dir.path()).unwrap();
        assert!(store.session_by_secret("secret-b", 70).unwrap().is_some());
    }
}
