//! Hybrid search and `find_experts`.
//!
//! A search runs in one read snapshot:
//! 1. Full-text arm: the user's words, each quoted (so no text can inject FTS5 syntax), joined
//!    with OR, English stopwords dropped when other words remain, very common words set aside
//!    when rarer ones exist (`FtsPlan`); bm25 with the title column weighted 3, the context
//!    (heading path, symbol, a chat turn's neighbours) 0.5, the text 1. With one chunk per page
//!    (the default) it ranks whole pages (`pages_fts`), and a page that wins through this arm
//!    shows its best-matching chunk; otherwise it ranks chunks.
//! 2. Vector arm: the in-memory int8 index, rescored exactly (see `vectors`).
//! 3. Both arms apply the include/exclude slug prefixes *before* ranking (in SQL for full text,
//!    in the scan for vectors), so an excluded page never takes a slot.
//! 4. Fusion, over the arms a result appears in, times the boost of the longest matching boost
//!    prefix: convex (each arm's scores min-max normalized per query, score = Σ weight_arm ×
//!    normalized) or weighted reciprocal rank (score = Σ weight_arm/(rrf_k + rank_arm)). With one chunk
//!    per page (the default) the fusion is over *pages*: a page's rank in an arm is the position
//!    of its best chunk among the distinct pages of that arm, so a page whose best full-text
//!    chunk and best vector chunk differ still gets credit from both, and the chunk shown is
//!    the one that contributed most. Otherwise chunks are fused individually, and each gets
//!    `page_weight` times its page's (normalized) whole-page full-text score on top, so a passage
//!    of a page that matches as a whole outranks a lone passage.
//! 5. At most `max_chunks_per_page` chunks per page (0 = no cap), the best `k` kept; if capping
//!    left fewer than `k` and an arm was cut off, both arms are re-run deeper.
//! 6. Graph expansion: up to `expand_graph` live pages linked to or from the hits, scored below
//!    the last hit and marked `expanded`.
//! 7. Snippets: FTS5 `snippet()` for full-text hits, the chunk's opening otherwise.
//! 8. With `as_of`: the facts valid then whose subject is a hit page (title or file stem) or a
//!    phrase of the query.

use std::collections::{HashMap, HashSet};

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::Db;
use super::error::{BrainError, db_error};
use super::facts::{Fact, select_facts};
use super::links::{incoming_pages, outgoing_pages};
use super::vectors::{SlugCheck, VectorHit};
use crate::types::slugify;

/// bm25 column weights: title, context, text (the same for chunks and pages). A chunk's context
/// (heading path, code symbol, a chat turn's neighbouring messages) describes the chunk but is
/// not what it says, so it weighs half a word of the text. Measured against 1.5 (`cargo xtask
/// bench brain`): SciFact train nDCG@10 unchanged (0.7241), test hybrid 0.7243 -> 0.7261; LoCoMo
/// recall@10 categories 1-4 0.7753 -> 0.7878 (1.0 gave 0.7256 and 0.7790).
const BM25_WEIGHTS: &str = "3.0, 0.5, 1.0";
/// Deepest per-arm candidate list a search ever asks for.
const MAX_DEPTH: usize = 4096;
/// At most this many words of a query reach the full-text index.
const MAX_QUERY_WORDS: usize = 32;
/// At most this many slug prefixes per filter list.
const MAX_PREFIXES: usize = 64;
/// Snippet length in tokens (about 200 characters of prose).
const SNIPPET_TOKENS: i64 = 32;
/// Snippet length for hits without a full-text match, in characters.
const SNIPPET_CHARS: usize = 200;

/// Which arms a search runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Full text and vectors fused by rank; full text alone when there is no query vector.
    #[default]
    Hybrid,
    FullText,
    Vector,
}

/// A search request (see the module doc for what each knob does).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    pub text: String,
    /// Results wanted (pages, or chunks when `max_chunks_per_page` allows several per page).
    pub k: usize,
    pub mode: SearchMode,
    /// The query's embedding, from the caller; `None` skips the vector arm.
    pub vector: Option<Vec<f32>>,
    /// How the arms are combined.
    pub fusion: Fusion,
    /// The RRF constant (60 is the usual choice).
    pub rrf_k: f64,
    /// Weight of the full-text arm in the fusion.
    pub fts_weight: f64,
    /// Weight of the vector arm in the fusion.
    pub vector_weight: f64,
    /// When chunks are fused individually (`max_chunks_per_page` other than 1): weight of the
    /// page-level full-text arm, whose score for a page is added to each of its chunks already
    /// found by the other arms.
    pub page_weight: f64,
    /// Slug prefix → score multiplier (the longest matching prefix applies).
    pub boosts: Vec<(String, f64)>,
    /// Slug prefixes never returned (removed before ranking).
    pub exclude: Vec<String>,
    /// When non-empty, only slugs with one of these prefixes.
    pub include: Vec<String>,
    /// Chunks per page in the results; 0 = no cap.
    pub max_chunks_per_page: usize,
    /// Per-arm candidate depth; 0 = max(50, 4k).
    pub candidates: usize,
    /// Linked neighbours of the hits to add after them.
    pub expand_graph: usize,
    /// Attach the facts valid at this instant.
    pub as_of: Option<i64>,
}

