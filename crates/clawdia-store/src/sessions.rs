//! `sessions.db`: the `SessionStore` implementation (open with repair, append, the usage ledger,
//! listing) and the CLI's read-only views of one session.
//!
//! Hot path (every turn: `open`, `append`, `record_usage`): cached statements, lookups through
//! the `(session_id, seq)` primary key and the `(agent, at)` usage index, and write transactions
//! of a few rows. Opening a sound session is one read transaction; only creating or repairing a
//! session takes the write lock.

use clawdia_core::{Message, ModelRef, SessionMeta, SessionStore, StoreError, StoredSession, Usage};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::repair;
use crate::{Store, StoredMessage, db_error};
use clawdia_core::time::now_ms;

const META_COLUMNS: &str = "id, agent, created_at, updated_at, message_count, boundary";

impl SessionStore for Store {
    fn open(&self, agent: &str, id: &str, boundary: &str) -> Result<StoredSession, StoreError> {
        let mut connection = self.sessions_db();
        {
            let transaction = connection.transaction().map_err(db_error("opening a session"))?;
            if let Some(meta) = select_meta(&transaction, id)? {
                check_agent(&meta, agent)?;
                let messages: Vec<Message> =
                    load_messages(&transaction, id)?.into_iter().map(|row| row.message).collect();
                if repair::plan(&messages).is_empty() {
                    return Ok(StoredSession { meta, messages, repaired: 0 });
                }
            }
            // Dropping the read transaction ends it; creation and repair need the write lock.
        }
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error("opening a session"))?;
        let now = now_ms();
        let Some(meta) = select_meta(&transaction, id)? else {
            let meta = insert_session(&transaction, id, agent, boundary, now, now, 0)?;
            transaction.commit().map_err(db_error("creating a session"))?;
            return Ok(StoredSession { meta, messages: Vec::new(), repaired: 0 });
        };
        check_agent(&meta, agent)?;
        let stored = load_messages(&transaction, id)?;
        let repaired = repair_session(&transaction, meta, stored, now)?;
        transaction.commit().map_err(db_error("repairing a session"))?;
        if repaired.repaired > 0 {
            tracing::warn!(
                session = id,
                agent,
                repaired = repaired.repaired,
                "added synthetic results for tool calls left unanswered"
            );
        }
        Ok(repaired)
    }

    fn append(&self, id: &str, messages: &[Message]) -> Result<(), StoreError> {
        self.append_with_hook(id, messages, &mut || {})
    }

    fn record_usage(
        &self,
        agent: &str,
        session_id: &str,
        model: &ModelRef,
        usage: &Usage,
        cost_usd: f64,
    ) -> Result<(), StoreError> {
        let cost_usd = if cost_usd.is_finite() {
            cost_usd
        } else {
            tracing::warn!(agent, session = session_id, cost_usd, "non-finite cost recorded as 0");
            0.0
        };
        let connection = self.sessions_db();
        let mut statement = connection
            .prepare_cached(
                "INSERT INTO usage (agent, session, at, provider, model, input, output,
                                    cache_read, cache_write, cost_usd)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )
            .map_err(db_error("recording usage"))?;
        statement
            .execute(params![
                agent,
                session_id,
                now_ms(),
                model.provider,
                model.model,
                to_sql_int(usage.input_tokens),
                to_sql_int(usage.output_tokens),
                to_sql_int(usage.cache_read_tokens),
                to_sql_int(usage.cache_write_tokens),
                cost_usd,
            ])
            .map_err(db_error("recording usage"))?;
        Ok(())
    }

    /// A range scan of the covering `(agent, at, …)` index: cost grows with the rows in the
    /// window (about 0.15 µs each), not with the ledger.
    fn usage_since(&self, agent: &str, since: i64) -> Result<(u64, f64), StoreError> {
        let connection = self.sessions_db();
        let mut statement = connection
            .prepare_cached(
                // TOTAL (a float) rather than SUM, which fails on integer overflow.
                "SELECT TOTAL(input + output + cache_read + cache_write), TOTAL(cost_usd)
                 FROM usage WHERE agent = ?1 AND at >= ?2",
            )
            .map_err(db_error("summing usage"))?;
        let (tokens, usd): (f64, f64) = statement
            .query_row(params![agent, since], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(db_error("summing usage"))?;
        // `as` saturates: a float beyond u64 becomes u64::MAX, a negative one 0.
        Ok((tokens as u64, usd))
    }

    fn list(&self, agent: Option<&str>, limit: usize) -> Result<Vec<SessionMeta>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let connection = self.sessions_db();
        let context = db_error("listing sessions");
        let rows = match agent {
            Some(agent) => {
                let mut statement = connection
                    .prepare_cached(&format!(
                        "SELECT {META_COLUMNS} FROM sessions WHERE agent = ?1
                         ORDER BY updated_at DESC, touch DESC LIMIT ?2"
                    ))
                    .map_err(db_error("listing sessions"))?;
                statement
                    .query_map(params![agent, limit], meta_from_row)
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            }
            None => {
                let mut statement = connection
                    .prepare_cached(&format!(
                        "SELECT {META_COLUMNS} FROM sessions
                         ORDER BY updated_at DESC, touch DESC LIMIT ?1"
                    ))
                    .map_err(db_error("listing sessions"))?;
                statement
                    .query_map(params![limit], meta_from_row)
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            }
        };
        rows.map_err(context)
    }

    fn discard_if_empty(&self, id: &str) -> Result<bool, StoreError> {
        let connection = self.sessions_db();
        let deleted = connection
            .prepare_cached(
                "DELETE FROM sessions WHERE id = ?1
                 AND NOT EXISTS (SELECT 1 FROM messages WHERE session_id = ?1)",
            )
            .and_then(|mut statement| statement.execute(params![id]))
            .map_err(db_error("discarding an empty session"))?;
        Ok(deleted > 0)
    }
}

