//! The Anthropic Messages API client: the request wire types (system prompt, tools, the
//! transcript with `tool_use` / grouped `tool_result` blocks), the non-streaming response, and
//! the streaming state machine over `message_start` … `message_stop` events.

use async_trait::async_trait;
use clawdia_core::{
    ChatRequest, ChatResponse, DeltaSink, Message, ModelClient, ModelDelta, ModelError, StopReason, ToolCall,
    Usage,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::{Endpoint, FixedHeader, SseReader};
use crate::settings::ProviderSettings;

const API_VERSION: &str = "2023-06-01";
/// Content block indexes above this are treated as a malformed stream (bounds memory).
const MAX_BLOCKS: usize = 4096;

/// A client for `POST {base_url}/v1/messages`.
#[derive(Debug)]
pub struct AnthropicClient {
    endpoint: Endpoint,
}

impl AnthropicClient {
    pub fn new(settings: ProviderSettings) -> Result<AnthropicClient, ModelError> {
        let mut fixed =
            vec![FixedHeader { name: "anthropic-version", value: API_VERSION.to_string(), secret: false }];
        if let Some(key) = &settings.api_key {
            fixed.push(FixedHeader { name: "x-api-key", value: key.clone(), secret: true });
        }
        Ok(AnthropicClient { endpoint: Endpoint::new(&settings, "/v1/messages", fixed)? })
    }
}

#[async_trait]
impl ModelClient for AnthropicClient {
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
            Ok(crate::http::whole_reply_as_delta(request, reply.into_response(), sink))
        }
    }
}

// ---- request -------------------------------------------------------------------------------

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "is_empty")]
    system: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    stream: bool,
}

fn is_empty(text: &&str) -> bool {
    text.is_empty()
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a Value,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: WireContent<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireContent<'a> {
    Text(&'a str),
    Blocks(Vec<WireBlock<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

fn wire_request(request: &ChatRequest) -> WireRequest<'_> {
    WireRequest {
        model: &request.model,
        max_tokens: request.max_tokens,
        system: &request.system,
        messages: wire_messages(&request.messages),
        tools: request
            .tools
            .iter()
            .map(|tool| WireTool {
                name: &tool.name,
                description: &tool.description,
                input_schema: &tool.parameters,
            })
            .collect(),
        temperature: request.temperature,
        stop_sequences: &request.stop,
        stream: request.stream,
    }
}

/// Maps the transcript. Consecutive tool results become one user message of `tool_result`
/// blocks; an assistant turn with neither text nor calls is dropped (the API rejects empty
/// content).
fn wire_messages(messages: &[Message]) -> Vec<WireMessage<'_>> {
    let mut wire: Vec<WireMessage<'_>> = Vec::with_capacity(messages.len());
    let mut results_open = false;
    for message in messages {
        match message {
            Message::User { text } => {
                wire.push(WireMessage { role: "user", content: WireContent::Text(text) });
                results_open = false;
            }
            Message::Assistant { text, tool_calls } => {
                let mut blocks = Vec::with_capacity(tool_calls.len() + 1);
                if !text.is_empty() {
                    blocks.push(WireBlock::Text { text });
                }
                blocks.extend(tool_calls.iter().map(|call| WireBlock::ToolUse {
                    id: &call.id,
                    name: &call.name,
                    input: tool_input(&call.arguments),
                }));
                if !blocks.is_empty() {
                    wire.push(WireMessage { role: "assistant", content: WireContent::Blocks(blocks) });
                }
                results_open = false;
            }
            Message::ToolResult { call_id, content, is_error, .. } => {
                let block = WireBlock::ToolResult { tool_use_id: call_id, content, is_error: *is_error };
                match wire.last_mut() {
                    Some(WireMessage { content: WireContent::Blocks(blocks), .. }) if results_open => {
                        blocks.push(block);
                    }
                    _ => wire.push(WireMessage { role: "user", content: WireContent::Blocks(vec![block]) }),
                }
                results_open = true;
            }
        }
    }
    wire
}

/// The stored arguments as the `input` object; `{}` when they are not a JSON object.
fn tool_input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => Value::Object(serde_json::Map::new()),
    }
}

// ---- response ------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Overwrites the fields this report carries (stream reports are cumulative).
    fn apply(&self, usage: &mut Usage) {
        if let Some(tokens) = self.input_tokens {
            usage.input_tokens = tokens;
        }
        if let Some(tokens) = self.output_tokens {
            usage.output_tokens = tokens;
        }
        if let Some(tokens) = self.cache_read_input_tokens {
            usage.cache_read_tokens = tokens;
        }
        if let Some(tokens) = self.cache_creation_input_tokens {
            usage.cache_write_tokens = tokens;
        }
    }
}

#[derive(Deserialize)]
struct WireResponse {
    content: Vec<ResponseBlock>,
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ResponseBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

impl WireResponse {
    fn into_response(self) -> ChatResponse {
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in self.content {
            match block {
                ResponseBlock::Text { text: piece } => text.push_str(&piece),
                ResponseBlock::ToolUse { id, name, input } => {
                    let arguments = if input.is_null() { "{}".to_string() } else { input.to_string() };
                    tool_calls.push(ToolCall { id, name, arguments });
                }
                ResponseBlock::Other => {}
            }
        }
        let mut usage = Usage::default();
        self.usage.apply(&mut usage);
        finish(text, tool_calls, usage, self.stop_reason.as_deref())
    }
}

fn finish(text: String, tool_calls: Vec<ToolCall>, usage: Usage, stop_reason: Option<&str>) -> ChatResponse {
    let stop_reason = match stop_reason {
        Some("end_turn" | "stop_sequence") => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        Some(_) => StopReason::Other,
        None if tool_calls.is_empty() => StopReason::EndTurn,
        None => StopReason::ToolUse,
    };
    ChatResponse { message: Message::Assistant { text, tool_calls }, usage, stop_reason }
}

// ---- streaming -----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta,
    },
    ContentBlockStop,
    MessageDelta {
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Error {
        error: StreamError,
    },
    /// `ping` and event types added after this client was written.
    #[serde(other)]
    Ignored,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    /// Thinking, signature and citation deltas carry nothing this client keeps.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct StreamError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
}

