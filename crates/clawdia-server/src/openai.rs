//! The OpenAI-compatible surface: `GET /v1/models` (one model per agent) and
//! `POST /v1/chat/completions` (JSON or SSE chunks), so the official SDKs and chat UIs work
//! unchanged. `model` names the agent. The session comes from the `X-Clawdia-Session` header or
//! the `user` field; with neither, a new session starts, seeded with the request's earlier
//! messages. Every response carries the session id in `X-Clawdia-Session`.
//!
//! The model behind the endpoint is an agent with its own tools, so a request that brings
//! client-side tools (`tools`, `functions`, `tool` messages) is refused with a 400 that says so,
//! rather than having those tools silently dropped. `temperature`, `max_tokens` (or
//! `max_completion_tokens`) and `stop` apply to every model call of the turn; `system` and
//! `developer` messages are added to the agent's system prompt for this turn.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use clawdia_core::{AgentInfo, Message, TurnError, TurnEvent, TurnOptions, TurnOrigin, TurnRequest, Usage};
use serde::Deserialize;
use serde_json::json;

use crate::sse::{frame, stream_turn};
use crate::{ApiError, ServerState};

pub const SESSION_HEADER: &str = "x-clawdia-session";

fn model_json(agent: &AgentInfo) -> serde_json::Value {
    json!({"id": agent.name, "object": "model", "created": 0, "owned_by": "clawdia"})
}

pub async fn models(State(state): State<ServerState>) -> Json<serde_json::Value> {
    let data: Vec<serde_json::Value> = state.gateway.agents().iter().map(model_json).collect();
    Json(json!({"object": "list", "data": data}))
}

/// `GET /v1/models/{id}`: one agent as a model, or 404.
pub async fn model(State(state): State<ServerState>, Path(id): Path<String>) -> Response {
    match state.gateway.agents().iter().find(|agent| agent.name == id) {
        Some(agent) => Json(model_json(agent)).into_response(),
        None => ApiError::from(TurnError::UnknownAgent(id)).into_response(),
    }
}

#[derive(Deserialize)]
struct ChatBody {
    model: String,
    messages: Vec<InMessage>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stop: Option<Stop>,
    #[serde(default)]
    n: Option<u32>,
    /// Client-side tools: refused (see the module docs).
    #[serde(default)]
    tools: Option<serde_json::Value>,
    #[serde(default)]
    functions: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// OpenAI accepts at most this many stop sequences.
const MAX_STOP_SEQUENCES: usize = 4;

/// Why client-side tools are refused.
const NO_CLIENT_TOOLS: &str = "this endpoint runs a Clawdia agent, which calls its own tools (files, web, exec) \
     on the gateway; client-side tools (`tools`, `functions`, `tool` messages) are not supported: \
     leave them out, or give the agent the tool instead";

/// A JSON value that asks for something: not null, not an empty list.
fn requested(value: &Option<serde_json::Value>) -> bool {
    match value {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    }
}

impl ChatBody {
    /// The client's settings for this turn, checked.
    fn options(&self) -> Result<TurnOptions, ApiError> {
        if requested(&self.tools) || requested(&self.functions) {
            return Err(ApiError::bad_request(NO_CLIENT_TOOLS));
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(ApiError::bad_request("only one choice per request is supported (`n` must be 1)"));
        }
        if let Some(temperature) = self.temperature
            && !(0.0..=2.0).contains(&temperature)
        {
            return Err(ApiError::bad_request("`temperature` must be between 0 and 2"));
        }
        let max_tokens = self.max_completion_tokens.or(self.max_tokens);
        if max_tokens == Some(0) {
            return Err(ApiError::bad_request("`max_tokens` must be at least 1"));
        }
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(one)) => vec![one.clone()],
            Some(Stop::Many(many)) => many.clone(),
        };
        if stop.len() > MAX_STOP_SEQUENCES || stop.iter().any(String::is_empty) {
            return Err(ApiError::bad_request(format!(
                "`stop` takes 1 to {MAX_STOP_SEQUENCES} non-empty sequences"
            )));
        }
        let system: Vec<String> = self
            .messages
            .iter()
            .filter(|m| m.role == "system" || m.role == "developer")
            .filter_map(|m| m.content.as_ref().map(Content::text))
            .filter(|text| !text.trim().is_empty())
            .collect();
        Ok(TurnOptions {
            temperature: self.temperature,
            max_tokens,
            stop,
            system: (!system.is_empty()).then(|| system.join("\n\n")),
        })
    }
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Option<Content>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Content::Text(text) => text.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn usage_json(usage: &Usage) -> serde_json::Value {
    let prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens;
    json!({"prompt_tokens": prompt, "completion_tokens": usage.output_tokens, "total_tokens": prompt + usage.output_tokens})
}

