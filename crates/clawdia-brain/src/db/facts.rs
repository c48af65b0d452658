//! Bi-temporal facts, takes and the timeline.
//!
//! A fact has two time axes. World validity: `[valid_from, valid_until)` says when it was true.
//! Belief: `[recorded_at, expired_at)` says when the brain held it. A new fact with the same
//! subject and predicate (matched by `slugify`, so case, spacing and punctuation do not matter)
//! and a different object closes the validity of any older fact that overlaps its start
//! (`valid_until = new.valid_from`, `superseded_by = new`); a fact that starts before an existing
//! one (backfilled history) ends where the later one starts. Closing never loses what was
//! believed: the closed fact keeps its id and gets the new validity with `recorded_at = now`,
//! and a copy of its previous state is kept with `expired_at = now`, so `known_at` queries see
//! exactly what the brain believed at any instant. A new fact with the same start as a
//! conflicting one is a correction: the old one is expired rather than shrunk to nothing.
//! `retract_fact` expires a fact (the brain no longer believes it) and reopens the validity of
//! the facts it had closed (a fact it had expired as a correction stays expired).
//!
//! Takes are opinions with a holder and a weight; superseding one deactivates it. Timeline
//! entries are dated lines, optionally attached to a page. Recording the same fact, the same
//! active take or the same timeline entry again writes nothing and returns the existing id, so
//! re-running a distillation (the dream cycle after a crash) does not duplicate.

use clawdia_core::time::now_ms;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::Db;
use super::error::{BrainError, db_error};
use crate::types::slugify;

/// A fact to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactInput {
    pub subject: String,
    pub predicate: String,
    pub object: String,
    /// When it became true (Unix ms); `None` = now.
    pub valid_from: Option<i64>,
    /// When it stopped being true, if known.
    pub valid_until: Option<i64>,
    /// The page it came from.
    pub source_slug: Option<String>,
}

/// What `add_fact` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactOutcome {
    /// The new fact, or the existing identical one.
    pub id: i64,
    /// Older facts whose validity this one closed.
    pub closed: Vec<i64>,
    /// True when an identical current fact already existed (nothing was written).
    pub unchanged: bool,
}

/// A stored fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub id: i64,
    pub subject: String,
    pub predicate: String,
    pub object: String,
    pub valid_from: i64,
    pub valid_until: Option<i64>,
    pub recorded_at: i64,
    /// Set when the brain stopped believing this row (retracted, or replaced by a newer version).
    pub expired_at: Option<i64>,
    pub source_slug: Option<String>,
    pub superseded_by: Option<i64>,
}

/// Which facts to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactQuery {
    pub subject: Option<String>,
    pub predicate: Option<String>,
    /// Only facts true in the world at this instant. Without it (and without `include_history`):
    /// facts not yet ended (current and upcoming).
    pub as_of: Option<i64>,
    /// What the brain believed at this instant: `recorded_at <= t` and not expired by `t`.
    /// Without it: current beliefs only (unless `include_history`).
    pub known_at: Option<i64>,
    /// Every version, ended and retracted ones included (filters above still apply).
    pub include_history: bool,
}

/// A take to record: a claim someone holds, with a confidence weight in `0..=1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakeInput {
    pub claim: String,
    pub holder: String,
    pub weight: f64,
    /// When the holder took this view; `None` = now.
    pub since: Option<i64>,
    pub page_slug: Option<String>,
    /// The take this one replaces (it becomes inactive).
    pub supersedes: Option<i64>,
}

/// A stored take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Take {
    pub id: i64,
    pub claim: String,
    pub holder: String,
    pub weight: f64,
    pub since: i64,
    pub until: Option<i64>,
    pub active: bool,
    pub superseded_by: Option<i64>,
    pub page_slug: Option<String>,
    pub recorded_at: i64,
}

/// A timeline entry to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineInput {
    pub page_slug: Option<String>,
    pub at: i64,
    pub text: String,
    pub source: Option<String>,
}

/// Which timeline entries to list, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineQuery {
    pub page_slug: Option<String>,
    /// Inclusive.
    pub from: Option<i64>,
    /// Inclusive.
    pub to: Option<i64>,
    /// At most this many entries; 0 = no limit.
    pub limit: usize,
}

/// A stored timeline entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub id: i64,
    pub page_slug: Option<String>,
    pub at: i64,
    pub text: String,
    pub source: Option<String>,
}