enum Block {
    Text(String),
    ToolUse { id: String, name: String, arguments: String },
    Other,
}

/// What has streamed in so far.
#[derive(Default)]
struct StreamState {
    blocks: Vec<Option<Block>>,
    usage: Usage,
    stop_reason: Option<String>,
}

async fn read_stream(
    endpoint: &Endpoint,
    response: reqwest::Response,
    sink: &dyn DeltaSink,
) -> Result<ChatResponse, ModelError> {
    let mut reader = SseReader::new(endpoint, response);
    let mut state = StreamState::default();
    while let Some(event) = reader.next().await? {
        if event.event == "error" && !event.data.starts_with('{') {
            return Err(ModelError::Malformed(format!("{}: error event: {}", endpoint.name(), event.data)));
        }
        let parsed: StreamEvent = endpoint.parse_event(&event.data)?;
        if state.apply(parsed, sink).map_err(|error| name_error(endpoint, error))? {
            reader.release();
            return Ok(state.into_response());
        }
    }
    Err(ModelError::Truncated(format!("{}: stream ended without message_stop", endpoint.name())))
}

fn name_error(endpoint: &Endpoint, error: ModelError) -> ModelError {
    match error {
        ModelError::Malformed(detail) => ModelError::Malformed(format!("{}: {detail}", endpoint.name())),
        other => other,
    }
}

impl StreamState {
    /// Applies one event; `Ok(true)` once the message is complete.
    fn apply(&mut self, event: StreamEvent, sink: &dyn DeltaSink) -> Result<bool, ModelError> {
        match event {
            StreamEvent::MessageStart { message } => message.usage.apply(&mut self.usage),
            StreamEvent::ContentBlockStart { index, content_block } => {
                if index >= MAX_BLOCKS {
                    return Err(ModelError::Malformed(format!("content block index {index} out of range")));
                }
                if self.blocks.len() <= index {
                    self.blocks.resize_with(index + 1, || None);
                }
                let block = match content_block {
                    StartBlock::Text { text } => {
                        if !text.is_empty() {
                            sink.delta(ModelDelta::Text(text.clone()));
                        }
                        Block::Text(text)
                    }
                    StartBlock::ToolUse { id, name } => {
                        sink.delta(ModelDelta::ToolCallStarted { id: id.clone(), name: name.clone() });
                        Block::ToolUse { id, name, arguments: String::new() }
                    }
                    StartBlock::Other => Block::Other,
                };
                self.blocks[index] = Some(block);
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                let Some(Some(block)) = self.blocks.get_mut(index) else {
                    return Err(ModelError::Malformed(format!("delta for unknown content block {index}")));
                };
                match (block, delta) {
                    (Block::Text(text), BlockDelta::TextDelta { text: piece }) => {
                        text.push_str(&piece);
                        sink.delta(ModelDelta::Text(piece));
                    }
                    (Block::ToolUse { arguments, .. }, BlockDelta::InputJsonDelta { partial_json }) => {
                        arguments.push_str(&partial_json);
                    }
                    (Block::Other, _) | (_, BlockDelta::Other) => {}
                    _ => {
                        return Err(ModelError::Malformed(format!(
                            "delta type does not match content block {index}"
                        )));
                    }
                }
            }
            StreamEvent::ContentBlockStop | StreamEvent::Ignored => {}
            StreamEvent::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                usage.apply(&mut self.usage);
            }
            StreamEvent::MessageStop => return Ok(true),
            StreamEvent::Error { error } => return Err(stream_error(error)),
        }
        Ok(false)
    }

    fn into_response(self) -> ChatResponse {
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in self.blocks.into_iter().flatten() {
            match block {
                Block::Text(piece) => {
                    if text.is_empty() {
                        text = piece;
                    } else {
                        text.push_str(&piece);
                    }
                }
                Block::ToolUse { id, name, arguments } => {
                    let arguments = if arguments.trim().is_empty() { "{}".to_string() } else { arguments };
                    tool_calls.push(ToolCall { id, name, arguments });
                }
                Block::Other => {}
            }
        }
        finish(text, tool_calls, self.usage, self.stop_reason.as_deref())
    }
}

/// An `error` event mid-stream. Overload and rate limits keep their meaning so the router's
/// cooldown logic sees them; anything else is a malformed reply.
fn stream_error(error: StreamError) -> ModelError {
    let message = format!("{}: {}", error.kind, error.message);
    match error.kind.as_str() {
        "overloaded_error" => ModelError::Server { status: 529, message },
        "api_error" => ModelError::Server { status: 500, message },
        "rate_limit_error" => ModelError::RateLimited { retry_after: None },
        _ => ModelError::Malformed(format!("error event: {message}")),
    }
}

#[cfg(test)]
mod tests;
