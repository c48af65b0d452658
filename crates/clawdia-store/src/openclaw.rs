//! Importing an OpenClaw transcript (`~/.openclaw/agents/<agent>/sessions/<id>.jsonl`) into a new
//! session. The parser is liberal and never panics: it takes OpenClaw's own entries
//! (`{"type":"message","message":{"role":"user"|"assistant"|"toolResult",…}}` with `text`,
//! `toolCall` and `thinking` blocks) and also plain `{"role":…,"content":…}` lines with
//! Anthropic-style (`tool_use`, `tool_result`) or OpenAI-style (`tool_calls`, role `tool`) parts.
//!
//! Entries of other types (session header, `model_change`, `custom`, …) are skipped silently.
//! Malformed lines, and parts that cannot be imported (a result for a call never made, a call
//! without an id, an empty message), are skipped and reported with their line number. A file
//! that yields no message at all (random bytes, an empty file, only headers) is refused and
//! creates nothing. Lines are imported in file order; OpenClaw's `parentId` links are not followed.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use clawdia_core::{Message, StoreError, ToolCall};
use serde_json::{Map, Value};

use crate::{ImportReport, Store, StoredMessage, repair};
use clawdia_core::time::{now_ms, parse_rfc3339};

impl Store {
    /// Imports the OpenClaw JSONL transcript at `path` as a new session of `agent` (with a fresh
    /// id and the given trust-marker `boundary`), in one transaction. Tool calls the file never
    /// answers get synthetic error results, as `open` would add.
    pub fn import_openclaw_jsonl(
        &self,
        agent: &str,
        path: &Path,
        boundary: &str,
    ) -> Result<ImportReport, StoreError> {
        let bytes = std::fs::read(path)
            .map_err(|error| StoreError::Database(format!("cannot read {}: {error}", path.display())))?;
        let parsed = parse(&bytes);
        if parsed.messages.is_empty() {
            return Err(StoreError::Invalid(nothing_to_import(path, &parsed.skipped)));
        }
        let imported = parsed.messages.len();
        let now = now_ms();
        let mut previous_at = None;
        let rows: Vec<StoredMessage> = parsed
            .messages
            .into_iter()
            .map(|parsed| {
                let at = parsed.at.or(previous_at).unwrap_or(now);
                previous_at = Some(at);
                StoredMessage { seq: 0, at, message: parsed.message }
            })
            .collect();
        let plain: Vec<Message> = rows.iter().map(|row| row.message.clone()).collect();
        let insertions = repair::plan(&plain);
        let repaired = insertions.len();
        let mut previous_at = now;
        let mut seq = 0;
        let rows: Vec<StoredMessage> =
            repair::apply(&rows, insertions, |message| StoredMessage { seq: 0, at: 0, message })
                .into_iter()
                .map(|(origin, mut row)| {
                    seq += 1;
                    row.seq = seq;
                    if origin.is_none() {
                        row.at = previous_at;
                    }
                    previous_at = row.at;
                    row
                })
                .collect();
        let session_id =
            clawdia_core::random::session_id().map_err(|error| StoreError::Database(error.to_string()))?;
        self.create_with_messages(&session_id, agent, boundary, &rows)?;
        Ok(ImportReport { session_id, imported, repaired, skipped_lines: parsed.skipped })
    }
}

/// Why a file yielded no message, in one line: the first reason a line was skipped, if any.
fn nothing_to_import(path: &Path, skipped: &[(usize, String)]) -> String {
    let why = match skipped.first() {
        None => "it has no message lines".to_string(),
        Some((line, reason)) if skipped.len() == 1 => format!("line {line}: {reason}"),
        Some((line, reason)) => {
            format!("{} lines unreadable, the first (line {line}): {reason}", skipped.len())
        }
    };
    format!(
        "{}: nothing to import ({why}); expected an OpenClaw session transcript (JSON lines with messages); no session was created",
        path.display()
    )
}

/// What the parser took from a file.
#[derive(Debug, Default)]
pub(crate) struct ParsedTranscript {
    pub messages: Vec<ParsedMessage>,
    /// `(line number from 1, reason)`.
    pub skipped: Vec<(usize, String)>,
}

#[derive(Debug)]
pub(crate) struct ParsedMessage {
    /// Unix milliseconds, when the line says.
    pub at: Option<i64>,
    pub message: Message,
}

/// Parses a whole transcript file. Never fails: what cannot be read is reported in `skipped`.
pub(crate) fn parse(bytes: &[u8]) -> ParsedTranscript {
    let mut parser = Parser::default();
    for (index, raw) in bytes.split(|&byte| byte == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let raw = if index == 0 { raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw) } else { raw };
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            parser.skip(line, "not valid UTF-8".to_string());
            continue;
        };
        match serde_json::from_str::<Value>(text) {
            Ok(value) => parser.entry(line, &value),
            Err(error) => parser.skip(line, format!("malformed JSON: {error}")),
        }
    }
    parser.transcript
}

