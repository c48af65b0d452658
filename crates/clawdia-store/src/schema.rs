//! The store's two database files and their forward-only migrations (append, never edit), opened
//! through `clawdia_sqlite` (owner-only, WAL, busy timeout, migrations raced safely).

use std::path::Path;
use std::time::Duration;

use clawdia_core::StoreError;
use clawdia_sqlite::Settings;
use rusqlite::Connection;

pub(crate) const SESSIONS_FILE: &str = "sessions.db";
pub(crate) const AUDIT_FILE: &str = "audit.db";
pub(crate) const BROKER_FILE: &str = "broker.db";
pub(crate) const WEB_FILE: &str = "web.db";

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
    clawdia_sqlite::create_private_dir(dir).map_err(|error| StoreError::Database(error.to_string()))
}

/// `web.db`: the web channel's pairing codes and signed-in browsers, by the SHA-256 of the code
/// or cookie secret (never the value).
pub(crate) const WEB_MIGRATIONS: &[&str] = &["
    CREATE TABLE codes (
        hash       TEXT PRIMARY KEY NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        used_at    INTEGER
    ) WITHOUT ROWID;
    CREATE TABLE browsers (
        id           TEXT PRIMARY KEY NOT NULL,
        secret_hash  TEXT NOT NULL UNIQUE,
        csrf         TEXT NOT NULL,
        label        TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        revoked_at   INTEGER
    ) WITHOUT ROWID;
"];

/// Opens one database file with the store's settings and migrates it to `migrations.len()`.
/// `broker.db`: requests awaiting the owner (the gate's approval requests; the binding is agent,
/// session, call id, tool and arguments exactly as stored), then the elevation requests of the
/// request broker (`filed` is the request as it came from the inbox, JSON) and the nonces the
/// bridge has seen.
pub(crate) const BROKER_MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE requests (
        id         TEXT PRIMARY KEY NOT NULL,
        kind       TEXT NOT NULL,
        status     TEXT NOT NULL,
        agent      TEXT NOT NULL,
        session    TEXT NOT NULL,
        call_id    TEXT NOT NULL,
        tool       TEXT NOT NULL,
        arguments  TEXT NOT NULL,
        origin     TEXT NOT NULL,
        sender     TEXT,
        reason     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        decided_at INTEGER,
        note       TEXT,
        result     TEXT
    );
    CREATE INDEX requests_by_created ON requests (created_at);
    CREATE INDEX requests_pending ON requests (status, expires_at);
",
    "
    CREATE TABLE elevations (
        id         TEXT PRIMARY KEY NOT NULL,
        status     TEXT NOT NULL,
        filed      TEXT NOT NULL,
        assessment TEXT,
        note       TEXT,
        result     TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE INDEX elevations_by_status ON elevations (status, expires_at);
    CREATE TABLE bridge_nonces (
        nonce TEXT PRIMARY KEY NOT NULL,
        ts    INTEGER NOT NULL
    ) WITHOUT ROWID;
",
];

pub(crate) fn open_database(path: &Path, migrations: &[&str]) -> Result<Connection, StoreError> {
    let name = [AUDIT_FILE, BROKER_FILE, WEB_FILE]
        .into_iter()
        .find(|file| path.ends_with(file))
        .unwrap_or(SESSIONS_FILE);
    let settings =
        Settings { name, busy_timeout: BUSY_TIMEOUT, cache_kib: 2000, statement_cache: 32, mmap_mib: 0 };
    clawdia_sqlite::open(path, &settings, migrations).map_err(|error| StoreError::Database(error.to_string()))
}
