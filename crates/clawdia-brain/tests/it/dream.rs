//! The dream cycle's bookkeeping in a real `brain.db`: watermarks only move forward, the dream's
//! own sessions are marked, one run at a time (a dead run is abandoned after the stale limit),
//! and the writes a distiller repeats (takes, timeline entries, facts) are not duplicated.

use clawdia_brain::db::{Db, DreamTotals, FactInput, FactQuery, TakeInput, TimelineInput, TimelineQuery};
use clawdia_brain::{ChunkInput, PageInput};

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::open(&dir.path().join("brain.db")).expect("open");
    (dir, db)
}

#[test]
fn dream_watermarks_only_move_forward_and_mark_own_sessions() {
    let (_dir, db) = open();
    assert!(db.dream_watermarks("main").expect("read").is_empty());
    db.advance_dream_watermark("main", "s-1", 4, 1).expect("advance");
    db.advance_dream_watermark("main", "s-1", 2, 2).expect("a stale writer");
    db.advance_dream_watermark("other", "s-9", 7, 2).expect("another agent");
    db.mark_dream_session("main", "dream-1-1", 3).expect("mark");
    let marks = db.dream_watermarks("main").expect("read");
    assert_eq!(marks.len(), 2);
    assert_eq!((marks["s-1"].seq, marks["s-1"].own), (4, false));
    assert!(marks["dream-1-1"].own);
}

#[test]
fn dream_runs_are_exclusive_recorded_and_abandoned_when_stale() {
    let (_dir, db) = open();
    let first = db.start_dream_run("main", false, 1_000, 10_000).expect("start").expect("free");
    let busy = db.start_dream_run("main", true, 2_000, 10_000).expect("start").expect_err("busy");
    assert_eq!(busy.id, first);
    let totals = DreamTotals {
        status: "ok".into(),
        scored: 3,
        worthy: 2,
        distilled: 2,
        failed: 0,
        tokens: 1234,
        cost_usd: 0.0125,
        report: "two distilled".into(),
    };
    db.finish_dream_run(first, &totals, 3_000).expect("finish");
    let second = db.start_dream_run("main", true, 4_000, 10_000).expect("start").expect("free again");
    // Never finished (the process died): after the stale limit the next run may start.
    let third =
        db.start_dream_run("main", false, 20_000, 10_000).expect("start").expect("stale one abandoned");
    let runs = db.dream_runs(10).expect("list");
    assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [third, second, first]);
    assert_eq!(runs[1].totals.status, "abandoned");
    assert!(runs[1].dry_run);
    let done = &runs[2];
    assert_eq!((&done.totals, done.ended_at), (&totals, Some(3_000)));
}

#[test]
fn dream_repeated_writes_are_not_duplicated() {
    let (_dir, db) = open();
    let page = PageInput {
        slug: "people/alice".into(),
        title: "Alice".into(),
        kind: "person".into(),
        source: "agent:main".into(),
        body: "Alice leads the platform team.".into(),
        frontmatter: serde_json::json!({}),
        content_hash: "h1".into(),
        chunks: vec![ChunkInput {
            text: "Alice leads the platform team.".into(),
            context: None,
            start_line: None,
            end_line: None,
        }],
        links: Vec::new(),
    };
    db.put_page(&page).expect("put");
    assert!(!db.put_page(&page).expect("put again").changed);
    let take = TakeInput {
        claim: "Rust is worth it".into(),
        holder: "owner".into(),
        weight: 0.8,
        since: None,
        page_slug: Some("people/alice".into()),
        supersedes: None,
    };
    let first = db.add_take(&take).expect("take");
    let again = TakeInput { claim: " rust is WORTH it ".into(), holder: "Owner".into(), ..take.clone() };
    assert_eq!(db.add_take(&again).expect("same take"), first);
    assert_eq!(db.takes(None, false).expect("takes").len(), 1);
    let entry = TimelineInput {
        page_slug: Some("people/alice".into()),
        at: 1_700_000_000_000,
        text: "joined Acme".into(),
        source: None,
    };
    let id = db.add_timeline(&entry).expect("entry");
    assert_eq!(db.add_timeline(&entry).expect("same entry"), id);
    assert_eq!(db.timeline(&TimelineQuery::default()).expect("timeline").len(), 1);
    let fact = FactInput {
        subject: "Alice".into(),
        predicate: "team_size".into(),
        object: "5".into(),
        valid_from: Some(1_700_000_000_000),
        valid_until: None,
        source_slug: None,
    };
    db.add_fact(&fact).expect("fact");
    assert!(db.add_fact(&fact).expect("same fact").unchanged);
    assert_eq!(
        db.facts(&FactQuery { include_history: true, ..FactQuery::default() }).expect("facts").len(),
        1
    );
}