#[derive(Default)]
struct Parser {
    transcript: ParsedTranscript,
    /// Tool call id to tool name, for every call imported so far.
    calls: HashMap<String, String>,
    /// Call ids that already have a result.
    answered: HashSet<String>,
}

/// The messages one line yields, and the parts of it that could not be imported.
#[derive(Default)]
struct Converted {
    messages: Vec<Message>,
    problems: Vec<String>,
}

impl Parser {
    fn skip(&mut self, line: usize, reason: String) {
        self.transcript.skipped.push((line, reason));
    }

    fn entry(&mut self, line: usize, value: &Value) {
        let Some(entry) = value.as_object() else {
            self.skip(line, "not a JSON object".to_string());
            return;
        };
        let message = match entry.get("type") {
            Some(Value::String(kind)) if kind == "message" => match entry.get("message") {
                Some(Value::Object(message)) => message,
                _ => {
                    self.skip(line, "message entry without a `message` object".to_string());
                    return;
                }
            },
            // Claude-Code-style lines: `{"type":"user","message":{"role":"user",…}}`.
            Some(Value::String(kind))
                if (kind == "user" || kind == "assistant")
                    && entry.get("message").is_some_and(Value::is_object) =>
            {
                match entry.get("message") {
                    Some(Value::Object(message)) => message,
                    _ => return,
                }
            }
            // Session header, model_change, thinking_level_change, custom, …
            Some(Value::String(_)) => return,
            Some(_) => {
                self.skip(line, "`type` is not a string".to_string());
                return;
            }
            None if entry.contains_key("role") => entry,
            None => {
                self.skip(line, "neither a typed entry nor a message".to_string());
                return;
            }
        };
        let at = timestamp(message.get("timestamp")).or_else(|| timestamp(entry.get("timestamp")));
        let converted = match self.message(message) {
            Ok(converted) => converted,
            Err(reason) => {
                self.skip(line, reason);
                return;
            }
        };
        for problem in converted.problems {
            self.skip(line, problem);
        }
        for message in converted.messages {
            self.transcript.messages.push(ParsedMessage { at, message });
        }
    }

    fn message(&mut self, message: &Map<String, Value>) -> Result<Converted, String> {
        let role = message
            .get("role")
            .and_then(Value::as_str)
            .ok_or_else(|| "message without a string `role`".to_string())?;
        match role {
            "user" | "human" => self.user(message),
            "assistant" | "model" => self.assistant(message),
            "toolResult" | "tool_result" | "tool" => {
                let mut converted = Converted::default();
                let result = self.tool_result(
                    first_str(message, &["toolCallId", "tool_call_id", "tool_use_id"]),
                    first_str(message, &["toolName", "name"]),
                    message.get("content"),
                    first_bool(message, &["isError", "is_error"]),
                )?;
                converted.messages.push(result);
                Ok(converted)
            }
            "system" | "developer" => Err(format!("`{role}` messages are not imported")),
            other => Err(format!("unknown role `{}`", shorten(other))),
        }
    }

