//! ElevenLabs text to speech against a real HTTP server on loopback that checks each request as
//! ElevenLabs would (method, path with the voice id, `output_format`, `xi-api-key`, the JSON
//! body) and answers raw 16-bit PCM, or ElevenLabs' error bodies; the engine is built from
//! `clawdia.toml` text as a user writes it and used through `Speech`, as `clawdia speech say` and
//! the channels use it.

use axum::http::Method;
use clawdia_core::{Pcm, SpeechError, TextToSpeech};
use clawdia_speech::elevenlabs::ElevenLabsSpeaker;
use clawdia_speech::{AudioFormat, decode};

use super::loopback::Server;

const KEY: &str = "sk_el_test_0123456789abcdef";
const VOICE: &str = "21m00Tcm4TlvDq8ikWAM";

async fn server(status: u16, content_type: &'static str, reply: Vec<u8>) -> Server {
    super::loopback::server("", status, content_type, reply).await
}

/// A second of a 440 Hz tone at 24 kHz, and the same as ElevenLabs sends it.
fn tone() -> (Pcm, Vec<u8>) {
    let samples: Vec<i16> = (0..24_000)
        .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 24_000.0).sin() * 12_000.0) as i16)
        .collect();
    let bytes = samples.iter().flat_map(|sample| sample.to_le_bytes()).collect();
    (Pcm { sample_rate: 24_000, samples }, bytes)
}

/// `clawdia.toml` with ElevenLabs at `base_url`, the key in a file of the home.
fn config(home: &std::path::Path, base_url: &str) -> clawdia_config::Config {
    std::fs::write(home.join("elevenlabs-key"), format!("{KEY}\n")).unwrap();
    let text = format!(
        "[speech]\ntts = \"elevenlabs/eleven_flash_v2_5\"\nvoice = \"{VOICE}\"\n\
         [speech.elevenlabs]\nbase_url = \"{base_url}/\"\napi_key = {{ file = \"elevenlabs-key\" }}\n"
    );
    clawdia_config::parse(&text, home).unwrap()
}