/// Splits the request into (history, the new user message).
fn split_messages(messages: &[InMessage]) -> Result<(Vec<Message>, String), ApiError> {
    if messages.iter().any(|m| m.role == "tool" || m.role == "function") {
        return Err(ApiError::bad_request(NO_CLIENT_TOOLS));
    }
    let last_user = messages
        .iter()
        .rposition(|m| m.role == "user")
        .ok_or_else(|| ApiError::bad_request("`messages` must contain a user message"))?;
    let text = messages[last_user].content.as_ref().map(Content::text).unwrap_or_default();
    let history = messages[..last_user]
        .iter()
        .filter_map(|m| {
            let text = m.content.as_ref().map(Content::text).unwrap_or_default();
            match m.role.as_str() {
                "user" => Some(Message::user(text)),
                "assistant" if !text.is_empty() => Some(Message::assistant(text)),
                _ => None, // system and developer messages travel in `TurnOptions::system`
            }
        })
        .collect();
    Ok((history, text))
}

pub async fn chat_completions(
    State(state): State<ServerState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match chat(state.clone(), headers, body).await {
        Ok(response) => response,
        Err(error) => {
            state.counters.errors.fetch_add(1, Ordering::Relaxed);
            error.into_response()
        }
    }
}

async fn chat(
    state: ServerState,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| ApiError::new(r.status(), "invalid_request_error", r.body_text()))?;
    let parsed: ChatBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid chat completion request: {e}")))?;
    let options = parsed.options()?;
    let (history, message) = split_messages(&parsed.messages)?;
    let session = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or(parsed.user.clone())
        .filter(|s| !s.is_empty());
    let session = match session {
        Some(session) => session,
        None => clawdia_core::random::session_id()?,
    };
    let request = TurnRequest {
        from_owner: true,
        agent: parsed.model.clone(),
        session: Some(session.clone()),
        message,
        origin: TurnOrigin::Api,
        // OpenAI's `user` names the end user: policies see it as `api:<user>`.
        sender: parsed.user.clone().filter(|user| !user.is_empty()),
        history,
        tools_allow: None,
        context: clawdia_core::TurnContext::Full,
        options,
    };
    // A non-streaming turn reports an unknown agent itself (TurnError::UnknownAgent → 404); a
    // stream has already answered 200 by then, so only streams check up front.
    if parsed.stream && !state.gateway.agents().iter().any(|a| a.name == parsed.model) {
        return Err(TurnError::UnknownAgent(parsed.model.clone()).into());
    }
    let id = format!("chatcmpl-{}", clawdia_core::random::hex(8)?);
    let created = now_secs();
    let model = parsed.model.clone();
    let session_header = HeaderValue::from_str(&session).ok();
    let mut response = if parsed.stream {
        let include_usage = parsed.stream_options.as_ref().is_some_and(|o| o.include_usage);
        stream(state, request, id, created, model, include_usage).await
    } else {
        let outcome = state.gateway.run_turn(request, &|_event: TurnEvent| {}).await?;
        Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": outcome.text}, "finish_reason": finish_reason(&outcome)}],
            "usage": usage_json(&outcome.usage),
        }))
        .into_response()
    };
    if let Some(value) = session_header {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    Ok(response)
}

/// The SSE reply. A turn that fails before its first text or tool is answered with a plain
/// error status instead (429 with `Retry-After`, 502, ...), which clients handle best.
async fn stream(
    state: ServerState,
    request: TurnRequest,
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
) -> Response {
    let chunk = {
        let (id, model) = (id.clone(), model.clone());
        move |delta: serde_json::Value, finish: Option<&str>| -> Bytes {
            let body = json!({
                "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            });
            frame(None, &body.to_string())
        }
    };
    let render_chunk = chunk.clone();
    let render = move |event: &TurnEvent| -> Option<Bytes> {
        match event {
            TurnEvent::Started { .. } => {
                Some(render_chunk(json!({"role": "assistant", "content": ""}), None))
            }
            TurnEvent::TextDelta { text } => Some(render_chunk(json!({"content": text}), None)),
            // "<model> failed mid-reply; trying the fallback model <next>": the text above it is
            // void, and the client cannot take text back, so it is said in the text.
            TurnEvent::Discard { reason } => {
                Some(render_chunk(json!({"content": format!("\n\n[{reason}]\n\n")}), None))
            }
            _ => None,
        }
    };
    let counters = state.counters.clone();
    let finish = move |result: Result<clawdia_core::TurnOutcome, clawdia_core::TurnError>| -> Vec<Bytes> {
        let mut frames = Vec::new();
        match result {
            Ok(outcome) => {
                frames.push(chunk(json!({}), Some(finish_reason(&outcome))));
                if include_usage {
                    let body = json!({
                        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                        "choices": [], "usage": usage_json(&outcome.usage),
                    });
                    frames.push(frame(None, &body.to_string()));
                }
            }
            Err(error) => {
                counters.errors.fetch_add(1, Ordering::Relaxed);
                frames.push(frame(None, &ApiError::from(error).body().to_string()));
            }
        }
        frames.push(frame(None, "[DONE]"));
        frames
    };
    let counters = state.counters.clone();
    let on_error = move |error: TurnError| {
        counters.errors.fetch_add(1, Ordering::Relaxed);
        ApiError::from(error).into_response()
    };
    stream_turn(state.gateway.clone(), request, render, finish, on_error).await
}

/// `length` when the reply stopped at `max_tokens` (clients offer to continue it), else `stop`.
/// The agent runs its own tools, so a reply that reaches the client never ends in `tool_calls`.
fn finish_reason(outcome: &clawdia_core::TurnOutcome) -> &'static str {
    if outcome.hit_max_tokens { "length" } else { "stop" }
}
