//! The OpenAI-compatible Chat Completions client (OpenAI, z.ai, OpenRouter, Ollama, ...): the
//! request wire types (system message, `function` tools, assistant `tool_calls`, `role: "tool"`
//! results), the non-streaming response, and the streaming state machine over
//! `chat.completion.chunk`s that reassembles tool-call arguments by `index`.
//!
//! Usage is normalised to Anthropic's meaning: `input_tokens` excludes cached prompt tokens,
//! which are reported as `cache_read_tokens` (OpenAI's `prompt_tokens` includes them).

use async_trait::async_trait;
use clawdia_core::{
    ChatRequest, ChatResponse, DeltaSink, Message, ModelClient, ModelDelta, ModelError, StopReason, ToolCall,
    Usage,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{Endpoint, FixedHeader, SseReader};
use crate::settings::ProviderSettings;

/// Tool-call indexes above this are treated as a malformed stream (bounds memory).
const MAX_TOOL_CALLS: usize = 1024;

/// A client for `POST {base_url}/chat/completions`.
#[derive(Debug)]
pub struct OpenAiClient {
    endpoint: Endpoint,
}

impl OpenAiClient {
    pub fn new(settings: ProviderSettings) -> Result<OpenAiClient, ModelError> {
        let mut fixed = Vec::new();
        if let Some(key) = &settings.api_key {
            fixed.push(FixedHeader { name: "authorization", value: format!("Bearer {key}"), secret: true });
        }
        Ok(OpenAiClient { endpoint: Endpoint::new(&settings, "/chat/completions", fixed)? })
    }
}

#[async_trait]
impl ModelClient for OpenAiClient {
    async fn complete(
        &self,
        request: &ChatRequest,
        sink: &dyn DeltaSink,
    ) -> Result<ChatResponse, ModelError> {
        let body = serde_json::to_vec(&wire_request(request))
            .map_err(|error| ModelError::Other(format!("cannot encode request: {error}")))?;
        let response = self.endpoint.post(body).await?;
        if request.stream && !crate::http::is_json(&response) {
            read_stream(&self.endpoint, response, sink).await
        } else {
            let body = self.endpoint.read_body(response).await?;
            let reply: WireResponse = self.endpoint.parse_body(&body)?;
            let response = reply
                .into_response()
                .map_err(|detail| ModelError::Malformed(format!("{}: {detail}", self.endpoint.name())))?;
            Ok(crate::http::whole_reply_as_delta(request, response, sink))
        }
    }
}

// ---- request -------------------------------------------------------------------------------

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "is_zero")]
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: &'a str,
    },
    Assistant {
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

fn wire_request(request: &ChatRequest) -> WireRequest<'_> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(WireMessage::System { content: &request.system });
    }
    messages.extend(request.messages.iter().map(wire_message));
    WireRequest {
        model: &request.model,
        messages,
        tools: request
            .tools
            .iter()
            .map(|tool| WireTool {
                kind: "function",
                function: WireFunction {
                    name: &tool.name,
                    description: &tool.description,
                    parameters: &tool.parameters,
                },
            })
            .collect(),
        max_tokens: request.max_tokens,
        temperature: request.temperature,
        stop: &request.stop,
        stream: request.stream,
        stream_options: request.stream.then_some(StreamOptions { include_usage: true }),
    }
}

fn wire_message(message: &Message) -> WireMessage<'_> {
    match message {
        Message::User { text } => WireMessage::User { content: text },
        Message::Assistant { text, tool_calls } => WireMessage::Assistant {
            // `null` content is how the API spells "only tool calls".
            content: if text.is_empty() && !tool_calls.is_empty() { None } else { Some(text) },
            tool_calls: tool_calls
                .iter()
                .map(|call| WireToolCall {
                    id: &call.id,
                    kind: "function",
                    function: WireFunctionCall { name: &call.name, arguments: &call.arguments },
                })
                .collect(),
        },
        Message::ToolResult { call_id, content, .. } => WireMessage::Tool { tool_call_id: call_id, content },
    }
}

// ---- response ------------------------------------------------------------------------------

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        let cached =
            self.prompt_tokens_details.as_ref().and_then(|details| details.cached_tokens).unwrap_or(0);
        Usage {
            input_tokens: self.prompt_tokens.unwrap_or(0).saturating_sub(cached),
            output_tokens: self.completion_tokens.unwrap_or(0),
            cache_read_tokens: cached,
            cache_write_tokens: 0,
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    choices: Option<Vec<ResponseChoice>>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ResponseChoice {
    message: ResponseMessage,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ResponseMessage {
    content: Option<Value>,
    tool_calls: Option<Vec<ResponseToolCall>>,
}

#[derive(Deserialize)]
struct ResponseToolCall {
    id: Option<String>,
    function: ResponseFunction,
}

#[derive(Deserialize)]
struct ResponseFunction {
    name: String,
    arguments: Option<Value>,
}

impl WireResponse {
    fn into_response(self) -> Result<ChatResponse, String> {
        if let Some(error) = self.error {
            return Err(format!("error in reply: {}", error_text(&error)));
        }
        let Some(choice) = self.choices.and_then(|choices| choices.into_iter().next()) else {
            return Err("reply has no choices".to_string());
        };
        let text = match choice.message.content {
            Some(Value::String(text)) => text,
            // Some servers send content parts: keep their text.
            Some(Value::Array(parts)) => {
                parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)).collect()
            }
            _ => String::new(),
        };
        let tool_calls = choice
            .message
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(position, call)| ToolCall {
                id: call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("call_{position}")),
                name: call.function.name,
                arguments: match call.function.arguments {
                    Some(Value::String(text)) if !text.trim().is_empty() => text,
                    Some(Value::String(_)) | Some(Value::Null) | None => "{}".to_string(),
                    Some(other) => other.to_string(),
                },
            })
            .collect();
        let usage = self.usage.map(|usage| usage.to_usage()).unwrap_or_default();
        Ok(finish(text, tool_calls, usage, choice.finish_reason.as_deref()))
    }
}

