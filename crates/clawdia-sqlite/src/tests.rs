//! Opening files: migrations run once and only the missing ones, a newer file is refused,
//! permissions, racing openers, read-only readers.

use std::sync::Barrier;

use rusqlite::OptionalExtension;

use super::*;

const SETTINGS: Settings = Settings {
    name: "test.db",
    busy_timeout: Duration::from_secs(5),
    cache_kib: 512,
    statement_cache: 8,
    mmap_mib: 0,
};

#[test]
fn a_migration_runs_only_the_missing_steps() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let steps = ["CREATE TABLE a (x INTEGER);", "CREATE TABLE b (y INTEGER);"];
    let mut connection = open(&path, &SETTINGS, &steps[..1]).unwrap();
    connection.execute("INSERT INTO a VALUES (1)", []).unwrap();
    drop(connection);
    connection = open(&path, &SETTINGS, &steps).unwrap();
    let version: i64 = connection.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    let kept: i64 = connection.query_row("SELECT x FROM a", [], |r| r.get(0)).unwrap();
    assert_eq!((version, kept), (2, 1));
    connection.execute("INSERT INTO b VALUES (2)", []).unwrap();
    drop(connection);
    // Opening again runs nothing (a re-run CREATE TABLE would fail).
    open(&path, &SETTINGS, &steps).unwrap();
}

#[test]
fn a_file_from_a_newer_build_is_refused_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    drop(open(&path, &SETTINGS, &["CREATE TABLE a (x);", "CREATE TABLE b (y);"]).unwrap());
    let error = open(&path, &SETTINGS, &["CREATE TABLE a (x);"]).unwrap_err();
    let message = error.to_string();
    assert!(
        message.ends_with("test.db: schema version 2 is newer than this build knows (1); upgrade clawdia"),
        "{message}"
    );
    assert!(!message.contains('\n'));
}

#[test]
fn a_failing_migration_leaves_the_file_at_its_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    drop(open(&path, &SETTINGS, &["CREATE TABLE a (x);"]).unwrap());
    let error =
        open(&path, &SETTINGS, &["CREATE TABLE a (x);", "CREATE TABLE b (y);", "NOT SQL"]).unwrap_err();
    assert!(error.to_string().starts_with("migrating "), "{error}");
    let connection = open(&path, &SETTINGS, &["CREATE TABLE a (x);"]).unwrap();
    let tables: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'b'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tables, 0, "the whole upgrade rolled back");
}

#[cfg(unix)]
#[test]
fn the_dir_is_private_and_the_file_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("home").join("state");
    create_private_dir(&state).unwrap();
    let path = state.join("test.db");
    drop(open(&path, &SETTINGS, &[]).unwrap());
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!((mode(&state), mode(&path)), (0o700, 0o600));
    let error = create_private_dir(&path.join("below-a-file")).unwrap_err();
    assert!(error.to_string().starts_with("cannot create "), "{error}");
}

#[test]
fn processes_opening_a_fresh_file_at_once_all_succeed_and_migrate_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let steps = ["CREATE TABLE a (x INTEGER);", "INSERT INTO a VALUES (1);"];
    let barrier = Barrier::new(6);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                barrier.wait();
                open(&path, &SETTINGS, &steps).unwrap();
            });
        }
    });
    let connection = open(&path, &SETTINGS, &steps).unwrap();
    let rows: i64 = connection.query_row("SELECT count(*) FROM a", [], |r| r.get(0)).unwrap();
    let mode: String = connection.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!((rows, mode.as_str()), (1, "wal"));
}

#[test]
fn a_reader_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    drop(open(&path, &SETTINGS, &["CREATE TABLE a (x INTEGER);"]).unwrap());
    let reader = open_reader(&path, &SETTINGS).unwrap();
    let error = reader.execute("INSERT INTO a VALUES (1)", []).unwrap_err();
    assert!(error.to_string().contains("readonly"), "{error}");
    let rows: i64 = reader.query_row("SELECT count(*) FROM a", [], |r| r.get(0)).unwrap();
    assert_eq!(rows, 0);
}

/// FTS5 looks up each segment with `segid = ?`; SQLite would re-prepare such a statement each
/// time the bound value moves to or from 0/1, unless the planner stability guarantee is on.
#[test]
fn rebinding_a_small_integer_does_not_re_prepare_the_statement() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let schema = "CREATE TABLE idx (segid, term, pgno, PRIMARY KEY (segid, term)) WITHOUT ROWID;
                  INSERT INTO idx VALUES (1, 'a', 10), (2, 'b', 20), (3, 'c', 30);";
    let lookup = "SELECT pgno FROM idx WHERE segid = ?1 AND term <= ?2 ORDER BY term DESC LIMIT 1";
    let reprepares = |connection: &Connection| {
        let mut statement = connection.prepare(lookup).unwrap();
        let mut found = Vec::new();
        for (segid, term) in [(1, "z"), (2, "z"), (1, "z"), (3, "z"), (0, "z"), (2, "z")] {
            let page: Option<i64> =
                statement.query_row(rusqlite::params![segid, term], |r| r.get(0)).optional().unwrap();
            found.push(page);
        }
        assert_eq!(found, [Some(10), Some(20), Some(10), Some(30), None, Some(20)]);
        statement.get_status(rusqlite::StatementStatus::RePrepare)
    };
    drop(open(&path, &SETTINGS, &[schema]).unwrap());
    // The hazard is real: a connection opened without these settings re-prepares.
    assert!(reprepares(&Connection::open(&path).unwrap()) > 0);
    assert_eq!(reprepares(&open(&path, &SETTINGS, &[schema]).unwrap()), 0);
    assert_eq!(reprepares(&open_reader(&path, &SETTINGS).unwrap()), 0);
}

#[test]
fn the_memory_map_is_the_configured_size_for_writers_and_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let mapped = Settings { mmap_mib: 3, ..SETTINGS };
    let size = |connection: &Connection| -> i64 {
        connection.query_row("PRAGMA mmap_size", [], |r| r.get(0)).unwrap()
    };
    let writer = open(&path, &mapped, &["CREATE TABLE a (x INTEGER);"]).unwrap();
    assert_eq!(size(&writer), 3 << 20);
    assert_eq!(size(&open_reader(&path, &mapped).unwrap()), 3 << 20);
    assert_eq!(size(&open_reader(&path, &SETTINGS).unwrap()), 0);
}
