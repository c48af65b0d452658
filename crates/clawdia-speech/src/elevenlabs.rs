//! ElevenLabs text to speech (`tts = "elevenlabs/<model_id>"`): `POST
//! {base_url}/v1/text-to-speech/{voice_id}?output_format=pcm_24000` with the key in an
//! `xi-api-key` header (marked sensitive) and JSON `{text, model_id}`; the reply is raw
//! little-endian 16-bit mono PCM at 24 kHz. The wire types live here and nowhere else.
//!
//! Errors are one line naming ElevenLabs: a refusal carries the message of the body's `detail`
//! (`{"detail": {"status", "message"}}`, a string, or FastAPI's list of `{msg}`), 401/403 say
//! the key was refused and 429 that ElevenLabs is rate limiting; a reply that is not PCM (empty,
//! an odd byte count, JSON or text) says so. The key is never part of a message: the body's
//! message is masked by the secret registry like every other error body.

use std::fmt;

use async_trait::async_trait;
use clawdia_core::{Pcm, SpeechError, TextToSpeech};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::http::Client;

/// The rate asked for: one of the PCM formats every ElevenLabs plan has (16, 22.05, 24 kHz).
pub const SAMPLE_RATE: u32 = 24_000;
const OUTPUT_FORMAT: &str = "pcm_24000";
const ERROR_MESSAGE_CHARS: usize = 200;

/// Text to speech by one ElevenLabs model and voice.
pub struct ElevenLabsSpeaker {
    client: Client,
    name: String,
    model: String,
}

impl ElevenLabsSpeaker {
    /// `base_url` is the API root (`https://api.elevenlabs.io`), `model` the model id
    /// (`eleven_flash_v2_5`), `voice` the voice id.
    pub fn new(
        base_url: &str,
        api_key: &str,
        model: &str,
        voice: &str,
    ) -> Result<ElevenLabsSpeaker, SpeechError> {
        let name = format!("elevenlabs/{model}");
        let unavailable = |what: &str| SpeechError::Unavailable(format!("{name}: {what}"));
        if model.trim().is_empty() {
            return Err(unavailable("the model id is empty"));
        }
        if voice.trim().is_empty() {
            return Err(unavailable("the voice id is empty ([speech] voice)"));
        }
        if api_key.trim().is_empty() {
            return Err(unavailable("the API key is empty"));
        }
        // Masked in every error body and log from now on, should ElevenLabs echo it.
        clawdia_core::redact::register(api_key.trim());
        let mut key = HeaderValue::from_str(api_key.trim())
            .map_err(|_| unavailable("the API key is not a valid header value"))?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("xi-api-key"), key);
        let mut client =
            Client::new(&format!("{}/v1/text-to-speech", base_url.trim_end_matches('/')), headers)?;
        // The voice id is one path segment, escaped: it cannot reach another path.
        client
            .url
            .path_segments_mut()
            .map_err(|()| unavailable("the base_url cannot take a path"))?
            .push(voice.trim());
        client.url.query_pairs_mut().append_pair("output_format", OUTPUT_FORMAT);
        Ok(ElevenLabsSpeaker { client, name, model: model.to_string() })
    }

    /// A refusal as one line: what the status means and ElevenLabs' message.
    fn refusal(&self, status: u16, body: &[u8]) -> SpeechError {
        let message = detail_message(body)
            .or_else(|| clawdia_core::error_body_message(body, ERROR_MESSAGE_CHARS))
            .map(|message| format!(": {message}"))
            .unwrap_or_default();
        SpeechError::Failed(match status {
            401 | 403 => format!("ElevenLabs refused the API key (HTTP {status}){message}"),
            429 => format!("ElevenLabs is rate limiting (HTTP 429){message}"),
            _ => format!("ElevenLabs returned HTTP {status}{message}"),
        })
    }
}

