//! The dream cycle's bookkeeping in `brain.db`: per-session watermarks (the last transcript
//! message whose distillation finished) and the record of every run.
//!
//! Watermarks only move forward (`MAX(old, new)`), so a late writer cannot make a session be
//! distilled twice. A run is started in one `BEGIN IMMEDIATE` transaction that refuses while
//! another run is still going (its row has no end and is younger than the stale limit), so the
//! nightly job and `clawdia brain dream` never distil at the same time; a row left without an end
//! by a killed process is marked `abandoned` once it is older than the limit.

use std::collections::HashMap;

use rusqlite::params;
use serde::{Deserialize, Serialize};

use super::Db;
use super::error::{BrainError, db_error};

/// A session's watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The last transcript `seq` processed (0: none).
    pub seq: u64,
    /// A distiller session of the dream itself: never dreamed about.
    pub own: bool,
}

/// One recorded dream run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DreamRun {
    pub id: i64,
    pub agent: String,
    pub dry_run: bool,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    /// How far it got (`running` and zero counts until it ends).
    #[serde(flatten)]
    pub totals: DreamTotals,
}

/// How a run ended, for `finish_dream_run`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DreamTotals {
    /// `running`, `ok`, `partial` (some transcripts failed or a limit stopped it), `failed`,
    /// `abandoned` (the process died mid-run).
    pub status: String,
    /// Transcript slices scored.
    pub scored: u64,
    /// Slices at or above the minimum score.
    pub worthy: u64,
    /// Slices whose distillation finished.
    pub distilled: u64,
    /// Slices whose scoring or distillation failed (retried next run).
    pub failed: u64,
    pub tokens: u64,
    pub cost_usd: f64,
    /// The human-readable report, one line per slice.
    pub report: String,
}

