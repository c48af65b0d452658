//! `clawdia doctor`'s view of the databases: SQLite's own integrity and foreign-key checks on
//! both files, then the store's invariants across every session (each row parses, the message
//! count matches, every tool call has a result). Reads everything; not for the hot path.

use clawdia_core::{Message, StoreError};
use rusqlite::Connection;

use crate::schema::{AUDIT_FILE, SESSIONS_FILE};
use crate::sessions::parse_body;
use crate::{Store, db_error, repair};

impl Store {
    /// Problems found, one line each; empty means everything checks out.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        let mut problems = Vec::new();
        {
            let mut connection = self.sessions_db();
            sqlite_checks(&connection, SESSIONS_FILE, &mut problems)?;
            // One read transaction, so the checks see a single consistent snapshot.
            let transaction = connection.transaction().map_err(db_error("checking sessions"))?;
            session_checks(&transaction, &mut problems)?;
        }
        sqlite_checks(&self.audit_db(), AUDIT_FILE, &mut problems)?;
        Ok(problems)
    }
}

impl Store {
    /// Monthly maintenance: `VACUUM` and `ANALYZE` of sessions.db and audit.db, then the
    /// integrity check. One report line per database.
    pub fn optimize(&self) -> Result<Vec<String>, StoreError> {
        self.sessions_db().execute_batch("VACUUM; ANALYZE;").map_err(db_error("optimizing sessions.db"))?;
        self.audit_db().execute_batch("VACUUM; ANALYZE;").map_err(db_error("optimizing audit.db"))?;
        let problems = self.integrity_check()?;
        let mut report = Vec::new();
        for file in [SESSIONS_FILE, AUDIT_FILE] {
            // Transcript problems name a session, not a file: they belong to sessions.db.
            let own: Vec<&String> = problems
                .iter()
                .filter(|p| p.starts_with(file) || (file == SESSIONS_FILE && !p.starts_with(AUDIT_FILE)))
                .collect();
            if own.is_empty() {
                report.push(format!("{file}: VACUUM, ANALYZE, integrity ok"));
            } else {
                let listed: Vec<&str> = own.iter().map(|p| p.as_str()).collect();
                report.push(format!("{file}: VACUUM, ANALYZE, integrity: not ok: {}", listed.join("; ")));
            }
        }
        Ok(report)
    }
}

fn sqlite_checks(connection: &Connection, file: &str, problems: &mut Vec<String>) -> Result<(), StoreError> {
    let context = format!("checking {file}");
    let mut statement = connection.prepare("PRAGMA integrity_check").map_err(db_error(&context))?;
    let lines = statement
        .query_map([], |row| row.get::<_, String>(0))
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_error(&context))?;
    problems.extend(lines.into_iter().filter(|line| line != "ok").map(|line| format!("{file}: {line}")));
    let mut statement = connection.prepare("PRAGMA foreign_key_check").map_err(db_error(&context))?;
    let violations = statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(2)?)))
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_error(&context))?;
    problems.extend(
        violations
            .into_iter()
            .map(|(table, parent)| format!("{file}: a row of `{table}` refers to a missing `{parent}` row")),
    );
    Ok(())
}

fn session_checks(connection: &Connection, problems: &mut Vec<String>) -> Result<(), StoreError> {
    let context = "checking sessions";
    let mut statement = connection
        .prepare(
            "SELECT s.id, s.message_count, (SELECT COUNT(*) FROM messages m WHERE m.session_id = s.id)
             FROM sessions s",
        )
        .map_err(db_error(context))?;
    let counts = statement
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?)))
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_error(context))?;
    for (id, recorded, actual) in counts {
        if recorded != actual {
            problems
                .push(format!("session `{id}`: message_count is {recorded} but it has {actual} messages"));
        }
    }

    let mut statement = connection
        .prepare("SELECT session_id, seq, body FROM messages ORDER BY session_id, seq")
        .map_err(db_error(context))?;
    let mut rows = statement.query([]).map_err(db_error(context))?;
    let mut current: Option<String> = None;
    let mut transcript: Vec<Message> = Vec::new();
    while let Some(row) = rows.next().map_err(db_error(context))? {
        let session_id: String = row.get(0).map_err(db_error(context))?;
        let seq: i64 = row.get(1).map_err(db_error(context))?;
        let body: String = row.get(2).map_err(db_error(context))?;
        if current.as_deref() != Some(session_id.as_str()) {
            if let Some(previous) = current.take() {
                check_transcript(&previous, &transcript, problems);
            }
            transcript.clear();
            current = Some(session_id.clone());
        }
        match parse_body(&session_id, seq, &body) {
            Ok(message) => transcript.push(message),
            Err(error) => problems.push(error.to_string()),
        }
    }
    if let Some(last) = current {
        check_transcript(&last, &transcript, problems);
    }
    Ok(())
}

fn check_transcript(session_id: &str, transcript: &[Message], problems: &mut Vec<String>) {
    for (call_id, name) in repair::unanswered_calls(transcript) {
        problems.push(format!(
            "session `{session_id}`: tool call `{call_id}` ({name}) has no result \
             (repaired when the session is next opened)"
        ));
    }
}
