//! Unit tests for the Anthropic wire mapping: the request body for a full transcript, the
//! non-streaming response, and the stream state machine fed event by event.

use std::sync::Mutex;

use clawdia_core::ToolSpec;
use serde_json::json;

use super::*;

#[derive(Default)]
struct Recorder(Mutex<Vec<ModelDelta>>);

impl DeltaSink for Recorder {
    fn delta(&self, delta: ModelDelta) {
        self.0.lock().expect("lock").push(delta);
    }
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall { id: id.into(), name: name.into(), arguments: arguments.into() }
}

fn result(call_id: &str, content: &str, is_error: bool) -> Message {
    Message::ToolResult { call_id: call_id.into(), name: "tool".into(), content: content.into(), is_error }
}

#[test]
fn request_body_maps_system_tools_and_transcript() {
    let request = ChatRequest {
        model: "claude-x".into(),
        system: "be brief".into(),
        messages: vec![
            Message::user("read two files"),
            Message::Assistant {
                text: "sure".into(),
                tool_calls: vec![call("t1", "read", r#"{"path":"a"}"#), call("t2", "read", "not json")],
            },
            result("t1", "A", false),
            result("t2", "boom", true),
            Message::Assistant { text: String::new(), tool_calls: Vec::new() },
            Message::user("thanks"),
        ],
        tools: vec![ToolSpec {
            name: "read".into(),
            description: "reads".into(),
            parameters: json!({"type": "object"}),
        }],
        max_tokens: 512,
        temperature: Some(0.5),
        stop: Vec::new(),
        stream: true,
    };
    let body = serde_json::to_value(wire_request(&request)).expect("serializes");
    assert_eq!(
        body,
        json!({
            "model": "claude-x",
            "max_tokens": 512,
            "system": "be brief",
            "messages": [
                {"role": "user", "content": "read two files"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "sure"},
                    {"type": "tool_use", "id": "t1", "name": "read", "input": {"path": "a"}},
                    {"type": "tool_use", "id": "t2", "name": "read", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "t1", "content": "A"},
                    {"type": "tool_result", "tool_use_id": "t2", "content": "boom", "is_error": true},
                ]},
                {"role": "user", "content": "thanks"},
            ],
            "tools": [{"name": "read", "description": "reads", "input_schema": {"type": "object"}}],
            "temperature": 0.5,
            "stream": true,
        })
    );
}

#[test]
fn empty_system_and_tools_are_omitted() {
    let request = ChatRequest {
        model: "m".into(),
        system: String::new(),
        messages: vec![Message::user("hi")],
        tools: Vec::new(),
        max_tokens: 1,
        temperature: None,
        stop: Vec::new(),
        stream: false,
    };
    let body = serde_json::to_value(wire_request(&request)).expect("serializes");
    assert_eq!(
        body,
        json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}], "stream": false})
    );
}

#[test]
fn response_body_keeps_text_calls_and_cache_usage() {
    let body: WireResponse = serde_json::from_value(json!({
        "id": "msg_1", "type": "message", "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "let me look"},
            {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 100, "cache_creation_input_tokens": null},
    }))
    .expect("parses");
    let response = body.into_response();
    assert_eq!(
        response.message,
        Message::Assistant {
            text: "let me look".into(),
            tool_calls: vec![call("toolu_1", "read", r#"{"path":"a"}"#)],
        }
    );
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        response.usage,
        Usage { input_tokens: 3, output_tokens: 4, cache_read_tokens: 100, cache_write_tokens: 0 }
    );
}

fn run(events: &[serde_json::Value]) -> (Result<Option<ChatResponse>, ModelError>, Vec<ModelDelta>) {
    let sink = Recorder::default();
    let mut state = StreamState::default();
    for event in events {
        let parsed: StreamEvent = match serde_json::from_value(event.clone()) {
            Ok(parsed) => parsed,
            Err(error) => {
                return (Err(ModelError::Malformed(error.to_string())), sink.0.into_inner().expect("lock"));
            }
        };
        match state.apply(parsed, &sink) {
            Ok(true) => {
                return (Ok(Some(state.into_response())), sink.0.into_inner().expect("lock"));
            }
            Ok(false) => {}
            Err(error) => return (Err(error), sink.0.into_inner().expect("lock")),
        }
    }
    (Ok(None), sink.0.into_inner().expect("lock"))
}

#[test]
fn stream_reassembles_text_and_parallel_tool_calls() {
    let (result, deltas) = run(&[
        json!({"type": "message_start", "message": {"usage": {"input_tokens": 20, "output_tokens": 1, "cache_read_input_tokens": 7, "cache_creation_input_tokens": 9}}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "a", "name": "read", "input": {}}}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "b", "name": "list", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"pa"}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "th\":\"x\"}"}}),
        json!({"type": "some_future_event", "whatever": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 33}}),
        json!({"type": "message_stop"}),
    ]);
    let response = result.expect("complete").expect("finished");
    assert_eq!(
        response.message,
        Message::Assistant {
            text: "Hello".into(),
            tool_calls: vec![call("a", "read", r#"{"path":"x"}"#), call("b", "list", "{}")],
        }
    );
    assert_eq!(
        response.usage,
        Usage { input_tokens: 20, output_tokens: 33, cache_read_tokens: 7, cache_write_tokens: 9 }
    );
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        deltas,
        vec![
            ModelDelta::Text("Hel".into()),
            ModelDelta::Text("lo".into()),
            ModelDelta::ToolCallStarted { id: "a".into(), name: "read".into() },
            ModelDelta::ToolCallStarted { id: "b".into(), name: "list".into() },
        ]
    );
}

#[test]
fn stream_without_message_stop_is_not_complete() {
    let (result, _) = run(&[
        json!({"type": "message_start", "message": {"usage": {"input_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ]);
    assert_eq!(result, Ok(None));
}

#[test]
fn unexpected_event_shapes_are_malformed() {
    let cases = [
        vec![
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}),
        ],
        vec![
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{"}}),
        ],
        vec![
            json!({"type": "content_block_start", "index": 999_999, "content_block": {"type": "text", "text": ""}}),
        ],
        vec![json!({"type": "content_block_delta", "index": "zero", "delta": {}})],
        vec![json!({"type": "error", "error": {"type": "invalid_request_error", "message": "nope"}})],
    ];
    for events in cases {
        let (result, _) = run(&events);
        assert!(matches!(result, Err(ModelError::Malformed(_))), "{events:?} gave {result:?}");
    }
}

#[test]
fn overload_error_event_is_a_server_error() {
    let (result, _) =
        run(&[json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})]);
    assert_eq!(
        result,
        Err(ModelError::Server { status: 529, message: "overloaded_error: Overloaded".into() })
    );
}
