//! Pages: writing one (with its chunks, full-text rows, links and reusable vectors) in one
//! transaction, soft deletion, reading a page with its graph neighbourhood, facts, timeline and
//! takes, listing, statistics and maintenance.
//!
//! A re-put replaces all of a page's chunks (new chunk ids) but keeps the vector of any chunk
//! whose embedded text is unchanged, so editing one section of a long note re-embeds only that
//! section. A content hash equal to the live page's means nothing is written at all.

use std::collections::{HashMap, HashSet};

use clawdia_core::time::now_ms;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use super::Db;
use super::error::{BrainError, db_error};
use super::facts::{Fact, Take, TimelineEntry, select_facts, select_takes, select_timeline};
use super::links::{LinkKeys, RESOLVE, Target, incoming_links, link_keys, slug_stem};
use super::vectors::{embed_text, insert_vector, prune_tombstones};
use crate::types::{PageInput, slugify};

/// Longest accepted slug, in bytes.
const MAX_SLUG_BYTES: usize = 1024;

/// What `put_page` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutOutcome {
    pub page_id: i64,
    /// False when the live page already had this content hash (nothing was written).
    pub changed: bool,
    /// True when the slug was new.
    pub created: bool,
    /// True when the page had been deleted and is live again.
    pub undeleted: bool,
    /// Chunks the page has.
    pub chunks: usize,
    /// Chunks whose vector was kept because their embedded text did not change.
    pub vectors_reused: usize,
}

/// One page with its neighbourhood, as `get_page` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageView {
    pub slug: String,
    pub title: String,
    pub kind: String,
    pub source: String,
    pub body: String,
    pub frontmatter: serde_json::Value,
    pub content_hash: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Set when the page is deleted (it no longer appears in search).
    pub deleted_at: Option<i64>,
    pub chunks: usize,
    pub links: Vec<LinkView>,
    pub backlinks: Vec<Backlink>,
    /// Current beliefs (any validity) whose subject is this page or that cite it as source.
    pub facts: Vec<Fact>,
    pub timeline: Vec<TimelineEntry>,
    pub takes: Vec<Take>,
}

/// An outgoing link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkView {
    /// As written.
    pub target: String,
    pub kind: String,
    pub alias: Option<String>,
    /// The live page it resolves to, if any.
    pub slug: Option<String>,
}

/// A link into the page from another live page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backlink {
    pub slug: String,
    pub title: String,
    pub kind: String,
    pub alias: Option<String>,
}

/// A line of a page listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageSummary {
    pub slug: String,
    pub title: String,
    pub kind: String,
    pub source: String,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
}

/// Live pages of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCount {
    pub source: String,
    pub pages: u64,
    /// The folder or file it was last imported from (none for agents' and MCP clients' pages
    /// and for sources imported before paths were recorded).
    pub root: Option<String>,
}

/// What the brain holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub pages: u64,
    pub deleted_pages: u64,
    pub chunks: u64,
    pub embedded_chunks: u64,
    pub links: u64,
    /// Facts believed now and not yet ended.
    pub facts_current: u64,
    /// Every fact row, history and retracted ones included.
    pub facts_total: u64,
    pub takes_active: u64,
    pub takes_total: u64,
    pub timeline: u64,
    pub sources: Vec<SourceCount>,
    pub embedding_model: Option<String>,
    pub embedding_dims: Option<usize>,
    /// The database file plus its write-ahead log, in bytes.
    pub db_bytes: u64,
}

impl Db {
    /// The content hash of the live page `slug`.
    pub fn page_hash(&self, slug: &str) -> Result<Option<String>, BrainError> {
        self.read("reading a page hash", |tx| {
            tx.prepare_cached("SELECT content_hash FROM pages WHERE slug = ?1 AND deleted_at IS NULL")
                .and_then(|mut statement| statement.query_row([slug], |row| row.get(0)).optional())
                .map_err(db_error("reading a page hash"))
        })
    }

    /// Inserts or updates (undeleting) a page and replaces its chunks, full-text rows, links and
    /// vectors, in one transaction. A live page with the same content hash is left untouched.
    pub fn put_page(&self, page: &PageInput) -> Result<PutOutcome, BrainError> {
        validate_slug(&page.slug)?;
        let frontmatter = match &page.frontmatter {
            serde_json::Value::Null => "{}".to_string(),
            value => serde_json::to_string(value)
                .map_err(|error| BrainError::Invalid(format!("frontmatter: {error}")))?,
        };
        let now = now_ms();
        self.write("storing a page", |tx| put_page_in(tx, page, &frontmatter, now))
    }

