//! A small Bot API client: the methods the channel uses, each a JSON POST to
//! `{api_root}/bot{token}/{method}`, and Telegram's answer envelope (`ok`, `result`, or
//! `error_code`, `description` and `parameters.retry_after`) turned into a typed error. The
//! token is registered with the redactor, so no error or log line ever shows it.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// Telegram said no: `code` is its `error_code`.
    #[error("Telegram refused {method}: {code} {description}")]
    Refused { method: &'static str, code: i64, description: String },
    /// Flood control: wait this long before the next call.
    #[error("Telegram asks to wait {0:?} (flood control)")]
    RetryAfter(Duration),
    /// The call did not complete (connection, timeout, a body that is not Telegram's).
    #[error("cannot reach the Telegram Bot API ({method}): {message}")]
    Transport { method: &'static str, message: String },
}

/// One incoming update, as much of it as the channel reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Update {
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<IncomingMessage>,
    #[serde(default)]
    pub callback_query: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct IncomingMessage {
    pub message_id: i64,
    pub chat: Chat,
    #[serde(default)]
    pub from: Option<User>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub entities: Vec<Entity>,
    #[serde(default)]
    pub reply_to_message: Option<Box<IncomingMessage>>,
    #[serde(default)]
    pub voice: Option<Value>,
    #[serde(default)]
    pub photo: Option<Value>,
    #[serde(default)]
    pub document: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Chat {
    pub id: i64,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub is_bot: bool,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: String,
    pub offset: usize,
    pub length: usize,
}

/// A message the bot sent.
#[derive(Debug, Clone, Deserialize)]
pub struct Sent {
    pub message_id: i64,
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error_code: Option<i64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
}

/// The Bot API for one bot.
#[derive(Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").finish_non_exhaustive()
    }
}

impl Api {
    /// A client for the bot with `token` at `api_root`; `poll_timeout` is how long a long poll
    /// may wait (the request's own time limit leaves room above it).
    pub fn new(api_root: &str, token: &str, poll_timeout: Duration) -> Result<Api, ApiError> {
        clawdia_core::redact::register(token);
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(poll_timeout + Duration::from_secs(15))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("clawdia/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Transport { method: "setup", message: e.to_string() })?;
        Ok(Api { client, base: format!("{}/bot{token}", api_root.trim_end_matches('/')) })
    }

    /// Calls `method` with `body`; the `result`.
    pub async fn call(&self, method: &'static str, body: &Value) -> Result<Value, ApiError> {
        let transport = |message: String| ApiError::Transport {
            method,
            message: clawdia_core::redact::redact_string(message),
        };
        let response = self
            .client
            .post(format!("{}/{method}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| transport(clawdia_core::error_chain(&e)))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport(e.to_string()))?;
        let envelope: Envelope = serde_json::from_slice(&bytes)
            .map_err(|_| transport(format!("HTTP {status} with a body that is not a Bot API answer")))?;
        if envelope.ok {
            return Ok(envelope.result.unwrap_or(Value::Null));
        }
        if let Some(seconds) = envelope.parameters.and_then(|p| p.retry_after) {
            return Err(ApiError::RetryAfter(Duration::from_secs(seconds.max(1))));
        }
        Err(ApiError::Refused {
            method,
            code: envelope.error_code.unwrap_or(i64::from(status.as_u16())),
            description: clawdia_core::redact::redact_string(envelope.description.unwrap_or_default()),
        })
    }

    /// The bot's own user (`getMe`).
    pub async fn get_me(&self) -> Result<User, ApiError> {
        let result = self.call("getMe", &json!({})).await?;
        serde_json::from_value(result)
            .map_err(|e| ApiError::Transport { method: "getMe", message: format!("unexpected answer: {e}") })
    }

    /// Updates after `offset - 1`, waiting up to `timeout` for one; each as raw JSON (stored
    /// as received) with its id.
    pub async fn get_updates(&self, offset: i64, timeout: Duration) -> Result<Vec<(i64, Value)>, ApiError> {
        let result = self
            .call(
                "getUpdates",
                &json!({"offset": offset, "timeout": timeout.as_secs(), "allowed_updates": ["message", "callback_query"]}),
            )
            .await?;
        let Value::Array(updates) = result else {
            return Err(ApiError::Transport {
                method: "getUpdates",
                message: "the result is not a list".into(),
            });
        };
        Ok(updates
            .into_iter()
            .filter_map(|update| Some((update.get("update_id")?.as_i64()?, update)))
            .collect())
    }

    /// Sends `text` to `chat`: as Telegram HTML when `html`, else plain.
    pub async fn send_message(&self, chat: i64, text: &str, html: bool) -> Result<Sent, ApiError> {
        self.send_with_buttons(chat, text, html, None).await
    }

    /// As `send_message`, with an inline keyboard (`reply_markup`).
    pub async fn send_with_buttons(
        &self,
        chat: i64,
        text: &str,
        html: bool,
        buttons: Option<Value>,
    ) -> Result<Sent, ApiError> {
        let mut body = json!({"chat_id": chat, "text": text, "link_preview_options": {"is_disabled": true}});
        if html {
            body["parse_mode"] = json!("HTML");
        }
        if let Some(buttons) = buttons {
            body["reply_markup"] = buttons;
        }
        let result = self.call("sendMessage", &body).await?;
        serde_json::from_value(result).map_err(|e| ApiError::Transport {
            method: "sendMessage",
            message: format!("unexpected answer: {e}"),
        })
    }

    /// Replaces the text of message `message` in `chat`.
    pub async fn edit_message(
        &self,
        chat: i64,
        message: i64,
        text: &str,
        html: bool,
    ) -> Result<(), ApiError> {
        let mut body = json!({"chat_id": chat, "message_id": message, "text": text, "link_preview_options": {"is_disabled": true}});
        if html {
            body["parse_mode"] = json!("HTML");
        }
        match self.call("editMessageText", &body).await {
            Ok(_) => Ok(()),
            // Editing to the same text is not an error for us.
            Err(ApiError::Refused { description, .. }) if description.contains("message is not modified") => {
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// Answers a button press (the spinner stops; `text` shows as a toast).
    pub async fn answer_callback(&self, id: &str, text: &str) -> Result<(), ApiError> {
        self.call("answerCallbackQuery", &json!({"callback_query_id": id, "text": text})).await.map(|_| ())
    }

    /// Shows "typing…" in `chat` for a few seconds.
    pub async fn typing(&self, chat: i64) -> Result<(), ApiError> {
        self.call("sendChatAction", &json!({"chat_id": chat, "action": "typing"})).await.map(|_| ())
    }
}

/// Whether a refusal was about the HTML of the text (then the text goes again, plain).
pub fn is_markup_error(error: &ApiError) -> bool {
    matches!(error, ApiError::Refused { code: 400, description, .. }
        if description.contains("parse entities") || description.contains("Unsupported start tag")
            || description.contains("can't parse"))
}
