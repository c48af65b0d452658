//! Opening a database file: the state dir, connection settings (WAL, busy timeout, small page
//! cache), and the forward-only schema migrations tracked by `PRAGMA user_version`.
//!
//! A migration is appended to its list, never edited: version N of a database means the first N
//! entries have run. Migrations run inside one `BEGIN IMMEDIATE` transaction that re-reads the
//! version, so two processes opening a fresh state dir at once migrate it exactly once.

use std::path::Path;
use std::time::Duration;

use clawdia_core::StoreError;
use rusqlite::{Connection, TransactionBehavior};

use crate::db_error;

pub(crate) const SESSIONS_FILE: &str = "sessions.db";
pub(crate) const AUDIT_FILE: &str = "audit.db";

/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `sessions.db`. `touch` orders sessions by their last write when `updated_at` ties; it comes
/// from the `counters` row so no index on it is needed.
pub(crate) const SESSIONS_MIGRATIONS: &[&str] = &["
    CREATE TABLE sessions (
        id            TEXT PRIMARY KEY NOT NULL,
        agent         TEXT NOT NULL,
        boundary      TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        updated_at    INTEGER NOT NULL,
        touch         INTEGER NOT NULL,
        message_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sessions_by_update ON sessions (updated_at, touch);
    CREATE INDEX sessions_by_agent_update ON sessions (agent, updated_at, touch);

    CREATE TABLE messages (
        session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        seq        INTEGER NOT NULL,
        at         INTEGER NOT NULL,
        role       TEXT NOT NULL,
        body       TEXT NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;

    CREATE TABLE usage (
        id          INTEGER PRIMARY KEY,
        agent       TEXT NOT NULL,
        session     TEXT NOT NULL,
        at          INTEGER NOT NULL,
        provider    TEXT NOT NULL,
        model       TEXT NOT NULL,
        input       INTEGER NOT NULL,
        output      INTEGER NOT NULL,
        cache_read  INTEGER NOT NULL,
        cache_write INTEGER NOT NULL,
        cost_usd    REAL NOT NULL
    );
    -- Covering: `usage_since` sums from the index alone (about 3x faster than via the table).
    CREATE INDEX usage_by_agent_at
        ON usage (agent, at, input, output, cache_read, cache_write, cost_usd);

    CREATE TABLE counters (
        name  TEXT PRIMARY KEY NOT NULL,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO counters (name, value) VALUES ('touch', 0);
"];

/// `audit.db`.
pub(crate) const AUDIT_MIGRATIONS: &[&str] = &["
    CREATE TABLE audit (
        id       INTEGER PRIMARY KEY,
        at       INTEGER NOT NULL,
        kind     TEXT NOT NULL,
        severity INTEGER NOT NULL,
        agent    TEXT,
        session  TEXT,
        detail   TEXT NOT NULL
    );
    CREATE INDEX audit_by_at ON audit (at);
"];

/// Creates the state dir (and missing parents) with mode 0700; an existing dir is left as is.
pub(crate) fn create_state_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|error| StoreError::Database(format!("cannot create state dir {}: {error}", dir.display())))
}

/// Opens one database file with the store's settings and migrates it to `migrations.len()`.
pub(crate) fn open_database(path: &Path, migrations: &[&str]) -> Result<Connection, StoreError> {
    let context = format!("opening {}", path.display());
    let mut connection = Connection::open(path).map_err(db_error(&context))?;
    restrict_permissions(path);
    // Several processes opening a fresh file at once: switching it to WAL (and reading the
    // schema version during WAL recovery) can fail with SQLITE_BUSY without SQLite ever calling
    // the busy handler, so those steps are retried here until the busy timeout.
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(2);
    let outcome = loop {
        let outcome = configure(&connection)
            .map_err(MigrateError::Sqlite)
            .and_then(|()| migrate(&mut connection, migrations));
        match outcome {
            Err(MigrateError::Sqlite(error)) if is_busy(&error) && started.elapsed() < BUSY_TIMEOUT => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(100));
            }
            other => break other,
        }
    };
    outcome.map_err(|error| match error {
        MigrateError::Sqlite(error) => db_error(&context)(error),
        MigrateError::TooNew { found, known } => StoreError::Database(format!(
            "{}: schema version {found} is newer than this build knows ({known}); \
             upgrade clawdia",
            path.display()
        )),
    })?;
    Ok(connection)
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "SQLite refused WAL mode; concurrent readers will block writers");
    }
    connection.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -2000;",
    )?;
    connection.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// Transcripts are private: the database file is made owner-only (SQLite gives its `-wal` and
/// `-shm` files the same mode). Failure is logged, not fatal: the dir is 0700 already.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(metadata) = std::fs::metadata(path) else {
            return;
        };
        if metadata.permissions().mode() & 0o077 != 0 {
            let owner_only = std::fs::Permissions::from_mode(0o600);
            if let Err(error) = std::fs::set_permissions(path, owner_only) {
                tracing::warn!(path = %path.display(), %error, "cannot make database owner-only");
            }
        }
    }
}

pub(crate) enum MigrateError {
    Sqlite(rusqlite::Error),
    TooNew { found: i64, known: i64 },
}

impl From<rusqlite::Error> for MigrateError {
    fn from(error: rusqlite::Error) -> Self {
        MigrateError::Sqlite(error)
    }
}

/// Runs the migrations this database has not seen yet.
pub(crate) fn migrate(connection: &mut Connection, migrations: &[&str]) -> Result<(), MigrateError> {
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let version = |connection: &Connection| -> rusqlite::Result<i64> {
        connection.query_row("PRAGMA user_version", [], |row| row.get(0))
    };
    let found = version(connection)?;
    if found == known {
        return Ok(());
    }
    if found > known {
        return Err(MigrateError::TooNew { found, known });
    }
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated between our read and taking the write lock.
    let found = version(&transaction)?;
    if found > known {
        return Err(MigrateError::TooNew { found, known });
    }
    let already_run = usize::try_from(found).unwrap_or(0);
    for migration in migrations.iter().skip(already_run) {
        transaction.execute_batch(migration)?;
    }
    transaction.pragma_update(None, "user_version", known)?;
    transaction.commit()?;
    Ok(())
}