    /// Soft-deletes the live page `slug`: it keeps its row (and body) with `deleted_at` set, and
    /// its chunks, full-text rows and vectors are removed, so it leaves search. `false` when
    /// there was no live page.
    pub fn delete_page(&self, slug: &str) -> Result<bool, BrainError> {
        let now = now_ms();
        self.write("deleting a page", |tx| delete_page_in(tx, slug, now))
    }

    /// Soft-deletes the live pages of `source` whose slug is not in `keep` (one transaction per
    /// page); returns their slugs, sorted.
    pub fn delete_missing(&self, source: &str, keep: &HashSet<String>) -> Result<Vec<String>, BrainError> {
        self.delete_missing_under(source, "", keep)
    }

    /// `delete_missing` limited to slugs starting with `prefix`. An import passes its source's
    /// slug prefix (`notes/`): pages an agent or MCP client wrote under a writer name equal to
    /// the source's are never under it, so the import never deletes them.
    pub fn delete_missing_under(
        &self,
        source: &str,
        prefix: &str,
        keep: &HashSet<String>,
    ) -> Result<Vec<String>, BrainError> {
        let live: Vec<String> = self.read("listing a source", |tx| {
            tx.prepare_cached("SELECT slug FROM pages WHERE source = ?1 AND deleted_at IS NULL ORDER BY slug")
                .and_then(|mut statement| {
                    statement
                        .query_map([source], |row| row.get(0))
                        .and_then(Iterator::collect::<rusqlite::Result<Vec<String>>>)
                })
                .map_err(db_error("listing a source"))
        })?;
        let mut deleted = Vec::new();
        for slug in live.into_iter().filter(|slug| slug.starts_with(prefix) && !keep.contains(slug)) {
            if self.delete_page(&slug)? {
                deleted.push(slug);
            }
        }
        Ok(deleted)
    }

    /// The page `slug` (live or deleted) with its links, backlinks, facts, timeline and takes.
    pub fn get_page(&self, slug: &str) -> Result<Option<PageView>, BrainError> {
        self.read("reading a page", |tx| read_page(tx, slug))
    }

    /// Live pages `wanted` probably meant, for a "did you mean" when it names none, best first
    /// (at most `limit`): slugs ending in `/wanted`, else the same with each segment slugified
    /// (`Rust Borrowing` → `rust-borrowing`), else pages whose last segment is that stem, else
    /// slugs or last segments within two edits of it.
    pub fn similar_slugs(&self, wanted: &str, limit: usize) -> Result<Vec<String>, BrainError> {
        self.read("finding similar pages", |tx| {
            similar_slugs_in(tx, wanted, limit).map_err(db_error("finding similar pages"))
        })
    }