impl Store {
    /// The stored transcript of a session as it is on disk (no repair). `NotFound` for an
    /// unknown session.
    pub fn messages(&self, session_id: &str) -> Result<Vec<StoredMessage>, StoreError> {
        let mut connection = self.sessions_db();
        let transaction = connection.transaction().map_err(db_error("reading messages"))?;
        if select_meta(&transaction, session_id)?.is_none() {
            return Err(StoreError::NotFound(session_id.to_string()));
        }
        load_messages(&transaction, session_id)
    }

    /// Sessions (of `agent`, if given) with a message whose text contains `query` (any case,
    /// for ASCII), most recently updated first.
    pub fn search_sessions(
        &self,
        agent: Option<&str>,
        query: &str,
        limit: usize,
    ) -> Result<Vec<SessionMeta>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let escaped = query.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        let connection = self.sessions_db();
        let mut statement = connection
            .prepare_cached(&format!(
                "SELECT {META_COLUMNS} FROM sessions s WHERE (?1 IS NULL OR s.agent = ?1)
                 AND EXISTS (SELECT 1 FROM messages m WHERE m.session_id = s.id
                             AND m.role IN ('user', 'assistant') AND m.body LIKE ?2 ESCAPE '\\')
                 ORDER BY s.updated_at DESC, s.touch DESC LIMIT ?3"
            ))
            .map_err(db_error("searching sessions"))?;
        statement
            .query_map(params![agent, pattern, limit], meta_from_row)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            .map_err(db_error("searching sessions"))
    }

    /// The first words of each session's first user message, for lists: `(id, title)`.
    pub fn session_titles(&self, ids: &[&str]) -> Result<Vec<(String, String)>, StoreError> {
        let connection = self.sessions_db();
        let mut statement = connection
            .prepare_cached(
                "SELECT body FROM messages WHERE session_id = ?1 AND role = 'user' ORDER BY seq LIMIT 1",
            )
            .map_err(db_error("reading session titles"))?;
        let mut titles = Vec::with_capacity(ids.len());
        for id in ids {
            let body: Option<String> = statement
                .query_row(params![id], |row| row.get(0))
                .optional()
                .map_err(db_error("reading session titles"))?;
            let text = body
                .and_then(|body| serde_json::from_str::<clawdia_core::Message>(&body).ok())
                .and_then(|message| match message {
                    clawdia_core::Message::User { text } => Some(text),
                    _ => None,
                })
                .unwrap_or_default();
            let line = clawdia_core::text::one_line(&text);
            let title: String = line.chars().take(80).collect();
            titles.push((id.to_string(), title));
        }
        Ok(titles)
    }

    /// A session's metadata, or `None` when it does not exist.
    pub fn session(&self, id: &str) -> Result<Option<SessionMeta>, StoreError> {
        select_meta(&self.sessions_db(), id)
    }

    /// `append`, calling `before_commit` after the rows are written and before the commit, so a
    /// test can kill the process inside the transaction.
    pub(crate) fn append_with_hook(
        &self,
        id: &str,
        messages: &[Message],
        before_commit: &mut dyn FnMut(),
    ) -> Result<(), StoreError> {
        let mut connection = self.sessions_db();
        if messages.is_empty() {
            return match select_meta(&connection, id)? {
                Some(_) => Ok(()),
                None => Err(StoreError::NotFound(id.to_string())),
            };
        }
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error("appending messages"))?;
        let now = now_ms();
        let touch = next_touch(&transaction)?;
        let added = i64::try_from(messages.len()).unwrap_or(i64::MAX);
        let changed = transaction
            .prepare_cached(
                "UPDATE sessions SET updated_at = ?2, touch = ?3,
                                     message_count = message_count + ?4
                 WHERE id = ?1",
            )
            .and_then(|mut statement| statement.execute(params![id, now, touch, added]))
            .map_err(db_error("appending messages"))?;
        if changed == 0 {
            return Err(StoreError::NotFound(id.to_string()));
        }
        let last_seq: i64 = transaction
            .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE session_id = ?1")
            .and_then(|mut statement| statement.query_row([id], |row| row.get(0)))
            .map_err(db_error("appending messages"))?;
        let first_seq = u64::try_from(last_seq).unwrap_or(0) + 1;
        for (seq, message) in (first_seq..).zip(messages) {
            insert_message(&transaction, id, seq, now, message)?;
        }
        before_commit();
        transaction.commit().map_err(db_error("appending messages"))
    }

    /// Creates a session holding `messages` (already repaired) in one transaction. Used by the
    /// importer; the session id must be new.
    pub(crate) fn create_with_messages(
        &self,
        id: &str,
        agent: &str,
        boundary: &str,
        messages: &[StoredMessage],
    ) -> Result<SessionMeta, StoreError> {
        let now = now_ms();
        let created_at = messages.first().map_or(now, |first| first.at);
        let updated_at = messages.last().map_or(now, |last| last.at);
        let count = u64::try_from(messages.len()).unwrap_or(u64::MAX);
        let mut connection = self.sessions_db();
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error("importing a session"))?;
        let meta = insert_session(&transaction, id, agent, boundary, created_at, updated_at, count)?;
        for stored in messages {
            insert_message(&transaction, id, stored.seq, stored.at, &stored.message)?;
        }
        transaction.commit().map_err(db_error("importing a session"))?;
        Ok(meta)
    }
}

