//! The OpenAI-compatible speech endpoints, spoken by OpenAI, Groq and local Whisper or TTS
//! servers: `POST {base_url}/audio/transcriptions` (multipart: the audio as a 16 kHz mono WAV
//! file, `model`, `language` when configured, `response_format=json`; the reply's `text`) and
//! `POST {base_url}/audio/speech` (JSON `{model, voice, input, response_format: "wav"}`; the
//! reply is a WAV file). The API key, when there is one, goes in a Bearer header marked
//! sensitive. The wire types live here and nowhere else.
//!
//! Errors are one line naming the endpoint: 401/403 say the key was refused, 429 that the
//! endpoint is rate limiting, other statuses carry the body's message; transport failures,
//! timeouts and oversized replies are the shared client's (`http`). Audio reaches the
//! endpoint only because the owner configured it.

use std::fmt;

use async_trait::async_trait;
use clawdia_core::{Pcm, SpeechError, SpeechToText, TextToSpeech, Transcript};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::http::Client;

const ERROR_MESSAGE_CHARS: usize = 200;
/// The rate audio is uploaded at: what Whisper-family models take, and a third of 48 kHz's size.
pub const UPLOAD_RATE: u32 = 16_000;

/// Where an OpenAI-compatible endpoint is and how to reach it.
#[derive(Clone)]
pub struct Endpoint {
    /// e.g. `https://api.groq.com/openai/v1`; `/audio/...` is appended.
    pub base_url: String,
    pub api_key: Option<String>,
    /// The engine's name for logs: `groq/whisper-large-v3-turbo`.
    pub name: String,
    pub model: String,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Endpoint")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("name", &self.name)
            .field("model", &self.model)
            .finish()
    }
}

