//! Reading the model's output: Hermes-style tool calls (`<tool_call>{"name": ..., "arguments":
//! {...}}</tool_call>`, one or more, after optional text) become real `ToolCall`s; anything else
//! (no call, a call that is not JSON, no name, unbalanced tags, text after the calls) is plain
//! text, so a small model's malformed attempt ends the turn with what it wrote instead of
//! failing it. `StreamFilter` decides which part of the output may stream as text while it is
//! generated: everything before a `<tool_call>` tag, never a partial tag or trailing
//! whitespace, so the streamed text is always exactly the final reply's text.

use clawdia_core::ToolCall;
use clawdia_core::random::RandomError;

pub const OPEN: &str = "<tool_call>";
pub const CLOSE: &str = "</tool_call>";

/// The reply as text and tool calls.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub text: String,
    pub tool_calls: Vec<ToolCall>,
}

/// Splits `output` into text and tool calls. Without well-formed calls the whole output
/// (trimmed at the end) is the text and there are no calls. Each call gets a fresh id
/// (`call_` + 16 hex digits from `clawdia_core::random`); without the OS random source that is
/// an error.
pub fn parse(output: &str) -> Result<Parsed, RandomError> {
    let plain = || Ok(Parsed { text: output.trim_end().to_string(), tool_calls: Vec::new() });
    let Some(start) = output.find(OPEN) else { return plain() };
    let mut rest = &output[start..];
    let mut calls = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        let Some(after_open) = rest.strip_prefix(OPEN) else { return plain() };
        // A missing close tag is tolerated only for the last call, when the model stopped
        // right after the JSON (the end-of-turn token replaced the tag).
        let (body, next) = match after_open.find(CLOSE) {
            Some(end) => (&after_open[..end], &after_open[end + CLOSE.len()..]),
            None => (after_open, ""),
        };
        let Some(call) = call_from_json(body.trim()) else { return plain() };
        calls.push(call);
        rest = next;
    }
    if calls.is_empty() {
        return plain();
    }
    for call in &mut calls {
        call.id = format!("call_{}", clawdia_core::random::hex(8)?);
    }
    Ok(Parsed { text: output[..start].trim_end().to_string(), tool_calls: calls })
}

/// `{"name": "...", "arguments": {...} | "json text"}` → a call (its id is drawn by `parse`).
fn call_from_json(body: &str) -> Option<ToolCall> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let object = value.as_object()?;
    let name = object.get("name")?.as_str()?.trim();
    if name.is_empty() {
        return None;
    }
    let arguments = match object.get("arguments").or_else(|| object.get("parameters")) {
        None | Some(serde_json::Value::Null) => "{}".to_string(),
        Some(serde_json::Value::Object(map)) => serde_json::Value::Object(map.clone()).to_string(),
        Some(serde_json::Value::String(text)) => match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => serde_json::Value::Object(map).to_string(),
            _ => return None,
        },
        Some(_) => return None,
    };
    Some(ToolCall { id: String::new(), name: name.to_string(), arguments })
}

/// Tracks how much of the growing output has been streamed as text.
#[derive(Debug, Default)]
pub struct StreamFilter {
    /// Bytes of the output already streamed.
    sent: usize,
    /// Whether tool calls are possible (the request offered tools).
    tools: bool,
}

impl StreamFilter {
    pub fn new(tools: bool) -> StreamFilter {
        StreamFilter { sent: 0, tools }
    }

    /// The part of `output` that may be streamed now and was not yet.
    pub fn next<'a>(&mut self, output: &'a str) -> &'a str {
        let limit = self.safe_len(output);
        if limit <= self.sent {
            return "";
        }
        let chunk = &output[self.sent..limit];
        self.sent = limit;
        chunk
    }

    /// What remains to stream once the output is complete, given the final text (a prefix of
    /// the output, or all of it when the tool calls turned out malformed).
    pub fn finish<'a>(&mut self, text: &'a str) -> &'a str {
        if text.len() <= self.sent {
            return "";
        }
        let chunk = &text[self.sent..];
        self.sent = text.len();
        chunk
    }

    /// Length of the prefix of `output` that is certainly text: before any `<tool_call>`, not
    /// ending in what could be the start of one, and not ending in whitespace (the final text
    /// is trimmed at the end).
    fn safe_len(&self, output: &str) -> usize {
        let mut end = output.len();
        if self.tools {
            if let Some(tag) = output.find(OPEN) {
                end = tag;
            } else {
                for keep in (1..OPEN.len()).rev() {
                    if output.ends_with(&OPEN[..keep]) {
                        end = output.len() - keep;
                        break;
                    }
                }
            }
        }
        output[..end].trim_end().len()
    }
}

#[cfg(test)]
mod tests;
