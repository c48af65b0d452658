//! Sessions: round trips, creation, ownership, repair in both places, the usage ledger, listing
//! order, export, and schema/permission details of a fresh state dir.

use clawdia_core::{Message, ModelRef, SessionStore, StoreError, ToolCall, Usage};
use clawdia_store::Store;

use crate::{calls, fresh, result, stored, synthetic};

fn now_ms() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis())
        .unwrap()
}

fn every_kind() -> Vec<Message> {
    vec![
        Message::user("héllo \"world\"\nsecond line 🦀"),
        Message::user(""),
        Message::assistant("plain answer"),
        Message::Assistant {
            text: "let me look".into(),
            tool_calls: vec![
                ToolCall { id: "toolu_1".into(), name: "read".into(), arguments: r#"{"path":"a"}"#.into() },
                ToolCall { id: "call_2".into(), name: "exec".into(), arguments: "{not json".into() },
            ],
        },
        Message::ToolResult {
            call_id: "toolu_1".into(),
            name: "read".into(),
            content: "contents\u{0}with nul".into(),
            is_error: false,
        },
        Message::ToolResult {
            call_id: "call_2".into(),
            name: "exec".into(),
            content: "exit 1".into(),
            is_error: true,
        },
        Message::Assistant {
            text: String::new(),
            tool_calls: vec![ToolCall { id: "t3".into(), name: "x".into(), arguments: String::new() }],
        },
        Message::ToolResult {
            call_id: "t3".into(),
            name: "x".into(),
            content: String::new(),
            is_error: false,
        },
        Message::assistant(""),
    ]
}

#[test]
fn every_message_kind_round_trips_through_a_reopened_store() {
    let (dir, store) = fresh();
    let before = now_ms();
    let created = store.open("main", "s-rt", "boundary-1").unwrap();
    assert_eq!(created.messages, Vec::new());
    assert_eq!((created.meta.message_count, created.repaired), (0, 0));
    assert_eq!(created.meta.boundary, "boundary-1");
    store.append("s-rt", &every_kind()[..3]).unwrap();
    store.append("s-rt", &every_kind()[3..]).unwrap();
    let after = now_ms();
    drop(store);

    let store = Store::open(dir.path()).unwrap();
    let loaded = store.open("main", "s-rt", "ignored").unwrap();
    assert_eq!(loaded.messages, every_kind());
    assert_eq!(loaded.repaired, 0);
    assert_eq!(loaded.meta.message_count, 9);
    assert_eq!(loaded.meta.boundary, "boundary-1", "an existing session keeps its boundary");
    assert_eq!(loaded.meta.agent, "main");
    assert!(before <= loaded.meta.created_at && loaded.meta.updated_at <= after);

    let rows = store.messages("s-rt").unwrap();
    assert_eq!(rows.iter().map(|row| row.seq).collect::<Vec<_>>(), (1..=9).collect::<Vec<_>>());
    assert!(rows.iter().all(|row| before <= row.at && row.at <= after));
    assert_eq!(store.session("s-rt").unwrap(), Some(loaded.meta));
}

#[test]
fn a_session_belongs_to_one_agent() {
    let (_dir, store) = fresh();
    store.open("main", "s-1", "b").unwrap();
    assert_eq!(
        store.open("other", "s-1", "b").unwrap_err(),
        StoreError::WrongAgent { id: "s-1".into(), agent: "main".into() }
    );
    assert!(store.open("main", "s-1", "b").is_ok());
}

#[test]
fn unknown_sessions_are_not_found() {
    let (_dir, store) = fresh();
    let not_found = StoreError::NotFound("nope".into());
    assert_eq!(store.append("nope", &[Message::user("x")]).unwrap_err(), not_found);
    assert_eq!(store.append("nope", &[]).unwrap_err(), not_found);
    assert_eq!(store.messages("nope").unwrap_err(), not_found);
    assert_eq!(store.export_jsonl("nope", &mut Vec::new()).unwrap_err(), not_found);
    assert_eq!(store.session("nope").unwrap(), None);
    assert_eq!(store.list(None, 10).unwrap(), Vec::new());
}

#[test]
fn open_repairs_orphaned_calls_at_the_tail() {
    let (dir, store) = fresh();
    store.open("main", "s-1", "b").unwrap();
    store.append("s-1", &[Message::user("go"), calls(&["a", "b"]), result("a")]).unwrap();

    let opened = store.open("main", "s-1", "b").unwrap();
    let expected = vec![Message::user("go"), calls(&["a", "b"]), result("a"), synthetic("b")];
    assert_eq!(opened.repaired, 1);
    assert_eq!(opened.messages, expected);
    assert_eq!(opened.meta.message_count, 4);
    assert_eq!(stored(&store, "s-1"), expected, "the repair is persisted");

    // Another store (another process) sees a sound transcript and appends after it.
    let other = Store::open(dir.path()).unwrap();
    let again = other.open("main", "s-1", "b").unwrap();
    assert_eq!((again.repaired, again.messages.len()), (0, 4));
    other.append("s-1", &[Message::assistant("sorry, try again?")]).unwrap();
    let rows = store.messages("s-1").unwrap();
    assert_eq!(rows.iter().map(|row| row.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    assert!(rows.windows(2).all(|pair| pair[0].at <= pair[1].at));
    assert!(store.integrity_check().unwrap().is_empty());
}

#[test]
fn open_repairs_orphaned_calls_in_the_middle_by_renumbering() {
    let (_dir, store) = fresh();
    store.open("main", "s-1", "b").unwrap();
    store
        .append(
            "s-1",
            &[
                Message::user("one"),
                calls(&["a", "b"]),
                result("b"),
                Message::user("two"),
                calls(&["c"]),
                result("c"),
                Message::assistant("done"),
                Message::user("three"),
                calls(&["d"]),
            ],
        )
        .unwrap();
    let problems = store.integrity_check().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("tool call `a` (tool_a) has no result"), "{problems:?}");

    let opened = store.open("main", "s-1", "b").unwrap();
    let expected = vec![
        Message::user("one"),
        calls(&["a", "b"]),
        result("b"),
        synthetic("a"),
        Message::user("two"),
        calls(&["c"]),
        result("c"),
        Message::assistant("done"),
        Message::user("three"),
        calls(&["d"]),
        synthetic("d"),
    ];
    assert_eq!(opened.repaired, 2);
    assert_eq!(opened.messages, expected);
    assert_eq!(opened.meta.message_count, 11);
    let rows = store.messages("s-1").unwrap();
    assert_eq!(rows.iter().map(|row| row.message.clone()).collect::<Vec<_>>(), expected);
    assert_eq!(rows.iter().map(|row| row.seq).collect::<Vec<_>>(), (1..=11).collect::<Vec<_>>());
    assert!(rows.windows(2).all(|pair| pair[0].at <= pair[1].at));
    assert_eq!(store.integrity_check().unwrap(), Vec::<String>::new());

    store.append("s-1", &[Message::user("four")]).unwrap();
    assert_eq!(store.messages("s-1").unwrap().last().map(|row| row.seq), Some(12));
    assert_eq!(store.open("main", "s-1", "b").unwrap().repaired, 0);
}

#[test]
fn usage_since_sums_one_agents_spend_from_a_time() {
    let (_dir, store) = fresh();
    let model = ModelRef::parse("anthropic/claude-sonnet-4-5").unwrap();
    let usage = |input, output, cache_read, cache_write| Usage {
        input_tokens: input,
        output_tokens: output,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
    };
    let start = now_ms();
    assert_eq!(store.usage_since("main", 0).unwrap(), (0, 0.0));
    store.record_usage("main", "s-1", &model, &usage(1000, 200, 0, 0), 0.25).unwrap();
    store.record_usage("main", "s-2", &model, &usage(10, 20, 30, 40), 0.5).unwrap();
    store.record_usage("other", "s-3", &model, &usage(5000, 5000, 0, 0), 9.0).unwrap();
    store.record_usage("main", "s-1", &model, &usage(u64::MAX, 1, 0, 0), f64::NAN).unwrap();

    let (tokens, usd) = store.usage_since("other", start).unwrap();
    assert_eq!((tokens, usd), (10_000, 9.0));
    let (tokens, usd) = store.usage_since("main", start).unwrap();
    assert!(tokens > 1_300, "saturating, never wrapping: {tokens}");
    assert!((usd - 0.75).abs() < 1e-9, "{usd}");
    assert_eq!(store.usage_since("main", now_ms() + 60_000).unwrap(), (0, 0.0));
    assert_eq!(store.usage_since("nobody", 0).unwrap(), (0, 0.0));
}

#[test]
fn usage_since_counts_every_token_kind() {
    let (_dir, store) = fresh();
    let model = ModelRef::parse("zai/glm-4.6").unwrap();
    let usage =
        Usage { input_tokens: 1, output_tokens: 20, cache_read_tokens: 300, cache_write_tokens: 4000 };
    store.record_usage("main", "s-1", &model, &usage, 0.125).unwrap();
    store.record_usage("main", "s-1", &model, &usage, 0.125).unwrap();
    assert_eq!(store.usage_since("main", 0).unwrap(), (8642, 0.25));
}

#[test]
fn list_shows_most_recently_updated_first() {
    let (_dir, store) = fresh();
    for id in ["s-1", "s-2", "s-3"] {
        store.open("main", id, "b").unwrap();
    }
    store.open("other", "s-4", "b").unwrap();
    let ids = |agent: Option<&str>, limit| -> Vec<String> {
        store.list(agent, limit).unwrap().into_iter().map(|meta| meta.id).collect()
    };
    assert_eq!(ids(None, 10), ["s-4", "s-3", "s-2", "s-1"]);
    store.append("s-1", &[Message::user("bump")]).unwrap();
    assert_eq!(ids(None, 10), ["s-1", "s-4", "s-3", "s-2"]);
    assert_eq!(ids(Some("main"), 10), ["s-1", "s-3", "s-2"]);
    assert_eq!(ids(Some("main"), 2), ["s-1", "s-3"]);
    assert_eq!(ids(Some("other"), 10), ["s-4"]);
    assert_eq!(ids(None, 0), Vec::<String>::new());
    let listed = store.list(Some("main"), 1).unwrap();
    assert_eq!(listed[0].message_count, 1);
    // Opening a sound session reads only: it does not count as an update.
    store.open("main", "s-2", "b").unwrap();
    assert_eq!(ids(Some("main"), 1), ["s-1"]);
}

#[test]
fn export_writes_one_parseable_object_per_message() {
    let (_dir, store) = fresh();
    store.open("main", "s-x", "b").unwrap();
    store.append("s-x", &every_kind()).unwrap();
    let mut out = Vec::new();
    let lines = store.export_jsonl("s-x", &mut out).unwrap();
    assert_eq!(lines, 9);
    let text = String::from_utf8(out).unwrap();
    assert!(text.ends_with('\n'));
    let rows = store.messages("s-x").unwrap();
    let exported: Vec<&str> = text.lines().collect();
    assert_eq!(exported.len(), 9);
    for ((line, row), original) in exported.iter().zip(&rows).zip(every_kind()) {
        assert!(line.starts_with(&format!("{{\"seq\":{},\"at\":\"", row.seq)), "{line}");
        let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
        let object = value.as_object_mut().unwrap();
        assert_eq!(object["role"], original.role_name());
        let at = object.remove("at").unwrap();
        let at = at.as_str().unwrap();
        // 2026-01-18T09:12:03.114Z
        assert_eq!(at.len(), 24, "{at}");
        assert!(at.ends_with('Z') && &at[10..11] == "T" && &at[19..20] == ".", "{at}");
        assert_eq!(object.remove("seq").unwrap(), row.seq);
        let message: Message = serde_json::from_value(value).unwrap();
        assert_eq!(message, original);
    }
    let mut empty = Vec::new();
    store.open("main", "s-empty", "b").unwrap();
    assert_eq!(store.export_jsonl("s-empty", &mut empty).unwrap(), 0);
    assert!(empty.is_empty());
}

#[test]
fn opening_a_state_dir_twice_migrates_once_and_keeps_data() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("state").join("nested");
    {
        let store = Store::open(&dir).unwrap();
        store.open("main", "s-1", "b").unwrap();
        store.append("s-1", &[Message::user("kept")]).unwrap();
    }
    let first = Store::open(&dir).unwrap();
    let second = Store::open(&dir).unwrap();
    assert_eq!(stored(&first, "s-1"), vec![Message::user("kept")]);
    assert_eq!(stored(&second, "s-1"), vec![Message::user("kept")]);
    assert_eq!(first.dir(), dir.as_path());
    for file in ["sessions.db", "audit.db"] {
        let connection = rusqlite::Connection::open(dir.join(file)).unwrap();
        let version: i64 = connection.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        let mode: String = connection.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!((version, mode.as_str()), (1, "wal"), "{file}");
    }
    assert!(first.integrity_check().unwrap().is_empty());
}

#[test]
fn state_dir_and_databases_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("state");
    let _store = Store::open(&dir).unwrap();
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("sessions.db")), 0o600);
    assert_eq!(mode(&dir.join("audit.db")), 0o600);
}

