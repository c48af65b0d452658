//! Renders a `Reply` in the Anthropic Messages or OpenAI Chat Completions wire format: the
//! realistic SSE event sequence (small text deltas, tool-call arguments in several pieces, usage,
//! the end event) or the standard JSON body, plus the failure forms (error statuses, truncated
//! and malformed replies).

use serde_json::{Value, json};

use crate::reply::{Reply, ReplyKind};

/// Which API is being answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    Anthropic,
    OpenAi,
}

/// The parts of a request the reply depends on.
pub(crate) struct Asked<'a> {
    pub model: &'a str,
    pub include_usage: bool,
}

/// A unique number per generated id (message ids, tool call ids).
pub(crate) trait Ids {
    fn next_id(&self) -> u64;
}

/// Splits text into pieces of at most `size` characters.
fn pieces(text: &str, size: usize) -> Vec<&str> {
    let mut result = Vec::new();
    let mut start = 0;
    let mut count = 0;
    for (offset, _) in text.char_indices() {
        if count == size {
            result.push(&text[start..offset]);
            start = offset;
            count = 0;
        }
        count += 1;
    }
    if start < text.len() {
        result.push(&text[start..]);
    }
    result
}

/// Tool arguments split into about three pieces, as providers stream them.
fn argument_pieces(arguments: &str) -> Vec<&str> {
    let chars = arguments.chars().count();
    if chars < 3 {
        return pieces(arguments, 3);
    }
    pieces(arguments, chars.div_ceil(3))
}

fn content_of(kind: &ReplyKind) -> (&str, &[(String, String)]) {
    match kind {
        ReplyKind::Text(text) => (text, &[]),
        ReplyKind::ToolCalls(calls) => ("", calls),
        ReplyKind::TextThenToolCalls(text, calls) => (text, calls),
        _ => ("", &[]),
    }
}

fn sse(out: &mut Vec<String>, event: Option<&str>, data: &Value) {
    match event {
        Some(name) => out.push(format!("event: {name}\ndata: {data}\n\n")),
        None => out.push(format!("data: {data}\n\n")),
    }
}

// ---- Anthropic -----------------------------------------------------------------------------

fn anthropic_usage(reply: &Reply, output: u64) -> Value {
    json!({
        "input_tokens": reply.usage.0,
        "output_tokens": output,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
    })
}

/// The SSE events of a streamed Anthropic reply (for content, truncated and malformed kinds).
pub(crate) fn anthropic_events(reply: &Reply, asked: &Asked<'_>, ids: &dyn Ids) -> Vec<String> {
    let mut out = Vec::new();
    sse(
        &mut out,
        Some("message_start"),
        &json!({
            "type": "message_start",
            "message": {
                "id": format!("msg_mock_{}", ids.next_id()),
                "type": "message",
                "role": "assistant",
                "model": asked.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": anthropic_usage(reply, 1),
            }
        }),
    );
    match &reply.kind {
        ReplyKind::Truncated => {
            sse(
                &mut out,
                Some("content_block_start"),
                &json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            );
            for piece in ["This reply ", "breaks off"] {
                sse(
                    &mut out,
                    Some("content_block_delta"),
                    &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
                );
            }
            return out;
        }
        ReplyKind::Malformed => {
            out.push("event: content_block_start\ndata: {\"type\": \"content_block_start\", \"index\": 0, oops\n\n".to_string());
            return out;
        }
        _ => {}
    }
    sse(&mut out, Some("ping"), &json!({"type": "ping"}));
    let (text, calls) = content_of(&reply.kind);
    let mut index = 0;
    if !text.is_empty() {
        sse(
            &mut out,
            Some("content_block_start"),
            &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}),
        );
        for piece in pieces(text, 4) {
            sse(
                &mut out,
                Some("content_block_delta"),
                &json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}),
            );
        }
        sse(&mut out, Some("content_block_stop"), &json!({"type": "content_block_stop", "index": index}));
        index += 1;
    }
    for (name, arguments) in calls {
        let id = format!("toolu_mock_{}", ids.next_id());
        sse(
            &mut out,
            Some("content_block_start"),
            &json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}}}),
        );
        for piece in argument_pieces(arguments) {
            sse(
                &mut out,
                Some("content_block_delta"),
                &json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            );
        }
        sse(&mut out, Some("content_block_stop"), &json!({"type": "content_block_stop", "index": index}));
        index += 1;
    }
    let stop_reason = if calls.is_empty() { "end_turn" } else { "tool_use" };
    sse(
        &mut out,
        Some("message_delta"),
        &json!({
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": reply.usage.1},
        }),
    );
    sse(&mut out, Some("message_stop"), &json!({"type": "message_stop"}));
    out
}

