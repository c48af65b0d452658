//! The OpenAI-compatible surface: `GET /v1/models` (one model per agent) and
//! `POST /v1/chat/completions` (JSON or SSE chunks), so the official SDKs and chat UIs work
//! unchanged. `model` names the agent. The session comes from the `X-Clawdia-Session` header or
//! the `user` field; with neither, a new session starts, seeded with the request's earlier
//! messages. Every response carries the session id in `X-Clawdia-Session`.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use clawdia_core::{Message, TurnError, TurnEvent, TurnOrigin, TurnRequest, Usage};
use serde::Deserialize;
use serde_json::json;

use crate::sse::{frame, stream_turn};
use crate::{ApiError, ServerState};

pub const SESSION_HEADER: &str = "x-clawdia-session";

pub async fn models(State(state): State<ServerState>) -> Json<serde_json::Value> {
    let data: Vec<serde_json::Value> = state
        .gateway
        .agents()
        .into_iter()
        .map(|agent| json!({"id": agent.name, "object": "model", "created": 0, "owned_by": "clawdia"}))
        .collect();
    Json(json!({"object": "list", "data": data}))
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
                _ => None, // system prompts come from the agent's workspace; tool turns are the agent's own
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
    let (history, message) = split_messages(&parsed.messages)?;
    let session = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .or(parsed.user.clone())
        .filter(|s| !s.is_empty());
    let session = session.unwrap_or_else(|| format!("s-{}", random_id()));
    let request = TurnRequest {
        agent: parsed.model.clone(),
        session: Some(session.clone()),
        message,
        origin: TurnOrigin::Api,
        // OpenAI's `user` names the end user: policies see it as `api:<user>`.
        sender: parsed.user.clone().filter(|user| !user.is_empty()),
        history,
        tools_allow: None,
        context: clawdia_core::TurnContext::Full,
    };
    // A non-streaming turn reports an unknown agent itself (TurnError::UnknownAgent → 404); a
    // stream has already answered 200 by then, so only streams check up front.
    if parsed.stream && !state.gateway.agents().iter().any(|a| a.name == parsed.model) {
        return Err(TurnError::UnknownAgent(parsed.model.clone()).into());
    }
    let id = format!("chatcmpl-{}", random_id());
    let created = now_secs();
    let model = parsed.model.clone();
    let session_header = HeaderValue::from_str(&session).ok();
    let mut response = if parsed.stream {
        let include_usage = parsed.stream_options.as_ref().is_some_and(|o| o.include_usage);
        stream(state, request, id, created, model, include_usage)
    } else {
        let outcome = state.gateway.run_turn(request, &|_event: TurnEvent| {}).await?;
        Json(json!({
            "id": id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": outcome.text}, "finish_reason": "stop"}],
            "usage": usage_json(&outcome.usage),
        }))
        .into_response()
    };
    if let Some(value) = session_header {
        response.headers_mut().insert(SESSION_HEADER, value);
    }
    Ok(response)
}

fn stream(
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
            TurnEvent::Discard { .. } => Some(render_chunk(
                json!({"content": "\n\n[that model failed mid-reply; a fallback model answers below]\n\n"}),
                None,
            )),
            _ => None,
        }
    };
    let counters = state.counters.clone();
    let finish = move |result: Result<clawdia_core::TurnOutcome, clawdia_core::TurnError>| -> Vec<Bytes> {
        let mut frames = Vec::new();
        match result {
            Ok(outcome) => {
                frames.push(chunk(json!({}), Some("stop")));
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
    stream_turn(state.gateway.clone(), request, render, finish)
}

fn random_id() -> String {
    // Unique enough for response ids; session ids from the agent crate use the OS RNG.
    use std::sync::atomic::AtomicU64;
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let mixed = (nanos ^ (u64::from(std::process::id()) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ n;
    format!("{mixed:016x}")
}
