//! Database and search integration tests: a real `brain.db` in a temporary directory, driven only
//! through the public `Db` API, asserting what a user of the brain would notice (what a search
//! returns and in which order, what a page shows, what a fact query answers).

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clawdia_brain::db::{
    BrainError, Db, FactInput, FactQuery, Fusion, SearchMode, SearchQuery, TakeInput, TimelineInput,
    TimelineQuery,
};
use clawdia_brain::{ChunkInput, LinkInput, PageInput};
use proptest::prelude::*;
use serde::Deserialize;

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    db: Db,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state").join("brain.db");
    let db = Db::open(&path).expect("open brain.db");
    Fixture { _dir: dir, path, db }
}

fn hash_of(parts: &[&str]) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    parts.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// A note page with one chunk per entry of `chunks`.
fn page(slug: &str, title: &str, chunks: &[&str]) -> PageInput {
    let body = chunks.join("\n\n");
    PageInput {
        slug: slug.to_string(),
        title: title.to_string(),
        kind: "note".to_string(),
        source: slug.split('/').next().unwrap_or("").to_string(),
        content_hash: hash_of(&[title, &body]),
        body,
        frontmatter: serde_json::json!({}),
        chunks: chunks
            .iter()
            .map(|text| ChunkInput {
                text: text.to_string(),
                context: None,
                start_line: None,
                end_line: None,
            })
            .collect(),
        links: Vec::new(),
    }
}

fn with_links(mut page: PageInput, links: &[(&str, &str)]) -> PageInput {
    page.links = links
        .iter()
        .map(|(target, kind)| LinkInput { target: target.to_string(), kind: kind.to_string(), alias: None })
        .collect();
    page.content_hash = hash_of(&[&page.content_hash, &format!("{links:?}")]);
    page
}

fn put(db: &Db, page: &PageInput) {
    db.put_page(page).expect("put_page");
}

fn text_search(db: &Db, text: &str, k: usize) -> Vec<String> {
    let mut query = SearchQuery::new(text, k);
    query.mode = SearchMode::FullText;
    slugs(db, &query)
}

fn slugs(db: &Db, query: &SearchQuery) -> Vec<String> {
    db.search(query).expect("search").hits.into_iter().map(|hit| hit.slug).collect()
}

/// Records a 4-dimensional test model and gives every pending chunk the vector `vector_of`
/// returns for its embedded text.
fn embed_all(db: &Db, vector_of: impl Fn(&str) -> Vec<f32>) {
    db.set_embedding_model("test/4d", 4).expect("set model");
    loop {
        let pending = db.chunks_to_embed(100).expect("chunks_to_embed");
        if pending.is_empty() {
            return;
        }
        let vectors: Vec<(i64, Vec<f32>)> = pending.iter().map(|(id, text)| (*id, vector_of(text))).collect();
        db.store_vectors(&vectors).expect("store_vectors");
    }
}

fn vector_query(text: &str, vector: [f32; 4], k: usize, mode: SearchMode) -> SearchQuery {
    let mut query = SearchQuery::new(text, k);
    query.mode = mode;
    query.vector = Some(vector.to_vec());
    query
}

#[derive(Deserialize)]
struct FixturePage {
    slug: String,
    title: String,
    kind: String,
    chunks: Vec<String>,
    links: Vec<LinkInput>,
}

/// The pages of `test_data/db/team.json`.
fn load_team(db: &Db) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/db/team.json");
    let text = std::fs::read_to_string(path).expect("read team.json");
    let pages: Vec<FixturePage> = serde_json::from_str(&text).expect("parse team.json");
    for fixture in pages {
        let chunks: Vec<&str> = fixture.chunks.iter().map(String::as_str).collect();
        let mut page = page(&fixture.slug, &fixture.title, &chunks);
        page.kind = fixture.kind;
        page.links = fixture.links;
        put(db, &page);
    }
}

// ---------------------------------------------------------------------------------------------
// Pages

#[test]
fn put_then_get_round_trips_the_page() {
    let f = fixture();
    let mut input = page("notes/alice", "Alice", &["Alice runs the platform team.", "She likes Rust."]);
    input.kind = "person".to_string();
    input.frontmatter = serde_json::json!({"type": "person", "tags": ["team"]});
    let outcome = f.db.put_page(&input).expect("put");
    assert!(outcome.changed && outcome.created);
    assert_eq!(outcome.chunks, 2);

    let view = f.db.get_page("notes/alice").expect("get").expect("page exists");
    assert_eq!(view.title, "Alice");
    assert_eq!(view.kind, "person");
    assert_eq!(view.source, "notes");
    assert_eq!(view.body, input.body);
    assert_eq!(view.frontmatter, input.frontmatter);
    assert_eq!(view.content_hash, input.content_hash);
    assert_eq!(view.chunks, 2);
    assert_eq!(view.deleted_at, None);
    assert_eq!(f.db.page_hash("notes/alice").expect("hash"), Some(input.content_hash.clone()));
    assert_eq!(f.db.get_page("notes/nobody").expect("get"), None);
    assert!(f.path.exists(), "the database file and its directory are created");
}

#[test]
fn an_unchanged_hash_writes_nothing() {
    let f = fixture();
    let input = page("notes/a", "A", &["alpha text"]);
    put(&f.db, &input);
    let before = f.db.get_page("notes/a").expect("get").expect("page");
    let mut same_hash = input.clone();
    same_hash.body = "a different body the hash does not admit to".to_string();
    let outcome = f.db.put_page(&same_hash).expect("put");
    assert!(!outcome.changed);
    let after = f.db.get_page("notes/a").expect("get").expect("page");
    assert_eq!(after.body, before.body);
    assert_eq!(after.updated_at, before.updated_at);
}

#[test]
fn a_re_put_replaces_the_old_chunks() {
    let f = fixture();
    put(&f.db, &page("notes/a", "Plans", &["We will migrate to postgres.", "Budget is fixed."]));
    assert_eq!(text_search(&f.db, "postgres", 5), ["notes/a"]);
    put(&f.db, &page("notes/a", "Plans", &["We will stay on sqlite.", "Budget is fixed."]));
    assert!(text_search(&f.db, "postgres", 5).is_empty(), "old chunk text is gone");
    assert_eq!(text_search(&f.db, "sqlite", 5), ["notes/a"]);
    assert_eq!(f.db.stats().expect("stats").chunks, 2);
}

#[test]
fn a_re_put_keeps_vectors_of_unchanged_chunks() {
    let f = fixture();
    put(&f.db, &page("notes/a", "Plans", &["first section", "second section"]));
    embed_all(&f.db, |_| vec![1.0, 0.0, 0.0, 0.0]);
    let outcome =
        f.db.put_page(&page("notes/a", "Plans", &["first section", "second section, edited"])).expect("put");
    assert_eq!(outcome.vectors_reused, 1);
    let pending = f.db.chunks_to_embed(10).expect("pending");
    assert_eq!(pending.len(), 1, "only the edited chunk needs a new vector");
    assert!(pending[0].1.ends_with("second section, edited"));
}

