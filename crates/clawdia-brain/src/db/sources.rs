//! Import sources: which folder (or file) each import source name stands for. An import records
//! its name and the canonical path it read (`sources`), so a later import of another folder with
//! the same name is told the name is taken, and an import deletes only pages of its own source
//! (`import::resolve_source` decides; this module only reads and writes the rows).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::Db;
use super::error::{BrainError, db_error};

/// How a source name is used now, for deciding whether an import may take it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceUse {
    /// The path it was last imported from; `None` for a name with no record (never imported,
    /// or imported before sources were recorded, or the writer name of agents and MCP clients).
    pub root: Option<String>,
    /// Live pages of that source.
    pub live_pages: u64,
    /// The content hashes of those of the slugs asked about that are live pages of the source.
    pub hashes: HashMap<String, String>,
}

impl Db {
    /// The source name most recently imported from `root` (a canonical path).
    pub fn source_for_root(&self, root: &str) -> Result<Option<String>, BrainError> {
        self.read("reading sources", |tx| {
            tx.prepare_cached(
                "SELECT name FROM sources WHERE root = ?1 ORDER BY imported_at DESC, name LIMIT 1",
            )
            .and_then(|mut statement| statement.query_row([root], |row| row.get(0)).optional())
            .map_err(db_error("reading sources"))
        })
    }

    /// How `name` is used: its recorded root, its live pages, and the content hashes of those
    /// of `slugs` that are among them.
    pub fn source_use(&self, name: &str, slugs: &[String]) -> Result<SourceUse, BrainError> {
        self.read("reading sources", |tx| {
            let run = || -> rusqlite::Result<SourceUse> {
                let root = tx
                    .prepare_cached("SELECT root FROM sources WHERE name = ?1")?
                    .query_row([name], |row| row.get(0))
                    .optional()?;
                let live: i64 = tx
                    .prepare_cached("SELECT COUNT(*) FROM pages WHERE source = ?1 AND deleted_at IS NULL")?
                    .query_row([name], |row| row.get(0))?;
                let mut hashes = HashMap::new();
                if live > 0 {
                    let mut hash = tx.prepare_cached(
                        "SELECT content_hash FROM pages WHERE slug = ?1 AND source = ?2 AND deleted_at IS NULL",
                    )?;
                    for slug in slugs {
                        if let Some(value) = hash.query_row(params![slug, name], |row| row.get(0)).optional()? {
                            hashes.insert(slug.clone(), value);
                        }
                    }
                }
                Ok(SourceUse { root, live_pages: u64::try_from(live).unwrap_or(0), hashes })
            };
            run().map_err(db_error("reading sources"))
        })
    }

    /// Records that `name` was imported from `root` (replacing the root it had); returns the
    /// previous root when it was another one.
    pub fn record_source(&self, name: &str, root: &str, now: i64) -> Result<Option<String>, BrainError> {
        self.write("recording a source", |tx| {
            let previous: Option<String> = tx
                .prepare_cached("SELECT root FROM sources WHERE name = ?1")
                .and_then(|mut statement| statement.query_row([name], |row| row.get(0)).optional())
                .map_err(db_error("recording a source"))?;
            tx.prepare_cached(
                "INSERT INTO sources (name, root, imported_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name) DO UPDATE SET root = excluded.root, imported_at = excluded.imported_at",
            )
            .and_then(|mut statement| statement.execute(params![name, root, now]))
            .map_err(db_error("recording a source"))?;
            Ok(previous.filter(|previous| previous != root))
        })
    }
}