    /// Pages whose slug starts with `prefix` (all when `None`), by slug.
    pub fn list_pages(
        &self,
        prefix: Option<&str>,
        include_deleted: bool,
        limit: usize,
    ) -> Result<Vec<PageSummary>, BrainError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("listing pages", |tx| {
            tx.prepare_cached(
                "SELECT slug, title, kind, source, updated_at, deleted_at FROM pages
                 WHERE (?1 IS NULL OR substr(slug, 1, length(?1)) = ?1)
                   AND (?2 OR deleted_at IS NULL)
                 ORDER BY slug LIMIT ?3",
            )
            .and_then(|mut statement| {
                statement
                    .query_map(params![prefix, include_deleted, limit], |row| {
                        Ok(PageSummary {
                            slug: row.get(0)?,
                            title: row.get(1)?,
                            kind: row.get(2)?,
                            source: row.get(3)?,
                            updated_at: row.get(4)?,
                            deleted_at: row.get(5)?,
                        })
                    })
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            })
            .map_err(db_error("listing pages"))
        })
    }

    /// Counts of everything, the sources, the embedding model and the size on disk.
    pub fn stats(&self) -> Result<Stats, BrainError> {
        let now = now_ms();
        let mut stats = self.read("reading statistics", |tx| {
            let context = "reading statistics";
            let count = |sql: &str| -> Result<u64, BrainError> {
                tx.prepare_cached(sql)
                    .and_then(|mut statement| statement.query_row([], |row| row.get::<_, i64>(0)))
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .map_err(db_error(context))
            };
            let facts_current: i64 = tx
                .prepare_cached(
                    "SELECT COUNT(*) FROM facts WHERE expired_at IS NULL
                     AND (valid_until IS NULL OR valid_until > ?1)",
                )
                .and_then(|mut statement| statement.query_row([now], |row| row.get(0)))
                .map_err(db_error(context))?;
            let sources = tx
                .prepare_cached(
                    "SELECT p.source, COUNT(*), s.root FROM pages p LEFT JOIN sources s ON s.name = p.source
                     WHERE p.deleted_at IS NULL GROUP BY p.source ORDER BY p.source",
                )
                .and_then(|mut statement| {
                    statement
                        .query_map([], |row| {
                            Ok(SourceCount {
                                source: row.get(0)?,
                                pages: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                                root: row.get(2)?,
                            })
                        })
                        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
                })
                .map_err(db_error(context))?;
            let (model, dims): (Option<String>, Option<i64>) = tx
                .query_row("SELECT model, dims FROM vector_state WHERE id = 1", [], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(db_error(context))?;
            Ok(Stats {
                pages: count("SELECT COUNT(*) FROM pages WHERE deleted_at IS NULL")?,
                deleted_pages: count("SELECT COUNT(*) FROM pages WHERE deleted_at IS NOT NULL")?,
                chunks: count("SELECT COUNT(*) FROM chunks")?,
                embedded_chunks: count("SELECT COUNT(*) FROM chunk_vectors")?,
                links: count(
                    "SELECT COUNT(*) FROM links l JOIN pages p ON p.id = l.from_page WHERE p.deleted_at IS NULL",
                )?,
                facts_current: u64::try_from(facts_current).unwrap_or(0),
                facts_total: count("SELECT COUNT(*) FROM facts")?,
                takes_active: count("SELECT COUNT(*) FROM takes WHERE active = 1")?,
                takes_total: count("SELECT COUNT(*) FROM takes")?,
                timeline: count("SELECT COUNT(*) FROM timeline")?,
                sources,
                embedding_model: model,
                embedding_dims: dims.and_then(|dims| usize::try_from(dims).ok()),
                db_bytes: 0,
            })
        })?;
        let file_size = |path: &std::path::Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        stats.db_bytes = file_size(&self.path) + file_size(std::path::Path::new(&wal));
        Ok(stats)
    }

    /// Maintenance: merges the full-text index, refreshes planner statistics, prunes old vector
    /// tombstones and checkpoints (truncating) the write-ahead log.
    pub fn optimize(&self) -> Result<(), BrainError> {
        self.write("optimizing", |tx| {
            tx.execute_batch(
                "INSERT INTO chunks_fts (chunks_fts) VALUES ('optimize');
                 INSERT INTO pages_fts (pages_fts) VALUES ('optimize');
                 ANALYZE;",
            )
            .map_err(db_error("optimizing"))?;
            prune_tombstones(tx)
        })?;
        let connection = self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Busy readers can keep the checkpoint from finishing; that is reported, not an error.
        let (busy, _, _): (i64, i64, i64) = connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .map_err(db_error("checkpointing"))?;
        if busy != 0 {
            tracing::info!("brain.db checkpoint incomplete: readers were active");
        }
        Ok(())
    }
}