#[test]
fn soft_delete_hides_the_page_from_search_but_get_page_shows_it_deleted() {
    let f = fixture();
    put(&f.db, &page("notes/gone", "Gone", &["the walrus project"]));
    put(&f.db, &page("notes/kept", "Kept", &["the walrus sanctuary"]));
    embed_all(&f.db, |_| vec![0.0, 1.0, 0.0, 0.0]);
    assert!(f.db.delete_page("notes/gone").expect("delete"));
    assert!(!f.db.delete_page("notes/gone").expect("delete again"), "already deleted");

    assert_eq!(text_search(&f.db, "walrus", 5), ["notes/kept"]);
    let vector_hits = slugs(&f.db, &vector_query("", [0.0, 1.0, 0.0, 0.0], 5, SearchMode::Vector));
    assert_eq!(vector_hits, ["notes/kept"]);
    let view = f.db.get_page("notes/gone").expect("get").expect("row kept");
    assert!(view.deleted_at.is_some());
    assert_eq!(view.body, "the walrus project");
    assert_eq!(f.db.page_hash("notes/gone").expect("hash"), None);

    // Putting it again (same content) brings it back.
    let outcome = f.db.put_page(&page("notes/gone", "Gone", &["the walrus project"])).expect("put");
    assert!(outcome.changed && outcome.undeleted);
    assert_eq!(text_search(&f.db, "walrus project", 1), ["notes/gone"]);
}

#[test]
fn delete_missing_removes_only_unseen_pages_of_that_source() {
    let f = fixture();
    for slug in ["notes/a", "notes/b", "notes/c"] {
        put(&f.db, &page(slug, slug, &["shared words"]));
    }
    put(&f.db, &page("repo/x", "x", &["shared words"]));
    let keep: HashSet<String> = ["notes/b".to_string()].into();
    let deleted = f.db.delete_missing("notes", &keep).expect("delete_missing");
    assert_eq!(deleted, ["notes/a", "notes/c"]);
    let mut left = text_search(&f.db, "shared", 10);
    left.sort();
    assert_eq!(left, ["notes/b", "repo/x"]);
}

