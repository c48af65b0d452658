//! Unit tests of the database's pure helpers (query building, link keys, quantization) and of
//! what needs an injected clock (belief time of facts).

use super::facts::FactInput;
use super::links::link_keys;
use super::search::fts_query;
use super::vectors::{cosine, decode, encode, quantize_into};
use super::{Db, FactQuery};

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("brain.db")).expect("open");
    (dir, db)
}

#[test]
fn fts_queries_quote_every_word_and_drop_stopwords() {
    let check =
        |text: &str, expected: Option<&str>| assert_eq!(fts_query(text).as_deref(), expected, "{text:?}");
    check("what is the team size", Some("\"team\" OR \"size\""));
    check("the", Some("\"the\""));
    check("\"AND OR NEAR(", Some("\"near\""));
    check("title:secret* -x", Some("\"title\" OR \"secret\" OR \"x\""));
    check("Café Café café", Some("\"café\""));
    check("*", None);
    check("", None);
}

#[test]
fn link_keys_cover_titles_paths_and_anchors() {
    let keys = link_keys("People/Alice Smith.md#Contact");
    assert_eq!(
        (keys.key.as_str(), keys.path.as_str(), keys.stem.as_str()),
        ("people-alice-smith", "people/alice-smith", "alice-smith")
    );
    let keys = link_keys("Acme Corp.");
    assert_eq!(
        (keys.key.as_str(), keys.path.as_str(), keys.stem.as_str()),
        ("acme-corp", "acme-corp", "acme-corp")
    );
}

#[test]
fn vectors_round_trip_and_quantize_close_to_cosine() {
    let vector = vec![0.25, -1.5, 3.0, 0.0];
    assert_eq!(decode(&encode(&vector)), Some(vector.clone()));
    assert_eq!(decode(&[1, 2, 3]), None);
    let other = vec![1.0, 0.5, 2.0, -0.25];
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let scale_a = quantize_into(&vector, &mut a);
    let scale_b = quantize_into(&other, &mut b);
    let approx: f32 =
        a.iter().zip(&b).map(|(x, y)| f32::from(*x) * f32::from(*y)).sum::<f32>() * scale_a * scale_b;
    assert!((approx - cosine(&vector, &other)).abs() < 0.02, "{approx} vs {}", cosine(&vector, &other));
    let mut zero = Vec::new();
    assert_eq!(quantize_into(&[0.0; 4], &mut zero), 0.0);
    assert_eq!(zero, [0; 4]);
}

#[test]
fn sqlite_vec_is_registered_on_brain_connections() {
    let (_dir, db) = open();
    let version: String = db
        .read("test", |tx| {
            tx.query_row("SELECT vec_version()", [], |row| row.get(0)).map_err(super::error::db_error("test"))
        })
        .expect("vec_version");
    assert!(version.starts_with('v'), "{version}");
}

fn fact(object: &str, from: i64) -> FactInput {
    FactInput {
        subject: "Acme".into(),
        predicate: "team size".into(),
        object: object.into(),
        valid_from: Some(from),
        valid_until: None,
        source_slug: None,
    }
}

#[test]
fn known_at_answers_what_the_brain_believed_then() {
    let (_dir, db) = open();
    // Validity: 5 from t=1000; belief: recorded at t=10, then 8 from t=2000 recorded at t=20.
    db.add_fact_at(&fact("5", 1000), 10).expect("five");
    db.add_fact_at(&fact("8", 2000), 20).expect("eight");
    let objects = |as_of: i64, known_at: Option<i64>| -> Vec<String> {
        let query =
            FactQuery { subject: Some("acme".into()), as_of: Some(as_of), known_at, ..FactQuery::default() };
        db.facts(&query).expect("facts").into_iter().map(|fact| fact.object).collect()
    };
    assert_eq!(objects(3000, Some(15)), ["5"], "at t=15 the brain only knew 5, open-ended");
    assert_eq!(objects(3000, Some(25)), ["8"]);
    assert_eq!(objects(3000, None), ["8"]);
    assert_eq!(objects(1500, Some(25)), ["5"]);
    assert!(objects(3000, Some(5)).is_empty(), "nothing was known before t=10");

    let eight = db.facts(&FactQuery { as_of: Some(3000), ..FactQuery::default() }).expect("facts");
    db.retract_fact_at(eight[0].id, 30).expect("retract");
    assert_eq!(objects(3000, Some(25)), ["8"], "retraction does not rewrite the past");
    assert_eq!(objects(3000, Some(35)), ["5"], "after retraction 5 is open-ended again");
}