impl SearchQuery {
    /// A hybrid query with the defaults: RRF k 60, one chunk per page, automatic depth.
    pub fn new(text: impl Into<String>, k: usize) -> SearchQuery {
        SearchQuery {
            text: text.into(),
            k,
            mode: SearchMode::Hybrid,
            vector: None,
            fusion: Fusion::Rrf,
            rrf_k: 60.0,
            fts_weight: 1.0,
            vector_weight: 1.0,
            page_weight: 1.0,
            boosts: Vec::new(),
            exclude: Vec::new(),
            include: Vec::new(),
            max_chunks_per_page: 1,
            candidates: 0,
            expand_graph: 0,
            as_of: None,
        }
    }
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery::new("", 10)
    }
}

/// How the two arms' results are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Weighted reciprocal rank fusion: Σ weight / (rrf_k + rank).
    #[default]
    Rrf,
    /// A convex combination of scores normalized per query and list (min-max: the list's best
    /// is 1, its lowest 0): Σ weight × normalized score over the lists a result is in.
    Convex,
}

/// Hits, best first, plus what the caller should know.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    pub hits: Vec<Hit>,
    /// Why the search was narrower than asked (no query vector, no vectors stored, ...).
    pub notice: Option<String>,
    /// With `as_of`: facts valid then about the hits or the query's subjects.
    pub facts: Vec<Fact>,
}

/// One result: a chunk of a page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hit {
    pub slug: String,
    pub title: String,
    pub source: String,
    pub chunk_id: i64,
    pub score: f64,
    pub snippet: String,
    /// 1-based rank in the full-text arm (among pages when one chunk per page is shown).
    pub fts_rank: Option<usize>,
    /// 1-based rank in the vector arm (among pages when one chunk per page is shown).
    pub vector_rank: Option<usize>,
    /// Added by graph expansion, not matched.
    pub expanded: bool,
    /// The chunk's first and last line in its source file, when the parser knew them.
    pub start_line: Option<u32>,
    pub end_line: Option<u32>,
}

/// A page linked with pages about a topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expert {
    pub slug: String,
    pub title: String,
    pub kind: String,
    pub score: f64,
    /// Slugs of the matching pages that link to it or that it links to (itself, for a person
    /// whose own page matches).
    pub evidence: Vec<String>,
}

const STOPWORDS: &[&str] = &[
    "a", "about", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by",
    "can", "could", "did", "do", "does", "for", "from", "had", "has", "have", "he", "her", "him", "his",
    "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no", "not", "of", "on", "or", "our",
    "she", "so", "than", "that", "the", "their", "them", "then", "there", "these", "they", "this", "to",
    "too", "us", "very", "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with",
    "would", "you", "your",
];

/// The words of a query, lower-cased, deduplicated, in order.
fn query_words(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .filter(|word| seen.insert(word.clone()))
        .collect()
}

/// The words a search looks for: stopwords dropped unless nothing else is left.
fn search_words(text: &str) -> Vec<String> {
    let words = query_words(text);
    let content: Vec<String> =
        words.iter().filter(|word| !STOPWORDS.contains(&word.as_str())).cloned().collect();
    let mut chosen = if content.is_empty() { words } else { content };
    chosen.truncate(MAX_QUERY_WORDS);
    chosen
}

/// Words quoted (so no text can be FTS5 syntax) and joined with `operator`. Words hold only
/// alphanumerics, so no quote can appear inside one.
fn joined(words: &[String], operator: &str) -> String {
    let quoted: Vec<String> = words.iter().map(|word| format!("\"{word}\"")).collect();
    quoted.join(operator)
}

/// The plain OR query for the user's text; `None` when it has no words.
#[cfg(test)]
pub(crate) fn fts_query(text: &str) -> Option<String> {
    let words = search_words(text);
    (!words.is_empty()).then(|| joined(&words, " OR "))
}

/// What the full-text arm runs for one query.
///
/// Ranking every chunk that holds a very common word is what makes a full-text query slow
/// (bm25 costs about a microsecond per matching row: 50 ms when a word is in all of 50k
/// chunks), and such words barely move bm25 anyway. So each word's document frequency is
/// probed (counting stops at the threshold), words found nowhere are dropped, and when the
/// query has rarer words the common ones (in at least max(1,000, 2 % of the chunks)) are left
/// out of the ranked OR query; chunks holding *all* the common words then fill the list below
/// the ranked ones if it is shorter than the results asked for. A query of common words only
/// ranks the chunks holding all of them first (AND), then fills from the plain OR when short;
/// only that fill can still be slow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FtsPlan {
    primary: String,
    fill: Option<String>,
    /// Every word that occurs somewhere, for snippets.
    all: String,
}

/// What the full-text arm ranks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Chunks (`chunks_fts`): a passage's own bm25.
    Chunks,
    /// Whole pages (`pages_fts`): bm25 over the page's title, contexts and all its text; the
    /// chunk shown for a page is chosen afterwards (`best_chunk`).
    Pages,
}

impl Level {
    fn table(self) -> &'static str {
        match self {
            Level::Chunks => "chunks_fts",
            Level::Pages => "pages_fts",
        }
    }

    /// An upper bound of the rows in the table, free to read.
    fn rows_sql(self) -> &'static str {
        match self {
            Level::Chunks => "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'chunks'), 0)",
            Level::Pages => "SELECT COALESCE(max(id), 0) FROM pages",
        }
    }

    /// Fewest rows that make a word "common". Pages are fewer and longer than chunks, so a
    /// word is in a larger share of them; the higher floor keeps such words ranked in a brain
    /// of a few thousand pages (SciFact nDCG@10: 0.688 with 1,000, 0.692 with 2,000, the
    /// same as never setting words aside).
    fn common_min(self) -> i64 {
        match self {
            Level::Chunks => 1_000,
            Level::Pages => 2_000,
        }
    }
}