const FACT_COLUMNS: &str = "id, subject, predicate, object, valid_from, valid_until, recorded_at, \
                            expired_at, source_slug, superseded_by";

impl Db {
    /// Records a fact, closing or bounding the validity of conflicting ones (see the module doc).
    pub fn add_fact(&self, fact: &FactInput) -> Result<FactOutcome, BrainError> {
        self.add_fact_at(fact, now_ms())
    }

    /// `add_fact` with an explicit "now" (the belief time), for tests of `known_at`.
    pub(crate) fn add_fact_at(&self, fact: &FactInput, now: i64) -> Result<FactOutcome, BrainError> {
        let subject = required("subject", &fact.subject)?;
        let predicate = required("predicate", &fact.predicate)?;
        let object = required("object", &fact.object)?;
        let (subject_key, predicate_key) = (key_of("subject", subject)?, key_of("predicate", predicate)?);
        let valid_from = fact.valid_from.unwrap_or(now);
        if let Some(until) = fact.valid_until.filter(|until| *until <= valid_from) {
            return Err(BrainError::Invalid(format!(
                "valid_until ({until}) must be after valid_from ({valid_from})"
            )));
        }
        let source_slug = fact.source_slug.as_deref().map(str::trim).filter(|slug| !slug.is_empty());
        self.write("recording a fact", |tx| {
            let existing = select_facts(
                tx,
                "subject_key = ?1 AND predicate_key = ?2 AND expired_at IS NULL ORDER BY valid_from, id",
                params![subject_key, predicate_key],
            )?;
            let same_object = |other: &Fact| other.object.trim().to_lowercase() == object.to_lowercase();
            if let Some(identical) = existing.iter().find(|other| {
                same_object(other)
                    && other.valid_from <= valid_from
                    && other.valid_until.is_none_or(|until| valid_from < until)
            }) {
                return Ok(FactOutcome { id: identical.id, closed: Vec::new(), unchanged: true });
            }
            // Backfilled history ends where the next known fact begins.
            let next_start =
                existing.iter().map(|other| other.valid_from).filter(|start| *start > valid_from).min();
            let valid_until = match (fact.valid_until, next_start) {
                (Some(until), Some(next)) => Some(until.min(next)),
                (until, next) => until.or(next),
            };
            tx.prepare_cached(
                "INSERT INTO facts (subject, predicate, object, subject_key, predicate_key, valid_from,
                                    valid_until, recorded_at, source_slug)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    subject,
                    predicate,
                    object,
                    subject_key,
                    predicate_key,
                    valid_from,
                    valid_until,
                    now,
                    source_slug
                ])
            })
            .map_err(db_error("recording a fact"))?;
            let id = tx.last_insert_rowid();
            let mut closed = Vec::new();
            for other in existing.iter().filter(|other| !same_object(other)) {
                let overlaps = other.valid_from <= valid_from
                    && other.valid_until.is_none_or(|until| until > valid_from);
                if !overlaps {
                    continue;
                }
                if other.valid_from == valid_from {
                    // Same start, different value: a correction. The old belief is expired,
                    // not shrunk to an empty interval.
                    tx.prepare_cached("UPDATE facts SET expired_at = ?2, superseded_by = ?3 WHERE id = ?1")
                        .and_then(|mut statement| statement.execute(params![other.id, now, id]))
                        .map_err(db_error("recording a fact"))?;
                } else {
                    revise_validity(tx, other, valid_from, Some(id), now)?;
                }
                closed.push(other.id);
            }
            Ok(FactOutcome { id, closed, unchanged: false })
        })
    }

    /// Expires fact `id` (the brain no longer believes it) and reopens the facts it had closed.
    /// `false` when it was already expired; `NotFound` when there is no such fact.
    pub fn retract_fact(&self, id: i64) -> Result<bool, BrainError> {
        self.retract_fact_at(id, now_ms())
    }

    pub(crate) fn retract_fact_at(&self, id: i64, now: i64) -> Result<bool, BrainError> {
        self.write("retracting a fact", |tx| {
            let Some(fact) = select_facts(tx, "id = ?1", params![id])?.into_iter().next() else {
                return Err(BrainError::NotFound(format!("fact {id}")));
            };
            if fact.expired_at.is_some() {
                return Ok(false);
            }
            tx.prepare_cached("UPDATE facts SET expired_at = ?2 WHERE id = ?1")
                .and_then(|mut statement| statement.execute(params![id, now]))
                .map_err(db_error("retracting a fact"))?;
            let closed_by_it = select_facts(
                tx,
                "superseded_by = ?1 AND expired_at IS NULL AND valid_until = ?2",
                params![id, fact.valid_from],
            )?;
            for other in closed_by_it {
                revise_validity_to(tx, &other, fact.valid_until, None, now)?;
            }

            Ok(true)
        })
    }

    /// Facts matching `query`, ordered by subject, predicate and start of validity.
    pub fn facts(&self, query: &FactQuery) -> Result<Vec<Fact>, BrainError> {
        let now = now_ms();
        let mut conditions = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        let mut bind = |value: rusqlite::types::Value| {
            values.push(value);
            values.len()
        };
        if let Some(subject) = query.subject.as_deref() {
            let n = bind(slugify(subject).into());
            conditions.push(format!("subject_key = ?{n}"));
        }
        if let Some(predicate) = query.predicate.as_deref() {
            let n = bind(slugify(predicate).into());
            conditions.push(format!("predicate_key = ?{n}"));
        }
        match query.known_at {
            Some(at) => {
                let n = bind(at.into());
                conditions.push(format!("recorded_at <= ?{n} AND (expired_at IS NULL OR expired_at > ?{n})"));
            }
            None if query.include_history => {}
            None => conditions.push("expired_at IS NULL".to_string()),
        }
        match query.as_of {
            Some(at) => {
                let n = bind(at.into());
                conditions
                    .push(format!("valid_from <= ?{n} AND (valid_until IS NULL OR valid_until > ?{n})"));
            }
            None if query.include_history => {}
            None => {
                let n = bind(now.into());
                conditions.push(format!("(valid_until IS NULL OR valid_until > ?{n})"));
            }
        }
        let filter = if conditions.is_empty() { "1".to_string() } else { conditions.join(" AND ") };
        let condition = format!("{filter} ORDER BY subject_key, predicate_key, valid_from, recorded_at, id");
        self.read("listing facts", |tx| select_facts(tx, &condition, rusqlite::params_from_iter(values)))
    }

    /// Records a take; with `supersedes`, the old take becomes inactive (`until = now`). An
    /// identical active take (same claim and holder, ignoring case) is not recorded again: its id
    /// is returned.
    pub fn add_take(&self, take: &TakeInput) -> Result<i64, BrainError> {
        let claim = required("claim", &take.claim)?;
        let holder = required("holder", &take.holder)?;
        if !(take.weight.is_finite() && (0.0..=1.0).contains(&take.weight)) {
            return Err(BrainError::Invalid(format!("weight must be between 0 and 1, not {}", take.weight)));
        }
        let now = now_ms();
        self.write("recording a take", |tx| {
            let page_id = match take.page_slug.as_deref() {
                Some(slug) => Some(live_page_id(tx, slug)?),
                None => None,
            };
            if take.supersedes.is_none() {
                // The same active claim by the same holder is not recorded twice (a re-run of
                // the dream cycle, an agent repeating itself): the existing take's id comes back.
                let (claim_key, holder_key) = (claim.to_lowercase(), holder.to_lowercase());
                let same = select_takes(tx, "t.active = 1", [])?.into_iter().find(|other| {
                    other.claim.trim().to_lowercase() == claim_key
                        && other.holder.trim().to_lowercase() == holder_key
                });
                if let Some(same) = same {
                    return Ok(same.id);
                }
            }
            if let Some(old) = take.supersedes {
                let active: Option<bool> = tx
                    .prepare_cached("SELECT active FROM takes WHERE id = ?1")
                    .and_then(|mut statement| statement.query_row([old], |row| row.get(0)).optional())
                    .map_err(db_error("recording a take"))?;
                match active {
                    None => return Err(BrainError::NotFound(format!("take {old}"))),
                    Some(false) => {
                        return Err(BrainError::Invalid(format!("take {old} is already superseded")));
                    }
                    Some(true) => {}
                }
            }
            tx.prepare_cached(
                "INSERT INTO takes (claim, holder, weight, since, active, page_id, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    claim,
                    holder,
                    take.weight,
                    take.since.unwrap_or(now),
                    page_id,
                    now
                ])
            })
            .map_err(db_error("recording a take"))?;
            let id = tx.last_insert_rowid();
            if let Some(old) = take.supersedes {
                tx.prepare_cached(
                    "UPDATE takes SET active = 0, until = ?2, superseded_by = ?3 WHERE id = ?1",
                )
                .and_then(|mut statement| statement.execute(params![old, now, id]))
                .map_err(db_error("recording a take"))?;
            }
            Ok(id)
        })
    }

    /// Takes, optionally of one holder (case-insensitive) and only active ones; newest first.
    pub fn takes(&self, holder: Option<&str>, active_only: bool) -> Result<Vec<Take>, BrainError> {
        let holder = holder.map(|holder| holder.trim().to_lowercase());
        let takes = self.read("listing takes", |tx| {
            select_takes(
                tx,
                "(?1 = 0 OR t.active = 1) ORDER BY t.active DESC, t.since DESC, t.id DESC",
                [active_only],
            )
        })?;
        // Case folding in Rust: SQLite's lower() only folds ASCII.
        Ok(match holder {
            Some(holder) => {
                takes.into_iter().filter(|take| take.holder.trim().to_lowercase() == holder).collect()
            }
            None => takes,
        })
    }

    /// Adds a timeline entry; `page_slug` must name a live page. An identical entry (same page,
    /// instant and text) is not added again: its id is returned.
    pub fn add_timeline(&self, entry: &TimelineInput) -> Result<i64, BrainError> {
        let text = required("text", &entry.text)?;
        let now = now_ms();
        self.write("adding a timeline entry", |tx| {
            let page_id = match entry.page_slug.as_deref() {
                Some(slug) => Some(live_page_id(tx, slug)?),
                None => None,
            };
            // An identical entry (same page, instant and text) is not added twice.
            let existing: Option<i64> = tx
                .prepare_cached("SELECT id FROM timeline WHERE page_id IS ?1 AND at = ?2 AND text = ?3")
                .and_then(|mut statement| {
                    statement.query_row(params![page_id, entry.at, text], |row| row.get(0)).optional()
                })
                .map_err(db_error("adding a timeline entry"))?;
            if let Some(id) = existing {
                return Ok(id);
            }
            tx.prepare_cached(
                "INSERT INTO timeline (page_id, at, text, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut statement| statement.execute(params![page_id, entry.at, text, entry.source, now]))
            .map_err(db_error("adding a timeline entry"))?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// Timeline entries in `[from, to]`, oldest first; `NotFound` for an unknown page.
    pub fn timeline(&self, query: &TimelineQuery) -> Result<Vec<TimelineEntry>, BrainError> {
        let limit = if query.limit == 0 { i64::MAX } else { i64::try_from(query.limit).unwrap_or(i64::MAX) };
        self.read("reading the timeline", |tx| {
            let page_id = match query.page_slug.as_deref() {
                Some(slug) => Some(page_id_any(tx, slug)?),
                None => None,
            };
            select_timeline(
                tx,
                "(?1 IS NULL OR t.page_id = ?1) AND (?2 IS NULL OR t.at >= ?2) AND (?3 IS NULL OR t.at <= ?3)
                 ORDER BY t.at, t.id LIMIT ?4",
                params![page_id, query.from, query.to, limit],
            )
        })
    }
}

/// Gives `fact` a new validity end (and `superseded_by`), keeping its previous state as an
/// expired copy so belief-time queries still see it.
fn revise_validity(
    connection: &Connection,
    fact: &Fact,
    valid_until: i64,
    superseded_by: Option<i64>,
    now: i64,
) -> Result<(), BrainError> {
    revise_validity_to(connection, fact, Some(valid_until), superseded_by, now)
}

fn revise_validity_to(
    connection: &Connection,
    fact: &Fact,
    valid_until: Option<i64>,
    superseded_by: Option<i64>,
    now: i64,
) -> Result<(), BrainError> {
    let context = "revising a fact";
    connection
        .prepare_cached(
            "INSERT INTO facts (subject, predicate, object, subject_key, predicate_key, valid_from,
                                valid_until, recorded_at, expired_at, source_slug, superseded_by)
             SELECT subject, predicate, object, subject_key, predicate_key, valid_from,
                    valid_until, recorded_at, ?2, source_slug, id
             FROM facts WHERE id = ?1",
        )
        .and_then(|mut statement| statement.execute(params![fact.id, now]))
        .map_err(db_error(context))?;
    connection
        .prepare_cached(
            "UPDATE facts SET valid_until = ?2, superseded_by = ?3, recorded_at = ?4 WHERE id = ?1",
        )
        .and_then(|mut statement| statement.execute(params![fact.id, valid_until, superseded_by, now]))
        .map_err(db_error(context))?;
    Ok(())
}

/// Facts `WHERE <condition>` (which may carry an ORDER BY).
pub(crate) fn select_facts(
    connection: &Connection,
    condition: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<Fact>, BrainError> {
    let sql = format!("SELECT {FACT_COLUMNS} FROM facts WHERE {condition}");
    let mut statement = connection.prepare_cached(&sql).map_err(db_error("reading facts"))?;
    statement
        .query_map(values, |row| {
            Ok(Fact {
                id: row.get(0)?,
                subject: row.get(1)?,
                predicate: row.get(2)?,
                object: row.get(3)?,
                valid_from: row.get(4)?,
                valid_until: row.get(5)?,
                recorded_at: row.get(6)?,
                expired_at: row.get(7)?,
                source_slug: row.get(8)?,
                superseded_by: row.get(9)?,
            })
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_error("reading facts"))
}

/// Takes `WHERE <condition>` over `takes t`.
pub(crate) fn select_takes(
    connection: &Connection,
    condition: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<Take>, BrainError> {
    let sql = format!(
        "SELECT t.id, t.claim, t.holder, t.weight, t.since, t.until, t.active, t.superseded_by, p.slug,
                t.recorded_at
         FROM takes t LEFT JOIN pages p ON p.id = t.page_id WHERE {condition}"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(db_error("reading takes"))?;
    statement
        .query_map(values, |row| {
            Ok(Take {
                id: row.get(0)?,
                claim: row.get(1)?,
                holder: row.get(2)?,
                weight: row.get(3)?,
                since: row.get(4)?,
                until: row.get(5)?,
                active: row.get(6)?,
                superseded_by: row.get(7)?,
                page_slug: row.get(8)?,
                recorded_at: row.get(9)?,
            })
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_error("reading takes"))
}

/// Timeline entries `WHERE <condition>` over `timeline t`.
pub(crate) fn select_timeline(
    connection: &Connection,
    condition: &str,
    values: impl rusqlite::Params,
) -> Result<Vec<TimelineEntry>, BrainError> {
    let sql = format!(
        "SELECT t.id, p.slug, t.at, t.text, t.source
         FROM timeline t LEFT JOIN pages p ON p.id = t.page_id WHERE {condition}"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(db_error("reading the timeline"))?;
    statement
        .query_map(values, |row| {
            Ok(TimelineEntry {
                id: row.get(0)?,
                page_slug: row.get(1)?,
                at: row.get(2)?,
                text: row.get(3)?,
                source: row.get(4)?,
            })
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_error("reading the timeline"))
}

/// The id of the live page `slug`, else `NotFound`.
fn live_page_id(connection: &Connection, slug: &str) -> Result<i64, BrainError> {
    connection
        .prepare_cached("SELECT id FROM pages WHERE slug = ?1 AND deleted_at IS NULL")
        .and_then(|mut statement| statement.query_row([slug], |row| row.get(0)).optional())
        .map_err(db_error("looking up a page"))?
        .ok_or_else(|| BrainError::NotFound(format!("page `{slug}`")))
}

/// The id of page `slug`, live or deleted, else `NotFound`.
fn page_id_any(connection: &Connection, slug: &str) -> Result<i64, BrainError> {
    connection
        .prepare_cached("SELECT id FROM pages WHERE slug = ?1")
        .and_then(|mut statement| statement.query_row([slug], |row| row.get(0)).optional())
        .map_err(db_error("looking up a page"))?
        .ok_or_else(|| BrainError::NotFound(format!("page `{slug}`")))
}

/// `value` trimmed, or `Invalid` when empty.
fn required<'a>(name: &str, value: &'a str) -> Result<&'a str, BrainError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(BrainError::Invalid(format!("`{name}` must not be empty")));
    }
    Ok(value)
}

/// The matching key of a subject or predicate; `Invalid` when it has no letters or digits.
fn key_of(name: &str, value: &str) -> Result<String, BrainError> {
    let key = slugify(value);
    if key.is_empty() {
        return Err(BrainError::Invalid(format!("`{name}` needs at least one letter or digit")));
    }
    Ok(key)
}