fn similar_slugs_in(tx: &Connection, wanted: &str, limit: usize) -> rusqlite::Result<Vec<String>> {
    let normalized: Vec<String> =
        wanted.split('/').map(slugify).filter(|segment| !segment.is_empty()).collect();
    let normalized = normalized.join("/");
    let stem = normalized.rsplit('/').next().unwrap_or_default().to_string();
    let wanted = wanted.trim().trim_matches('/').to_string();
    let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
    let select = |sql: &str, value: &str| -> rusqlite::Result<Vec<String>> {
        tx.prepare_cached(sql).and_then(|mut statement| {
            statement
                .query_map(params![value, limit_sql], |row| row.get(0))
                .and_then(Iterator::collect::<rusqlite::Result<Vec<String>>>)
        })
    };
    let ending = "SELECT slug FROM pages WHERE deleted_at IS NULL
         AND length(slug) > length(?1) + 1
         AND substr(slug, length(slug) - length(?1)) = '/' || ?1
         ORDER BY length(slug), slug LIMIT ?2";
    let live = |slug: &str| -> rusqlite::Result<bool> {
        tx.prepare_cached("SELECT 1 FROM pages WHERE slug = ?1 AND deleted_at IS NULL")
            .and_then(|mut statement| statement.exists([slug]))
    };
    for candidate in [&wanted, &normalized] {
        if candidate.is_empty() {
            continue;
        }
        let mut found = Vec::new();
        if *candidate != wanted && live(candidate)? {
            found.push(candidate.clone());
        }
        found.extend(select(ending, candidate)?);
        if !found.is_empty() {
            found.truncate(limit);
            return Ok(found);
        }
    }
    if stem.is_empty() {
        return Ok(Vec::new());
    }
    let found = select(
        "SELECT slug FROM pages WHERE stem = ?1 AND deleted_at IS NULL ORDER BY length(slug), slug LIMIT ?2",
        &stem,
    )?;
    if !found.is_empty() {
        return Ok(found);
    }
    // A typo: the closest slugs or last segments, by edit distance.
    let mut statement = tx.prepare_cached("SELECT slug FROM pages WHERE deleted_at IS NULL")?;
    let mut rows = statement.query([])?;
    let mut close: Vec<(usize, String)> = Vec::new();
    while let Some(row) = rows.next()? {
        let slug: String = row.get(0)?;
        let last = slug.rsplit('/').next().unwrap_or(&slug);
        let distance = edit_distance(&normalized, &slug).min(edit_distance(&stem, last));
        if distance <= 2 {
            close.push((distance, slug));
        }
    }
    close.sort();
    Ok(close.into_iter().take(limit).map(|(_, slug)| slug).collect())
}

/// Levenshtein distance over characters, giving up (returning `usize::MAX`) once the lengths
/// alone differ by more than 2, so a scan of every slug stays cheap.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 2 {
        return usize::MAX;
    }
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            current.push(substitute.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

fn validate_slug(slug: &str) -> Result<(), BrainError> {
    let problem = if slug.trim().is_empty() {
        Some("must not be empty")
    } else if slug.len() > MAX_SLUG_BYTES {
        Some("is too long")
    } else if slug.trim() != slug {
        Some("has leading or trailing whitespace")
    } else if slug.starts_with('/') || slug.ends_with('/') || slug.contains("//") {
        Some("has an empty segment")
    } else {
        None
    };
    match problem {
        Some(problem) => Err(BrainError::Invalid(format!("slug `{slug}` {problem}"))),
        None => Ok(()),
    }
}

fn put_page_in(
    tx: &Transaction<'_>,
    page: &PageInput,
    frontmatter: &str,
    now: i64,
) -> Result<PutOutcome, BrainError> {
    let context = "storing a page";
    let existing: Option<(i64, String, Option<i64>, String)> = tx
        .prepare_cached("SELECT id, content_hash, deleted_at, title FROM pages WHERE slug = ?1")
        .and_then(|mut statement| {
            statement
                .query_row([&page.slug], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
                .optional()
        })
        .map_err(db_error(context))?;
    let stem = slug_stem(&page.slug);
    let key = match slugify(&page.title) {
        key if key.is_empty() => stem.clone(),
        key => key,
    };
    let (page_id, created, undeleted, reusable) = match existing {
        Some((id, hash, None, _)) if hash == page.content_hash => {
            return Ok(PutOutcome {
                page_id: id,
                changed: false,
                created: false,
                undeleted: false,
                chunks: page.chunks.len(),
                vectors_reused: 0,
            });
        }
        Some((id, _, deleted_at, old_title)) => {
            let reusable = reusable_vectors(tx, id, &old_title)?;
            remove_chunks(tx, id)?;
            tx.prepare_cached("DELETE FROM links WHERE from_page = ?1")
                .and_then(|mut statement| statement.execute([id]))
                .map_err(db_error(context))?;
            tx.prepare_cached(
                "UPDATE pages SET key = ?2, stem = ?3, title = ?4, kind = ?5, source = ?6, body = ?7,
                    frontmatter = ?8, content_hash = ?9, updated_at = ?10, deleted_at = NULL
                 WHERE id = ?1",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    id,
                    key,
                    stem,
                    page.title,
                    page.kind,
                    page.source,
                    page.body,
                    frontmatter,
                    page.content_hash,
                    now
                ])
            })
            .map_err(db_error(context))?;
            (id, false, deleted_at.is_some(), reusable)
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO pages (slug, key, stem, title, kind, source, body, frontmatter, content_hash,
                                    created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )
            .and_then(|mut statement| {
                statement.execute(params![
                    page.slug,
                    key,
                    stem,
                    page.title,
                    page.kind,
                    page.source,
                    page.body,
                    frontmatter,
                    page.content_hash,
                    now
                ])
            })
            .map_err(db_error(context))?;
            (tx.last_insert_rowid(), true, false, HashMap::new())
        }
    };
    let mut vectors_reused = 0;
    for (ord, chunk) in page.chunks.iter().enumerate() {
        let ord = i64::try_from(ord).unwrap_or(i64::MAX);
        tx.prepare_cached(
            "INSERT INTO chunks (page_id, ord, text, context, start_line, end_line) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .and_then(|mut statement| {
            statement.execute(params![page_id, ord, chunk.text, chunk.context, chunk.start_line, chunk.end_line])
        })
        .map_err(db_error(context))?;
        let chunk_id = tx.last_insert_rowid();
        tx.prepare_cached("INSERT INTO chunks_fts (rowid, title, context, text) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut statement| {
                statement.execute(params![
                    chunk_id,
                    page.title,
                    chunk.context.as_deref().unwrap_or(""),
                    chunk.text
                ])
            })
            .map_err(db_error(context))?;
        if !reusable.is_empty()
            && let Some(blob) = reusable.get(&embed_text(&page.title, chunk.context.as_deref(), &chunk.text))
        {
            insert_vector(tx, chunk_id, blob, false)?;
            vectors_reused += 1;
        }
    }
    if !page.chunks.is_empty() {
        let (contexts, texts) = page_text(page);
        tx.prepare_cached("INSERT INTO pages_fts (rowid, title, context, text) VALUES (?1, ?2, ?3, ?4)")
            .and_then(|mut statement| statement.execute(params![page_id, page.title, contexts, texts]))
            .map_err(db_error("storing a page"))?;
    }
    insert_links(tx, page_id, page)?;
    Ok(PutOutcome { page_id, changed: true, created, undeleted, chunks: page.chunks.len(), vectors_reused })
}