pub(crate) fn plan_fts(
    connection: &Connection,
    text: &str,
    level: Level,
) -> Result<Option<FtsPlan>, BrainError> {
    let words = search_words(text);
    if words.len() <= 1 {
        return Ok(words.first().map(|_| {
            let query = joined(&words, " OR ");
            FtsPlan { primary: query.clone(), fill: None, all: query }
        }));
    }
    let context = "planning a full-text query";
    let rows: i64 = connection
        .prepare_cached(level.rows_sql())
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
        .map_err(db_error(context))?;
    let threshold = (rows / 50).max(level.common_min());
    let table = level.table();
    let mut probe = connection
        .prepare_cached(&format!(
            "SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {table} MATCH ?1 LIMIT ?2)"
        ))
        .map_err(db_error(context))?;
    let (mut rare, mut common) = (Vec::new(), Vec::new());
    for word in words {
        let found: i64 = probe
            .query_row(params![format!("\"{word}\""), threshold], |row| row.get(0))
            .map_err(db_error(context))?;
        match found {
            0 => {}
            found if found >= threshold => common.push(word),
            _ => rare.push(word),
        }
    }
    let all: Vec<String> = rare.iter().chain(&common).cloned().collect();
    if all.is_empty() {
        return Ok(None);
    }
    let all = joined(&all, " OR ");
    Ok(Some(if rare.is_empty() {
        // Common words only: chunks holding all of them first (far fewer to rank), then the rest.
        let fill = (common.len() > 1).then(|| joined(&common, " OR "));
        FtsPlan { primary: joined(&common, " AND "), fill, all }
    } else {
        FtsPlan {
            primary: joined(&rare, " OR "),
            fill: (!common.is_empty()).then(|| joined(&common, " AND ")),
            all,
        }
    }))
}

/// Include/exclude slug prefixes (trimmed; empty ones ignored).
#[derive(Debug, Clone, Default)]
pub(crate) struct SlugFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl SlugFilter {
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<SlugFilter, BrainError> {
        let clean = |prefixes: &[String], what: &str| -> Result<Vec<String>, BrainError> {
            let cleaned: Vec<String> = prefixes
                .iter()
                .map(|prefix| prefix.trim().to_string())
                .filter(|prefix| !prefix.is_empty())
                .collect();
            if cleaned.len() > MAX_PREFIXES {
                return Err(BrainError::Invalid(format!("at most {MAX_PREFIXES} {what} prefixes")));
            }
            Ok(cleaned)
        };
        Ok(SlugFilter { include: clean(include, "include")?, exclude: clean(exclude, "exclude")? })
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    pub(crate) fn allows(&self, slug: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|prefix| slug.starts_with(prefix.as_str())))
            && !self.exclude.iter().any(|prefix| slug.starts_with(prefix.as_str()))
    }

    /// ` AND ...` conditions on `column`, binding the prefixes into `values`.
    fn sql(&self, column: &str, values: &mut Vec<Value>) -> String {
        let mut matches = |prefixes: &[String]| -> Vec<String> {
            prefixes
                .iter()
                .map(|prefix| {
                    values.push(Value::Text(prefix.clone()));
                    let n = values.len();
                    format!("substr({column}, 1, length(?{n})) = ?{n}")
                })
                .collect()
        };
        let mut sql = String::new();
        if !self.include.is_empty() {
            sql.push_str(&format!(" AND ({})", matches(&self.include).join(" OR ")));
        }
        if !self.exclude.is_empty() {
            sql.push_str(&format!(" AND NOT ({})", matches(&self.exclude).join(" OR ")));
        }
        sql
    }
}

#[derive(Debug, Clone)]
struct PageInfo {
    slug: String,
    title: String,
    source: String,
    kind: String,
}

/// Page facts looked up once per search.
#[derive(Debug, Default)]
struct Pages {
    known: HashMap<i64, PageInfo>,
}

impl Pages {
    fn get(&mut self, connection: &Connection, page_id: i64) -> Result<Option<&PageInfo>, BrainError> {
        if let std::collections::hash_map::Entry::Vacant(entry) = self.known.entry(page_id) {
            let row = connection
                .prepare_cached(
                    "SELECT slug, title, source, kind FROM pages WHERE id = ?1 AND deleted_at IS NULL",
                )
                .and_then(|mut statement| {
                    statement
                        .query_row([page_id], |row| {
                            Ok(PageInfo {
                                slug: row.get(0)?,
                                title: row.get(1)?,
                                source: row.get(2)?,
                                kind: row.get(3)?,
                            })
                        })
                        .optional()
                })
                .map_err(db_error("reading a page"))?;
            let Some(info) = row else { return Ok(None) };
            entry.insert(info);
        }
        Ok(self.known.get(&page_id))
    }
}