#[test]
fn corrupt_rows_are_errors_and_problems_not_panics() {
    let (dir, store) = fresh();
    store.open("main", "s-1", "b").unwrap();
    store.append("s-1", &[Message::user("fine"), calls(&["a"]), result("a")]).unwrap();
    let connection = rusqlite::Connection::open(dir.path().join("sessions.db")).unwrap();
    connection.execute("UPDATE messages SET body = '{\"role\":\"alien\"}' WHERE seq = 2", []).unwrap();
    connection.execute("UPDATE sessions SET message_count = 7", []).unwrap();
    let error = store.open("main", "s-1", "b").unwrap_err();
    assert!(matches!(&error, StoreError::Database(text) if text.contains("message 2")), "{error}");
    assert!(store.messages("s-1").is_err());
    let problems = store.integrity_check().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("message_count is 7 but it has 3")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("message 2")), "{problems:?}");
}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();
    let (_dir, store) = fresh();
    let shared: &dyn SessionStore = &store;
    assert!(shared.list(None, 1).unwrap().is_empty());
}

#[test]
fn only_an_empty_session_is_discarded() {
    let (_dir, store) = fresh();
    store.open("main", "empty", "b1").unwrap();
    store.open("main", "used", "b2").unwrap();
    store.append("used", &[Message::user("hi"), Message::assistant("hello")]).unwrap();
    assert!(store.discard_if_empty("empty").unwrap());
    assert!(!store.discard_if_empty("used").unwrap());
    assert!(!store.discard_if_empty("never-was").unwrap());
    let ids: Vec<String> = store.list(None, 10).unwrap().into_iter().map(|meta| meta.id).collect();
    assert_eq!(ids, ["used"]);
    assert_eq!(store.open("main", "used", "b2").unwrap().messages.len(), 2);
}
