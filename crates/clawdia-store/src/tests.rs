//! Unit tests for the pure parts (repair planning, timestamps, ids, the OpenClaw parser, export
//! lines, migrations) and for what needs private hooks: a process killed inside an `append`
//! transaction.

use clawdia_core::{Message, SessionStore, ToolCall};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use clawdia_core::time;

fn call(id: &str, name: &str) -> ToolCall {
    ToolCall { id: id.to_string(), name: name.to_string(), arguments: "{}".to_string() }
}

fn calls(ids: &[&str]) -> Message {
    Message::Assistant {
        text: String::new(),
        tool_calls: ids.iter().map(|id| call(id, &format!("tool_{id}"))).collect(),
    }
}

fn result(id: &str) -> Message {
    Message::ToolResult {
        call_id: id.to_string(),
        name: format!("tool_{id}"),
        content: "done".to_string(),
        is_error: false,
    }
}

fn synthetic(id: &str) -> Message {
    Message::ToolResult {
        call_id: id.to_string(),
        name: format!("tool_{id}"),
        content: SYNTHETIC_RESULT_TEXT.to_string(),
        is_error: true,
    }
}

// ---- repair ----

/// Repairs `transcript` and compares with `expected`.
fn check_repair(transcript: Vec<Message>, expected: Vec<Message>) {
    let insertions = repair::plan(&transcript);
    let added = insertions.len();
    let repaired: Vec<Message> =
        repair::apply(&transcript, insertions, |message| message).into_iter().map(|(_, m)| m).collect();
    assert_eq!(repaired, expected);
    assert_eq!(added, expected.len() - transcript.len());
    assert!(repair::plan(&repaired).is_empty(), "a repaired transcript needs no more repair");
}

#[test]
fn sound_transcripts_need_no_repair() {
    let transcript = vec![Message::user("hi"), calls(&["a"]), result("a"), Message::assistant("ok")];
    check_repair(transcript.clone(), transcript);
    check_repair(Vec::new(), Vec::new());
}

#[test]
fn orphans_at_the_tail_are_answered_at_the_end() {
    check_repair(
        vec![Message::user("hi"), calls(&["a", "b"])],
        vec![Message::user("hi"), calls(&["a", "b"]), synthetic("a"), synthetic("b")],
    );
    check_repair(
        vec![Message::user("hi"), calls(&["a", "b"]), result("a")],
        vec![Message::user("hi"), calls(&["a", "b"]), result("a"), synthetic("b")],
    );
}

#[test]
fn orphans_in_the_middle_are_answered_after_their_results() {
    check_repair(
        vec![Message::user("one"), calls(&["a", "b"]), result("b"), Message::user("two"), calls(&["c"])],
        vec![
            Message::user("one"),
            calls(&["a", "b"]),
            result("b"),
            synthetic("a"),
            Message::user("two"),
            calls(&["c"]),
            synthetic("c"),
        ],
    );
}

#[test]
fn a_result_anywhere_counts_and_repeated_ids_get_one_synthetic_result() {
    let late = vec![calls(&["a"]), Message::user("interrupt"), result("a")];
    check_repair(late.clone(), late);
    check_repair(
        vec![calls(&["a", "a"]), Message::user("next")],
        vec![calls(&["a", "a"]), synthetic("a"), Message::user("next")],
    );
}

#[test]
fn unanswered_calls_names_call_and_tool() {
    let transcript = vec![calls(&["x"]), Message::user("next")];
    assert_eq!(repair::unanswered_calls(&transcript), vec![("x".to_string(), "tool_x".to_string())]);
}

// ---- time (clawdia-core's, as the export and import use it) ----