/// The full-text arm: `(chunk id, page id)` best first, at most `depth` (at the page level the
/// chunk id is `UNRESOLVED`). The plan's fill runs only when the ranked words found fewer than
/// `want` rows (the results asked for): a shorter candidate list is fine for fusion, a short
/// result list is not.
fn fts_arm(
    connection: &Connection,
    plan: &FtsPlan,
    level: Level,
    filter: &SlugFilter,
    depth: usize,
    want: usize,
    pages: &mut Pages,
) -> Result<Vec<TextHit>, BrainError> {
    let mut hits = ranked_matches(connection, &plan.primary, level, filter, depth, pages)?;
    if hits.len() < want.min(depth)
        && let Some(fill) = &plan.fill
    {
        let seen: HashSet<(i64, i64)> =
            hits.iter().map(|(chunk_id, page_id, _)| (*chunk_id, *page_id)).collect();
        // The fill ranks below everything the primary query found, whatever its own bm25.
        let floor = hits.iter().map(|(_, _, score)| *score).fold(f64::INFINITY, f64::min);
        let more = ranked_matches(connection, fill, level, filter, depth, pages)?;
        hits.extend(
            more.into_iter()
                .filter(|(chunk_id, page_id, _)| !seen.contains(&(*chunk_id, *page_id)))
                .map(|(chunk_id, page_id, score)| (chunk_id, page_id, score.min(floor))),
        );
        hits.truncate(depth);
    }
    Ok(hits)
}

/// A full-text hit: chunk id, page id, and its bm25 relevance (higher is better, at least 0).
type TextHit = (i64, i64, f64);

/// The chunk id of a page-level hit whose chunk is yet to be chosen (chunk ids start at 1).
const UNRESOLVED: i64 = 0;

/// Chunks (or pages) matching the FTS5 `query` among allowed pages, by bm25.
fn ranked_matches(
    connection: &Connection,
    query: &str,
    level: Level,
    filter: &SlugFilter,
    depth: usize,
    pages: &mut Pages,
) -> Result<Vec<TextHit>, BrainError> {
    let context = "full-text search";
    let limit = i64::try_from(depth).unwrap_or(i64::MAX);
    let table = level.table();
    if filter.is_empty() {
        // Without a filter, ranking the full-text table alone (no join per matching row) is
        // about a quarter faster; the pages are looked up for the survivors only.
        let sql = format!(
            "SELECT rowid, bm25({table}, {BM25_WEIGHTS}) AS rank FROM {table} WHERE {table} MATCH ?1
             ORDER BY rank, rowid LIMIT ?2"
        );
        let ranked = connection
            .prepare_cached(&sql)
            .and_then(|mut statement| {
                statement
                    .query_map(params![query, limit], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, f64>(1)?))
                    })
                    .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
            })
            .map_err(db_error(context))?;
        let mut owner = connection
            .prepare_cached(
                "SELECT p.id, p.slug, p.title, p.source, p.kind FROM chunks c JOIN pages p ON p.id = c.page_id
                 WHERE c.id = ?1 AND p.deleted_at IS NULL",
            )
            .map_err(db_error(context))?;
        let mut hits = Vec::with_capacity(ranked.len());
        for (rowid, rank) in ranked {
            match level {
                // Deleted pages have no `pages_fts` row; `Pages::get` checks anyway.
                Level::Pages => {
                    if pages.get(connection, rowid)?.is_some() {
                        hits.push((UNRESOLVED, rowid, -rank));
                    }
                }
                Level::Chunks => {
                    let row = owner
                        .query_row([rowid], |row| {
                            let info = PageInfo {
                                slug: row.get(1)?,
                                title: row.get(2)?,
                                source: row.get(3)?,
                                kind: row.get(4)?,
                            };
                            Ok((row.get::<_, i64>(0)?, info))
                        })
                        .optional()
                        .map_err(db_error(context))?;
                    if let Some((page_id, info)) = row {
                        pages.known.entry(page_id).or_insert(info);
                        hits.push((rowid, page_id, -rank));
                    }
                }
            }
        }
        return Ok(hits);
    }
    let mut values = vec![Value::Text(query.to_string()), Value::Integer(limit)];
    let conditions = filter.sql("p.slug", &mut values);
    let (chunk_column, from) = match level {
        Level::Pages => (UNRESOLVED.to_string(), "pages_fts JOIN pages p ON p.id = pages_fts.rowid"),
        Level::Chunks => (
            "c.id".to_string(),
            "chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid JOIN pages p ON p.id = c.page_id",
        ),
    };
    let sql = format!(
        "SELECT {chunk_column}, p.id, p.slug, p.title, p.source, p.kind, bm25({table}, {BM25_WEIGHTS}) AS rank
         FROM {from}
         WHERE {table} MATCH ?1 AND p.deleted_at IS NULL{conditions}
         ORDER BY rank, {table}.rowid LIMIT ?2"
    );
    let mut statement = connection.prepare_cached(&sql).map_err(db_error(context))?;
    let rows = statement
        .query_map(rusqlite::params_from_iter(values), |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                PageInfo { slug: row.get(2)?, title: row.get(3)?, source: row.get(4)?, kind: row.get(5)? },
                row.get::<_, f64>(6)?,
            ))
        })
        .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        .map_err(db_error(context))?;
    Ok(rows
        .into_iter()
        .map(|(chunk_id, page_id, info, rank)| {
            pages.known.entry(page_id).or_insert(info);
            (chunk_id, page_id, -rank)
        })
        .collect())
}

#[derive(Debug, Clone)]
struct Candidate {
    chunk_id: i64,
    page_id: i64,
    fts_rank: Option<usize>,
    vector_rank: Option<usize>,
    score: f64,
}

/// One arm's share of a result's score: `weight / (rrf_k + rank)` for RRF (rank 1-based), or
/// for convex fusion the raw score min-max normalized over the arm's list
/// (`(raw - floor) / (top - floor)`; a list whose scores are all equal gives each its full
/// weight).
fn contribution(query: &SearchQuery, weight: f64, rank: usize, raw: f64, top: f64, floor: f64) -> f64 {
    match query.fusion {
        Fusion::Rrf => weight / (query.rrf_k + rank as f64),
        Fusion::Convex => {
            let span = top - floor;
            if span > 0.0 { weight * ((raw - floor) / span).clamp(0.0, 1.0) } else { weight }
        }
    }
}