/// The JSON body of a non-streamed Anthropic reply (content kinds only).
pub(crate) fn anthropic_body(reply: &Reply, asked: &Asked<'_>, ids: &dyn Ids) -> Value {
    let (text, calls) = content_of(&reply.kind);
    let mut content = Vec::new();
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for (name, arguments) in calls {
        let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
        content.push(json!({"type": "tool_use", "id": format!("toolu_mock_{}", ids.next_id()), "name": name, "input": input}));
    }
    json!({
        "id": format!("msg_mock_{}", ids.next_id()),
        "type": "message",
        "role": "assistant",
        "model": asked.model,
        "content": content,
        "stop_reason": if calls.is_empty() { "end_turn" } else { "tool_use" },
        "stop_sequence": null,
        "usage": anthropic_usage(reply, reply.usage.1),
    })
}

pub(crate) fn anthropic_error(code: u16) -> Value {
    let kind = match code {
        400 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        500..=599 => "api_error",
        _ => "invalid_request_error",
    };
    json!({"type": "error", "error": {"type": kind, "message": format!("mock error {code}")}})
}

// ---- OpenAI --------------------------------------------------------------------------------

fn openai_usage(reply: &Reply) -> Value {
    json!({
        "prompt_tokens": reply.usage.0,
        "completion_tokens": reply.usage.1,
        "total_tokens": reply.usage.0 + reply.usage.1,
        "prompt_tokens_details": {"cached_tokens": 0},
    })
}

/// The SSE events of a streamed OpenAI reply (for content, truncated and malformed kinds).
pub(crate) fn openai_events(reply: &Reply, asked: &Asked<'_>, ids: &dyn Ids) -> Vec<String> {
    let id = format!("chatcmpl-mock-{}", ids.next_id());
    let chunk = |delta: Value, finish_reason: Value| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": asked.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        })
    };
    let mut out = Vec::new();
    sse(&mut out, None, &chunk(json!({"role": "assistant", "content": ""}), Value::Null));
    match &reply.kind {
        ReplyKind::Truncated => {
            for piece in ["This reply ", "breaks off"] {
                sse(&mut out, None, &chunk(json!({"content": piece}), Value::Null));
            }
            return out;
        }
        ReplyKind::Malformed => {
            out.push("data: {\"id\": \"chatcmpl-mock\", \"choices\": [oops\n\n".to_string());
            return out;
        }
        _ => {}
    }
    let (text, calls) = content_of(&reply.kind);
    for piece in pieces(text, 4) {
        sse(&mut out, None, &chunk(json!({"content": piece}), Value::Null));
    }
    for (index, (name, arguments)) in calls.iter().enumerate() {
        let call_id = format!("call_mock_{}", ids.next_id());
        sse(
            &mut out,
            None,
            &chunk(
                json!({"tool_calls": [{"index": index, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                Value::Null,
            ),
        );
        for piece in argument_pieces(arguments) {
            sse(
                &mut out,
                None,
                &chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                    Value::Null,
                ),
            );
        }
    }
    let finish_reason = if calls.is_empty() { "stop" } else { "tool_calls" };
    sse(&mut out, None, &chunk(json!({}), json!(finish_reason)));
    if asked.include_usage {
        sse(
            &mut out,
            None,
            &json!({
                "id": id,
                "object": "chat.completion.chunk",
                "created": 0,
                "model": asked.model,
                "choices": [],
                "usage": openai_usage(reply),
            }),
        );
    }
    out.push("data: [DONE]\n\n".to_string());
    out
}

/// The JSON body of a non-streamed OpenAI reply (content kinds only).
pub(crate) fn openai_body(reply: &Reply, asked: &Asked<'_>, ids: &dyn Ids) -> Value {
    let (text, calls) = content_of(&reply.kind);
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) },
    });
    if !calls.is_empty() {
        let tool_calls: Vec<Value> = calls
            .iter()
            .map(|(name, arguments)| {
                json!({
                    "id": format!("call_mock_{}", ids.next_id()),
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                })
            })
            .collect();
        message["tool_calls"] = Value::Array(tool_calls);
    }
    json!({
        "id": format!("chatcmpl-mock-{}", ids.next_id()),
        "object": "chat.completion",
        "created": 0,
        "model": asked.model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": if calls.is_empty() { "stop" } else { "tool_calls" },
        }],
        "usage": openai_usage(reply),
    })
}

pub(crate) fn openai_error(code: u16) -> Value {
    let kind = match code {
        401 | 403 => "authentication_error",
        429 => "rate_limit_exceeded",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    };
    json!({"error": {"message": format!("mock error {code}"), "type": kind, "param": null, "code": null}})
}

/// An invalid JSON body of the right provider flavour (non-streaming `Malformed`).
pub(crate) fn malformed_body(wire: Wire) -> &'static str {
    match wire {
        Wire::Anthropic => r#"{"id": "msg_mock", "type": "message", "content": [oops]}"#,
        Wire::OpenAi => r#"{"id": "chatcmpl-mock", "choices": [oops]}"#,
    }
}

#[cfg(test)]
mod tests;
