//! Unit tests for the OpenAI wire mapping: the request body for a full transcript, the
//! non-streaming response variants servers send, and the chunk state machine.

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

#[test]
fn request_body_maps_system_tools_and_transcript() {
    let request = ChatRequest {
        model: "glm-4.6".into(),
        system: "be brief".into(),
        messages: vec![
            Message::user("read"),
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![call("c1", "read", r#"{"path":"a"}"#)],
            },
            Message::ToolResult {
                call_id: "c1".into(),
                name: "read".into(),
                content: "A".into(),
                is_error: false,
            },
            Message::assistant("done"),
        ],
        tools: vec![ToolSpec {
            name: "read".into(),
            description: "reads".into(),
            parameters: json!({"type": "object"}),
        }],
        max_tokens: 256,
        temperature: None,
        stop: Vec::new(),
        stream: true,
    };
    let body = serde_json::to_value(wire_request(&request)).expect("serializes");
    assert_eq!(
        body,
        json!({
            "model": "glm-4.6",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "read"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{\"path\":\"a\"}"}},
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "A"},
                {"role": "assistant", "content": "done"},
            ],
            "tools": [{"type": "function", "function": {"name": "read", "description": "reads", "parameters": {"type": "object"}}}],
            "max_tokens": 256,
            "stream": true,
            "stream_options": {"include_usage": true},
        })
    );
}

#[test]
fn non_streaming_request_has_no_stream_options() {
    let request = ChatRequest {
        model: "m".into(),
        system: String::new(),
        messages: vec![Message::user("hi")],
        tools: Vec::new(),
        max_tokens: 10,
        temperature: Some(0.25),
        stop: Vec::new(),
        stream: false,
    };
    let body = serde_json::to_value(wire_request(&request)).expect("serializes");
    assert_eq!(
        body,
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10, "temperature": 0.25, "stream": false})
    );
}

fn response(value: serde_json::Value) -> Result<ChatResponse, String> {
    serde_json::from_value::<WireResponse>(value).expect("parses").into_response()
}

#[test]
fn response_usage_separates_cached_prompt_tokens() {
    let reply = response(json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 60}},
    }))
    .expect("valid");
    assert_eq!(
        reply.usage,
        Usage { input_tokens: 40, output_tokens: 5, cache_read_tokens: 60, cache_write_tokens: 0 }
    );
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
}

#[test]
fn response_tolerates_server_variants() {
    let reply = response(json!({
        "choices": [{"message": {
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "tool_calls": [
                {"function": {"name": "x", "arguments": {"k": 1}}},
                {"id": "given", "function": {"name": "y", "arguments": ""}},
            ],
        }, "finish_reason": "stop"}],
    }))
    .expect("valid");
    assert_eq!(
        reply.message,
        Message::Assistant {
            text: "ab".into(),
            tool_calls: vec![call("call_0", "x", r#"{"k":1}"#), call("given", "y", "{}")],
        }
    );
    assert_eq!(reply.stop_reason, StopReason::ToolUse);
    assert_eq!(reply.usage, Usage::default());
}

#[test]
fn response_without_choices_or_with_error_is_rejected() {
    assert!(response(json!({"choices": []})).is_err());
    let error = response(json!({"error": {"message": "quota", "code": 402}})).expect_err("error body");
    assert!(error.contains("quota"), "{error}");
}

fn run(chunks: &[serde_json::Value]) -> (Result<StreamState, String>, Vec<ModelDelta>) {
    let sink = Recorder::default();
    let mut state = StreamState::default();
    for chunk in chunks {
        let parsed: WireChunk = match serde_json::from_value(chunk.clone()) {
            Ok(parsed) => parsed,
            Err(error) => return (Err(error.to_string()), sink.0.into_inner().expect("lock")),
        };
        if let Err(error) = state.apply(parsed, &sink) {
            return (Err(error), sink.0.into_inner().expect("lock"));
        }
    }
    (Ok(state), sink.0.into_inner().expect("lock"))
}

#[test]
fn stream_reassembles_interleaved_tool_calls_by_index() {
    let (state, deltas) = run(&[
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}], "usage": null}),
        json!({"choices": [{"index": 0, "delta": {"content": "Let"}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": " me"}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "c_b", "type": "function", "function": {"name": "list", "arguments": ""}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c_a", "type": "function", "function": {"name": "read", "arguments": "{\"p"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "\":1}"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "prompt_tokens_details": {"cached_tokens": 2}}}),
    ]);
    let response = state.expect("valid").into_response();
    assert_eq!(
        response.message,
        Message::Assistant {
            text: "Let me".into(),
            tool_calls: vec![call("c_a", "read", r#"{"p":1}"#), call("c_b", "list", "{}")],
        }
    );
    assert_eq!(response.stop_reason, StopReason::ToolUse);
    assert_eq!(
        response.usage,
        Usage { input_tokens: 7, output_tokens: 4, cache_read_tokens: 2, cache_write_tokens: 0 }
    );
    assert_eq!(
        deltas,
        vec![
            ModelDelta::Text("Let".into()),
            ModelDelta::Text(" me".into()),
            ModelDelta::ToolCallStarted { id: "c_b".into(), name: "list".into() },
            ModelDelta::ToolCallStarted { id: "c_a".into(), name: "read".into() },
        ]
    );
}

#[test]
fn stream_tool_call_without_id_or_index_gets_placeholders() {
    let (state, deltas) = run(&[
        json!({"choices": [{"delta": {"tool_calls": [{"function": {"name": "x", "arguments": "{}"}}]}, "finish_reason": "tool_calls"}]}),
    ]);
    let response = state.expect("valid").into_response();
    assert_eq!(
        response.message,
        Message::Assistant { text: String::new(), tool_calls: vec![call("call_0", "x", "{}")] }
    );
    assert_eq!(deltas, vec![ModelDelta::ToolCallStarted { id: "call_0".into(), name: "x".into() }]);
}

#[test]
fn stream_error_chunk_and_absurd_index_are_errors() {
    let (state, _) = run(&[json!({"error": {"message": "provider fell over"}})]);
    assert!(state.err().is_some_and(|error| error.contains("provider fell over")));
    let (state, _) = run(&[
        json!({"choices": [{"delta": {"tool_calls": [{"index": 5_000_000, "function": {"name": "x"}}]}}]}),
    ]);
    assert!(state.is_err());
}