/// Fuses the arms (weighted reciprocal rank, or a convex combination of normalized scores),
/// applies boosts, sorts best first (see the module doc: page-level fusion when one chunk per
/// page is shown).
fn fuse(
    connection: &Connection,
    text_hits: &[TextHit],
    vector_hits: &[VectorHit],
    page_hits: &[TextHit],
    query: &SearchQuery,
    pages: &mut Pages,
) -> Result<Vec<Candidate>, BrainError> {
    let by_page = query.max_chunks_per_page == 1;
    // Key: the page when fusing pages, else the chunk. Rank: 1-based among distinct keys.
    let mut candidates: HashMap<i64, Candidate> = HashMap::new();
    let mut best_chunk: HashMap<i64, f64> = HashMap::new();
    let mut add = |chunk_id: i64, page_id: i64, rank: usize, contribution: f64, is_text: bool| {
        let key = if by_page { page_id } else { chunk_id };
        let candidate = candidates.entry(key).or_insert_with(|| Candidate {
            chunk_id,
            page_id,
            fts_rank: None,
            vector_rank: None,
            score: 0.0,
        });
        let arm_rank = if is_text { &mut candidate.fts_rank } else { &mut candidate.vector_rank };
        if arm_rank.is_some() {
            return;
        }
        *arm_rank = Some(rank);
        candidate.score += contribution;
        let shown = best_chunk.entry(key).or_insert(contribution);
        if contribution > *shown {
            *shown = contribution;
            candidate.chunk_id = chunk_id;
        }
    };
    // Each arm's hits come best first, with a raw score (bm25 relevance or cosine similarity).
    let mut arm =
        |hits: &mut dyn Iterator<Item = (i64, i64, f64)>, weight: f64, floor: f64, is_text: bool| {
            let mut seen: HashSet<i64> = HashSet::new();
            let mut top: Option<f64> = None;
            for (chunk_id, page_id, raw) in hits {
                let key = if by_page { page_id } else { chunk_id };
                if !seen.insert(key) {
                    continue;
                }
                let rank = seen.len();
                let top = *top.get_or_insert(raw);
                add(chunk_id, page_id, rank, contribution(query, weight, rank, raw, top, floor), is_text);
            }
        };
    // Convex fusion normalizes each list min-max: its best score is 1, its lowest 0.
    let lowest = |scores: &mut dyn Iterator<Item = f64>| scores.fold(f64::INFINITY, f64::min);
    let text_floor = lowest(&mut text_hits.iter().map(|hit| hit.2));
    arm(&mut text_hits.iter().copied(), query.fts_weight, text_floor, true);
    let vector_floor = lowest(&mut vector_hits.iter().map(|hit| f64::from(hit.similarity)));
    arm(
        &mut vector_hits.iter().map(|hit| (hit.chunk_id, hit.page_id, f64::from(hit.similarity))),
        query.vector_weight,
        vector_floor,
        false,
    );
    // The page-level arm (chunks fused individually): each page's contribution, added to every
    // candidate chunk of the page.
    let mut page_bonus: HashMap<i64, f64> = HashMap::new();
    let page_floor = lowest(&mut page_hits.iter().map(|hit| hit.2));
    let page_top = page_hits.first().map_or(0.0, |hit| hit.2);
    for (index, (_, page_id, raw)) in page_hits.iter().enumerate() {
        let bonus = contribution(query, query.page_weight, index + 1, *raw, page_top, page_floor);
        page_bonus.entry(*page_id).or_insert(bonus);
    }
    let mut fused = Vec::with_capacity(candidates.len());
    for mut candidate in candidates.into_values() {
        let Some(info) = pages.get(connection, candidate.page_id)? else { continue };
        candidate.score += page_bonus.get(&candidate.page_id).copied().unwrap_or(0.0);
        candidate.score *= boost(&query.boosts, &info.slug);
        fused.push(candidate);
    }
    fused.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.fts_rank.unwrap_or(usize::MAX).cmp(&b.fts_rank.unwrap_or(usize::MAX)))
            .then(a.vector_rank.unwrap_or(usize::MAX).cmp(&b.vector_rank.unwrap_or(usize::MAX)))
            .then(a.chunk_id.cmp(&b.chunk_id))
    });
    Ok(fused)
}

/// The multiplier of the longest boost prefix `slug` starts with (1 when none).
fn boost(boosts: &[(String, f64)], slug: &str) -> f64 {
    boosts
        .iter()
        .filter(|(prefix, _)| slug.starts_with(prefix.as_str()))
        .max_by_key(|(prefix, _)| prefix.len())
        .map_or(1.0, |(_, factor)| *factor)
}

/// The best `k` candidates with at most `per_page` per page (0 = no cap).
fn cap_per_page(fused: Vec<Candidate>, per_page: usize, k: usize) -> Vec<Candidate> {
    let mut taken: HashMap<i64, usize> = HashMap::new();
    let mut kept = Vec::with_capacity(k.min(fused.len()));
    for candidate in fused {
        if kept.len() == k {
            break;
        }
        let count = taken.entry(candidate.page_id).or_insert(0);
        if per_page == 0 || *count < per_page {
            *count += 1;
            kept.push(candidate);
        }
    }
    kept
}

/// One line, at most `limit` characters, `…` when cut.
fn opening(text: &str, limit: usize) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(limit) {
        Some((index, _)) => format!("{}…", flat[..index].trim_end()),
        None => flat,
    }
}

