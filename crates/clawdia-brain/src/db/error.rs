//! `BrainError`: what a brain call can fail with, one variant per thing a caller acts on. Every
//! message is one line (SQLite's are flattened), so it can go straight into a tool result.

use clawdia_core::one_line;

/// A failed brain operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrainError {
    /// SQLite failed (I/O, corruption, a lock held past the busy timeout, a newer schema).
    #[error("brain database: {0}")]
    Database(String),
    /// The named page, fact or take does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The caller's input was refused (empty slug, weight out of range, bad dates, ...).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Vectors do not fit the stored embedding model (dimensions, no model recorded).
    #[error("embedding: {0}")]
    Embedding(String),
}

/// Maps a rusqlite error to `BrainError::Database` with what was being done.
pub(crate) fn db_error(context: &str) -> impl FnOnce(rusqlite::Error) -> BrainError + '_ {
    move |error| BrainError::Database(one_line(&format!("{context}: {error}")))
}
