//! Opening a SQLite database file the one way every Clawdia store does it (sessions.db and
//! audit.db in clawdia-store, brain.db in clawdia-brain, cron.db in clawdia-sched): in a private
//! (0700) state dir, the file owner-only, WAL with a busy timeout, and forward-only migrations
//! tracked by `PRAGMA user_version`.
//!
//! A migration is appended to its list, never edited: version N of a database means the first N
//! entries have run. Migrations run inside one `BEGIN IMMEDIATE` transaction that re-reads the
//! version, so processes opening a fresh file at once migrate it exactly once; switching a fresh
//! file to WAL (and reading its version during WAL recovery) can fail with `SQLITE_BUSY` without
//! SQLite calling the busy handler, so those steps are retried until the busy timeout. A file
//! migrated by a newer build is refused, never downgraded.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};

/// How one kind of database file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The file's name in log lines (`brain.db`).
    pub name: &'static str,
    /// How long a statement waits for another connection's write lock before failing.
    pub busy_timeout: Duration,
    /// SQLite's page cache per connection, in KiB.
    pub cache_kib: u32,
    /// Prepared statements cached per connection.
    pub statement_cache: usize,
    /// How much of the file SQLite reads through a memory map instead of `pread` copies, in
    /// MiB (0: none). Mapped pages are the kernel's page cache, shared by every connection
    /// and process and reclaimable, so a large map costs no private memory; they do show in
    /// the process's RSS once touched.
    pub mmap_mib: u32,
}

/// Why a database could not be opened. Displays on one line.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot create {path}: {message}")]
    Dir { path: String, message: String },
    #[error("{context} {path}: {message}")]
    Sqlite { context: &'static str, path: String, message: String },
    #[error("{path}: schema version {found} is newer than this build knows ({known}); upgrade clawdia")]
    TooNew { path: String, found: i64, known: i64 },
}

/// Creates `dir` (and missing parents) with mode 0700; an existing dir is left as is.
pub fn create_private_dir(dir: &Path) -> Result<(), OpenError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|error| OpenError::Dir {
        path: dir.display().to_string(),
        message: one_line(&error.to_string()),
    })
}

/// Opens (creating) `path` with `settings`, makes it owner-only and migrates it to
/// `migrations.len()`.
pub fn open(path: &Path, settings: &Settings, migrations: &[&str]) -> Result<Connection, OpenError> {
    let mut connection = Connection::open(path).map_err(sqlite_error("opening", path))?;
    restrict_permissions(path, settings.name);
    let started = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        let outcome = configure(&connection, settings)
            .map_err(Failure::Sqlite)
            .and_then(|()| migrate(&mut connection, migrations));
        match outcome {
            Ok(()) => return Ok(connection),
            Err(Failure::Sqlite(error)) if is_busy(&error) && started.elapsed() < settings.busy_timeout => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(Failure::Sqlite(error)) => return Err(sqlite_error("migrating", path)(error)),
            Err(Failure::TooNew { found, known }) => {
                return Err(OpenError::TooNew { path: path.display().to_string(), found, known });
            }
        }
    }
}

/// A read-only (`query_only`) connection to a file `open` has already migrated.
pub fn open_reader(path: &Path, settings: &Settings) -> Result<Connection, OpenError> {
    let connection = Connection::open(path)
        .and_then(|connection| {
            configure(&connection, settings)?;
            connection.execute_batch("PRAGMA query_only = ON;")?;
            Ok(connection)
        })
        .map_err(sqlite_error("opening for reading", path))?;
    Ok(connection)
}

/// Whether an error is SQLite's "busy" or "locked": another connection holds the lock.
pub fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn sqlite_error(context: &'static str, path: &Path) -> impl FnOnce(rusqlite::Error) -> OpenError + use<> {
    let path = path.display().to_string();
    move |error| OpenError::Sqlite { context, path, message: one_line(&error.to_string()) }
}

enum Failure {
    Sqlite(rusqlite::Error),
    TooNew { found: i64, known: i64 },
}

impl From<rusqlite::Error> for Failure {
    fn from(error: rusqlite::Error) -> Self {
        Failure::Sqlite(error)
    }
}

fn configure(connection: &Connection, settings: &Settings) -> rusqlite::Result<()> {
    connection.busy_timeout(settings.busy_timeout)?;
    // The query planner stability guarantee: a statement keeps its plan whatever is bound to
    // it. Without it SQLite marks `column = ?` bound to 0 or 1 as plan-relevant and silently
    // re-prepares the statement whenever a rebinding moves to or from 0/1. FTS5 binds segment
    // ids that way (`... WHERE segid=? AND term<=?` per segment and term), so a full-text
    // query re-parsed that statement over and over: about a fifth of its time at 50k chunks.
    connection.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    let mode: String = connection.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, file = settings.name, "SQLite refused WAL mode; readers will block writers");
    }
    connection.execute_batch(&format!(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -{};
         PRAGMA mmap_size = {};",
        settings.cache_kib,
        u64::from(settings.mmap_mib) << 20
    ))?;
    connection.set_prepared_statement_cache_capacity(settings.statement_cache);
    Ok(())
}

/// Runs the migrations this database has not seen yet.
fn migrate(connection: &mut Connection, migrations: &[&str]) -> Result<(), Failure> {
    let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
    let found = user_version(connection)?;
    if found == known {
        return Ok(());
    }
    if found > known {
        return Err(Failure::TooNew { found, known });
    }
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Another process may have migrated between our read and taking the write lock.
    let found = user_version(&transaction)?;
    if found > known {
        return Err(Failure::TooNew { found, known });
    }
    for (index, migration) in migrations.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", i64::try_from(index + 1).unwrap_or(i64::MAX))?;
    }
    transaction.commit()?;
    Ok(())
}

fn user_version(connection: &Connection) -> rusqlite::Result<i64> {
    connection.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// The file is made owner-only (SQLite gives its `-wal` and `-shm` files the same mode).
/// Failure is logged, not fatal: the state dir is 0700 already.
fn restrict_permissions(path: &Path, name: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(metadata) = std::fs::metadata(path) else {
            return;
        };
        if metadata.permissions().mode() & 0o077 != 0 {
            let owner_only = std::fs::Permissions::from_mode(0o600);
            if let Err(error) = std::fs::set_permissions(path, owner_only) {
                tracing::warn!(path = %path.display(), %error, "cannot make {name} owner-only");
            }
        }
    }
}

/// Control characters (newlines included) become spaces. (`clawdia_core::one_line` does this
/// and more, but this crate depends on nothing of Clawdia's, so every store can use it.)
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

#[cfg(test)]
mod tests;