    /// Text, images as `[image]`, and Anthropic-style `tool_result` blocks (emitted first, as the
    /// results of the preceding assistant message).
    fn user(&mut self, message: &Map<String, Value>) -> Result<Converted, String> {
        let mut converted = Converted::default();
        let mut texts = Vec::new();
        match message.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => texts.push(text.clone()),
            Some(Value::Array(blocks)) => {
                for block in blocks {
                    match block_type(block) {
                        "text" | "input_text" => texts.extend(block_text(block)),
                        "image" | "image_url" | "input_image" => texts.push("[image]".to_string()),
                        "tool_result" | "toolResult" => {
                            let Some(block) = block.as_object() else {
                                continue;
                            };
                            match self.tool_result(
                                first_str(block, &["tool_use_id", "toolCallId", "tool_call_id"]),
                                first_str(block, &["toolName", "name"]),
                                block.get("content"),
                                first_bool(block, &["is_error", "isError"]),
                            ) {
                                Ok(result) => converted.messages.push(result),
                                Err(problem) => converted.problems.push(problem),
                            }
                        }
                        _ => {}
                    }
                }
            }
            Some(_) => return Err("`content` is neither text nor a list of blocks".to_string()),
        }
        let text = texts.join("\n");
        if !text.trim().is_empty() {
            converted.messages.push(Message::User { text });
        }
        if converted.messages.is_empty() && converted.problems.is_empty() {
            return Err("empty user message".to_string());
        }
        Ok(converted)
    }

    /// Text and tool calls (`toolCall`, `tool_use`, `function_call` blocks and OpenAI
    /// `tool_calls`); thinking is dropped.
    fn assistant(&mut self, message: &Map<String, Value>) -> Result<Converted, String> {
        let mut converted = Converted::default();
        let mut texts = Vec::new();
        let mut calls = Vec::new();
        match message.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => texts.push(text.clone()),
            Some(Value::Array(blocks)) => {
                for block in blocks {
                    match block_type(block) {
                        "text" | "output_text" => texts.extend(block_text(block)),
                        "toolCall" => calls.push(call_parts(block, &["id"], "arguments")),
                        "tool_use" => calls.push(call_parts(block, &["id"], "input")),
                        "function_call" => calls.push(call_parts(block, &["call_id", "id"], "arguments")),
                        _ => {}
                    }
                }
            }
            Some(_) => return Err("`content` is neither text nor a list of blocks".to_string()),
        }
        if let Some(Value::Array(tool_calls)) = message.get("tool_calls") {
            for call in tool_calls {
                let function = call.get("function").unwrap_or(&Value::Null);
                calls.push((
                    call.get("id").and_then(Value::as_str).map(str::to_string),
                    function.get("name").and_then(Value::as_str).map(str::to_string),
                    arguments_text(function.get("arguments")),
                ));
            }
        }
        let mut tool_calls = Vec::new();
        for (id, name, arguments) in calls {
            let (Some(id), Some(name)) = (id, name) else {
                converted.problems.push("tool call without an id or a name dropped".to_string());
                continue;
            };
            if id.is_empty() || name.is_empty() {
                converted.problems.push("tool call without an id or a name dropped".to_string());
                continue;
            }
            if self.calls.contains_key(&id) {
                converted.problems.push(format!("repeated tool call id `{}` dropped", shorten(&id)));
                continue;
            }
            self.calls.insert(id.clone(), name.clone());
            tool_calls.push(ToolCall { id, name, arguments });
        }
        let text = texts.join("\n");
        if text.trim().is_empty() && tool_calls.is_empty() {
            if converted.problems.is_empty() {
                return Err("assistant message with no text or tool calls".to_string());
            }
            return Ok(converted);
        }
        converted.messages.push(Message::Assistant { text, tool_calls });
        Ok(converted)
    }

    fn tool_result(
        &mut self,
        call_id: Option<&str>,
        name: Option<&str>,
        content: Option<&Value>,
        is_error: bool,
    ) -> Result<Message, String> {
        let call_id =
            call_id.filter(|id| !id.is_empty()).ok_or_else(|| "tool result without a call id".to_string())?;
        let Some(call_name) = self.calls.get(call_id) else {
            return Err(format!("tool result for unknown call `{}` dropped", shorten(call_id)));
        };
        let name = name.filter(|name| !name.is_empty()).unwrap_or(call_name).to_string();
        if !self.answered.insert(call_id.to_string()) {
            return Err(format!("second result for call `{}` dropped", shorten(call_id)));
        }
        Ok(Message::ToolResult {
            call_id: call_id.to_string(),
            name,
            content: content_text(content),
            is_error,
        })
    }
}

fn block_type(block: &Value) -> &str {
    match block {
        Value::String(_) => "text",
        _ => block.get("type").and_then(Value::as_str).unwrap_or(""),
    }
}

fn block_text(block: &Value) -> Option<String> {
    match block {
        Value::String(text) => Some(text.clone()),
        _ => block.get("text").and_then(Value::as_str).map(str::to_string),
    }
}

/// `(id, name, arguments as JSON text)` of a call block.
fn call_parts(
    block: &Value,
    id_keys: &[&str],
    arguments_key: &str,
) -> (Option<String>, Option<String>, String) {
    let id = id_keys.iter().find_map(|key| block.get(key).and_then(Value::as_str));
    (
        id.map(str::to_string),
        block.get("name").and_then(Value::as_str).map(str::to_string),
        arguments_text(block.get(arguments_key)),
    )
}

/// Arguments as the model produced them: a JSON string is kept as is, anything else encoded.
fn arguments_text(arguments: Option<&Value>) -> String {
    match arguments {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// A tool result's content as text: a string, or the text blocks of a list joined by newlines.
fn content_text(content: Option<&Value>) -> String {
    match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|block| match block_type(block) {
                "image" | "image_url" | "input_image" => Some("[image]".to_string()),
                _ => block_text(block),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Some(Value::Object(object)) => match object.get("text") {
            Some(Value::String(text)) => text.clone(),
            _ => Value::Object(object.clone()).to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// Unix milliseconds from a number (milliseconds, or seconds when too small to be ms since
/// 1973) or an RFC 3339 string.
fn timestamp(value: Option<&Value>) -> Option<i64> {
    const SMALLEST_MILLIS: f64 = 100_000_000_000.0;
    match value? {
        Value::Number(number) => {
            let number = number.as_f64()?;
            // `as` saturates, so absurd numbers cannot overflow.
            if number.abs() < SMALLEST_MILLIS { Some((number * 1000.0) as i64) } else { Some(number as i64) }
        }
        Value::String(text) => parse_rfc3339(text),
        _ => None,
    }
}

fn first_str<'a>(object: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| object.get(*key).and_then(Value::as_str))
}

fn first_bool(object: &Map<String, Value>, keys: &[&str]) -> bool {
    keys.iter().find_map(|key| object.get(*key).and_then(Value::as_bool)).unwrap_or(false)
}

/// At most 60 characters of untrusted text for a report line.
fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}