/// What `pages_fts` indexes for a page besides its title: its chunks' distinct non-empty
/// contexts (one per line, first use first) and its chunk texts (blank-line separated).
fn page_text(page: &PageInput) -> (String, String) {
    let mut contexts: Vec<&str> = Vec::new();
    for chunk in &page.chunks {
        if let Some(context) = chunk.context.as_deref().filter(|context| !context.is_empty())
            && !contexts.contains(&context)
        {
            contexts.push(context);
        }
    }
    let texts: Vec<&str> = page.chunks.iter().map(|chunk| chunk.text.as_str()).collect();
    (contexts.join("\n"), texts.join("\n\n"))
}

/// Embedded text → stored vector for the page's current chunks (computed with its old title).
fn reusable_vectors(
    tx: &Connection,
    page_id: i64,
    title: &str,
) -> Result<HashMap<String, Vec<u8>>, BrainError> {
    tx.prepare_cached(
        "SELECT c.context, c.text, v.vector FROM chunks c JOIN chunk_vectors v ON v.chunk_id = c.id
         WHERE c.page_id = ?1",
    )
    .and_then(|mut statement| {
        statement
            .query_map([page_id], |row| {
                let context: Option<String> = row.get(0)?;
                let text: String = row.get(1)?;
                Ok((embed_text(title, context.as_deref(), &text), row.get::<_, Vec<u8>>(2)?))
            })
            .and_then(Iterator::collect::<rusqlite::Result<HashMap<_, _>>>)
    })
    .map_err(db_error("storing a page"))
}

/// Removes a page's chunks with their full-text rows (the page's and the chunks') and vectors.
fn remove_chunks(tx: &Connection, page_id: i64) -> Result<(), BrainError> {
    let context = "removing chunks";
    for sql in [
        "DELETE FROM pages_fts WHERE rowid = ?1",
        "DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE page_id = ?1)",
        "DELETE FROM chunk_vectors WHERE chunk_id IN (SELECT id FROM chunks WHERE page_id = ?1)",
        "DELETE FROM chunks WHERE page_id = ?1",
    ] {
        tx.prepare_cached(sql)
            .and_then(|mut statement| statement.execute([page_id]))
            .map_err(db_error(context))?;
    }
    Ok(())
}

fn insert_links(tx: &Connection, page_id: i64, page: &PageInput) -> Result<(), BrainError> {
    let mut seen = HashSet::new();
    for link in &page.links {
        let LinkKeys { key, path, stem } = link_keys(&link.target);
        let kind = match link.kind.trim() {
            "" => "mentions",
            kind => kind,
        };
        if key.is_empty() || !seen.insert((key.clone(), kind.to_string())) {
            continue;
        }
        let alias = link.alias.as_deref().map(str::trim).filter(|alias| !alias.is_empty());
        tx.prepare_cached(
            "INSERT INTO links (from_page, target, target_key, target_path, target_stem, kind, alias)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut statement| {
            statement.execute(params![page_id, link.target.trim(), key, path, stem, kind, alias])
        })
        .map_err(db_error("storing links"))?;
    }
    Ok(())
}