#[tokio::test]
async fn elevenlabs_speaks_through_the_configured_engine_with_the_key_and_voice() {
    let (canned, bytes) = tone();
    let server = server(200, "audio/pcm", bytes).await;
    let home = tempfile::tempdir().unwrap();
    let config = config(home.path(), &server.base_url);
    let speech = clawdia_speech::from_config(&config.speech).unwrap();
    let engine = speech.tts.clone().unwrap();
    assert_eq!(engine.name(), "elevenlabs/eleven_flash_v2_5");

    let pcm = engine.synthesize("Good morning, Ana.").await.unwrap();
    assert_eq!(pcm, canned);
    let request = server.only_request();
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.path, format!("/v1/text-to-speech/{VOICE}"));
    assert_eq!(request.query.as_deref(), Some("output_format=pcm_24000"));
    assert_eq!(request.headers["xi-api-key"], KEY);
    assert!(request.headers.get("authorization").is_none(), "ElevenLabs takes its key in xi-api-key only");
    assert_eq!(request.headers["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(json, serde_json::json!({"text": "Good morning, Ana.", "model_id": "eleven_flash_v2_5"}));

    // What `clawdia speech say -o reply.wav` writes, and the voice note a channel sends.
    let wav = speech.speak("Good morning, Ana.", AudioFormat::Wav).await.unwrap();
    assert_eq!(decode(&wav).unwrap(), canned);
    let notes: &dyn clawdia_core::VoiceNotes = &speech;
    assert!(notes.can_speak() && !notes.can_transcribe());
    let note = notes.voice_note("Nothing until noon.").await.unwrap();
    assert!(note.starts_with(b"OggS"));
    let back = decode(&note).unwrap();
    assert!((back.seconds() - 1.0).abs() < 0.01, "{} s", back.seconds());
    assert_eq!(server.seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_voice_id_stays_one_path_segment() {
    let (_, bytes) = tone();
    let server = server(200, "audio/pcm", bytes).await;
    let engine =
        ElevenLabsSpeaker::new(&server.base_url, KEY, "eleven_multilingual_v2", "../../v2/x?y=1").unwrap();
    engine.synthesize("hi").await.unwrap();
    let request = server.only_request();
    assert_eq!(request.path, "/v1/text-to-speech/..%2F..%2Fv2%2Fx%3Fy=1");
    assert_eq!(request.query.as_deref(), Some("output_format=pcm_24000"));
}

async fn refusal(status: u16, content_type: &'static str, body: &[u8]) -> SpeechError {
    let server = server(status, content_type, body.to_vec()).await;
    let engine = ElevenLabsSpeaker::new(&server.base_url, KEY, "eleven_flash_v2_5", VOICE).unwrap();
    let error = engine.synthesize("Hello there.").await.unwrap_err();
    assert_eq!(server.seen.lock().unwrap().len(), 1);
    error
}

#[tokio::test]
async fn elevenlabs_refusals_are_one_line_naming_elevenlabs_and_its_message_never_the_key() {
    let body = format!(r#"{{"detail":{{"status":"invalid_api_key","message":"Invalid API key: {KEY}"}}}}"#);
    let error = refusal(401, "application/json", body.as_bytes()).await;
    assert!(matches!(error, SpeechError::Failed(_)), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("ElevenLabs refused the API key (HTTP 401): Invalid API key: "), "{text}");
    assert!(!text.contains(KEY), "the key leaked: {text}");

    let error = refusal(
        429,
        "application/json",
        br#"{"detail":{"status":"too_many_concurrent_requests","message":"Too many concurrent requests"}}"#,
    )
    .await;
    assert_eq!(error.to_string(), "ElevenLabs is rate limiting (HTTP 429): Too many concurrent requests");
    let error = refusal(404, "application/json", br#"{"detail":"voice_not_found"}"#).await;
    assert_eq!(error.to_string(), "ElevenLabs returned HTTP 404: voice_not_found");
    let error = refusal(
        422,
        "application/json",
        br#"{"detail":[{"loc":["body","model_id"],"msg":"unknown model\nid","type":"value_error"}]}"#,
    )
    .await;
    assert_eq!(error.to_string(), "ElevenLabs returned HTTP 422: unknown model id");
    let error = refusal(502, "text/html", b"<html>\n<h1>Bad gateway</h1></html>").await;
    assert_eq!(error.to_string(), "ElevenLabs returned HTTP 502: <html> <h1>Bad gateway</h1></html>");
}

#[tokio::test]
async fn a_reply_that_is_not_16_bit_pcm_is_a_clear_error() {
    let (_, bytes) = tone();
    let error = refusal(200, "audio/pcm", &bytes[..bytes.len() - 1]).await.to_string();
    assert_eq!(
        error,
        "ElevenLabs sent 47999 bytes of audio, an odd count: not 16-bit PCM (the reply was cut short?)"
    );
    let error = refusal(200, "audio/pcm", b"").await.to_string();
    assert_eq!(error, "ElevenLabs sent no audio (an empty reply)");
    let error = refusal(200, "application/json", br#"{"message":"queued"}"#).await.to_string();
    assert_eq!(error, "ElevenLabs sent application/json instead of audio: queued");
}

#[tokio::test]
async fn an_unreachable_elevenlabs_says_so_without_the_key() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let engine =
        ElevenLabsSpeaker::new(&format!("http://{address}"), KEY, "eleven_flash_v2_5", VOICE).unwrap();
    let error = engine.synthesize("hi").await.unwrap_err().to_string();
    let expected =
        format!("cannot reach http://{address}/v1/text-to-speech/{VOICE}?output_format=pcm_24000:");
    assert!(error.starts_with(&expected), "{error}");
    assert!(!error.contains(KEY) && !error.contains('\n'));
}

#[tokio::test]
async fn bad_elevenlabs_settings_are_refused_before_any_request() {
    let error = ElevenLabsSpeaker::new("ftp://host", KEY, "m", VOICE).unwrap_err();
    assert_eq!(error.to_string(), "speech base_url `ftp://host/v1/text-to-speech` is not http(s)");
    let error = ElevenLabsSpeaker::new("http://host", KEY, "m", " ").unwrap_err();
    assert_eq!(error.to_string(), "elevenlabs/m: the voice id is empty ([speech] voice)");
    let error = ElevenLabsSpeaker::new("http://host", "bad\nkey", "m", VOICE).unwrap_err();
    assert_eq!(error.to_string(), "elevenlabs/m: the API key is not a valid header value");
    assert!(ElevenLabsSpeaker::new("http://host", KEY, "m", VOICE).is_ok());

    // A key that cannot be read is reported when the engines are built, naming the engine.
    let home = tempfile::tempdir().unwrap();
    let config = config(home.path(), "http://127.0.0.1:9");
    std::fs::remove_file(home.path().join("elevenlabs-key")).unwrap();
    let error = clawdia_speech::from_config(&config.speech).unwrap_err().to_string();
    assert!(error.starts_with("elevenlabs/eleven_flash_v2_5: "), "{error}");
}
