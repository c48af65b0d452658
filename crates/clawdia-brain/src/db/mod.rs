//! The brain database (`brain.db`): schema, pages, chunks, links, timeline, bi-temporal facts,
//! takes, embeddings and hybrid search. All SQL of the brain lives under this module.
//!
//! Connections: one writer (`Mutex<Connection>`, every write a short `BEGIN IMMEDIATE`
//! transaction, one page per transaction) and a small pool of read-only connections, each read
//! one snapshot (a deferred transaction). In WAL mode readers never wait for the writer, in this
//! process or in another one (the gateway and the CLI open the same file).
//!
//! Vectors (a decision, measured in release builds on the 2-core target): sqlite-vec's `vec0`
//! KNN is an exact brute-force scan that reads every vector through SQLite pages; at 50,000 ×
//! 384 it took about 40 ms per query (float or int8, cosine or L2; 80 ms with a `rowid IN`
//! filter), far over the 10 ms hybrid budget. So vectors are stored as little-endian `f32` BLOBs
//! in the plain table `chunk_vectors`, and each `Db` keeps an in-memory int8 copy
//! (`vectors::VectorIndex`, ~19 MB at 50k × 384, loaded at the first vector search in about
//! 0.2 s) that it scans in Rust (about 2 ms) to pick candidates, which are then rescored exactly
//! in `f32` from SQLite (the vector arm totals about 3 ms). With the full-text arm (p50 2 ms;
//! see `search::FtsPlan` for why very common words do not make it slow) a hybrid query takes
//! about 6 ms p50 at 50k × 384 (the `db::bench_prints_latencies` test prints these figures;
//! `cargo xtask bench brain` measured 6.2 ms with SciFact's queries). Two connection settings
//! matter here (see `schema::SETTINGS` and `clawdia_sqlite`): the file is read through a
//! memory map, and the planner stability guarantee keeps FTS5 from re-preparing its segment
//! lookups; without them the same search took 8.8 ms. The copy follows the table
//! incrementally: additions by the table's AUTOINCREMENT `seq`, removals through a trigger-fed
//! tombstone log, a full reload when the model changes (`vector_state.epoch`); another process's
//! writes are picked up at this handle's next search. sqlite-vec is still registered on every
//! connection (`vec_distance_cosine` and friends are available to SQL), and `vec0` remains the
//! natural home for an approximate index if the brain ever grows far beyond ~10^5 chunks.
//! Debug builds compile this crate at opt-level 0, where the scan is about 10x slower: measure
//! in release (or give `clawdia-brain` an opt-level in `[profile.dev.package]`).
//!
//! Invariants: every chunk belongs to a live page (soft delete removes a page's chunks, FTS rows
//! and vectors; the page row and its body stay); every FTS row and every vector belongs to a
//! chunk; vectors are all of one model (`vector_state`), changing the model drops them all.

mod dream;
mod error;
mod facts;
mod links;
mod pages;
mod schema;
mod search;
mod sources;
mod vectors;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError, RwLock};

use rusqlite::{Connection, Transaction, TransactionBehavior};

pub use dream::{DreamRun, DreamTotals, Watermark};
pub use error::BrainError;
pub use facts::{
    Fact, FactInput, FactOutcome, FactQuery, Take, TakeInput, TimelineEntry, TimelineInput, TimelineQuery,
};
pub use pages::{Backlink, LinkView, PageSummary, PageView, PutOutcome, SourceCount, Stats};
pub use search::{Expert, Fusion, Hit, SearchMode, SearchQuery, SearchResult};
pub use sources::SourceUse;

use error::db_error;

/// Idle read connections kept for reuse; more are opened on demand and closed after use.
const MAX_IDLE_READERS: usize = 4;

/// The brain database. `Send + Sync`: share it behind an `Arc`.
pub struct Db {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    index: RwLock<vectors::VectorIndex>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (creating it and its parent directories when missing) and migrates the database at
    /// `path`. Registers sqlite-vec for the process on first use.
    pub fn open(path: &Path) -> Result<Db, BrainError> {
        schema::register_sqlite_vec();
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            schema::create_dir(dir)?;
        }
        let writer = schema::open_writer(path)?;
        let reader = schema::open_reader(path)?;
        Ok(Db {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(vec![reader]),
            index: RwLock::new(vectors::VectorIndex::default()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in one write transaction (`BEGIN IMMEDIATE`: waits up to the busy timeout for
    /// another writer). Commits when `work` succeeds, rolls back when it fails.
    fn write<T>(
        &self,
        context: &str,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, BrainError>,
    ) -> Result<T, BrainError> {
        // A panic while the lock was held dropped its transaction (rolled back): the connection
        // is sound, so a poisoned lock is recovered rather than propagated.
        let mut connection = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_error(context))?;
        let value = work(&transaction)?;
        transaction.commit().map_err(db_error(context))?;
        Ok(value)
    }

    /// Runs `work` on a read-only connection inside one read transaction (one snapshot).
    fn read<T>(
        &self,
        context: &str,
        work: impl FnOnce(&Transaction<'_>) -> Result<T, BrainError>,
    ) -> Result<T, BrainError> {
        let idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut connection = match idle {
            Some(connection) => connection,
            None => schema::open_reader(&self.path)?,
        };
        let result = match connection.transaction() {
            Ok(transaction) => work(&transaction),
            Err(error) => Err(db_error(context)(error)),
        };
        if connection.is_autocommit() {
            let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(connection);
            }
        }
        result
    }
}