impl Db {
    /// Hybrid / full-text / vector search (see the module doc).
    pub fn search(&self, query: &SearchQuery) -> Result<SearchResult, BrainError> {
        if !query.rrf_k.is_finite() || query.rrf_k < 0.0 {
            return Err(BrainError::Invalid(format!(
                "rrf_k must be a non-negative number, not {}",
                query.rrf_k
            )));
        }
        for (arm, weight) in [
            ("fts_weight", query.fts_weight),
            ("vector_weight", query.vector_weight),
            ("page_weight", query.page_weight),
        ] {
            if !weight.is_finite() || weight < 0.0 {
                return Err(BrainError::Invalid(format!(
                    "{arm} must be a non-negative number, not {weight}"
                )));
            }
        }
        if let Some((prefix, factor)) =
            query.boosts.iter().find(|(_, factor)| !factor.is_finite() || *factor < 0.0)
        {
            return Err(BrainError::Invalid(format!(
                "boost for `{prefix}` must be a non-negative number, not {factor}"
            )));
        }
        if query.vector.as_ref().is_some_and(|vector| vector.iter().any(|value| !value.is_finite())) {
            return Err(BrainError::Invalid("query vector has a non-finite value".to_string()));
        }
        let filter = SlugFilter::new(&query.include, &query.exclude)?;
        if query.k == 0 {
            return Ok(SearchResult::default());
        }
        self.read("searching", |tx| self.search_in(tx, query, &filter))
    }

    fn search_in(
        &self,
        tx: &Connection,
        query: &SearchQuery,
        filter: &SlugFilter,
    ) -> Result<SearchResult, BrainError> {
        let mut notices: Vec<String> = Vec::new();
        // One result per page: rank whole pages by full text (then show their best chunk).
        let level = if query.max_chunks_per_page == 1 { Level::Pages } else { Level::Chunks };
        let text_plan = match query.mode {
            SearchMode::Vector => None,
            SearchMode::Hybrid | SearchMode::FullText => {
                if search_words(&query.text).is_empty() && query.mode == SearchMode::FullText {
                    notices.push("the query has no words to search for".to_string());
                }
                plan_fts(tx, &query.text, level)?
            }
        };
        let index = match query.mode {
            SearchMode::FullText => None,
            SearchMode::Hybrid | SearchMode::Vector => {
                let fallback = if query.mode == SearchMode::Hybrid { "; full-text results only" } else { "" };
                match &query.vector {
                    None => {
                        notices.push(format!("no query vector{fallback}"));
                        None
                    }
                    Some(vector) => {
                        let index = self.synced_index(tx)?;
                        if index.len() == 0 {
                            notices.push(format!("no vectors stored yet{fallback}"));
                            None
                        } else if index.dims() != vector.len() {
                            let message = format!(
                                "query vector has {} dimensions, stored vectors have {}",
                                vector.len(),
                                index.dims()
                            );
                            if query.mode == SearchMode::Vector {
                                return Err(BrainError::Embedding(message));
                            }
                            notices.push(format!("{message}{fallback}"));
                            None
                        } else {
                            Some((index, vector))
                        }
                    }
                }
            }
        };
        // Chunks fused individually still learn how well their whole page matches.
        let page_plan = match (&text_plan, level) {
            (Some(_), Level::Chunks) if query.page_weight > 0.0 => plan_fts(tx, &query.text, Level::Pages)?,
            _ => None,
        };
        let mut pages = Pages::default();
        let mut depth = match query.candidates {
            0 => query.k.saturating_mul(4).max(50),
            n => n.max(query.k),
        }
        .min(MAX_DEPTH);
        let allow = |slug: &str| filter.allows(slug);
        let allowed: Option<&SlugCheck<'_>> = if filter.is_empty() { None } else { Some(&allow) };
        let mut chosen = loop {
            let text_hits = match &text_plan {
                Some(plan) => fts_arm(tx, plan, level, filter, depth, query.k, &mut pages)?,
                None => Vec::new(),
            };
            let scanned = index.as_ref().map(|(index, vector)| index.scan(vector, allowed, depth));
            let vector_hits = match (&index, scanned) {
                (Some((index, vector)), Some(candidates)) => index.rescore(tx, candidates, vector, depth)?,
                _ => Vec::new(),
            };
            let page_hits = match &page_plan {
                Some(plan) => fts_arm(tx, plan, Level::Pages, filter, depth, 0, &mut pages)?,
                None => Vec::new(),
            };
            let cut_off = text_hits.len() >= depth || vector_hits.len() >= depth;
            let fused = fuse(tx, &text_hits, &vector_hits, &page_hits, query, &mut pages)?;
            let chosen = cap_per_page(fused, query.max_chunks_per_page, query.k);
            if chosen.len() >= query.k || !cut_off || depth >= MAX_DEPTH {
                break chosen;
            }
            depth = depth.saturating_mul(4).min(MAX_DEPTH);
        };
        drop(index);
        if chosen.iter().any(|candidate| candidate.chunk_id == UNRESOLVED) {
            let words = search_words(&query.text);
            for candidate in &mut chosen {
                if candidate.chunk_id == UNRESOLVED {
                    candidate.chunk_id = best_chunk(tx, &words, candidate.page_id)?;
                }
            }
        }
        let expanded = expand(tx, &chosen, query.expand_graph, filter, &mut pages)?;
        chosen.extend(expanded);
        let mut hits = Vec::with_capacity(chosen.len());
        for candidate in chosen {
            let Some(info) = pages.get(tx, candidate.page_id)?.cloned() else { continue };
            let snippet = snippet(tx, &candidate, text_plan.as_ref().map(|plan| plan.all.as_str()))?;
            let (start_line, end_line) = tx
                .prepare_cached("SELECT start_line, end_line FROM chunks WHERE id = ?1")
                .and_then(|mut statement| {
                    statement.query_row([candidate.chunk_id], |row| Ok((row.get(0)?, row.get(1)?))).optional()
                })
                .map_err(db_error("reading a hit's lines"))?
                .unwrap_or((None, None));
            hits.push(Hit {
                slug: info.slug,
                title: info.title,
                source: info.source,
                chunk_id: candidate.chunk_id,
                score: candidate.score,
                snippet,
                fts_rank: candidate.fts_rank,
                vector_rank: candidate.vector_rank,
                expanded: candidate.fts_rank.is_none() && candidate.vector_rank.is_none(),
                start_line,
                end_line,
            });
        }
        let facts = match query.as_of {
            Some(at) => facts_for(tx, at, &query.text, &hits)?,
            None => Vec::new(),
        };
        let notice = if notices.is_empty() { None } else { Some(notices.join("; ")) };
        Ok(SearchResult { hits, notice, facts })
    }