fn check_agent(meta: &SessionMeta, agent: &str) -> Result<(), StoreError> {
    if meta.agent == agent {
        Ok(())
    } else {
        Err(StoreError::WrongAgent { id: meta.id.clone(), agent: meta.agent.clone() })
    }
}

/// Inserts the synthetic results `stored` needs, renumbering the rows after the first insertion
/// point when it is not the tail, and updates the session row. Runs inside the caller's write
/// transaction.
fn repair_session(
    connection: &Connection,
    mut meta: SessionMeta,
    stored: Vec<StoredMessage>,
    now: i64,
) -> Result<StoredSession, StoreError> {
    let messages: Vec<Message> = stored.iter().map(|row| row.message.clone()).collect();
    let insertions = repair::plan(&messages);
    let Some(first) = insertions.first().map(|insertion| insertion.before) else {
        return Ok(StoredSession { meta, messages, repaired: 0 });
    };
    let repaired = insertions.len();
    let first_seq = match stored.get(first) {
        Some(row) => row.seq,
        None => stored.last().map_or(1, |row| row.seq + 1),
    };
    if first < stored.len() {
        connection
            .prepare_cached("DELETE FROM messages WHERE session_id = ?1 AND seq >= ?2")
            .and_then(|mut statement| statement.execute(params![meta.id, to_sql_int(first_seq)]))
            .map_err(db_error("repairing a session"))?;
    }
    let merged = repair::apply(&stored, insertions, |message| StoredMessage { seq: 0, at: 0, message });
    let mut next_seq = first_seq;
    let mut previous_at = now;
    let mut messages = Vec::with_capacity(merged.len());
    for (position, (origin, mut row)) in merged.into_iter().enumerate() {
        if position >= first {
            if origin.is_none() {
                // A synthetic result takes the time of what it follows, keeping `at` in order.
                row.at = previous_at;
            }
            row.seq = next_seq;
            next_seq += 1;
            insert_message(connection, &meta.id, row.seq, row.at, &row.message)?;
        }
        previous_at = row.at;
        messages.push(row.message);
    }
    let touch = next_touch(connection)?;
    let count = u64::try_from(messages.len()).unwrap_or(u64::MAX);
    connection
        .prepare_cached("UPDATE sessions SET message_count = ?2, updated_at = ?3, touch = ?4 WHERE id = ?1")
        .and_then(|mut statement| statement.execute(params![meta.id, to_sql_int(count), now, touch]))
        .map_err(db_error("repairing a session"))?;
    meta.message_count = count;
    meta.updated_at = now;
    Ok(StoredSession { meta, messages, repaired })
}

