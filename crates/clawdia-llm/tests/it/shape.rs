//! What the clients put on the wire, as the mock recorded it: paths, auth and version headers,
//! configured extra headers, system prompt placement, tool definitions, Anthropic's grouping of
//! tool results into one user message, OpenAI's `role: "tool"` results and stream options.

use clawdia_core::{ChatRequest, Message, NoDeltas, ToolCall, ToolSpec};
use clawdia_test_support::{MockLlm, RecordedRequest};
use serde_json::json;

use crate::{Wire, client_with, settings};

fn transcript_request(stream: bool) -> ChatRequest {
    ChatRequest {
        model: "the-model".to_string(),
        system: "You are Clawdia.".to_string(),
        messages: vec![
            Message::user("read a and b"),
            Message::Assistant {
                text: "Reading.".to_string(),
                tool_calls: vec![
                    ToolCall { id: "c1".into(), name: "read".into(), arguments: r#"{"path":"a"}"#.into() },
                    ToolCall { id: "c2".into(), name: "read".into(), arguments: r#"{"path":"b"}"#.into() },
                ],
            },
            Message::ToolResult {
                call_id: "c1".into(),
                name: "read".into(),
                content: "A".into(),
                is_error: false,
            },
            Message::ToolResult {
                call_id: "c2".into(),
                name: "read".into(),
                content: "no such file".into(),
                is_error: true,
            },
        ],
        tools: vec![ToolSpec {
            name: "read".into(),
            description: "Read a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }],
        max_tokens: 1000,
        temperature: Some(0.5),
        stop: Vec::new(),
        stream,
    }
}

async fn send(wire: Wire, stream: bool) -> RecordedRequest {
    let mock = MockLlm::start().await;
    let mut settings = settings(&mock, wire);
    settings.headers = vec![("X-Title".to_string(), "clawdia-tests".to_string())];
    let client = client_with(settings, wire);
    client.complete(&transcript_request(stream), &NoDeltas).await.expect("mock answers");
    let mut requests = mock.requests();
    assert_eq!(requests.len(), 1);
    requests.remove(0)
}

#[tokio::test]
async fn anthropic_request_shape() {
    for stream in [true, false] {
        let recorded = send(Wire::Anthropic, stream).await;
        assert_eq!(recorded.path, "/v1/messages");
        assert_eq!(recorded.header("x-api-key"), Some("test-key"));
        assert_eq!(recorded.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(recorded.header("authorization"), None);
        assert_eq!(recorded.header("x-title"), Some("clawdia-tests"));
        assert_eq!(recorded.header("content-type"), Some("application/json"));
        let body = &recorded.body;
        assert_eq!(body["model"], "the-model");
        assert_eq!(body["system"], "You are Clawdia.");
        assert_eq!(body["max_tokens"], 1000);
        assert_eq!(body["stream"], stream);
        assert_eq!(
            body["tools"],
            json!([{
                "name": "read",
                "description": "Read a file",
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
            }])
        );
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": "read a and b"},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Reading."},
                    {"type": "tool_use", "id": "c1", "name": "read", "input": {"path": "a"}},
                    {"type": "tool_use", "id": "c2", "name": "read", "input": {"path": "b"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "c1", "content": "A"},
                    {"type": "tool_result", "tool_use_id": "c2", "content": "no such file", "is_error": true},
                ]},
            ])
        );
        assert_eq!(recorded.body_bytes, serde_json::to_vec(body).expect("json").len());
    }
}

#[tokio::test]
async fn openai_request_shape() {
    for stream in [true, false] {
        let recorded = send(Wire::OpenAi, stream).await;
        assert_eq!(recorded.path, "/v1/chat/completions");
        assert_eq!(recorded.header("authorization"), Some("Bearer test-key"));
        assert_eq!(recorded.header("x-api-key"), None);
        assert_eq!(recorded.header("x-title"), Some("clawdia-tests"));
        let body = &recorded.body;
        assert_eq!(body["model"], "the-model");
        assert_eq!(body["stream"], stream);
        assert_eq!(body["temperature"], 0.5);
        if stream {
            assert_eq!(body["stream_options"], json!({"include_usage": true}));
        } else {
            assert!(body.get("stream_options").is_none());
        }
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {
                "name": "read",
                "description": "Read a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            }}])
        );
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "You are Clawdia."},
                {"role": "user", "content": "read a and b"},
                {"role": "assistant", "content": "Reading.", "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{\"path\":\"a\"}"}},
                    {"id": "c2", "type": "function", "function": {"name": "read", "arguments": "{\"path\":\"b\"}"}},
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "A"},
                {"role": "tool", "tool_call_id": "c2", "content": "no such file"},
            ])
        );
    }
}

#[tokio::test]
async fn no_key_sends_no_auth_header() {
    let mock = MockLlm::start().await;
    for wire in [Wire::Anthropic, Wire::OpenAi] {
        let mut settings = settings(&mock, wire);
        settings.api_key = None;
        client_with(settings, wire).complete(&transcript_request(false), &NoDeltas).await.expect("answers");
    }
    for recorded in mock.requests() {
        assert_eq!(recorded.header("x-api-key"), None);
        assert_eq!(recorded.header("authorization"), None);
    }
}
