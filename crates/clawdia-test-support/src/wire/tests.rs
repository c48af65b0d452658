//! Unit tests for the mock's wire rendering: pieces split at character boundaries and the event
//! sequences have the shape real providers send.

use std::cell::Cell;

use super::*;

struct Counter(Cell<u64>);

impl Ids for Counter {
    fn next_id(&self) -> u64 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
}

fn asked() -> Asked<'static> {
    Asked { model: "m", include_usage: true }
}

#[test]
fn pieces_split_at_character_boundaries() {
    assert_eq!(pieces("héllo wörld", 4), vec!["héll", "o wö", "rld"]);
    assert_eq!(pieces("", 4), Vec::<&str>::new());
    assert_eq!(argument_pieces(r#"{"a":1}"#).concat(), r#"{"a":1}"#);
    assert_eq!(argument_pieces(r#"{"path":"a.txt"}"#).len(), 3);
}

#[test]
fn anthropic_stream_has_the_real_event_order() {
    let reply = Reply::text_then_tool_calls("hello there", vec![("read", r#"{"path":"a"}"#)]);
    let events = anthropic_events(&reply, &asked(), &Counter(Cell::new(0)));
    let names: Vec<&str> = events.iter().map(|event| event.lines().next().unwrap_or("")).collect();
    assert_eq!(names.first(), Some(&"event: message_start"));
    assert_eq!(names.last(), Some(&"event: message_stop"));
    assert!(events.iter().any(|event| event.contains("input_json_delta")));
    assert!(events.iter().any(|event| event.contains(r#""stop_reason":"tool_use""#)));
}

#[test]
fn openai_stream_ends_with_usage_then_done() {
    let reply = Reply::tool_calls(vec![("a", "{}"), ("b", r#"{"x":1}"#)]).usage(7, 3);
    let events = openai_events(&reply, &asked(), &Counter(Cell::new(0)));
    assert_eq!(events.last().map(String::as_str), Some("data: [DONE]\n\n"));
    assert!(events[events.len() - 2].contains(r#""prompt_tokens":7"#));
    assert!(events.iter().any(|event| event.contains(r#""finish_reason":"tool_calls""#)));
    assert!(events.iter().any(|event| event.contains("call_mock_2")));
}
