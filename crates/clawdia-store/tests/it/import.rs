//! OpenClaw import: both fixtures (OpenClaw's own entries, and plain Anthropic-style lines), each
//! with a malformed line that is reported, a file with no message refused, and a property test
//! that arbitrary lines never make the importer panic or leave an unanswered tool call behind.

use std::path::{Path, PathBuf};

use clawdia_core::{Message, SessionStore, StoreError, ToolCall};
use clawdia_store::{ImportReport, Store};
use proptest::prelude::*;

use crate::{fresh, stored};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data").join(name)
}

fn tool_call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall { id: id.into(), name: name.into(), arguments: arguments.into() }
}

fn tool_result(id: &str, name: &str, content: &str, is_error: bool) -> Message {
    Message::ToolResult { call_id: id.into(), name: name.into(), content: content.into(), is_error }
}

#[test]
fn imports_an_openclaw_transcript() {
    let (_dir, store) = fresh();
    let report = store.import_openclaw_jsonl("main", &fixture("openclaw_disk_cleanup.jsonl"), "bnd").unwrap();
    assert!(report.session_id.starts_with("s-"));
    assert_eq!((report.imported, report.repaired), (7, 1));
    assert_eq!(report.skipped_lines.len(), 1, "{:?}", report.skipped_lines);
    assert_eq!(report.skipped_lines[0].0, 12);
    assert!(report.skipped_lines[0].1.starts_with("malformed JSON"), "{:?}", report.skipped_lines);

    let expected = vec![
        Message::user("What's using all the disk space in ~/Downloads?"),
        Message::Assistant {
            text: "Let me check.".into(),
            tool_calls: vec![tool_call(
                "toolu_01A9xq2Lw3",
                "exec",
                r#"{"command":"du -sh ~/Downloads/* | sort -h | tail -5"}"#,
            )],
        },
        tool_result(
            "toolu_01A9xq2Lw3",
            "exec",
            "212M\t/home/ana/Downloads/podcast.mp3\n1.1G\t/home/ana/Downloads/debian-12.iso\n3.4G\t/home/ana/Downloads/dataset.tar",
            false,
        ),
        Message::assistant(
            "The biggest items are dataset.tar (3.4 GB) and debian-12.iso (1.1 GB). Want me to delete the ISO?",
        ),
        Message::user("yes, and check how big the trash is too"),
        Message::Assistant {
            text: String::new(),
            tool_calls: vec![
                tool_call("toolu_01Bq7Rk2Zp", "exec", r#"{"command":"rm ~/Downloads/debian-12.iso"}"#),
                tool_call("toolu_01Cm4Tn8Vd", "exec", r#"{"command":"du -sh ~/.local/share/Trash"}"#),
            ],
        },
        tool_result("toolu_01Bq7Rk2Zp", "exec", "(no output)", false),
        tool_result("toolu_01Cm4Tn8Vd", "exec", clawdia_store::SYNTHETIC_RESULT_TEXT, true),
    ];
    assert_eq!(stored(&store, &report.session_id), expected);

    let rows = store.messages(&report.session_id).unwrap();
    // Times come from the file (message timestamps in ms, else the entry's RFC 3339 time).
    assert_eq!(rows[0].at, 1_768_727_530_500);
    assert_eq!(rows[6].at, 1_768_727_565_400);
    assert_eq!(rows[7].at, rows[6].at, "a synthetic result takes the time of what it follows");
    let meta = store.session(&report.session_id).unwrap().unwrap();
    assert_eq!((meta.agent.as_str(), meta.boundary.as_str(), meta.message_count), ("main", "bnd", 8));
    assert_eq!((meta.created_at, meta.updated_at), (1_768_727_530_500, 1_768_727_565_400));

    let opened = store.open("main", &report.session_id, "other").unwrap();
    assert_eq!((opened.repaired, opened.messages), (0, expected));
    assert!(store.integrity_check().unwrap().is_empty());
}

#[test]
fn imports_plain_anthropic_style_lines() {
    let (_dir, store) = fresh();
    let report = store.import_openclaw_jsonl("main", &fixture("anthropic_calendar.jsonl"), "b").unwrap();
    assert_eq!((report.imported, report.repaired), (9, 0));
    assert_eq!(report.skipped_lines.len(), 1, "{:?}", report.skipped_lines);
    assert_eq!(report.skipped_lines[0].0, 8);
    assert!(report.skipped_lines[0].1.starts_with("malformed JSON"));
    let messages = stored(&store, &report.session_id);
    assert_eq!(
        messages,
        vec![
            Message::user("Remind me what's on my calendar tomorrow"),
            Message::Assistant {
                text: "Checking your calendar.".into(),
                tool_calls: vec![tool_call("toolu_vrtx_01HsW", "calendar_list", r#"{"date":"2026-01-19"}"#)],
            },
            tool_result(
                "toolu_vrtx_01HsW",
                "calendar_list",
                "09:30 Standup\n14:00 Dentist (Dr. Lind)",
                false
            ),
            Message::assistant("You have standup at 09:30 and the dentist at 14:00."),
            Message::user("Move the dentist to Friday, same time"),
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![tool_call(
                    "toolu_vrtx_02KpQ",
                    "calendar_move",
                    r#"{"event":"Dentist (Dr. Lind)","to":"2026-01-23T14:00"}"#,
                )],
            },
            tool_result("toolu_vrtx_02KpQ", "calendar_move", "error: calendar 'Personal' is read-only", true),
            Message::user("hm, it should have write access now, try again"),
            Message::assistant(
                "I still can't change it: the calendar is read-only. You can grant write access under Settings → Calendars.",
            ),
        ]
    );
}

#[test]
fn a_file_without_any_message_is_refused_and_creates_no_session() {
    let (dir, store) = fresh();
    let noise = dir.path().join("noise.jsonl");
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(&noise, &bytes).unwrap();
    let headers = dir.path().join("headers.jsonl");
    std::fs::write(&headers, "{\"type\":\"session\",\"id\":\"abc\"}\n").unwrap();
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    for path in [&noise, &headers, &empty] {
        let error = store.import_openclaw_jsonl("main", path, "b").unwrap_err();
        let shown = error.to_string();
        assert!(matches!(error, StoreError::Invalid(_)), "{shown}");
        assert!(shown.starts_with(&format!("{}: nothing to import (", path.display())), "{shown}");
        assert!(shown.ends_with("no session was created") && !shown.contains('\n'), "{shown}");
    }
    assert!(store.list(None, 10).unwrap().is_empty(), "nothing was created");
    // Positive control: one readable message among the noise is imported.
    let mut mixed = bytes.clone();
    mixed.extend_from_slice(b"\n{\"role\":\"user\",\"content\":\"hi\"}\n");
    std::fs::write(&noise, &mixed).unwrap();
    assert_eq!(store.import_openclaw_jsonl("main", &noise, "b").unwrap().imported, 1);
    assert_eq!(store.list(None, 10).unwrap().len(), 1);
}

#[test]
fn each_import_is_a_new_session_and_a_missing_file_is_an_error() {
    let (dir, store) = fresh();
    let path = fixture("anthropic_calendar.jsonl");
    let first = store.import_openclaw_jsonl("main", &path, "b").unwrap();
    let second = store.import_openclaw_jsonl("main", &path, "b").unwrap();
    assert_ne!(first.session_id, second.session_id);
    assert_eq!(store.list(Some("main"), 10).unwrap().len(), 2);
    let error = store.import_openclaw_jsonl("main", &dir.path().join("missing.jsonl"), "b").unwrap_err();
    assert!(error.to_string().contains("missing.jsonl"), "{error}");
    assert_eq!(store.list(None, 10).unwrap().len(), 2, "a failed import creates nothing");
}

/// Lines from the fixtures, whole, truncated or spliced, and arbitrary text.
fn transcript_lines() -> impl Strategy<Value = Vec<String>> {
    let mut known = Vec::new();
    for name in ["openclaw_disk_cleanup.jsonl", "anthropic_calendar.jsonl"] {
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        known.extend(text.lines().map(str::to_string));
    }
    let line = prop_oneof![
        3 => prop::sample::select(known.clone()),
        2 => (prop::sample::select(known), any::<prop::sample::Index>())
            .prop_map(|(line, cut)| {
                let mut cut = cut.index(line.len() + 1);
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line[..cut].to_string()
            }),
        1 => ".{0,80}",
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ];
    prop::collection::vec(line, 0..16)
}

fn import_text(store: &Store, dir: &Path, text: &str) -> Result<ImportReport, StoreError> {
    let path = dir.join("arbitrary.jsonl");
    std::fs::write(&path, text).unwrap();
    store.import_openclaw_jsonl("main", &path, "b")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_importer_never_panics_and_leaves_every_call_answered(lines in transcript_lines()) {
        let (dir, store) = fresh();
        let text = lines.join("\n");
        let line_count = text.split('\n').count();
        let report = match import_text(&store, dir.path(), &text) {
            Ok(report) => report,
            Err(error) => {
                // Only a file without a single message is refused, and it leaves nothing behind.
                prop_assert!(matches!(error, StoreError::Invalid(_)), "{}", error);
                prop_assert!(store.list(None, 10).unwrap().is_empty());
                return Ok(());
            }
        };
        prop_assert!(report.imported > 0);
        let session = store.open("main", &report.session_id, "b").unwrap();
        prop_assert_eq!(session.repaired, 0);
        prop_assert_eq!(session.messages.len(), report.imported + report.repaired);
        prop_assert!(report.skipped_lines.iter().all(|(line, _)| *line >= 1 && *line <= line_count));
        prop_assert!(store.integrity_check().unwrap().is_empty());
    }
}
