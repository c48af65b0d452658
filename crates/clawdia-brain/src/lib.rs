//! The knowledge brain: memory that lives outside the model context, on the owner's disk.
//! Pages (markdown, code, text) with chunks, a typed graph of `[[wikilinks]]`, timeline entries,
//! bi-temporal facts and takes, in one SQLite database (WAL) with FTS5 and sqlite-vec; hybrid
//! search by reciprocal rank fusion; importers for folders of notes, code repositories and text.
//!
//! Architecture invariant: this crate depends only on `clawdia-core`. Embeddings arrive as a
//! `clawdia_core::Embedder`; agent tools are `clawdia_core::Tool`s built here; all SQL of
//! `brain.db` lives in `db`.

pub mod db;
pub mod parse;
pub mod types;

pub use types::{ChunkInput, LinkInput, PageInput, slugify};
