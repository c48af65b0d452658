//! The values that flow between the parsers (`parse`), the database (`db`) and search: a page as
//! parsed from a file, its chunks and outgoing links. Plain data, no IO.

use serde::{Deserialize, Serialize};

/// A page ready to be stored: everything `db::Db::put_page` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageInput {
    /// Unique, lower-case, `/`-separated, no extension: `notes/people/alice`,
    /// `repo/src/main-rs`. Its prefix is what source boosts and excludes match.
    pub slug: String,
    pub title: String,
    /// `note`, `person`, `project`, `code`, `text`, ... (frontmatter `type`, else by file kind).
    pub kind: String,
    /// The import source name (`--source`), e.g. `notes`, `repo`, `dream`.
    pub source: String,
    /// The page text (markdown for notes, the file text for code and text).
    pub body: String,
    /// Parsed YAML frontmatter as JSON (`{}` when none).
    pub frontmatter: serde_json::Value,
    /// sha256 hex of the raw file bytes (or of the body for pages written by tools).
    pub content_hash: String,
    pub chunks: Vec<ChunkInput>,
    pub links: Vec<LinkInput>,
}

/// One retrievable piece of a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkInput {
    pub text: String,
    /// Heading path for prose (`Setup > Install`) or the symbol for code (`fn parse_config`).
    pub context: Option<String>,
    /// 1-based inclusive line range in the source file, when known.
    pub start_line: Option<u32>,
    pub end_line: Option<u32>,
}

/// An outgoing link from a page: `[[Target]]`, `[[Target|alias]]`, or a typed link such as a
/// frontmatter `works_at: "[[Acme]]"` or an inline `[[works_at::Acme]]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkInput {
    /// The target as written (`Acme Corp`); resolved against page slugs and titles via `slugify`.
    pub target: String,
    /// `mentions` for a plain wikilink, else the relation name (`works_at`, `reports_to`, ...).
    pub kind: String,
    pub alias: Option<String>,
}

/// The canonical key of a title or link target: lower-case, runs of anything but letters and
/// digits become one `-`, trimmed of `-`. `"Acme Corp."` → `acme-corp`.
pub fn slugify(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut dash = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            dash = false;
        } else if !dash && !out.is_empty() {
            out.push('-');
            dash = true;
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}
