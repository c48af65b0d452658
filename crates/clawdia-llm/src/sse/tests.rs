//! Unit and property tests for the SSE parser: fixed cases for each rule of the format, and
//! properties that chunking never changes the events and arbitrary bytes never panic.

use proptest::prelude::*;

use super::*;

fn parse_all(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in chunks {
        parser.push(chunk, &mut events)?;
    }
    Ok(events)
}

fn check(input: &str, expected: &[(&str, &str)]) {
    let events = parse_all(&[input.as_bytes()]).expect("parses");
    let got: Vec<(&str, &str)> =
        events.iter().map(|event| (event.event.as_str(), event.data.as_str())).collect();
    assert_eq!(got, expected, "input: {input:?}");
    // Byte by byte must give the same result.
    let bytes: Vec<&[u8]> = input.as_bytes().chunks(1).collect();
    assert_eq!(parse_all(&bytes).expect("parses"), events, "byte-wise input: {input:?}");
}

#[test]
fn named_event_with_data() {
    check("event: ping\ndata: {}\n\n", &[("ping", "{}")]);
}

#[test]
fn unnamed_event_is_message() {
    check("data: hello\n\n", &[("message", "hello")]);
}

#[test]
fn multi_line_data_is_joined_with_newline() {
    check("data: one\ndata: two\ndata:three\n\n", &[("message", "one\ntwo\nthree")]);
}

#[test]
fn comments_and_unknown_fields_are_ignored() {
    check(": keep-alive\nid: 7\nretry: 1000\nfoo: bar\ndata: x\n\n", &[("message", "x")]);
}

#[test]
fn crlf_and_cr_line_endings() {
    check(
        "event: a\r\ndata: 1\r\n\r\nevent: b\rdata: 2\r\rdata: 3\n\r\n",
        &[("a", "1"), ("b", "2"), ("message", "3")],
    );
}

#[test]
fn only_one_leading_space_is_stripped() {
    check("data:  two spaces\n\n", &[("message", " two spaces")]);
}

#[test]
fn field_without_colon_has_empty_value() {
    check("data\n\ndata\ndata\n\n", &[("message", ""), ("message", "\n")]);
}

#[test]
fn event_without_data_is_not_dispatched_and_name_resets() {
    check("event: lonely\n\ndata: after\n\n", &[("message", "after")]);
}

#[test]
fn incomplete_event_at_end_is_not_dispatched() {
    check("data: done\n\ndata: partial\n", &[("message", "done")]);
}

#[test]
fn byte_order_mark_at_stream_start_is_skipped() {
    check("\u{feff}data: x\n\n", &[("message", "x")]);
}

#[test]
fn crlf_split_across_chunks_is_one_line_ending() {
    let events = parse_all(&[b"data: a\r", b"\n\r", b"\ndata: b\r", b"\r"]).expect("parses");
    assert_eq!(
        events,
        vec![
            SseEvent { event: "message".into(), data: "a".into() },
            SseEvent { event: "message".into(), data: "b".into() },
        ]
    );
}

#[test]
fn invalid_utf8_is_replaced_not_fatal() {
    let events = parse_all(&[b"data: \xff\xfe ok\n\n"]).expect("parses");
    assert_eq!(events[0].data, "\u{fffd}\u{fffd} ok");
}

#[test]
fn oversized_line_is_an_error() {
    let mut parser = SseParser::with_limit(16);
    let mut events = Vec::new();
    assert_eq!(
        parser.push(b"data: 0123456789abcdefghij", &mut events),
        Err(SseError::TooLarge { limit: 16 })
    );
}

#[test]
fn oversized_event_data_is_an_error() {
    let mut parser = SseParser::with_limit(16);
    let mut events = Vec::new();
    let result = parser.push(b"data: 0123456789\ndata: 0123456789\n", &mut events);
    assert_eq!(result, Err(SseError::TooLarge { limit: 16 }));
}

/// Splits `bytes` at the given cut points (taken modulo the length, sorted).
fn split_at_points<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> =
        points.iter().map(|point| if bytes.is_empty() { 0 } else { point % bytes.len() }).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for cut in cuts {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    chunks.push(&bytes[start..]);
    chunks
}

fn line_ending() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
}

/// One well-formed event: an optional name, one or more data lines, maybe a comment, all with
/// one random line ending (mixing them inside an event would let a CR and the next LF merge into
/// one CRLF, which is correct parsing but not the event the generator meant).
fn event_text() -> impl Strategy<Value = (String, SseEvent)> {
    (
        proptest::option::of("[a-z_]{1,12}"),
        proptest::collection::vec("[^\r\n]{0,20}", 1..4),
        line_ending(),
        any::<bool>(),
    )
        .prop_map(|(name, lines, ending, comment)| {
            let mut text = String::new();
            if comment {
                text.push_str(": note");
                text.push_str(ending);
            }
            if let Some(name) = &name {
                text.push_str("event: ");
                text.push_str(name);
                text.push_str(ending);
            }
            for line in &lines {
                text.push_str("data: ");
                text.push_str(line);
                text.push_str(ending);
            }
            text.push_str(ending);
            // "data: " strips exactly one space, so each value is the generated line itself.
            let event =
                SseEvent { event: name.unwrap_or_else(|| "message".to_string()), data: lines.join("\n") };
            (text, event)
        })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512),
                                   points in proptest::collection::vec(any::<usize>(), 0..8)) {
        let _ = parse_all(&split_at_points(&bytes, &points));
    }

    #[test]
    fn any_split_of_arbitrary_bytes_gives_the_same_events(
        bytes in proptest::collection::vec(
            prop_oneof![Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(b'd'), Just(b'a'),
                        Just(b't'), Just(b'e'), Just(b'v'), Just(b'n'), any::<u8>()], 0..400),
        points in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = parse_all(&[&bytes]);
        prop_assert_eq!(parse_all(&split_at_points(&bytes, &points)), whole);
    }

    #[test]
    fn well_formed_events_round_trip_under_any_split(
        events in proptest::collection::vec(event_text(), 0..8),
        points in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let text: String = events.iter().map(|(text, _)| text.as_str()).collect();
        let expected: Vec<SseEvent> = events.into_iter().map(|(_, event)| event).collect();
        let parsed = parse_all(&split_at_points(text.as_bytes(), &points)).expect("parses");
        prop_assert_eq!(parsed, expected);
    }
}
