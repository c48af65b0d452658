//! The knowledge brain: memory that lives outside the model context, on the owner's disk.
//! Pages (markdown, code, text) with chunks, a typed graph of `[[wikilinks]]`, timeline entries,
//! bi-temporal facts and takes, in one SQLite database (WAL) with FTS5 and vectors; hybrid
//! search by reciprocal rank fusion; importers for folders of notes, code repositories and text;
//! the brain as agent tools and as an MCP server; the dream cycle that distils chat transcripts
//! into pages, facts and takes.
//!
//! Architecture invariant: this crate depends only on `clawdia-core`. Embeddings arrive as a
//! `clawdia_core::Embedder`; agent tools are `clawdia_core::Tool`s built here; all SQL of
//! `brain.db` lives in `db`.

mod brain;
pub mod db;
pub mod dream;
pub mod import;
pub mod mcp;
pub mod ops;
pub mod parse;
pub mod tools;
pub mod types;

pub use brain::{Brain, BrainSettings, Query};
pub use types::{ChunkInput, LinkInput, PageInput, slugify};