impl fmt::Debug for ElevenLabsSpeaker {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ElevenLabsSpeaker")
            .field("url", &self.client.url.as_str())
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TextToSpeech for ElevenLabsSpeaker {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn synthesize(&self, text: &str) -> Result<Pcm, SpeechError> {
        if text.trim().is_empty() {
            return Err(SpeechError::Failed("there is no text to speak".to_string()));
        }
        let request = self.client.post_json(&WireRequest { text, model_id: &self.model })?;
        let reply = self.client.fetch(request).await?;
        if !(200..300).contains(&reply.status) {
            return Err(self.refusal(reply.status, &reply.body));
        }
        let kind = reply.content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if kind == "application/json" || kind.starts_with("text/") {
            let message =
                clawdia_core::error_body_message(&reply.body, ERROR_MESSAGE_CHARS).unwrap_or_default();
            return Err(SpeechError::Failed(format!("ElevenLabs sent {kind} instead of audio: {message}")));
        }
        pcm(&reply.body).map_err(|problem| SpeechError::Failed(format!("ElevenLabs sent {problem}")))
    }
}

/// 16-bit little-endian mono samples at `SAMPLE_RATE`.
fn pcm(body: &[u8]) -> Result<Pcm, String> {
    if body.is_empty() {
        return Err("no audio (an empty reply)".to_string());
    }
    if !body.len().is_multiple_of(2) {
        return Err(format!(
            "{} bytes of audio, an odd count: not 16-bit PCM (the reply was cut short?)",
            body.len()
        ));
    }
    let samples = body.chunks_exact(2).map(|pair| i16::from_le_bytes([pair[0], pair[1]])).collect();
    Ok(Pcm { sample_rate: SAMPLE_RATE, samples })
}

/// The message of ElevenLabs' error body: `detail.message` (with `detail.status`), `detail` as a
/// string, or the first `detail[].msg` (a request that failed validation).
fn detail_message(body: &[u8]) -> Option<String> {
    let reply: WireError = serde_json::from_slice(body).ok()?;
    let text = match reply.detail {
        WireDetail::Text(text) => text,
        WireDetail::Object { status, message } => match (status, message) {
            (_, Some(message)) => message,
            (Some(status), None) => status,
            (None, None) => return None,
        },
        WireDetail::List(items) => items.into_iter().find_map(|item| item.msg)?,
    };
    clawdia_core::error_body_message(text.as_bytes(), ERROR_MESSAGE_CHARS)
}

// ---- wire ------------------------------------------------------------------------------------

#[derive(Serialize)]
struct WireRequest<'a> {
    text: &'a str,
    model_id: &'a str,
}

#[derive(Deserialize)]
struct WireError {
    detail: WireDetail,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireDetail {
    Text(String),
    Object {
        #[serde(default)]
        status: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
    List(Vec<WireValidation>),
}

#[derive(Deserialize)]
struct WireValidation {
    #[serde(default)]
    msg: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::{detail_message, pcm};

    #[test]
    fn error_details_of_every_shape_become_their_message() {
        let object = br#"{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}"#;
        assert_eq!(detail_message(object).as_deref(), Some("Invalid API key"));
        assert_eq!(detail_message(br#"{"detail":"Not Found"}"#).as_deref(), Some("Not Found"));
        let list = br#"{"detail":[{"loc":["body","text"],"msg":"field required","type":"missing"}]}"#;
        assert_eq!(detail_message(list).as_deref(), Some("field required"));
        assert_eq!(
            detail_message(br#"{"detail":{"status":"quota_exceeded"}}"#).as_deref(),
            Some("quota_exceeded")
        );
        assert_eq!(detail_message(br#"{"error":"x"}"#), None);
        assert_eq!(detail_message(b"<html>"), None);
    }

    #[test]
    fn pcm_is_little_endian_pairs() {
        let audio = pcm(&[0x01, 0x00, 0xff, 0xff, 0x00, 0x80]).unwrap();
        assert_eq!(audio.samples, vec![1, -1, i16::MIN]);
        assert_eq!(audio.sample_rate, 24_000);
        assert!(pcm(&[1, 2, 3]).unwrap_err().contains("3 bytes of audio, an odd count"));
        assert_eq!(pcm(&[]).unwrap_err(), "no audio (an empty reply)");
    }
}