#[test]
fn a_same_start_conflict_is_a_correction() {
    let (_dir, db) = open();
    let wrong = db.add_fact_at(&fact("50", 1000), 10).expect("typo");
    let right = db.add_fact_at(&fact("5", 1000), 20).expect("fix");
    assert_eq!(right.closed, [wrong.id]);
    let query = FactQuery { subject: Some("Acme".into()), as_of: Some(1500), ..FactQuery::default() };
    let objects: Vec<String> = db.facts(&query).expect("facts").into_iter().map(|fact| fact.object).collect();
    assert_eq!(objects, ["5"]);
}

#[test]
fn db_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Db>();
}

#[test]
fn a_newer_schema_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("brain.db");
    drop(Db::open(&path).expect("create"));
    let connection = rusqlite::Connection::open(&path).expect("raw open");
    connection.pragma_update(None, "user_version", 999).expect("bump version");
    drop(connection);
    let error = Db::open(&path).expect_err("newer schema");
    assert!(error.to_string().contains("newer than this build"), "{error}");
}

#[test]
fn opening_a_version_2_brain_indexes_its_existing_pages_for_page_level_search() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("brain.db");
    {
        // A brain written by a build that knew the first two migrations only.
        let connection = rusqlite::Connection::open(&path).expect("open");
        for sql in &super::schema::MIGRATIONS[..2] {
            connection.execute_batch(sql).expect("old migration");
        }
        connection
            .execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO pages (id, slug, key, stem, title, kind, source, body, frontmatter, content_hash,
                                    created_at, updated_at)
                 VALUES (1, 'notes/harbour', 'harbour', 'harbour', 'Harbour', 'note', 'notes',
                         'lighthouse cape\n\nstorm damage', '{}', 'h', 0, 0),
                        (2, 'notes/gone', 'gone', 'gone', 'Gone', 'note', 'notes', 'storm', '{}', 'g', 0, 0);
                 UPDATE pages SET deleted_at = 5 WHERE id = 2;
                 INSERT INTO chunks (id, page_id, ord, text, context) VALUES
                     (1, 1, 0, 'lighthouse cape', 'Coast'), (2, 1, 1, 'storm damage', 'Coast');
                 INSERT INTO chunks_fts (rowid, title, context, text) VALUES
                     (1, 'Harbour', 'Coast', 'lighthouse cape'), (2, 'Harbour', 'Coast', 'storm damage');",
            )
            .expect("old rows");
    }
    let db = Db::open(&path).expect("migrate");
    let result = db.search(&super::SearchQuery::new("lighthouse storm coast", 5)).expect("search");
    assert_eq!(result.hits.len(), 1, "{:?}", result.hits);
    assert_eq!((result.hits[0].slug.as_str(), result.hits[0].fts_rank), ("notes/harbour", Some(1)));
    assert!([1, 2].contains(&result.hits[0].chunk_id), "{:?}", result.hits[0]);
    // The migrated row is the one a write would make: replacing the page replaces it.
    let input = crate::PageInput {
        slug: "notes/harbour".into(),
        title: "Harbour".into(),
        kind: "note".into(),
        source: "notes".into(),
        body: "calm quay".into(),
        frontmatter: serde_json::json!({}),
        content_hash: "h2".into(),
        chunks: vec![crate::ChunkInput {
            text: "calm quay".into(),
            context: None,
            start_line: None,
            end_line: None,
        }],
        links: Vec::new(),
    };
    db.put_page(&input).expect("put");
    assert!(db.search(&super::SearchQuery::new("lighthouse", 5)).expect("search").hits.is_empty());
    assert_eq!(db.search(&super::SearchQuery::new("quay", 5)).expect("search").hits.len(), 1);
}

#[test]
fn opening_a_version_3_brain_adds_sources_and_keeps_its_pages() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("brain.db");
    {
        // A brain written by a build that knew the first three migrations only.
        let connection = rusqlite::Connection::open(&path).expect("open");
        for sql in &super::schema::MIGRATIONS[..3] {
            connection.execute_batch(sql).expect("old migration");
        }
        connection
            .execute_batch(
                "PRAGMA user_version = 3;
                 INSERT INTO pages (id, slug, key, stem, title, kind, source, body, frontmatter, content_hash,
                                    created_at, updated_at)
                 VALUES (1, 'notes/harbour', 'harbour', 'harbour', 'Harbour', 'note', 'notes', 'quay', '{}', 'h', 0, 0);",
            )
            .expect("old rows");
    }
    let db = Db::open(&path).expect("migrate");
    let stats = db.stats().expect("stats");
    let sources: Vec<(String, u64, Option<String>)> =
        stats.sources.into_iter().map(|s| (s.source, s.pages, s.root)).collect();
    assert_eq!(sources, [("notes".to_string(), 1, None)], "an unrecorded source, its page kept");
    assert_eq!(db.record_source("notes", "/home/me/notes", 1).expect("record"), None);
    assert_eq!(db.source_for_root("/home/me/notes").expect("lookup").as_deref(), Some("notes"));
}
