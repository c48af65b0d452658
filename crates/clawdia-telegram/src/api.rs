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
    /// A file is larger than the bot may download (`[channels.telegram] max_file_mb`).
    #[error("the file is larger than the {limit_mb} MB the bot may download")]
    TooLarge { limit_mb: u64 },
}

/// A file on Telegram's servers, ready to download (`getFile`).
#[derive(Debug, Clone, Deserialize)]
pub struct FileRef {
    pub file_path: String,
    #[serde(default)]
    pub file_size: Option<u64>,
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
    pub audio: Option<Value>,
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
    /// Where files are downloaded from: `{api_root}/file/bot{token}`.
    files: String,
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
        let root = api_root.trim_end_matches('/');
        Ok(Api { client, base: format!("{root}/bot{token}"), files: format!("{root}/file/bot{token}") })
    }

    /// Calls `method` with `body`; the `result`.
    pub async fn call(&self, method: &'static str, body: &Value) -> Result<Value, ApiError> {
        self.post(method, "application/json".to_string(), body.to_string().into_bytes()).await
    }

    /// Posts `body` (of `content_type`) to `method`; the `result` of Telegram's envelope.
    async fn post(
        &self,
        method: &'static str,
        content_type: String,
        body: Vec<u8>,
    ) -> Result<Value, ApiError> {
        let transport = |message: String| ApiError::Transport {
            method,
            message: clawdia_core::redact::redact_string(message),
        };
        let response = self
            .client
            .post(format!("{}/{method}", self.base))
            .header("content-type", content_type)
            .body(body)
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
        self.chat_action(chat, "typing").await
    }

    /// Shows an activity (`typing`, `record_voice`, `upload_voice`) in `chat` for a few seconds.
    pub async fn chat_action(&self, chat: i64, action: &str) -> Result<(), ApiError> {
        self.call("sendChatAction", &json!({"chat_id": chat, "action": action})).await.map(|_| ())
    }

    /// Where file `file_id` can be downloaded (`getFile`).
    pub async fn get_file(&self, file_id: &str) -> Result<FileRef, ApiError> {
        let result = self.call("getFile", &json!({"file_id": file_id})).await?;
        serde_json::from_value(result).map_err(|e| ApiError::Transport {
            method: "getFile",
            message: format!("unexpected answer: {e}"),
        })
    }

    /// The bytes of a file from [`Api::get_file`], refused past `limit` bytes (before the
    /// download when the size is announced, else as soon as it is passed).
    pub async fn download(&self, file: &FileRef, limit: u64) -> Result<Vec<u8>, ApiError> {
        let too_large = ApiError::TooLarge { limit_mb: limit >> 20 };
        if file.file_size.is_some_and(|size| size > limit) {
            return Err(too_large);
        }
        let transport = |message: String| ApiError::Transport {
            method: "file download",
            message: clawdia_core::redact::redact_string(message),
        };
        let path = file.file_path.trim_start_matches('/');
        let mut response = self
            .client
            .get(format!("{}/{path}", self.files))
            .send()
            .await
            .map_err(|e| transport(clawdia_core::error_chain(&e)))?;
        if !response.status().is_success() {
            return Err(transport(format!("HTTP {}", response.status())));
        }
        if response.content_length().is_some_and(|size| size > limit) {
            return Err(too_large);
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| transport(e.to_string()))? {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(too_large);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Sends `ogg` (Ogg/Opus) to `chat` as a voice note, with an optional plain caption.
    pub async fn send_voice(&self, chat: i64, ogg: &[u8], caption: Option<&str>) -> Result<Sent, ApiError> {
        let mut form = Multipart::new();
        form.text("chat_id", &chat.to_string());
        if let Some(caption) = caption {
            form.text("caption", caption);
        }
        form.file("voice", "reply.ogg", "audio/ogg", ogg);
        let (content_type, body) = form.finish();
        let result = self.post("sendVoice", content_type, body).await?;
        serde_json::from_value(result).map_err(|e| ApiError::Transport {
            method: "sendVoice",
            message: format!("unexpected answer: {e}"),
        })
    }

    /// Asks Telegram to post updates to `url`, each with `secret` in
    /// `X-Telegram-Bot-Api-Secret-Token`.
    pub async fn set_webhook(&self, url: &str, secret: &str) -> Result<(), ApiError> {
        let body =
            json!({"url": url, "secret_token": secret, "allowed_updates": ["message", "callback_query"]});
        self.call("setWebhook", &body).await.map(|_| ())
    }

    /// Telegram's view of the webhook: `url`, `pending_update_count`, `last_error_date`,
    /// `last_error_message`.
    pub async fn webhook_info(&self) -> Result<Value, ApiError> {
        self.call("getWebhookInfo", &json!({})).await
    }
}

/// A `multipart/form-data` body built by hand (the few fields `sendVoice` needs).
struct Multipart {
    boundary: String,
    body: Vec<u8>,
}

impl Multipart {
    fn new() -> Multipart {
        // Random, so no voice note can contain it by chance.
        let random = clawdia_core::random::hex(12)
            .unwrap_or_else(|_| format!("{:x}{:x}", clawdia_core::time::now_ms(), std::process::id()));
        let boundary = format!("clawdia-{random}");
        Multipart { boundary, body: Vec::new() }
    }

    fn text(&mut self, name: &str, value: &str) {
        self.body.extend_from_slice(
            format!(
                "--{}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n",
                self.boundary
            )
            .as_bytes(),
        );
    }

    fn file(&mut self, name: &str, file_name: &str, content_type: &str, bytes: &[u8]) {
        self.body.extend_from_slice(
            format!(
                "--{}\r\ncontent-disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\ncontent-type: {content_type}\r\n\r\n",
                self.boundary
            )
            .as_bytes(),
        );
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
    }

    fn finish(mut self) -> (String, Vec<u8>) {
        self.body.extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (format!("multipart/form-data; boundary={}", self.boundary), self.body)
    }
}

/// Whether a refusal was about the HTML of the text (then the text goes again, plain).
pub fn is_markup_error(error: &ApiError) -> bool {
    matches!(error, ApiError::Refused { code: 400, description, .. }
        if description.contains("parse entities") || description.contains("Unsupported start tag")
            || description.contains("can't parse"))
}
