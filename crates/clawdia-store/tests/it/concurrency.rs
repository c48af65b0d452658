//! Two `Store`s on one state dir, as the gateway and the CLI are: a writer appending while a
//! reader lists and loads, and several stores opening (and migrating) a fresh dir at once.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};

use clawdia_core::{AuditEvent, AuditSink, Message, ModelRef, SessionStore, Severity, Usage};
use clawdia_store::Store;

#[test]
fn a_reader_store_sees_consistent_snapshots_while_a_writer_store_appends() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Store::open(dir.path()).unwrap();
    let reader = Store::open(dir.path()).unwrap();
    writer.open("main", "s-busy", "b").unwrap();
    let done = AtomicBool::new(false);
    let model = ModelRef::parse("anthropic/claude-haiku-4-5").unwrap();

    let reads = std::thread::scope(|scope| {
        scope.spawn(|| {
            for n in 0..500 {
                writer.append("s-busy", &[Message::user(format!("message {n}"))]).unwrap();
                if n % 50 == 0 {
                    writer.record_usage("main", "s-busy", &model, &Usage::default(), 0.01).unwrap();
                    writer.record(AuditEvent::new("provider_fallback", Severity::INFO, "n"));
                }
            }
            done.store(true, Ordering::Release);
        });
        let reader_thread = scope.spawn(|| {
            let mut reads = 0;
            let mut last_seen = 0;
            loop {
                let finished = done.load(Ordering::Acquire);
                let listed = reader.list(Some("main"), 10).unwrap();
                assert_eq!(listed.len(), 1);
                let session = reader.open("main", "s-busy", "b").unwrap();
                assert_eq!(session.meta.message_count as usize, session.messages.len());
                assert!(session.messages.len() >= last_seen, "the transcript never shrinks");
                last_seen = session.messages.len();
                if let Some(Message::User { text }) = session.messages.last() {
                    assert_eq!(text, &format!("message {}", last_seen - 1));
                }
                let rows = reader.messages("s-busy").unwrap();
                assert!(rows.len() >= last_seen);
                reader.usage_since("main", 0).unwrap();
                reader.recent_audit(Severity(0), 5).unwrap();
                reads += 1;
                if finished {
                    assert_eq!(last_seen, 500);
                    return reads;
                }
            }
        });
        reader_thread.join().unwrap()
    });
    assert!(reads >= 1);
    assert_eq!(reader.messages("s-busy").unwrap().len(), 500);
    assert_eq!(reader.recent_audit(Severity(0), 100).unwrap().len(), 10);
    assert!(reader.integrity_check().unwrap().is_empty());
}

#[test]
fn two_writer_stores_interleave_without_losing_messages() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    let second = Store::open(dir.path()).unwrap();
    first.open("main", "s-shared", "b").unwrap();
    std::thread::scope(|scope| {
        for (name, store) in [("first", &first), ("second", &second)] {
            scope.spawn(move || {
                for n in 0..200 {
                    store.append("s-shared", &[Message::user(format!("{name} {n}"))]).unwrap();
                }
            });
        }
    });
    let rows = second.messages("s-shared").unwrap();
    assert_eq!(rows.len(), 400);
    assert_eq!(rows.iter().map(|row| row.seq).collect::<Vec<_>>(), (1..=400).collect::<Vec<_>>());
    assert_eq!(first.session("s-shared").unwrap().unwrap().message_count, 400);
}

#[test]
fn stores_opening_a_fresh_dir_at_once_all_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let barrier = Barrier::new(4);
    std::thread::scope(|scope| {
        for n in 0..4 {
            let (barrier, path) = (&barrier, dir.path());
            scope.spawn(move || {
                barrier.wait();
                let store = Store::open(path).unwrap();
                store.open("main", &format!("s-{n}"), "b").unwrap();
            });
        }
    });
    assert_eq!(Store::open(dir.path()).unwrap().list(None, 10).unwrap().len(), 4);
}