    /// Pages linked with the pages that match `topic` (people first), by how many matching
    /// pages they are linked with.
    pub fn find_experts(&self, topic: &str, k: usize) -> Result<Vec<Expert>, BrainError> {
        if k == 0 {
            return Ok(Vec::new());
        }
        self.read("finding experts", |tx| {
            let Some(plan) = plan_fts(tx, topic, Level::Pages)? else {
                return Ok(Vec::new());
            };
            let mut pages = Pages::default();
            let hits = fts_arm(tx, &plan, Level::Pages, &SlugFilter::default(), 50, k, &mut pages)?;
            let mut matching: Vec<i64> = Vec::new();
            for (_, page_id, _) in hits {
                if !matching.contains(&page_id) {
                    matching.push(page_id);
                }
            }
            matching.truncate(50);
            struct Tally {
                score: f64,
                evidence: Vec<i64>,
            }
            let mut tallies: HashMap<i64, Tally> = HashMap::new();
            let mut credit = |candidate: i64, evidence: i64, weight: f64| {
                let tally = tallies.entry(candidate).or_insert(Tally { score: 0.0, evidence: Vec::new() });
                if !tally.evidence.contains(&evidence) {
                    tally.evidence.push(evidence);
                    tally.score += weight;
                }
            };
            for (position, page_id) in matching.iter().enumerate() {
                // Earlier (better) matches count a little more: 1.0, 0.95, 0.91, ...
                let weight = 1.0 / (1.0 + position as f64 / 20.0);
                let is_person = pages.get(tx, *page_id)?.is_some_and(|info| info.kind == "person");
                if is_person {
                    credit(*page_id, *page_id, weight);
                }
                let mut neighbours = outgoing_pages(tx, *page_id)?;
                neighbours.extend(incoming_pages(tx, *page_id)?);
                for neighbour in neighbours {
                    credit(neighbour, *page_id, weight);
                }
            }
            let mut experts = Vec::new();
            for (page_id, tally) in tallies {
                let Some(info) = pages.get(tx, page_id)?.cloned() else { continue };
                let mut evidence = Vec::new();
                for id in tally.evidence.iter().take(10) {
                    if let Some(source) = pages.get(tx, *id)? {
                        evidence.push(source.slug.clone());
                    }
                }
                experts.push(Expert {
                    slug: info.slug,
                    title: info.title,
                    kind: info.kind,
                    score: tally.score,
                    evidence,
                });
            }
            experts.sort_by(|a, b| {
                (b.kind == "person")
                    .cmp(&(a.kind == "person"))
                    .then(b.score.total_cmp(&a.score))
                    .then(a.slug.cmp(&b.slug))
            });
            experts.truncate(k);
            Ok(experts)
        })
    }
}