#[test]
fn refuses_empty_and_malformed_slugs() {
    let f = fixture();
    for slug in ["", "  ", "/notes/a", "notes/a/", "notes//a"] {
        let result = f.db.put_page(&page(slug, "t", &["x"]));
        assert!(matches!(result, Err(BrainError::Invalid(_))), "{slug:?}: {result:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Links

#[test]
fn links_resolve_by_title_key_stem_and_path_with_backlinks_and_kinds() {
    let f = fixture();
    load_team(&f.db);
    let plan = f.db.get_page("notes/projects/k8s-migration").expect("get").expect("page");
    let resolved: Vec<(String, String, Option<String>)> =
        plan.links.iter().map(|link| (link.target.clone(), link.kind.clone(), link.slug.clone())).collect();
    assert_eq!(
        resolved,
        [
            ("Alice Smith".to_string(), "owner".to_string(), Some("notes/people/alice-smith".to_string())),
            ("acme".to_string(), "mentions".to_string(), Some("notes/companies/acme".to_string())),
        ]
    );
    assert_eq!(plan.links[1].alias.as_deref(), Some("Acme"));

    let alice = f.db.get_page("notes/people/alice-smith").expect("get").expect("page");
    let backlinks: Vec<(&str, &str)> =
        alice.backlinks.iter().map(|link| (link.slug.as_str(), link.kind.as_str())).collect();
    assert_eq!(
        backlinks,
        [("notes/incidents/2026-03-outage", "mentions"), ("notes/projects/k8s-migration", "owner")]
    );
    assert_eq!(alice.links[0].slug.as_deref(), Some("notes/companies/acme"), "typed link by title key");

    let bob = f.db.get_page("notes/people/bob").expect("get").expect("page");
    assert_eq!(bob.backlinks.len(), 1, "[[people/bob]] resolves by path suffix");
}

#[test]
fn a_link_resolves_once_its_target_exists_and_not_after_deletion() {
    let f = fixture();
    put(&f.db, &with_links(page("notes/a", "A", &["see the glossary"]), &[("Glossary", "mentions")]));
    let link_target = |db: &Db| db.get_page("notes/a").expect("get").expect("page").links[0].slug.clone();
    assert_eq!(link_target(&f.db), None);
    put(&f.db, &page("notes/reference/glossary", "Glossary", &["terms"]));
    assert_eq!(link_target(&f.db).as_deref(), Some("notes/reference/glossary"));
    f.db.delete_page("notes/reference/glossary").expect("delete");
    assert_eq!(link_target(&f.db), None);
}

// ---------------------------------------------------------------------------------------------
// Full text

#[test]
fn a_title_match_outranks_a_single_body_mention() {
    let f = fixture();
    put(
        &f.db,
        &page(
            "notes/body",
            "Weekly notes",
            &["Lots of things happened. We also talked about kubernetes once."],
        ),
    );
    put(&f.db, &page("notes/title", "Kubernetes", &["Our cluster runs three nodes in two regions."]));
    assert_eq!(text_search(&f.db, "kubernetes", 5), ["notes/title", "notes/body"]);
}

#[test]
fn full_text_uses_stemming_and_ignores_diacritics() {
    let f = fixture();
    put(&f.db, &page("notes/cafe", "Visit", &["We were running to the café."]));
    assert_eq!(text_search(&f.db, "run cafe", 5), ["notes/cafe"]);
}

#[test]
fn fts_syntax_in_queries_is_just_text() {
    let f = fixture();
    put(&f.db, &page("notes/near", "Near", &["near and or not"]));
    for text in
        ["\"AND OR NEAR(", "*", "NOT", "a:b", "title:near", "(", "\"", "^near", "near*", "-", "{x y}: z"]
    {
        let mut query = SearchQuery::new(text, 5);
        query.mode = SearchMode::FullText;
        let result = f.db.search(&query);
        assert!(result.is_ok(), "{text:?}: {result:?}");
    }
    assert_eq!(text_search(&f.db, "NEAR(", 5), ["notes/near"]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_query_text_never_errors(text in any::<String>()) {
        thread_local! {
            static DB: Fixture = {
                let f = fixture();
                put(&f.db, &page("notes/a", "Alpha", &["quick brown fox", "NEAR AND OR \"quoted\""]));
                f
            };
        }
        DB.with(|f| {
            for mode in [SearchMode::FullText, SearchMode::Hybrid] {
                let mut query = SearchQuery::new(text.clone(), 3);
                query.mode = mode;
                prop_assert!(f.db.search(&query).is_ok());
            }
            prop_assert!(f.db.find_experts(&text, 3).is_ok());
            Ok(())
        })?;
    }
}

// ---------------------------------------------------------------------------------------------
// Vectors and fusion

/// Four pages on one axis each, for vector tests.
fn four_axes(db: &Db) {
    put(db, &page("notes/x", "X", &["axis x"]));
    put(db, &page("notes/y", "Y", &["axis y"]));
    put(db, &page("notes/z", "Z", &["axis z"]));
    put(db, &page("notes/w", "W", &["axis w"]));
    embed_all(db, |text| match text.rsplit(' ').next() {
        Some("x") => vec![1.0, 0.0, 0.0, 0.0],
        Some("y") => vec![0.8, 0.6, 0.0, 0.0],
        Some("z") => vec![0.0, 0.6, 0.8, 0.0],
        _ => vec![0.0, 0.0, 0.0, 1.0],
    });
}

#[test]
fn vector_search_orders_by_cosine_similarity() {
    let f = fixture();
    four_axes(&f.db);
    let result = f.db.search(&vector_query("", [1.0, 0.0, 0.0, 0.0], 3, SearchMode::Vector)).expect("search");
    let order: Vec<&str> = result.hits.iter().map(|hit| hit.slug.as_str()).collect();
    assert_eq!(order, ["notes/x", "notes/y", "notes/z"]);
    assert_eq!(result.hits[0].vector_rank, Some(1));
    assert_eq!(result.hits[0].fts_rank, None);
    assert_eq!(result.hits[0].snippet, "axis x");
    // Unnormalized query vectors rank the same.
    let scaled = slugs(&f.db, &vector_query("", [0.0, 5.0, 0.0, 0.0], 2, SearchMode::Vector));
    assert_eq!(scaled, ["notes/y", "notes/z"]);
}

#[test]
fn hybrid_fusion_prefers_a_chunk_ranked_well_by_both_arms() {
    let f = fixture();
    put(&f.db, &page("notes/both", "Field notes", &["a zebra grazes in the field with its friends"]));
    put(&f.db, &page("notes/text", "Stripes", &["zebra zebra zebra"]));
    put(&f.db, &page("notes/vector", "Savanna", &["grassland animals at dusk"]));
    for n in 0..5 {
        put(&f.db, &page(&format!("notes/filler-{n}"), "Filler", &[&format!("filler number {n}")]));
    }
    embed_all(&f.db, |text| {
        if text.contains("grassland") {
            vec![1.0, 0.0, 0.0, 0.0]
        } else if text.contains("grazes") {
            vec![0.95, 0.31, 0.0, 0.0]
        } else if text.contains("filler") {
            vec![0.5, 0.0, 0.86, 0.0]
        } else {
            vec![0.0, 0.0, 0.0, 1.0]
        }
    });
    let q = [1.0, 0.0, 0.0, 0.0];
    assert_eq!(slugs(&f.db, &vector_query("zebra", q, 1, SearchMode::FullText)), ["notes/text"]);
    assert_eq!(slugs(&f.db, &vector_query("zebra", q, 1, SearchMode::Vector)), ["notes/vector"]);
    let hybrid = f.db.search(&vector_query("zebra", q, 3, SearchMode::Hybrid)).expect("search");
    let top = &hybrid.hits[0];
    assert_eq!(top.slug, "notes/both");
    assert_eq!((top.fts_rank, top.vector_rank), (Some(2), Some(2)));
    assert!((top.score - 2.0 / 62.0).abs() < 1e-9, "score {}", top.score);
    assert_eq!(hybrid.notice, None);
}

#[test]
fn fusion_weights_shift_the_balance_between_the_arms() {
    let f = fixture();
    put(&f.db, &page("notes/text", "Stripes", &["zebra zebra zebra"]));
    put(&f.db, &page("notes/vector", "Savanna", &["grassland animals at dusk, a zebra"]));
    embed_all(&f.db, |text| {
        if text.contains("grassland") { vec![1.0, 0.0, 0.0, 0.0] } else { vec![0.0, 1.0, 0.0, 0.0] }
    });
    let mut q = vector_query("zebra", [1.0, 0.0, 0.0, 0.0], 2, SearchMode::Hybrid);
    // Each page is first in one arm and second in the other: equal weights tie, broken by the
    // full-text rank.
    assert_eq!(slugs(&f.db, &q), ["notes/text", "notes/vector"]);
    q.vector_weight = 1.5;
    assert_eq!(slugs(&f.db, &q), ["notes/vector", "notes/text"]);
    let top = &f.db.search(&q).expect("search").hits[0];
    assert!((top.score - (1.5 / 61.0 + 1.0 / 62.0)).abs() < 1e-9, "score {}", top.score);
    q.vector_weight = 0.5;
    assert_eq!(slugs(&f.db, &q), ["notes/text", "notes/vector"]);
    q.vector_weight = -1.0;
    let error = f.db.search(&q).expect_err("a negative weight is refused");
    assert!(error.to_string().contains("vector_weight"), "{error}");
    q.vector_weight = 1.0;
    q.fts_weight = f64::NAN;
    assert!(f.db.search(&q).is_err(), "a NaN weight is refused");
}

#[test]
fn convex_fusion_adds_min_max_normalized_scores_where_rrf_adds_ranks() {
    let f = fixture();
    put(&f.db, &page("notes/a", "Alpha", &["zebra zebra zebra"]));
    put(&f.db, &page("notes/b", "Beta", &["grassland animals at dusk"]));
    put(&f.db, &page("notes/c", "Gamma", &["zebra zebra near the grassland edge"]));
    put(
        &f.db,
        &page("notes/d", "Delta", &[&format!("zebra {}", "and many other unrelated words ".repeat(30))]),
    );
    embed_all(&f.db, |text| {
        if text.contains("edge") {
            vec![0.8, 0.6, 0.0, 0.0]
        } else if text.contains("grassland") {
            vec![1.0, 0.0, 0.0, 0.0]
        } else {
            vec![0.0, 1.0, 0.0, 0.0]
        }
    });
    let mut q = vector_query("zebra", [1.0, 0.0, 0.0, 0.0], 4, SearchMode::Hybrid);
    q.fusion = Fusion::Rrf;
    q.rrf_k = 60.0;
    // RRF: a (text 1st, vector 3rd) edges out c (2nd in both).
    assert_eq!(slugs(&f.db, &q)[..2], ["notes/a", "notes/c"]);
    q.fusion = Fusion::Convex;
    // Convex: each list min-max normalized. a = 1 (best bm25) + 0 (lowest cosine); b = 1 (best
    // cosine), absent from full text; c = its share of the bm25 range + 0.8; d = 0 + 0.
    let hits = f.db.search(&q).expect("search").hits;
    let order: Vec<&str> = hits.iter().map(|hit| hit.slug.as_str()).collect();
    assert_eq!(order, ["notes/c", "notes/a", "notes/b", "notes/d"], "{hits:?}");
    assert!(hits[0].score > 1.0 && hits[0].score < 1.8, "c {}", hits[0].score);
    assert!((hits[1].score - 1.0).abs() < 1e-6, "a {}", hits[1].score);
    assert!((hits[2].score - 1.0).abs() < 1e-6, "b {}", hits[2].score);
    assert!(hits[3].score.abs() < 1e-6, "d {}", hits[3].score);
    q.vector_weight = 0.0;
    assert_eq!(slugs(&f.db, &q)[..2], ["notes/a", "notes/c"]);
}

#[test]
fn with_one_chunk_per_page_both_arms_credit_the_page_even_through_different_chunks() {
    let f = fixture();
    // notes/split: full text finds its first chunk, vectors its second. notes/text and
    // notes/vector each lead one arm with their only chunk.
    put(
        &f.db,
        &page(
            "notes/split",
            "Split",
            &["quokka habitat survey, quokka counts", "island marsupials at night"],
        ),
    );
    put(&f.db, &page("notes/text", "Text", &["quokka quokka quokka quokka"]));
    put(&f.db, &page("notes/vector", "Vector", &["small wallaby relatives"]));
    for n in 0..4 {
        put(&f.db, &page(&format!("notes/filler-{n}"), "Filler", &[&format!("filler number {n}")]));
    }
    embed_all(&f.db, |text| {
        if text.contains("wallaby") {
            vec![1.0, 0.0, 0.0, 0.0]
        } else if text.contains("marsupials") {
            vec![0.95, 0.31, 0.0, 0.0]
        } else if text.contains("filler") {
            vec![0.6, 0.0, 0.8, 0.0]
        } else {
            vec![0.0, 0.0, 0.0, 1.0]
        }
    });
    let q = vector_query("quokka", [1.0, 0.0, 0.0, 0.0], 3, SearchMode::Hybrid);
    let result = f.db.search(&q).expect("search");
    let top = &result.hits[0];
    assert_eq!(top.slug, "notes/split", "{:?}", result.hits);
    assert_eq!((top.fts_rank, top.vector_rank), (Some(2), Some(2)), "ranks among pages");
    assert!((top.score - 2.0 / 62.0).abs() < 1e-9, "score {}", top.score);
    // Fusing chunks instead (several chunks per page allowed), the split page's chunks each
    // have one arm only and fall behind the single-arm leaders' ties.
    let mut per_chunk = q.clone();
    per_chunk.max_chunks_per_page = 0;
    let hits = f.db.search(&per_chunk).expect("search").hits;
    assert_eq!(hits[0].slug, "notes/text", "{hits:?}");
}

#[test]
fn full_text_ranks_whole_pages_and_shows_the_best_matching_chunk() {
    let f = fixture();
    // notes/spread holds every query word, but no chunk of it holds more than two; notes/pair
    // holds two of them in one shorter chunk.
    put(
        &f.db,
        &page("notes/spread", "Spread", &["keeper logbook", "lighthouse cape", "storm harbour damage"]),
    );
    put(&f.db, &page("notes/pair", "Pair", &["storm harbour"]));
    for n in 0..4 {
        let text = format!("filler number {n} about tea biscuits and rain");
        put(&f.db, &page(&format!("notes/filler-{n}"), "Filler", &[&text]));
    }
    let mut q = SearchQuery::new("lighthouse storm harbour", 5);
    q.mode = SearchMode::FullText;
    let hits = f.db.search(&q).expect("search").hits;
    assert_eq!(hits.iter().map(|hit| hit.slug.as_str()).collect::<Vec<_>>(), ["notes/spread", "notes/pair"]);
    assert_eq!(hits[0].fts_rank, Some(1));
    // The chunk shown is one that matches (not the page's first), with a snippet from it.
    let view = f.db.get_page("notes/spread").expect("get").expect("page");
    assert!(!hits[0].snippet.contains("logbook"), "{:?}", hits[0]);
    assert!(hits[0].snippet.contains("storm") || hits[0].snippet.contains("lighthouse"), "{:?}", hits[0]);
    assert!(view.body.contains(&hits[0].snippet.replace('…', "").trim().to_string()), "{:?}", hits[0]);

    // Ranking chunks instead (several per page allowed), the shorter pair comes first.
    q.max_chunks_per_page = 0;
    let hits = f.db.search(&q).expect("search").hits;
    assert_eq!(hits[0].slug, "notes/pair", "{hits:?}");

    // A changed page is ranked by its new text only.
    put(&f.db, &page("notes/spread", "Spread", &["calm seas and a quiet quay"]));
    assert_eq!(text_search(&f.db, "lighthouse storm harbour", 5), ["notes/pair"]);
    assert_eq!(text_search(&f.db, "quay", 5), ["notes/spread"]);
}

#[test]
fn chunks_ranked_on_their_own_get_credit_for_how_well_their_page_matches() {
    let f = fixture();
    // Monday's session is about the noon ferry's timetable, over two short turns; Tuesday's
    // long session has one turn that holds every query word and is otherwise about other things.
    let mut monday = page("chat/monday", "Monday", &["ferry noon", "timetable"]);
    for (number, chunk) in monday.chunks.iter_mut().enumerate() {
        let number = u32::try_from(number + 1).expect("small");
        (chunk.start_line, chunk.end_line) = (Some(number), Some(number));
    }
    put(&f.db, &monday);
    let mut tuesday = vec!["ferry noon timetable"];
    for _ in 0..4 {
        tuesday.extend(["lunch with Ana at the market", "a long walk by the river", "books and films"]);
    }
    put(&f.db, &page("chat/tuesday", "Tuesday", &tuesday));
    let mut q = SearchQuery::new("ferry noon timetable", 2);
    q.mode = SearchMode::FullText;
    q.fusion = Fusion::Convex;
    q.max_chunks_per_page = 0;
    q.page_weight = 0.0;
    let alone = f.db.search(&q).expect("search").hits;
    assert_eq!(alone[0].slug, "chat/tuesday", "the turn with every word wins on its own: {alone:?}");
    q.page_weight = 1.0;
    let hits = f.db.search(&q).expect("search").hits;
    assert_eq!(hits.iter().map(|hit| hit.slug.as_str()).collect::<Vec<_>>(), ["chat/monday", "chat/tuesday"]);
    // Hits say which lines of the page they are.
    assert_eq!((hits[0].start_line, hits[0].end_line), (Some(1), Some(1)), "{hits:?}");
    assert_eq!(hits[1].start_line, None);
    q.page_weight = -1.0;
    let error = f.db.search(&q).expect_err("a negative weight is refused");
    assert!(error.to_string().contains("page_weight"), "{error}");
}

#[test]
fn in_an_imported_chat_the_answer_is_found_by_the_question_it_answers() {
    let f = fixture();
    let chat = "8 May 2023\n\
        Audrey: We adopted another puppy, she is so cute!\n\
        Andrew: Congrats! Where did you get Pixie?\n\
        Audrey: A breeder nearby had the dogs I wanted.\n\
        Andrew: Nice. We went hiking at the lake on Sunday.\n\
        Audrey: Sounds lovely, the dogs would enjoy that.\n";
    let page = clawdia_brain::parse::parse_text(
        "chats/may",
        chat,
        &clawdia_brain::parse::ParseOptions::new("chats"),
    )
    .expect("parse");
    put(&f.db, &page);
    let mut q = SearchQuery::new("Where did Audrey get Pixie?", 3);
    q.mode = SearchMode::FullText;
    q.max_chunks_per_page = 0;
    let hits = f.db.search(&q).expect("search").hits;
    let lines: Vec<(Option<u32>, Option<u32>)> =
        hits.iter().map(|hit| (hit.start_line, hit.end_line)).collect();
    // The answer (line 4) has neither "get" nor "Pixie", but the question next to it does; the
    // turn before the question shares that credit. Andrew's question itself comes after both:
    // it is not found by the name of who spoke next to it.
    assert!(lines[..2].contains(&(Some(4), Some(4))), "{hits:?}");
    assert!(lines[..2].contains(&(Some(1), Some(2))), "{hits:?}");
    assert_eq!(lines[2], (Some(3), Some(3)), "{hits:?}");
    assert!(hits.iter().any(|hit| hit.snippet.contains("breeder")), "{hits:?}");
}

#[test]
fn hybrid_without_vectors_degrades_to_full_text_and_says_so() {
    let f = fixture();
    put(&f.db, &page("notes/a", "A", &["hello world"]));
    let result = f.db.search(&SearchQuery::new("hello", 5)).expect("no vector");
    assert_eq!(result.hits.len(), 1);
    assert!(
        result.notice.as_deref().is_some_and(|notice| notice.contains("full-text")),
        "{:?}",
        result.notice
    );
    let result =
        f.db.search(&vector_query("hello", [1.0, 0.0, 0.0, 0.0], 5, SearchMode::Hybrid)).expect("no vectors");
    assert_eq!(result.hits.len(), 1);
    assert!(
        result.notice.as_deref().is_some_and(|notice| notice.contains("no vectors")),
        "{:?}",
        result.notice
    );
    let mut vector_only = SearchQuery::new("hello", 5);
    vector_only.mode = SearchMode::Vector;
    let result = f.db.search(&vector_only).expect("vector mode without a vector");
    assert!(result.hits.is_empty() && result.notice.is_some());
}

#[test]
fn a_query_vector_of_the_wrong_size_is_an_error_in_vector_mode_and_a_notice_in_hybrid() {
    let f = fixture();
    four_axes(&f.db);
    let mut query = SearchQuery::new("axis", 3);
    query.mode = SearchMode::Vector;
    query.vector = Some(vec![1.0, 0.0]);
    assert!(matches!(f.db.search(&query), Err(BrainError::Embedding(_))));
    query.mode = SearchMode::Hybrid;
    let result = f.db.search(&query).expect("hybrid degrades");
    assert_eq!(result.hits.len(), 3);
    assert!(result.notice.is_some());
}

#[test]
fn changing_the_model_drops_every_vector() {
    let f = fixture();
    four_axes(&f.db);
    assert_eq!(f.db.embedding_model().expect("model"), Some(("test/4d".to_string(), 4)));
    assert!(!f.db.set_embedding_model("test/4d", 4).expect("same model"));
    assert_eq!(f.db.stats().expect("stats").embedded_chunks, 4);

    assert!(f.db.set_embedding_model("test/3d", 3).expect("new model"));
    assert_eq!(f.db.stats().expect("stats").embedded_chunks, 0);
    assert_eq!(f.db.chunks_to_embed(10).expect("pending").len(), 4);
    let result = f.db.search(&vector_query("", [1.0, 0.0, 0.0, 0.0], 3, SearchMode::Vector));
    assert!(result.is_ok_and(|result| result.hits.is_empty()), "old vectors must not be searched");
}

#[test]
fn vectors_of_the_wrong_size_are_refused_and_nothing_is_stored() {
    let f = fixture();
    put(&f.db, &page("notes/a", "A", &["one", "two"]));
    assert!(
        matches!(f.db.store_vectors(&[(1, vec![1.0; 4])]), Err(BrainError::Embedding(_))),
        "no model yet"
    );
    f.db.set_embedding_model("test/4d", 4).expect("model");
    let pending = f.db.chunks_to_embed(10).expect("pending");
    let rows = vec![(pending[0].0, vec![1.0, 0.0, 0.0, 0.0]), (pending[1].0, vec![1.0, 0.0, 0.0])];
    assert!(matches!(f.db.store_vectors(&rows), Err(BrainError::Embedding(_))));
    assert!(matches!(f.db.store_vectors(&[(pending[0].0, vec![f32::NAN; 4])]), Err(BrainError::Invalid(_))));
    assert_eq!(f.db.stats().expect("stats").embedded_chunks, 0, "the whole batch was refused");
}

#[test]
fn chunks_to_embed_gives_title_context_and_text() {
    let f = fixture();
    let mut input = page("notes/a", "Setup guide", &["Run the installer."]);
    input.chunks[0].context = Some("Setup > Install".to_string());
    put(&f.db, &input);
    let pending = f.db.chunks_to_embed(10).expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].1, "Setup guide\nSetup > Install\nRun the installer.");
}

#[test]
fn another_handle_sees_new_and_removed_vectors_at_its_next_search() {
    let f = fixture();
    let reader = Db::open(&f.path).expect("second handle");
    four_axes(&f.db);
    let q = vector_query("", [1.0, 0.0, 0.0, 0.0], 1, SearchMode::Vector);
    assert_eq!(slugs(&reader, &q), ["notes/x"]);
    f.db.delete_page("notes/x").expect("delete");
    assert_eq!(slugs(&reader, &q), ["notes/y"]);
    put(&f.db, &page("notes/x2", "X2", &["axis x again"]));
    embed_all(&f.db, |_| vec![1.0, 0.01, 0.0, 0.0]);
    assert_eq!(slugs(&reader, &q), ["notes/x2"]);
}

// ---------------------------------------------------------------------------------------------
// Ranking knobs

#[test]
fn boosts_lift_curated_pages_over_bulk_imports() {
    let f = fixture();
    put(&f.db, &page("import/chat-1", "Deploy deploy", &["deploy deploy deploy the app"]));
    put(&f.db, &page("notes/deploy", "Runbook", &["how we deploy the app"]));
    let mut query = SearchQuery::new("deploy", 2);
    query.mode = SearchMode::FullText;
    assert_eq!(slugs(&f.db, &query), ["import/chat-1", "notes/deploy"]);
    query.boosts = vec![("notes/".to_string(), 1.5), ("import/".to_string(), 1.0)];
    assert_eq!(slugs(&f.db, &query), ["notes/deploy", "import/chat-1"]);
}

#[test]
fn excluded_pages_never_take_a_slot() {
    let f = fixture();
    put(&f.db, &page("private/a", "Budget budget", &["budget budget budget"]));
    put(&f.db, &page("private/b", "Budget", &["budget budget"]));
    put(&f.db, &page("notes/c", "Plan", &["the budget"]));
    put(&f.db, &page("notes/d", "Other", &["budget talk and many other words to dilute it"]));
    embed_all(&f.db, |text| {
        if text.contains("Budget") { vec![1.0, 0.0, 0.0, 0.0] } else { vec![0.7, 0.7, 0.0, 0.0] }
    });
    for mode in [SearchMode::FullText, SearchMode::Hybrid, SearchMode::Vector] {
        let mut query = vector_query("budget", [1.0, 0.0, 0.0, 0.0], 2, mode);
        assert_eq!(slugs(&f.db, &query)[..1], ["private/a".to_string()], "{mode:?} without exclude");
        query.exclude = vec!["private/".to_string()];
        let mut found = slugs(&f.db, &query);
        found.sort();
        assert_eq!(found, ["notes/c", "notes/d"], "{mode:?}");
    }
}

#[test]
fn include_restricts_results_to_the_given_prefixes() {
    let f = fixture();
    put(&f.db, &page("notes/a", "Rust", &["rust notes"]));
    put(&f.db, &page("repo/b", "Rust", &["rust code"]));
    put(&f.db, &page("import/c", "Rust", &["rust chat"]));
    embed_all(&f.db, |_| vec![1.0, 0.0, 0.0, 0.0]);
    for mode in [SearchMode::FullText, SearchMode::Hybrid, SearchMode::Vector] {
        let mut query = vector_query("rust", [1.0, 0.0, 0.0, 0.0], 5, mode);
        query.include = vec!["repo/".to_string(), "notes/".to_string()];
        let mut found = slugs(&f.db, &query);
        found.sort();
        assert_eq!(found, ["notes/a", "repo/b"], "{mode:?}");
    }
}

#[test]
fn max_chunks_per_page_caps_results_per_page() {
    let f = fixture();
    put(&f.db, &page("notes/long", "Long", &["llama facts one", "llama facts two", "llama facts three"]));
    put(&f.db, &page("notes/short", "Short", &["a llama"]));
    let mut query = SearchQuery::new("llama", 10);
    query.mode = SearchMode::FullText;
    let mut pages = slugs(&f.db, &query);
    pages.sort();
    assert_eq!(pages, ["notes/long", "notes/short"], "one chunk per page by default");
    query.max_chunks_per_page = 2;
    let result = f.db.search(&query).expect("search");
    let from_long = result.hits.iter().filter(|hit| hit.slug == "notes/long").count();
    assert_eq!((result.hits.len(), from_long), (3, 2));
    query.max_chunks_per_page = 0;
    assert_eq!(f.db.search(&query).expect("search").hits.len(), 4);
}

#[test]
fn page_capping_still_fills_k_when_one_page_floods_the_candidates() {
    let f = fixture();
    let flood: Vec<String> = (0..80).map(|n| format!("otter otter otter paragraph {n}")).collect();
    let flood: Vec<&str> = flood.iter().map(String::as_str).collect();
    put(&f.db, &page("notes/flood", "Otters", &flood));
    put(&f.db, &page("notes/other", "Misc", &["an otter appeared"]));
    let mut query = SearchQuery::new("otter", 2);
    query.mode = SearchMode::FullText;
    query.candidates = 10;
    assert_eq!(slugs(&f.db, &query), ["notes/flood", "notes/other"]);
}

#[test]
fn graph_expansion_adds_linked_pages_below_the_hits() {
    let f = fixture();
    load_team(&f.db);
    let mut query = SearchQuery::new("postmortem", 1);
    query.mode = SearchMode::FullText;
    query.expand_graph = 2;
    let result = f.db.search(&query).expect("search");
    let summary: Vec<(&str, bool)> =
        result.hits.iter().map(|hit| (hit.slug.as_str(), hit.expanded)).collect();
    assert_eq!(
        summary,
        [
            ("notes/incidents/2026-03-outage", false),
            ("notes/people/alice-smith", true),
            ("notes/people/bob", true)
        ]
    );
    assert!(result.hits[1].score < result.hits[0].score && result.hits[2].score < result.hits[1].score);
    assert!(!result.hits[1].snippet.is_empty());

    query.exclude = vec!["notes/people/bob".to_string()];
    let expanded: Vec<String> = slugs(&f.db, &query);
    assert!(!expanded.contains(&"notes/people/bob".to_string()), "expansion respects exclude: {expanded:?}");
}

#[test]
fn snippets_show_the_matching_passage() {
    let f = fixture();
    let long = format!(
        "{} The secret ingredient is cardamom. {}",
        "filler words ".repeat(60),
        "more filler ".repeat(60)
    );
    put(&f.db, &page("notes/recipe", "Recipe", &[&long]));
    let mut query = SearchQuery::new("cardamom", 1);
    query.mode = SearchMode::FullText;
    let hit = f.db.search(&query).expect("search").hits.remove(0);
    assert!(hit.snippet.contains("cardamom"), "{}", hit.snippet);
    assert!(hit.snippet.chars().count() < 300, "{}", hit.snippet);
}

#[test]
fn find_experts_ranks_people_linked_with_matching_pages() {
    let f = fixture();
    load_team(&f.db);
    let experts = f.db.find_experts("kubernetes", 5).expect("experts");
    let summary: Vec<(&str, &str)> = experts.iter().map(|e| (e.slug.as_str(), e.kind.as_str())).collect();
    assert_eq!(
        summary,
        [
            ("notes/people/alice-smith", "person"),
            ("notes/people/bob", "person"),
            ("notes/companies/acme", "company")
        ]
    );
    assert_eq!(experts[0].evidence.len(), 2);
    assert!(experts[0].evidence.contains(&"notes/projects/k8s-migration".to_string()));
    assert!(
        f.db.find_experts("sourdough", 5).expect("experts").is_empty(),
        "nothing links to the bread note"
    );
}

// ---------------------------------------------------------------------------------------------
// Facts, takes, timeline

/// Unix ms of a 2026 date (UTC midnight).
fn day(month: u32, day: u32) -> i64 {
    let days_before_month = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let since_epoch = 20_454 + days_before_month[(month - 1) as usize] + i64::from(day) - 1;
    since_epoch * 86_400_000
}

fn fact(subject: &str, predicate: &str, object: &str, from: i64) -> FactInput {
    FactInput {
        subject: subject.to_string(),
        predicate: predicate.to_string(),
        object: object.to_string(),
        valid_from: Some(from),
        valid_until: None,
        source_slug: None,
    }
}

fn object_as_of(db: &Db, subject: &str, predicate: &str, at: i64) -> Vec<String> {
    let query = FactQuery {
        subject: Some(subject.to_string()),
        predicate: Some(predicate.to_string()),
        as_of: Some(at),
        ..FactQuery::default()
    };
    db.facts(&query).expect("facts").into_iter().map(|fact| fact.object).collect()
}

#[test]
fn a_newer_fact_closes_the_older_one_and_as_of_answers_per_date() {
    let f = fixture();
    let five = f.db.add_fact(&fact("Acme", "team size", "5", day(1, 1))).expect("five");
    let eight = f.db.add_fact(&fact("acme", "Team Size", "8", day(4, 1))).expect("eight");
    assert_eq!(eight.closed, [five.id]);
    assert_eq!(object_as_of(&f.db, "Acme", "team size", day(3, 15)), ["5"]);
    assert_eq!(object_as_of(&f.db, "Acme", "team size", day(5, 1)), ["8"]);
    assert!(object_as_of(&f.db, "Acme", "team size", day(1, 1) - 1).is_empty());

    let history = f.db.facts(&FactQuery {
        subject: Some("ACME".into()),
        include_history: true,
        ..FactQuery::default()
    });
    let january =
        history.expect("history").into_iter().find(|fact| fact.id == five.id).expect("never deleted");
    assert_eq!(january.valid_until, Some(day(4, 1)));
    assert_eq!(january.superseded_by, Some(eight.id));

    let current =
        f.db.facts(&FactQuery { subject: Some("Acme".into()), ..FactQuery::default() }).expect("current");
    let objects: Vec<&str> = current.iter().map(|fact| fact.object.as_str()).collect();
    assert_eq!(objects, ["8"]);
}

#[test]
fn backfilled_history_ends_where_the_later_fact_begins() {
    let f = fixture();
    f.db.add_fact(&fact("Acme", "ceo", "Dana", day(3, 1))).expect("later");
    let earlier = f.db.add_fact(&fact("Acme", "ceo", "Sam", day(1, 1))).expect("backfill");
    assert!(earlier.closed.is_empty());
    assert_eq!(object_as_of(&f.db, "Acme", "ceo", day(2, 1)), ["Sam"]);
    assert_eq!(object_as_of(&f.db, "Acme", "ceo", day(4, 1)), ["Dana"]);
}

#[test]
fn re_adding_an_identical_fact_is_a_no_op() {
    let f = fixture();
    let first = f.db.add_fact(&fact("Acme", "hq", "Berlin", day(1, 1))).expect("first");
    let again = f.db.add_fact(&fact(" acme ", "HQ", "berlin", day(2, 1))).expect("again");
    assert!(again.unchanged);
    assert_eq!(again.id, first.id);
    assert_eq!(f.db.stats().expect("stats").facts_total, 1);
}

#[test]
fn retracting_a_fact_reopens_what_it_closed() {
    let f = fixture();
    let five = f.db.add_fact(&fact("Acme", "team size", "5", day(1, 1))).expect("five");
    let eight = f.db.add_fact(&fact("Acme", "team size", "8", day(4, 1))).expect("eight");
    assert!(f.db.retract_fact(eight.id).expect("retract"));
    assert!(!f.db.retract_fact(eight.id).expect("again"));
    assert!(matches!(f.db.retract_fact(9_999), Err(BrainError::NotFound(_))));
    assert_eq!(object_as_of(&f.db, "Acme", "team size", day(5, 1)), ["5"]);
    let current =
        f.db.facts(&FactQuery { subject: Some("Acme".into()), ..FactQuery::default() }).expect("facts");
    assert_eq!(current.iter().map(|fact| fact.id).collect::<Vec<_>>(), [five.id]);
}

#[test]
fn facts_reject_empty_parts_and_inverted_validity() {
    let f = fixture();
    assert!(matches!(f.db.add_fact(&fact("", "p", "o", 0)), Err(BrainError::Invalid(_))));
    assert!(matches!(f.db.add_fact(&fact("s", "!!", "o", 0)), Err(BrainError::Invalid(_))));
    let mut inverted = fact("s", "p", "o", day(2, 1));
    inverted.valid_until = Some(day(1, 1));
    assert!(matches!(f.db.add_fact(&inverted), Err(BrainError::Invalid(_))));
}

#[test]
fn search_as_of_attaches_facts_about_the_hits_and_the_query() {
    let f = fixture();
    put(&f.db, &page("notes/companies/acme", "Acme", &["Our biggest customer."]));
    f.db.add_fact(&fact("Acme", "team size", "5", day(1, 1))).expect("five");
    f.db.add_fact(&fact("Acme", "team size", "8", day(4, 1))).expect("eight");
    f.db.add_fact(&fact("Globex", "team size", "3", day(1, 1))).expect("other");
    let mut query = SearchQuery::new("customer", 3);
    query.as_of = Some(day(3, 15));
    let result = f.db.search(&query).expect("search");
    let objects: Vec<(&str, &str)> =
        result.facts.iter().map(|fact| (fact.subject.as_str(), fact.object.as_str())).collect();
    assert_eq!(objects, [("Acme", "5")]);
    query.text = "what was the team size at globex".to_string();
    let result = f.db.search(&query).expect("search");
    assert!(result.facts.iter().any(|fact| fact.subject == "Globex"), "{:?}", result.facts);
}

#[test]
fn superseding_a_take_deactivates_the_old_one() {
    let f = fixture();
    put(&f.db, &page("notes/people/alice", "Alice", &["engineer"]));
    let take = |claim: &str, weight: f64, supersedes: Option<i64>| TakeInput {
        claim: claim.to_string(),
        holder: "Alice".to_string(),
        weight,
        since: None,
        page_slug: Some("notes/people/alice".to_string()),
        supersedes,
    };
    let first = f.db.add_take(&take("Rust is too slow to compile", 0.6, None)).expect("first");
    let second = f.db.add_take(&take("Rust compile times are fine now", 0.8, Some(first))).expect("second");
    let active = f.db.takes(Some("alice"), true).expect("active");
    assert_eq!(active.iter().map(|t| t.id).collect::<Vec<_>>(), [second]);
    let all = f.db.takes(Some("Alice"), false).expect("all");
    let old = all.iter().find(|t| t.id == first).expect("old kept");
    assert!(!old.active && old.until.is_some());
    assert_eq!(old.superseded_by, Some(second));
    assert!(matches!(f.db.add_take(&take("again", 0.5, Some(first))), Err(BrainError::Invalid(_))));
    assert!(matches!(f.db.add_take(&take("bad", 1.5, None)), Err(BrainError::Invalid(_))));
    let view = f.db.get_page("notes/people/alice").expect("get").expect("page");
    assert_eq!(view.takes.len(), 2);
}

#[test]
fn timeline_lists_a_range_oldest_first() {
    let f = fixture();
    put(&f.db, &page("notes/acme", "Acme", &["customer"]));
    for (at, text, slug) in
        [(300, "renewed", Some("notes/acme")), (100, "signed", Some("notes/acme")), (200, "holiday", None)]
    {
        let entry =
            TimelineInput { page_slug: slug.map(String::from), at, text: text.to_string(), source: None };
        f.db.add_timeline(&entry).expect("add");
    }
    let texts = |query: TimelineQuery| -> Vec<String> {
        f.db.timeline(&query).expect("timeline").into_iter().map(|entry| entry.text).collect()
    };
    assert_eq!(
        texts(TimelineQuery { from: Some(150), to: Some(300), ..TimelineQuery::default() }),
        ["holiday", "renewed"]
    );
    assert_eq!(
        texts(TimelineQuery { page_slug: Some("notes/acme".into()), ..TimelineQuery::default() }),
        ["signed", "renewed"]
    );
    assert_eq!(texts(TimelineQuery { limit: 1, ..TimelineQuery::default() }), ["signed"]);
    let missing =
        TimelineInput { page_slug: Some("notes/nope".into()), at: 1, text: "x".into(), source: None };
    assert!(matches!(f.db.add_timeline(&missing), Err(BrainError::NotFound(_))));
    assert_eq!(f.db.get_page("notes/acme").expect("get").expect("page").timeline.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Whole database

#[test]
fn stats_count_what_is_stored() {
    let f = fixture();
    load_team(&f.db);
    f.db.delete_page("notes/recipes/bread").expect("delete");
    put(&f.db, &page("repo/readme", "Readme", &["hello"]));
    embed_all(&f.db, |_| vec![0.0, 0.0, 1.0, 0.0]);
    f.db.add_fact(&fact("Acme", "team size", "5", day(1, 1))).expect("fact");
    f.db.add_fact(&fact("Acme", "team size", "8", day(4, 1))).expect("fact");
    let stats = f.db.stats().expect("stats");
    assert_eq!((stats.pages, stats.deleted_pages), (7, 1));
    assert_eq!(stats.chunks, 9);
    assert_eq!(stats.embedded_chunks, 9);
    assert_eq!(stats.links, 5);
    assert_eq!(stats.facts_current, 1);
    assert!(stats.facts_total >= 2);
    let sources: Vec<(&str, u64)> = stats.sources.iter().map(|s| (s.source.as_str(), s.pages)).collect();
    assert_eq!(sources, [("notes", 6), ("repo", 1)]);
    assert_eq!((stats.embedding_model.as_deref(), stats.embedding_dims), (Some("test/4d"), Some(4)));
    assert!(stats.db_bytes > 0);
    f.db.optimize().expect("optimize");
    assert_eq!(text_search(&f.db, "postmortem", 1), ["notes/incidents/2026-03-outage"]);
}

#[test]
fn a_writer_and_a_reader_on_two_handles_do_not_get_in_each_others_way() {
    let f = fixture();
    let writer = Arc::new(Db::open(&f.path).expect("writer handle"));
    let reader = Arc::new(Db::open(&f.path).expect("reader handle"));
    writer.set_embedding_model("test/4d", 4).expect("model");
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let write_thread = {
        let (writer, done) = (writer.clone(), done.clone());
        std::thread::spawn(move || -> Result<(), BrainError> {
            for n in 0..200 {
                let slug = format!("notes/page-{n}");
                writer.put_page(&page(
                    &slug,
                    &format!("Page {n}"),
                    &[&format!("beaver dam number {n}"), "more text"],
                ))?;
                if n % 20 == 0 {
                    let pending = writer.chunks_to_embed(100)?;
                    let vectors: Vec<(i64, Vec<f32>)> =
                        pending.into_iter().map(|(id, _)| (id, vec![1.0, 0.0, 0.0, 0.0])).collect();
                    writer.store_vectors(&vectors)?;
                }
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(())
        })
    };
    let read_thread = {
        let (reader, done) = (reader.clone(), done.clone());
        std::thread::spawn(move || -> Result<usize, BrainError> {
            let mut searches = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                reader.search(&vector_query("beaver dam", [1.0, 0.0, 0.0, 0.0], 5, SearchMode::Hybrid))?;
                reader.get_page("notes/page-0")?;
                searches += 1;
                if finished {
                    return Ok(searches);
                }
            }
        })
    };
    write_thread.join().expect("writer thread").expect("writes succeed");
    let searches = read_thread.join().expect("reader thread").expect("reads succeed");
    assert!(searches >= 1);
    assert_eq!(reader.stats().expect("stats").pages, 200);
    assert_eq!(text_search(&reader, "number 199", 1), ["notes/page-199"]);
}

#[test]
fn a_second_open_of_a_migrated_file_works_and_keeps_data() {
    let f = fixture();
    put(&f.db, &page("notes/a", "A", &["persisted words"]));
    drop(f.db);
    let db = Db::open(&f.path).expect("reopen");
    assert_eq!(text_search(&db, "persisted", 1), ["notes/a"]);
}

/// Prints put and query latencies on a synthetic corpus (never asserts timing). Chunks are 60
/// words drawn from a 20,000-word Zipf-like vocabulary (a few words in most chunks, most words
/// rare, as in real text); queries are 4 such words plus a random vector. Size with
/// `BRAIN_BENCH_CHUNKS` (default 2,000; the target is 50,000 × 384 in a release build:
/// `BRAIN_BENCH_CHUNKS=50000 cargo test --release -p clawdia-brain --test it db::bench -- --nocapture`).
#[test]
fn bench_prints_latencies() {
    let chunks: usize =
        std::env::var("BRAIN_BENCH_CHUNKS").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let dims = 384;
    let f = fixture();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    // Log-uniform rank: P(rank r) ∝ 1/r over 20,000 words.
    let word = move |next: &mut dyn FnMut() -> u64| {
        let u = (next() % 1_000_000) as f64 / 1_000_000.0;
        format!("w{}", (20_000f64.powf(u)) as u64)
    };
    let started = Instant::now();
    let per_page = 5;
    for p in 0..chunks / per_page {
        let texts: Vec<String> =
            (0..per_page).map(|_| (0..60).map(|_| word(&mut next)).collect::<Vec<_>>().join(" ")).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        put(&f.db, &page(&format!("notes/p{p}"), &format!("Page {p}"), &texts));
    }
    let put_elapsed = started.elapsed();
    f.db.set_embedding_model("bench/384", dims).expect("model");
    let random_vector = |next: &mut dyn FnMut() -> u64| -> Vec<f32> {
        (0..dims).map(|_| (next() % 2000) as f32 / 1000.0 - 1.0).collect()
    };
    let started = Instant::now();
    loop {
        let pending = f.db.chunks_to_embed(500).expect("pending");
        if pending.is_empty() {
            break;
        }
        let vectors: Vec<(i64, Vec<f32>)> =
            pending.into_iter().map(|(id, _)| (id, random_vector(&mut next))).collect();
        f.db.store_vectors(&vectors).expect("store");
    }
    let store_elapsed = started.elapsed();
    let queries: Vec<SearchQuery> = (0..31)
        .map(|_| {
            let text: Vec<String> = (0..4).map(|_| word(&mut next)).collect();
            let mut query = SearchQuery::new(text.join(" "), 10);
            query.vector = Some(random_vector(&mut next));
            query
        })
        .collect();
    let started = Instant::now();
    f.db.search(&queries[0]).expect("first search");
    let first = started.elapsed();
    let measure = |mode: SearchMode| {
        let mut times: Vec<f64> = queries
            .iter()
            .map(|query| {
                let mut query = query.clone();
                query.mode = mode;
                let started = Instant::now();
                f.db.search(&query).expect("search");
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        (times[times.len() / 2], times[times.len() * 9 / 10], times[0])
    };
    let (hybrid_p50, hybrid_p90, hybrid_min) = measure(SearchMode::Hybrid);
    let (vector_p50, _, vector_min) = measure(SearchMode::Vector);
    let (text_p50, text_p90, text_min) = measure(SearchMode::FullText);
    // For profiling: `BRAIN_BENCH_LOOP=n` repeats the vector-mode queries n times.
    let repeat: usize = std::env::var("BRAIN_BENCH_LOOP").ok().and_then(|n| n.parse().ok()).unwrap_or(0);
    for _ in 0..repeat {
        measure(SearchMode::Vector);
    }
    // The worst case for full text: every query word in most chunks.
    let mut common = queries[0].clone();
    common.text = "w1 w2 w3".to_string();
    let started = Instant::now();
    f.db.search(&common).expect("common words");
    let common_ms = started.elapsed().as_secs_f64() * 1000.0;
    println!(
        "brain bench: {chunks} chunks x {dims} dims: put {:.1} s ({:.0} chunks/s), store vectors {:.1} s, \
         first search (index load) {:.0} ms; p50 hybrid {hybrid_p50:.2} ms (p90 {hybrid_p90:.2}, min {hybrid_min:.2}), \
         vector {vector_p50:.2} ms (min {vector_min:.2}), full text {text_p50:.2} ms (p90 {text_p90:.2}, min {text_min:.2}); \
         hybrid with only very common words {common_ms:.1} ms",
        put_elapsed.as_secs_f64(),
        chunks as f64 / put_elapsed.as_secs_f64(),
        store_elapsed.as_secs_f64(),
        first.as_secs_f64() * 1000.0,
    );
}