#[test]
fn rfc3339_formats_and_parses_known_instants() {
    let cases = [
        (0, "1970-01-01T00:00:00.000Z"),
        (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ];
    for (millis, text) in cases {
        assert_eq!(time::rfc3339_utc(millis), text);
        assert_eq!(time::parse_rfc3339(text), Some(millis), "{text}");
    }
}

#[test]
fn rfc3339_parses_offsets_and_fractions_and_rejects_junk() {
    assert_eq!(time::parse_rfc3339("2023-11-14T23:13:20+01:00"), Some(1_700_000_000_000));
    assert_eq!(time::parse_rfc3339("2023-11-14 22:13:20.1234567Z"), Some(1_700_000_000_123));
    assert_eq!(time::parse_rfc3339("2023-11-14T22:13:20.5z"), Some(1_700_000_000_500));
    for junk in [
        "",
        "2023-11-14",
        "2023-13-14T22:13:20Z",
        "2023-02-29T00:00:00Z",
        "2023-11-14T22:13:20",
        "2023-11-14T22:13:20.Z",
        "2023-11-14T22:13:20+0100",
        "２023-11-14T22:13:20Z",
    ] {
        assert_eq!(time::parse_rfc3339(junk), None, "{junk:?}");
    }
}

proptest! {
    #[test]
    fn rfc3339_round_trips(millis in -62_135_596_800_000i64..253_402_300_799_999) {
        prop_assert_eq!(time::parse_rfc3339(&time::rfc3339_utc(millis)), Some(millis));
    }
}

// ---- export ----

#[test]
fn export_line_puts_seq_and_time_before_the_message_fields() {
    let stored = StoredMessage {
        seq: 7,
        at: 1_700_000_000_123,
        message: Message::ToolResult {
            call_id: "c1".into(),
            name: "read".into(),
            content: "a \"quoted\"\nline".into(),
            is_error: true,
        },
    };
    assert_eq!(
        export::export_line(&stored).unwrap(),
        r#"{"seq":7,"at":"2023-11-14T22:13:20.123Z","role":"tool_result","call_id":"c1","name":"read","content":"a \"quoted\"\nline","is_error":true}"#
    );
}

// ---- OpenClaw parser ----

fn parse_lines(lines: &[serde_json::Value]) -> openclaw::ParsedTranscript {
    let text: Vec<String> = lines.iter().map(|line| line.to_string()).collect();
    openclaw::parse(text.join("\n").as_bytes())
}

fn messages_of(parsed: &openclaw::ParsedTranscript) -> Vec<Message> {
    parsed.messages.iter().map(|parsed| parsed.message.clone()).collect()
}

#[test]
fn parses_openclaw_entries() {
    let parsed = parse_lines(&[
        json!({"type":"session","version":3,"id":"abc","timestamp":"2026-02-06T07:49:00.000Z"}),
        json!({"type":"model_change","provider":"anthropic","modelId":"claude-sonnet-4-5"}),
        json!({"type":"message","timestamp":"2026-02-06T07:49:03.491Z","message":{
            "role":"user","content":[{"type":"text","text":"list files"},{"type":"image","data":"…"}]}}),
        json!({"type":"message","message":{"role":"assistant","timestamp":1770364143489u64,"content":[
            {"type":"thinking","thinking":"use ls"},
            {"type":"text","text":"Listing."},
            {"type":"toolCall","id":"toolu_1","name":"exec","arguments":{"command":"ls"}}]}}),
        json!({"type":"message","message":{"role":"toolResult","toolCallId":"toolu_1","toolName":"exec",
            "content":[{"type":"text","text":"a.txt"}],"isError":false}}),
    ]);
    assert_eq!(parsed.skipped, Vec::<(usize, String)>::new());
    assert_eq!(
        messages_of(&parsed),
        vec![
            Message::user("list files\n[image]"),
            Message::Assistant {
                text: "Listing.".into(),
                tool_calls: vec![ToolCall {
                    id: "toolu_1".into(),
                    name: "exec".into(),
                    arguments: r#"{"command":"ls"}"#.into()
                }],
            },
            Message::ToolResult {
                call_id: "toolu_1".into(),
                name: "exec".into(),
                content: "a.txt".into(),
                is_error: false
            },
        ]
    );
    let times: Vec<Option<i64>> = parsed.messages.iter().map(|parsed| parsed.at).collect();
    assert_eq!(times, vec![Some(1_770_364_143_491), Some(1_770_364_143_489), None]);
}

#[test]
fn parses_anthropic_and_openai_style_lines() {
    let parsed = parse_lines(&[
        json!({"role":"user","content":"weather?"}),
        json!({"role":"assistant","content":[{"type":"tool_use","id":"tu1","name":"weather","input":{"city":"Oslo"}}]}),
        json!({"role":"user","content":[
            {"type":"tool_result","tool_use_id":"tu1","content":[{"type":"text","text":"-3C"}],"is_error":false},
            {"type":"text","text":"thanks"}]}),
        json!({"role":"assistant","content":null,"tool_calls":[
            {"id":"call_9","type":"function","function":{"name":"search","arguments":"{\"q\":\"x\"}"}}]}),
        json!({"role":"tool","tool_call_id":"call_9","content":"nothing"}),
    ]);
    assert!(parsed.skipped.is_empty(), "{:?}", parsed.skipped);
    assert_eq!(
        messages_of(&parsed),
        vec![
            Message::user("weather?"),
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "tu1".into(),
                    name: "weather".into(),
                    arguments: r#"{"city":"Oslo"}"#.into()
                }],
            },
            Message::ToolResult {
                call_id: "tu1".into(),
                name: "weather".into(),
                content: "-3C".into(),
                is_error: false
            },
            Message::user("thanks"),
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![ToolCall {
                    id: "call_9".into(),
                    name: "search".into(),
                    arguments: r#"{"q":"x"}"#.into()
                }],
            },
            Message::ToolResult {
                call_id: "call_9".into(),
                name: "search".into(),
                content: "nothing".into(),
                is_error: false
            },
        ]
    );
}