fn error_text(error: &Value) -> String {
    error.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| error.to_string())
}

fn finish(
    text: String,
    tool_calls: Vec<ToolCall>,
    usage: Usage,
    finish_reason: Option<&str>,
) -> ChatResponse {
    let stop_reason = match finish_reason {
        // Some servers say "stop" even when the reply is tool calls.
        Some("stop") | None if !tool_calls.is_empty() => StopReason::ToolUse,
        Some("stop") | None => StopReason::EndTurn,
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        Some(_) => StopReason::Other,
    };
    ChatResponse { message: Message::Assistant { text, tool_calls }, usage, stop_reason }
}

// ---- streaming -----------------------------------------------------------------------------

#[derive(Deserialize)]
struct WireChunk {
    choices: Option<Vec<ChunkChoice>>,
    usage: Option<WireUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    index: Option<u32>,
    delta: Option<ChunkDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChunkDelta {
    content: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    index: Option<usize>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

struct PartialCall {
    index: usize,
    id: String,
    name: String,
    arguments: String,
    announced: bool,
}

#[derive(Default)]
struct StreamState {
    text: String,
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

async fn read_stream(
    endpoint: &Endpoint,
    response: reqwest::Response,
    sink: &dyn DeltaSink,
) -> Result<ChatResponse, ModelError> {
    let mut reader = SseReader::new(endpoint, response);
    let mut state = StreamState::default();
    while let Some(event) = reader.next().await? {
        let data = event.data.trim();
        if data == "[DONE]" {
            reader.release();
            return Ok(state.into_response());
        }
        if event.event == "error" && !data.starts_with('{') {
            return Err(ModelError::Malformed(format!("{}: error event: {data}", endpoint.name())));
        }
        if data.is_empty() {
            continue;
        }
        let chunk: WireChunk = endpoint.parse_event(data)?;
        state
            .apply(chunk, sink)
            .map_err(|detail| ModelError::Malformed(format!("{}: {detail}", endpoint.name())))?;
    }
    if state.finish_reason.is_some() {
        // Some servers close after the finish chunk without `[DONE]`.
        Ok(state.into_response())
    } else {
        Err(ModelError::Truncated(format!(
            "{}: stream ended without [DONE] or a finish_reason",
            endpoint.name()
        )))
    }
}

impl StreamState {
    fn apply(&mut self, chunk: WireChunk, sink: &dyn DeltaSink) -> Result<(), String> {
        if let Some(error) = chunk.error {
            return Err(format!("error in stream: {}", error_text(&error)));
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.to_usage());
        }
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                if let Some(content) = delta.content.filter(|content| !content.is_empty()) {
                    self.text.push_str(&content);
                    sink.delta(ModelDelta::Text(content));
                }
                for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                    self.apply_call(position, call, sink)?;
                }
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
        Ok(())
    }

    fn apply_call(
        &mut self,
        position: usize,
        call: ToolCallDelta,
        sink: &dyn DeltaSink,
    ) -> Result<(), String> {
        let index = call.index.unwrap_or(position);
        if index >= MAX_TOOL_CALLS {
            return Err(format!("tool call index {index} out of range"));
        }
        let slot = match self.calls.iter().position(|partial| partial.index == index) {
            Some(found) => &mut self.calls[found],
            None => {
                self.calls.push(PartialCall {
                    index,
                    id: String::new(),
                    name: String::new(),
                    arguments: String::new(),
                    announced: false,
                });
                let last = self.calls.len() - 1;
                &mut self.calls[last]
            }
        };
        if let Some(id) = call.id.filter(|id| !id.is_empty())
            && slot.id.is_empty()
        {
            slot.id = id;
        }
        if let Some(function) = call.function {
            if let Some(name) = function.name.filter(|name| !name.is_empty())
                && slot.name.is_empty()
            {
                slot.name = name;
            }
            if let Some(arguments) = function.arguments {
                slot.arguments.push_str(&arguments);
            }
        }
        if !slot.announced && !slot.name.is_empty() {
            if slot.id.is_empty() {
                slot.id = format!("call_{index}");
            }
            slot.announced = true;
            sink.delta(ModelDelta::ToolCallStarted { id: slot.id.clone(), name: slot.name.clone() });
        }
        Ok(())
    }

    fn into_response(mut self) -> ChatResponse {
        self.calls.sort_by_key(|call| call.index);
        let tool_calls = self
            .calls
            .into_iter()
            .map(|call| ToolCall {
                id: if call.id.is_empty() { format!("call_{}", call.index) } else { call.id },
                name: call.name,
                arguments: if call.arguments.trim().is_empty() { "{}".to_string() } else { call.arguments },
            })
            .collect();
        finish(self.text, tool_calls, self.usage.unwrap_or_default(), self.finish_reason.as_deref())
    }
}

#[cfg(test)]
mod tests;