/// Up to `limit` live, allowed pages linked to or from the hits' pages that are not hits
/// themselves: most-connected first, then in order of the first hit that reaches them. Each is
/// represented by its first chunk and scored below the last hit.
fn expand(
    connection: &Connection,
    hits: &[Candidate],
    limit: usize,
    filter: &SlugFilter,
    pages: &mut Pages,
) -> Result<Vec<Candidate>, BrainError> {
    let Some(floor) = hits.last().map(|hit| hit.score) else {
        return Ok(Vec::new());
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    let hit_pages: HashSet<i64> = hits.iter().map(|hit| hit.page_id).collect();
    let mut order: Vec<i64> = Vec::new();
    let mut connections: HashMap<i64, usize> = HashMap::new();
    let mut visited = HashSet::new();
    for hit in hits {
        if !visited.insert(hit.page_id) {
            continue;
        }
        let mut neighbours = outgoing_pages(connection, hit.page_id)?;
        neighbours.extend(incoming_pages(connection, hit.page_id)?);
        let mut counted = HashSet::new();
        for neighbour in neighbours {
            if hit_pages.contains(&neighbour) || !counted.insert(neighbour) {
                continue;
            }
            let Some(info) = pages.get(connection, neighbour)? else { continue };
            if !filter.allows(&info.slug) {
                continue;
            }
            let count = connections.entry(neighbour).or_insert(0);
            if *count == 0 {
                order.push(neighbour);
            }
            *count += 1;
        }
    }
    // Stable: ties keep first-reached order.
    order.sort_by_key(|page| std::cmp::Reverse(connections.get(page).copied().unwrap_or(0)));
    let mut expanded = Vec::new();
    for (position, page_id) in order.into_iter().take(limit).enumerate() {
        let chunk_id: i64 = connection
            .prepare_cached("SELECT id FROM chunks WHERE page_id = ?1 ORDER BY ord LIMIT 1")
            .and_then(|mut statement| statement.query_row([page_id], |row| row.get(0)).optional())
            .map_err(db_error("expanding the graph"))?
            .unwrap_or(0);
        expanded.push(Candidate {
            chunk_id,
            page_id,
            fts_rank: None,
            vector_rank: None,
            score: floor * 0.5 / (position as f64 + 1.0),
        });
    }
    Ok(expanded)
}

/// The chunk of a page that holds the most of the query's `words` (first chunk on a tie, and
/// for a page without matches); `UNRESOLVED` for a page without chunks. Judged here rather
/// than by another FTS5 query, which costs about half a millisecond per hit: a word matches a
/// token equal to it or, for words of four letters or more, one sharing its first six letters
/// (a rough stand-in for the index's stemming).
fn best_chunk(connection: &Connection, words: &[String], page_id: i64) -> Result<i64, BrainError> {
    let chunks: Vec<(i64, String, Option<String>)> = connection
        .prepare_cached("SELECT id, text, context FROM chunks WHERE page_id = ?1 ORDER BY ord")
        .and_then(|mut statement| {
            statement
                .query_map([page_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .and_then(Iterator::collect::<rusqlite::Result<Vec<_>>>)
        })
        .map_err(db_error("choosing a page's chunk"))?;
    let keys: Vec<String> = words.iter().map(|word| match_key(word)).collect();
    let mut best = (UNRESOLVED, 0usize);
    for (id, text, context) in chunks {
        let mut found = vec![false; keys.len()];
        for part in [text.as_str(), context.as_deref().unwrap_or("")] {
            for token in part.split(|c: char| !c.is_alphanumeric()).filter(|token| !token.is_empty()) {
                let key = match_key(&token.to_lowercase());
                for (seen, wanted) in found.iter_mut().zip(&keys) {
                    *seen |= key == *wanted;
                }
            }
        }
        let count = found.iter().filter(|seen| **seen).count();
        if best.0 == UNRESOLVED || count > best.1 {
            best = (id, count);
        }
    }
    Ok(best.0)
}

/// A lower-cased word as `best_chunk` compares it: whole when short, else its first six letters.
fn match_key(word: &str) -> String {
    if word.chars().count() < 4 { word.to_string() } else { word.chars().take(6).collect() }
}

/// FTS5's snippet for a full-text hit; otherwise the opening of the chunk (or of the page body
/// for a page without chunks).
fn snippet(
    connection: &Connection,
    candidate: &Candidate,
    text_query: Option<&str>,
) -> Result<String, BrainError> {
    let context = "making a snippet";
    if let (Some(query), Some(_)) = (text_query, candidate.fts_rank) {
        let snippet: Option<String> = connection
            .prepare_cached(&format!(
                "SELECT snippet(chunks_fts, 2, '', '', '…', {SNIPPET_TOKENS}) FROM chunks_fts
                 WHERE chunks_fts MATCH ?1 AND rowid = ?2"
            ))
            .and_then(|mut statement| {
                statement.query_row(params![query, candidate.chunk_id], |row| row.get(0)).optional()
            })
            .map_err(db_error(context))?;
        if let Some(snippet) = snippet.filter(|snippet| !snippet.trim().is_empty()) {
            return Ok(opening(&snippet, SNIPPET_CHARS * 2));
        }
    }
    let text: Option<String> = connection
        .prepare_cached(
            "SELECT COALESCE((SELECT text FROM chunks WHERE id = ?1), (SELECT body FROM pages WHERE id = ?2))",
        )
        .and_then(|mut statement| statement.query_row(params![candidate.chunk_id, candidate.page_id], |row| row.get(0)))
        .map_err(db_error(context))?;
    Ok(opening(text.as_deref().unwrap_or(""), SNIPPET_CHARS))
}

/// Facts valid at `at` (current beliefs) whose subject is a hit page's title or stem, or a
/// phrase of up to four consecutive words of the query.
fn facts_for(connection: &Connection, at: i64, text: &str, hits: &[Hit]) -> Result<Vec<Fact>, BrainError> {
    let mut keys: Vec<String> = Vec::new();
    let mut add = |key: String| {
        if !key.is_empty() && !keys.contains(&key) {
            keys.push(key);
        }
    };
    for hit in hits {
        add(slugify(&hit.title));
        add(super::links::slug_stem(&hit.slug));
    }
    let words = query_words(text);
    for length in 1..=4 {
        for window in words.windows(length) {
            if length == 1 && window.iter().all(|word| STOPWORDS.contains(&word.as_str())) {
                continue;
            }
            add(window.join("-"));
        }
    }
    let mut facts = Vec::new();
    let mut seen = HashSet::new();
    for key in keys.iter().take(256) {
        let found = select_facts(
            connection,
            "subject_key = ?1 AND expired_at IS NULL AND valid_from <= ?2
             AND (valid_until IS NULL OR valid_until > ?2)
             ORDER BY predicate_key, valid_from, id",
            params![key, at],
        )?;
        facts.extend(found.into_iter().filter(|fact| seen.insert(fact.id)));
    }
    Ok(facts)
}