#[test]
fn reports_what_it_cannot_import() {
    let text = [
        "{\"role\":\"user\",\"content\":\"hi\"}",
        "{not json",
        "[1,2]",
        "{\"role\":\"system\",\"content\":\"be nice\"}",
        "{\"role\":\"toolResult\",\"toolCallId\":\"nope\",\"content\":\"x\"}",
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\"}]}",
        "",
        "{\"type\":\"custom\",\"data\":{}}",
        "{\"role\":\"wizard\",\"content\":\"x\"}",
    ]
    .join("\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(b"\n\xff\xfe\n");
    let parsed = openclaw::parse(&bytes);
    assert_eq!(messages_of(&parsed), vec![Message::user("hi")]);
    let lines: Vec<usize> = parsed.skipped.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6, 9, 10], "{:?}", parsed.skipped);
    assert!(parsed.skipped[0].1.starts_with("malformed JSON"), "{:?}", parsed.skipped[0]);
    assert!(parsed.skipped[3].1.contains("unknown call `nope`"), "{:?}", parsed.skipped[3]);
    assert_eq!(parsed.skipped[6].1, "not valid UTF-8");
}

#[test]
fn drops_repeated_results_and_calls() {
    let parsed = parse_lines(&[
        json!({"role":"assistant","content":[{"type":"toolCall","id":"c","name":"t","arguments":{}}]}),
        json!({"role":"toolResult","toolCallId":"c","content":"1"}),
        json!({"role":"toolResult","toolCallId":"c","content":"2"}),
        json!({"role":"assistant","content":[{"type":"text","text":"again"},
            {"type":"toolCall","id":"c","name":"t","arguments":{}}]}),
    ]);
    assert_eq!(messages_of(&parsed).len(), 3);
    assert_eq!(
        parsed.skipped,
        vec![
            (3, "second result for call `c` dropped".to_string()),
            (4, "repeated tool call id `c` dropped".to_string())
        ]
    );
}

/// Lines shaped like transcript entries, with arbitrary values in every slot.
fn entry_like() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        prop::sample::select(vec![
            "message",
            "user",
            "assistant",
            "toolResult",
            "tool",
            "text",
            "toolCall",
            "tool_use",
            "tool_result",
            "id",
            "c1",
            "2026-02-06T07:49:03.491Z",
            "",
        ])
        .prop_map(serde_json::Value::from),
        ".*".prop_map(serde_json::Value::from),
    ];
    let keys = prop::sample::select(vec![
        "type",
        "message",
        "role",
        "content",
        "text",
        "id",
        "name",
        "arguments",
        "input",
        "toolCallId",
        "tool_use_id",
        "tool_call_id",
        "toolName",
        "isError",
        "is_error",
        "timestamp",
        "tool_calls",
        "function",
    ]);
    let value = leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|map| {
                serde_json::Value::Object(map.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    });
    value.prop_map(|value| value.to_string())
}