const RUN_COLUMNS: &str = "id, agent, dry_run, status, started_at, ended_at, scored, worthy, distilled, \
                           failed, tokens, cost_usd, report";

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Db {
    /// The watermarks of `agent`'s sessions, by session id.
    pub fn dream_watermarks(&self, agent: &str) -> Result<HashMap<String, Watermark>, BrainError> {
        self.read("reading dream watermarks", |tx| {
            let mut statement = tx
                .prepare_cached("SELECT session_id, seq, own FROM dream_watermarks WHERE agent = ?1")
                .map_err(db_error("reading dream watermarks"))?;
            let rows = statement
                .query_map([agent], |row| {
                    let seq: i64 = row.get(1)?;
                    Ok((row.get::<_, String>(0)?, Watermark { seq: seq.max(0) as u64, own: row.get(2)? }))
                })
                .and_then(Iterator::collect::<rusqlite::Result<HashMap<_, _>>>)
                .map_err(db_error("reading dream watermarks"))?;
            Ok(rows)
        })
    }

    /// Moves session `session_id`'s watermark forward to `seq` (never back).
    pub fn advance_dream_watermark(
        &self,
        agent: &str,
        session_id: &str,
        seq: u64,
        now: i64,
    ) -> Result<(), BrainError> {
        self.write("advancing a dream watermark", |tx| {
            tx.prepare_cached(
                "INSERT INTO dream_watermarks (session_id, agent, seq, own, updated_at)
                 VALUES (?1, ?2, ?3, 0, ?4)
                 ON CONFLICT (session_id) DO UPDATE SET seq = MAX(seq, excluded.seq),
                                                        updated_at = excluded.updated_at",
            )
            .and_then(|mut statement| statement.execute(params![session_id, agent, to_i64(seq), now]))
            .map_err(db_error("advancing a dream watermark"))?;
            Ok(())
        })
    }

    /// Marks `session_id` as one of the dream's own distiller sessions (never dreamed about).
    pub fn mark_dream_session(&self, agent: &str, session_id: &str, now: i64) -> Result<(), BrainError> {
        self.write("marking a dream session", |tx| {
            tx.prepare_cached(
                "INSERT INTO dream_watermarks (session_id, agent, seq, own, updated_at)
                 VALUES (?1, ?2, 0, 1, ?3)
                 ON CONFLICT (session_id) DO UPDATE SET own = 1, updated_at = excluded.updated_at",
            )
            .and_then(|mut statement| statement.execute(params![session_id, agent, now]))
            .map_err(db_error("marking a dream session"))?;
            Ok(())
        })
    }

    /// Starts a run: `Ok(Ok(id))`, or `Ok(Err(run))` when `run` is still going (started less
    /// than `stale_after_ms` ago without an end). Older unfinished runs become `abandoned`.
    pub fn start_dream_run(
        &self,
        agent: &str,
        dry_run: bool,
        now: i64,
        stale_after_ms: i64,
    ) -> Result<Result<i64, DreamRun>, BrainError> {
        let context = "starting a dream run";
        self.write(context, |tx| {
            tx.prepare_cached(
                "UPDATE dream_runs SET status = 'abandoned', ended_at = ?1
                 WHERE ended_at IS NULL AND started_at <= ?2",
            )
            .and_then(|mut statement| statement.execute(params![now, now - stale_after_ms]))
            .map_err(db_error(context))?;
            let running = select_runs(tx, "ended_at IS NULL ORDER BY id LIMIT 1", [])?;
            if let Some(run) = running.into_iter().next() {
                return Ok(Err(run));
            }
            tx.prepare_cached(
                "INSERT INTO dream_runs (agent, dry_run, status, started_at) VALUES (?1, ?2, 'running', ?3)",
            )
            .and_then(|mut statement| statement.execute(params![agent, dry_run, now]))
            .map_err(db_error(context))?;
            Ok(Ok(tx.last_insert_rowid()))
        })
    }

    /// Records how run `id` ended.
    pub fn finish_dream_run(&self, id: i64, totals: &DreamTotals, now: i64) -> Result<(), BrainError> {
        self.write("finishing a dream run", |tx| {
            tx.prepare_cached(
                "UPDATE dream_runs SET status = ?2, ended_at = ?3, scored = ?4, worthy = ?5, distilled = ?6,
                                       failed = ?7, tokens = ?8, cost_usd = ?9, report = ?10
                 WHERE id = ?1",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    totals.status,
                    now,
                    to_i64(totals.scored),
                    to_i64(totals.worthy),
                    to_i64(totals.distilled),
                    to_i64(totals.failed),
                    to_i64(totals.tokens),
                    totals.cost_usd,
                    totals.report
                ])
            })
            .map_err(db_error("finishing a dream run"))?;
            Ok(())
        })
    }

    /// The most recent runs, newest first.
    pub fn dream_runs(&self, limit: usize) -> Result<Vec<DreamRun>, BrainError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("listing dream runs", |tx| select_runs(tx, "1 ORDER BY id DESC LIMIT ?1", [limit]))
    }
}

fn select_runs(
    connection: &rusqlite::Connection,
    condition: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<DreamRun>, BrainError> {
    let sql = format!("SELECT {RUN_COLUMNS} FROM dream_runs WHERE {condition}");
    let mut statement = connection.prepare_cached(&sql).map_err(db_error("reading dream runs"))?;
    let count = |value: i64| value.max(0) as u64;
    statement
        .query_map(values, |row| {
            Ok(DreamRun {
                id: row.get(0)?,
                agent: row.get(1)?,
                dry_run: row.get(2)?,
                started_at: row.get(4)?,
                ended_at: row.get(5)?,
                totals: DreamTotals {
                    status: row.get(3)?,
                    scored: count(row.get(6)?),
                    worthy: count(row.get(7)?),
                    distilled: count(row.get(8)?),
                    failed: count(row.get(9)?),
                    tokens: count(row.get(10)?),
                    cost_usd: row.get(11)?,
                    report: row.get(12)?,
                },
            })
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_error("reading dream runs"))
}