/// The client of one URL of an endpoint, with the key in a Bearer header.
fn client(endpoint: &Endpoint, path: &str) -> Result<Client, SpeechError> {
    let url = format!("{}/{path}", endpoint.base_url.trim_end_matches('/'));
    let mut headers = HeaderMap::new();
    if let Some(key) = endpoint.api_key.as_deref().filter(|key| !key.is_empty()) {
        let mut value = HeaderValue::from_str(&format!("Bearer {key}")).map_err(|_| {
            SpeechError::Unavailable(format!("{}: the API key is not a valid header value", endpoint.name))
        })?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    let client = Client::new(&url, headers)?;
    if endpoint.model.trim().is_empty() {
        return Err(SpeechError::Unavailable(format!("{}: the model name is empty", endpoint.name)));
    }
    Ok(client)
}

/// Sends the request and returns the successful reply's body; a refusal is one line naming the
/// URL: 401/403 the key, 429 the rate limit, else the status, with the body's message.
async fn send(client: &Client, request: reqwest::RequestBuilder) -> Result<Vec<u8>, SpeechError> {
    let reply = client.fetch(request).await?;
    let code = reply.status;
    if (200..300).contains(&code) {
        return Ok(reply.body);
    }
    let detail = clawdia_core::error_body_message(&reply.body, ERROR_MESSAGE_CHARS)
        .map(|message| format!(": {message}"))
        .unwrap_or_default();
    let url = &client.url;
    Err(SpeechError::Failed(match code {
        401 | 403 => format!("{url} refused the API key (HTTP {code}){detail}"),
        429 => format!("{url} is rate limiting (HTTP 429){detail}"),
        _ => format!("{url} returned HTTP {code}{detail}"),
    }))
}

/// Speech to text at `{base_url}/audio/transcriptions`.
pub struct OpenAiTranscriber {
    client: Client,
    name: String,
    model: String,
    language: Option<String>,
}

impl OpenAiTranscriber {
    /// `language` (ISO 639-1, e.g. `en`) is sent as a hint when given.
    pub fn new(endpoint: &Endpoint, language: Option<String>) -> Result<OpenAiTranscriber, SpeechError> {
        Ok(OpenAiTranscriber {
            client: client(endpoint, "audio/transcriptions")?,
            name: endpoint.name.clone(),
            model: endpoint.model.clone(),
            language,
        })
    }
}

impl fmt::Debug for OpenAiTranscriber {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OpenAiTranscriber")
            .field("url", &self.client.url.as_str())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SpeechToText for OpenAiTranscriber {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn transcribe(&self, audio: &Pcm) -> Result<Transcript, SpeechError> {
        let wav = crate::wav::encode(&crate::audio::resample(audio, UPLOAD_RATE)?)?;
        let boundary = clawdia_core::random::hex(16)
            .map_err(|error| SpeechError::Failed(format!("cannot make a multipart boundary: {error}")))?;
        let boundary = format!("clawdia-{boundary}");
        let mut fields = vec![("model", self.model.as_str()), ("response_format", "json")];
        if let Some(language) = &self.language {
            fields.push(("language", language.as_str()));
        }
        let body = multipart(&boundary, &fields, ("file", "audio.wav", "audio/wav", &wav));
        let content_type = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
            .map_err(|_| SpeechError::Failed("cannot build the multipart content type".to_string()))?;
        let request =
            self.client.http.post(self.client.url.clone()).header(CONTENT_TYPE, content_type).body(body);
        let reply = send(&self.client, request).await?;
        let reply: WireTranscription = serde_json::from_slice(&reply).map_err(|error| {
            SpeechError::Failed(format!("{} sent an invalid transcription: {error}", self.client.url))
        })?;
        Ok(Transcript {
            text: reply.text.trim().to_string(),
            language: reply.language.or(self.language.clone()),
        })
    }
}

/// A `multipart/form-data` body: text fields, then one file.
fn multipart(boundary: &str, fields: &[(&str, &str)], file: (&str, &str, &str, &[u8])) -> Vec<u8> {
    let (field, file_name, mime, bytes) = file;
    let mut body = Vec::with_capacity(bytes.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: {mime}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

/// Text to speech at `{base_url}/audio/speech`.
pub struct OpenAiSpeaker {
    client: Client,
    name: String,
    model: String,
    voice: String,
}

impl OpenAiSpeaker {
    pub fn new(endpoint: &Endpoint, voice: &str) -> Result<OpenAiSpeaker, SpeechError> {
        if voice.trim().is_empty() {
            return Err(SpeechError::Unavailable(format!("{}: the voice name is empty", endpoint.name)));
        }
        Ok(OpenAiSpeaker {
            client: client(endpoint, "audio/speech")?,
            name: endpoint.name.clone(),
            model: endpoint.model.clone(),
            voice: voice.to_string(),
        })
    }
}

impl fmt::Debug for OpenAiSpeaker {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OpenAiSpeaker")
            .field("url", &self.client.url.as_str())
            .field("name", &self.name)
            .field("voice", &self.voice)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TextToSpeech for OpenAiSpeaker {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn synthesize(&self, text: &str) -> Result<Pcm, SpeechError> {
        if text.trim().is_empty() {
            return Err(SpeechError::Failed("there is no text to speak".to_string()));
        }
        let request = self.client.post_json(&WireSpeech {
            model: &self.model,
            voice: &self.voice,
            input: text,
            response_format: "wav",
        })?;
        let reply = send(&self.client, request).await?;
        if !crate::wav::is_wav(&reply) {
            return Err(SpeechError::Failed(format!(
                "{} sent {} bytes that are not a WAV file",
                self.client.url,
                reply.len()
            )));
        }
        crate::wav::decode(&reply)
            .map_err(|error| SpeechError::Failed(format!("{} sent {error}", self.client.url)))
    }
}

// ---- wire ------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct WireTranscription {
    text: String,
    #[serde(default)]
    language: Option<String>,
}

#[derive(Serialize)]
struct WireSpeech<'a> {
    model: &'a str,
    voice: &'a str,
    input: &'a str,
    response_format: &'a str,
}