proptest! {
    #[test]
    fn parser_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let parsed = openclaw::parse(&bytes);
        prop_assert!(parsed.messages.len() + parsed.skipped.len() <= bytes.len() + 1);
    }

    #[test]
    fn parser_never_panics_on_entry_like_lines(lines in prop::collection::vec(entry_like(), 0..12)) {
        let parsed = openclaw::parse(lines.join("\n").as_bytes());
        // Whatever was imported already satisfies the result bookkeeping: no call answered twice.
        let mut seen = std::collections::HashSet::new();
        for parsed in &parsed.messages {
            if let Message::ToolResult { call_id, .. } = &parsed.message {
                prop_assert!(seen.insert(call_id.clone()));
            }
        }
    }
}

// ---- migrations ----

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    Store::open(dir.path()).unwrap();
    let connection = rusqlite::Connection::open(dir.path().join("sessions.db")).unwrap();
    connection.pragma_update(None, "user_version", 99).unwrap();
    drop(connection);
    let error = Store::open(dir.path()).unwrap_err();
    assert!(error.to_string().contains("schema version 99 is newer"), "{error}");
}

// ---- a process killed inside an append transaction ----

const MID_TRANSACTION_CHILD: &str = "CLAWDIA_STORE_MID_TRANSACTION_CHILD";

/// Re-runs this test in a child process that stops inside `append` (rows written, not
/// committed), is killed with SIGKILL, and leaves nothing of that append behind.
#[test]
#[allow(clippy::disallowed_methods, reason = "re-runs this test binary as the child")]
fn kill_inside_an_append_transaction_leaves_no_partial_messages() {
    if let Some(dir) = std::env::var_os(MID_TRANSACTION_CHILD) {
        let store = Store::open(std::path::Path::new(&dir)).unwrap();
        let batch: Vec<Message> = (0..50).map(|n| Message::user(format!("lost {n}"))).collect();
        store
            .append_with_hook("s-1", &batch, &mut || {
                println!("INSIDE-TRANSACTION");
                // Block until the parent kills us; the parent holds our stdin open.
                let mut line = String::new();
                let _ = std::io::stdin().read_line(&mut line);
                std::process::exit(3);
            })
            .unwrap();
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.open("main", "s-1", "b").unwrap();
    store.append("s-1", &[Message::user("kept")]).unwrap();

    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tests::kill_inside_an_append_transaction_leaves_no_partial_messages"])
        .args(["--nocapture", "--test-threads=1"])
        .env(MID_TRANSACTION_CHILD, dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = wait_for_line(&mut child, "INSIDE-TRANSACTION");
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    drop(stdin);
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));

    let messages: Vec<Message> =
        store.messages("s-1").unwrap().into_iter().map(|stored| stored.message).collect();
    assert_eq!(messages, vec![Message::user("kept")]);
    assert_eq!(store.session("s-1").unwrap().unwrap().message_count, 1);
    // The write lock died with the child: writing works at once.
    store.append("s-1", &[Message::user("after")]).unwrap();
    assert_eq!(store.messages("s-1").unwrap().len(), 2);
    assert!(store.integrity_check().unwrap().is_empty());
}

/// Reads the child's stdout until a line ending in `marker` (libtest may print its own text
/// first on the same line). Fails if the child exits first; a child that never prints it gets
/// its stdin closed after a minute, which ends it, so a broken test fails instead of hanging.
/// Returns the child's stdin, to be held open until the child is killed.
pub(crate) fn wait_for_line(
    child: &mut std::process::Child,
    marker: &str,
) -> Option<std::process::ChildStdin> {
    use std::io::BufRead;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    let (found, wait) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || match wait.recv_timeout(std::time::Duration::from_secs(60)) {
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
        _ => stdin,
    });
    for line in std::io::BufReader::new(stdout).lines() {
        if line.expect("child stdout").trim_end().ends_with(marker) {
            let _ = found.send(());
            return watchdog.join().expect("watchdog");
        }
    }
    panic!("the child process ended without printing {marker}");
}