fn delete_page_in(tx: &Transaction<'_>, slug: &str, now: i64) -> Result<bool, BrainError> {
    let id: Option<i64> = tx
        .prepare_cached("SELECT id FROM pages WHERE slug = ?1 AND deleted_at IS NULL")
        .and_then(|mut statement| statement.query_row([slug], |row| row.get(0)).optional())
        .map_err(db_error("deleting a page"))?;
    let Some(id) = id else {
        return Ok(false);
    };
    remove_chunks(tx, id)?;
    tx.prepare_cached("UPDATE pages SET deleted_at = ?2, updated_at = ?2 WHERE id = ?1")
        .and_then(|mut statement| statement.execute(params![id, now]))
        .map_err(db_error("deleting a page"))?;
    Ok(true)
}

struct PageRow {
    id: i64,
    view: PageView,
    key: String,
    stem: String,
}

fn read_page(tx: &Connection, slug: &str) -> Result<Option<PageView>, BrainError> {
    let context = "reading a page";
    let row = tx
        .prepare_cached(
            "SELECT id, slug, title, kind, source, body, frontmatter, content_hash, created_at, updated_at,
                    deleted_at, key, stem,
                    (SELECT COUNT(*) FROM chunks WHERE page_id = pages.id)
             FROM pages WHERE slug = ?1",
        )
        .and_then(|mut statement| {
            statement
                .query_row([slug], |row| {
                    let frontmatter: String = row.get(6)?;
                    let chunks: i64 = row.get(13)?;
                    Ok(PageRow {
                        id: row.get(0)?,
                        view: PageView {
                            slug: row.get(1)?,
                            title: row.get(2)?,
                            kind: row.get(3)?,
                            source: row.get(4)?,
                            body: row.get(5)?,
                            frontmatter: serde_json::from_str(&frontmatter).unwrap_or_else(|error| {
                                tracing::warn!(%error, "stored frontmatter is not JSON");
                                serde_json::Value::Null
                            }),
                            content_hash: row.get(7)?,
                            created_at: row.get(8)?,
                            updated_at: row.get(9)?,
                            deleted_at: row.get(10)?,
                            chunks: usize::try_from(chunks).unwrap_or(0),
                            links: Vec::new(),
                            backlinks: Vec::new(),
                            facts: Vec::new(),
                            timeline: Vec::new(),
                            takes: Vec::new(),
                        },
                        key: row.get(11)?,
                        stem: row.get(12)?,
                    })
                })
                .optional()
        })
        .map_err(db_error(context))?;
    let Some(PageRow { id, mut view, key, stem }) = row else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT l.target, l.kind, l.alias, (SELECT slug FROM pages WHERE id = {RESOLVE})
         FROM links l WHERE l.from_page = ?1 ORDER BY l.id"
    );
    view.links = tx
        .prepare_cached(&sql)
        .and_then(|mut statement| {
            statement
                .query_map([id], |row| {
                    Ok(LinkView {
                        target: row.get(0)?,
                        kind: row.get(1)?,
                        alias: row.get(2)?,
                        slug: row.get(3)?,
                    })
                })
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        })
        .map_err(db_error(context))?;
    if view.deleted_at.is_none() {
        let target = Target { id, slug: &view.slug, key: &key, stem: &stem };
        view.backlinks = incoming_links(tx, &target)?
            .into_iter()
            .map(|link| Backlink {
                slug: link.from_slug,
                title: link.from_title,
                kind: link.kind,
                alias: link.alias,
            })
            .collect();
    }
    view.facts = select_facts(
        tx,
        "expired_at IS NULL AND (subject_key = ?1 OR subject_key = ?2 OR source_slug = ?3)
         ORDER BY subject_key, predicate_key, valid_from, id",
        params![key, stem, view.slug],
    )?;
    view.timeline = select_timeline(tx, "t.page_id = ?1 ORDER BY t.at, t.id", [id])?;
    view.takes = select_takes(tx, "t.page_id = ?1 ORDER BY t.active DESC, t.since DESC, t.id DESC", [id])?;
    Ok(Some(view))
}