pub(crate) fn select_meta(connection: &Connection, id: &str) -> Result<Option<SessionMeta>, StoreError> {
    connection
        .prepare_cached(&format!("SELECT {META_COLUMNS} FROM sessions WHERE id = ?1"))
        .and_then(|mut statement| statement.query_row([id], meta_from_row).optional())
        .map_err(db_error("reading a session"))
}

fn meta_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionMeta> {
    Ok(SessionMeta {
        id: row.get(0)?,
        agent: row.get(1)?,
        created_at: row.get(2)?,
        updated_at: row.get(3)?,
        message_count: u64::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
        boundary: row.get(5)?,
    })
}

fn insert_session(
    connection: &Connection,
    id: &str,
    agent: &str,
    boundary: &str,
    created_at: i64,
    updated_at: i64,
    message_count: u64,
) -> Result<SessionMeta, StoreError> {
    let touch = next_touch(connection)?;
    connection
        .prepare_cached(
            "INSERT INTO sessions (id, agent, boundary, created_at, updated_at, touch, message_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut statement| {
            statement.execute(params![
                id,
                agent,
                boundary,
                created_at,
                updated_at,
                touch,
                to_sql_int(message_count)
            ])
        })
        .map_err(db_error("creating a session"))?;
    Ok(SessionMeta {
        id: id.to_string(),
        agent: agent.to_string(),
        created_at,
        updated_at,
        message_count,
        boundary: boundary.to_string(),
    })
}

/// The session's rows in order. A row whose JSON does not parse is an error naming it.
pub(crate) fn load_messages(
    connection: &Connection,
    session_id: &str,
) -> Result<Vec<StoredMessage>, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT seq, at, body FROM messages WHERE session_id = ?1 ORDER BY seq")
        .map_err(db_error("reading messages"))?;
    let rows = statement
        .query_map([session_id], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?))
        })
        .map_err(db_error("reading messages"))?;
    let mut messages = Vec::new();
    for row in rows {
        let (seq, at, body) = row.map_err(db_error("reading messages"))?;
        messages.push(StoredMessage {
            seq: u64::try_from(seq)
                .map_err(|_| StoreError::Database(format!("session `{session_id}`: negative seq {seq}")))?,
            at,
            message: parse_body(session_id, seq, &body)?,
        });
    }
    Ok(messages)
}

pub(crate) fn parse_body(session_id: &str, seq: i64, body: &str) -> Result<Message, StoreError> {
    serde_json::from_str(body).map_err(|error| {
        StoreError::Database(format!(
            "session `{session_id}` message {seq}: stored JSON is not a message: {error}"
        ))
    })
}

fn insert_message(
    connection: &Connection,
    session_id: &str,
    seq: u64,
    at: i64,
    message: &Message,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(message)
        .map_err(|error| StoreError::Database(format!("encoding a message: {error}")))?;
    // A secret echoed into a reply or a tool result (an error body, a command's output) is not
    // kept: the mask has no JSON-special character, so the body stays the same JSON shape.
    let body = clawdia_core::redact::redact_string(body);
    connection
        .prepare_cached("INSERT INTO messages (session_id, seq, at, role, body) VALUES (?1, ?2, ?3, ?4, ?5)")
        .and_then(|mut statement| {
            statement.execute(params![session_id, to_sql_int(seq), at, message.role_name(), body])
        })
        .map_err(db_error("writing a message"))?;
    Ok(())
}

/// The next value of the write counter that breaks `updated_at` ties in `list`.
fn next_touch(connection: &Connection) -> Result<i64, StoreError> {
    connection
        .prepare_cached("UPDATE counters SET value = value + 1 WHERE name = 'touch' RETURNING value")
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(db_error("updating the write counter"))
}

/// SQLite integers are i64; counts beyond that saturate.
fn to_sql_int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
