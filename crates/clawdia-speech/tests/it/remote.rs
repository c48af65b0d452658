//! The OpenAI-compatible engines against a real HTTP server on loopback that records each request
//! and answers with canned audio or text: the request shapes (multipart upload of a 16 kHz WAV,
//! the speech JSON, the Bearer key), the replies, and each failure as one line naming the endpoint.

use clawdia_core::{Pcm, SpeechError, SpeechToText, TextToSpeech};
use clawdia_speech::openai::{Endpoint, OpenAiSpeaker, OpenAiTranscriber};
use clawdia_speech::{AudioFormat, decode, encode};

use super::loopback::Server;

async fn server(status: u16, content_type: &'static str, reply: Vec<u8>) -> Server {
    super::loopback::server("/v1", status, content_type, reply).await
}

/// The engines' settings for `server` and `model`.
fn endpoint(server: &Server, model: &str) -> Endpoint {
    Endpoint {
        base_url: server.base_url.clone(),
        api_key: Some("sk-test-key".to_string()),
        name: format!("test/{model}"),
        model: model.to_string(),
    }
}

fn tone(rate: u32, seconds: f32) -> Pcm {
    let count = (rate as f32 * seconds) as usize;
    let samples = (0..count).map(|i| ((i as f32 * 0.05).sin() * 9_000.0) as i16).collect();
    Pcm { sample_rate: rate, samples }
}

/// One part of a multipart body: (name, file name, content type, value).
type Part = (String, Option<String>, Option<String>, Vec<u8>);

/// The parts of a multipart body.
fn multipart_parts(content_type: &str, body: &[u8]) -> Vec<Part> {
    let boundary = content_type.split("boundary=").nth(1).expect("a boundary");
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let positions: Vec<usize> = text
        .windows(delimiter.len())
        .enumerate()
        .filter(|(_, window)| *window == delimiter.as_bytes())
        .map(|(at, _)| at)
        .collect();
    for pair in positions.windows(2) {
        let part = &text[pair[0] + delimiter.len() + 2..pair[1] - 2];
        let split = part.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end");
        let headers = String::from_utf8(part[..split].to_vec()).unwrap();
        let value = part[split + 4..].to_vec();
        let field = |key: &str| {
            headers.split(';').find_map(|piece| {
                piece
                    .trim()
                    .strip_prefix(&format!("{key}=\""))
                    .map(|rest| rest.trim_end_matches('"').to_string())
            })
        };
        let name = field("name").expect("a part name");
        let file_name = field("filename").map(|name| name.split('"').next().unwrap_or("").to_string());
        let mime = headers.lines().find_map(|line| line.strip_prefix("Content-Type: ").map(str::to_string));
        parts.push((name, file_name, mime, value));
    }
    assert!(text.ends_with(format!("{delimiter}--\r\n").as_bytes()), "the body closes the boundary");
    parts
}

#[tokio::test]
async fn transcription_uploads_a_16_khz_wav_with_model_and_language_and_returns_the_text() {
    let server = server(200, "application/json", br#"{"text":" Hello from the loopback. "}"#.to_vec()).await;
    let engine =
        OpenAiTranscriber::new(&endpoint(&server, "whisper-large-v3-turbo"), Some("en".into())).unwrap();
    assert_eq!(engine.name(), "test/whisper-large-v3-turbo");
    let audio = tone(48_000, 1.5);
    let transcript = engine.transcribe(&audio).await.unwrap();
    assert_eq!(transcript.text, "Hello from the loopback.");
    assert_eq!(transcript.language.as_deref(), Some("en"));

    let request = server.only_request();
    assert_eq!(request.path, "/v1/audio/transcriptions");
    assert_eq!(request.headers["authorization"], "Bearer sk-test-key");
    let content_type = request.headers["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("multipart/form-data; boundary="), "{content_type}");
    let parts = multipart_parts(&content_type, &request.body);
    let value = |name: &str| parts.iter().find(|part| part.0 == name).map(|part| part.3.clone());
    assert_eq!(value("model").as_deref(), Some(&b"whisper-large-v3-turbo"[..]));
    assert_eq!(value("language").as_deref(), Some(&b"en"[..]));
    assert_eq!(value("response_format").as_deref(), Some(&b"json"[..]));
    let file = parts.iter().find(|part| part.0 == "file").expect("a file part");
    assert_eq!(file.1.as_deref(), Some("audio.wav"));
    assert_eq!(file.2.as_deref(), Some("audio/wav"));
    let uploaded = decode(&file.3).expect("the upload is a WAV file");
    assert_eq!(uploaded.sample_rate, 16_000);
    assert!((uploaded.seconds() - 1.5).abs() < 0.01, "uploaded {} s of 1.5", uploaded.seconds());
}

#[tokio::test]
async fn speech_posts_model_voice_and_text_and_decodes_the_wav_reply() {
    let canned = tone(24_000, 0.75);
    let server = server(200, "audio/wav", encode(&canned, AudioFormat::Wav).unwrap()).await;
    let engine = OpenAiSpeaker::new(&endpoint(&server, "gpt-4o-mini-tts"), "nova").unwrap();
    let pcm = engine.synthesize("Good morning, Ana.").await.unwrap();
    assert_eq!(pcm, canned);

    let request = server.only_request();
    assert_eq!(request.path, "/v1/audio/speech");
    assert_eq!(request.headers["authorization"], "Bearer sk-test-key");
    assert_eq!(request.headers["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"model": "gpt-4o-mini-tts", "voice": "nova", "input": "Good morning, Ana.", "response_format": "wav"})
    );
}

#[tokio::test]
async fn without_a_key_no_authorization_header_is_sent() {
    let server = server(200, "application/json", br#"{"text":"ok"}"#.to_vec()).await;
    let mut endpoint = endpoint(&server, "whisper");
    endpoint.api_key = None;
    OpenAiTranscriber::new(&endpoint, None).unwrap().transcribe(&tone(16_000, 0.2)).await.unwrap();
    let request = server.only_request();
    assert!(request.headers.get("authorization").is_none());
    let parts = multipart_parts(request.headers["content-type"].to_str().unwrap(), &request.body);
    assert!(parts.iter().all(|part| part.0 != "language"), "no language part without a hint");
}

async fn stt_error(status: u16, content_type: &'static str, reply: &[u8]) -> (String, String) {
    let server = server(status, content_type, reply.to_vec()).await;
    let engine = OpenAiTranscriber::new(&endpoint(&server, "whisper"), None).unwrap();
    let error = engine.transcribe(&tone(16_000, 0.2)).await.unwrap_err();
    assert!(matches!(error, SpeechError::Failed(_)), "{error:?}");
    (error.to_string(), server.base_url)
}

#[tokio::test]
async fn endpoint_failures_are_one_line_naming_the_endpoint() {
    let (error, base) =
        stt_error(401, "application/json", br#"{"error":{"message":"Invalid API Key"}}"#).await;
    assert_eq!(error, format!("{base}/audio/transcriptions refused the API key (HTTP 401): Invalid API Key"));
    let (error, base) = stt_error(429, "application/json", br#"{"error":{"message":"slow down"}}"#).await;
    assert_eq!(error, format!("{base}/audio/transcriptions is rate limiting (HTTP 429): slow down"));
    let (error, base) = stt_error(500, "text/plain", b"model\nnot loaded").await;
    assert_eq!(error, format!("{base}/audio/transcriptions returned HTTP 500: model not loaded"));
    let (error, base) = stt_error(200, "application/json", b"{\"txt\": 1}").await;
    assert!(
        error.starts_with(&format!("{base}/audio/transcriptions sent an invalid transcription:")),
        "{error}"
    );
    assert!(!error.contains('\n'));

    let server = server(200, "audio/mpeg", b"ID3\x04 mp3 bytes".to_vec()).await;
    let engine = OpenAiSpeaker::new(&endpoint(&server, "tts-1"), "alloy").unwrap();
    let error = engine.synthesize("hi").await.unwrap_err().to_string();
    assert_eq!(error, format!("{}/audio/speech sent 14 bytes that are not a WAV file", server.base_url));
}

#[tokio::test]
async fn an_unreachable_endpoint_says_so() {
    // A port that was just free: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let endpoint = Endpoint {
        base_url: format!("http://{address}/v1"),
        api_key: None,
        name: "dead/whisper".into(),
        model: "whisper".into(),
    };
    let error =
        OpenAiTranscriber::new(&endpoint, None).unwrap().transcribe(&tone(16_000, 0.1)).await.unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with(&format!("cannot reach http://{address}/v1/audio/transcriptions:")), "{text}");
    assert!(!text.contains('\n'));
}

#[tokio::test]
async fn bad_endpoint_settings_are_refused_before_any_request() {
    let endpoint = |base_url: &str, model: &str| Endpoint {
        base_url: base_url.into(),
        api_key: None,
        name: "x/y".into(),
        model: model.into(),
    };
    let error = OpenAiTranscriber::new(&endpoint("ftp://host/v1", "m"), None).unwrap_err();
    assert_eq!(error.to_string(), "speech base_url `ftp://host/v1/audio/transcriptions` is not http(s)");
    let error = OpenAiTranscriber::new(&endpoint("http://host/v1", " "), None).unwrap_err();
    assert_eq!(error.to_string(), "x/y: the model name is empty");
    let error = OpenAiSpeaker::new(&endpoint("http://host/v1", "m"), "").unwrap_err();
    assert_eq!(error.to_string(), "x/y: the voice name is empty");
    assert!(OpenAiSpeaker::new(&endpoint("http://host/v1", "m"), "alloy").is_ok());
}

#[tokio::test]
async fn speech_from_config_transcribes_a_voice_note_through_a_provider_and_speaks_ogg() {
    let canned = tone(24_000, 0.5);
    let stt = server(
        200,
        "application/json",
        br#"{"text":"what is on my calendar","language":"english"}"#.to_vec(),
    )
    .await;
    let tts = server(200, "audio/wav", encode(&canned, AudioFormat::Wav).unwrap()).await;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("stt-key"), "sk-from-file\n").unwrap();
    let text = format!(
        "[providers.groq]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = {{ file = \"stt-key\" }}\n\
         [providers.tts]\nkind = \"openai\"\nbase_url = \"{}\"\n\
         [speech]\nstt = \"groq/whisper-large-v3-turbo\"\ntts = \"tts/kokoro\"\nvoice = \"af_bella\"\nmax_seconds = 2\n",
        stt.base_url, tts.base_url
    );
    let config = clawdia_config::parse(&text, home.path()).unwrap();
    let speech = clawdia_speech::from_config(&config.speech).unwrap();
    assert_eq!(
        clawdia_speech::stt_from_config(&config.speech).unwrap().unwrap().name(),
        "groq/whisper-large-v3-turbo"
    );
    assert_eq!(clawdia_speech::tts_from_config(&config.speech).unwrap().unwrap().name(), "tts/kokoro");

    let note = encode(&tone(48_000, 1.0), AudioFormat::OggOpus).unwrap();
    let transcript = speech.transcribe_file(&note).await.unwrap();
    assert_eq!(transcript.text, "what is on my calendar");
    assert_eq!(stt.seen.lock().unwrap()[0].headers["authorization"], "Bearer sk-from-file");

    let too_long = encode(&tone(16_000, 2.5), AudioFormat::Wav).unwrap();
    let error = speech.transcribe_file(&too_long).await.unwrap_err().to_string();
    assert_eq!(
        error,
        "unreadable audio: the audio is 3 s long, more than the 2 s transcribed ([speech] max_seconds)"
    );
    assert_eq!(stt.seen.lock().unwrap().len(), 1, "a refused note is not uploaded");

    // The same through the seam a channel gets: a voice note in, a voice note out.
    let notes: &dyn clawdia_core::VoiceNotes = &speech;
    assert!(notes.can_transcribe() && notes.can_speak());
    assert_eq!(notes.transcribe_note(&note).await.unwrap().text, "what is on my calendar");
    let reply = notes.voice_note("Nothing until noon.").await.unwrap();
    assert!(reply.starts_with(b"OggS"));
    let back = decode(&reply).unwrap();
    assert!((back.seconds() - 0.5).abs() < 0.001, "{} s", back.seconds());
    let json: serde_json::Value = serde_json::from_slice(&tts.only_request().body).unwrap();
    assert_eq!(json["voice"], "af_bella");
    assert_eq!(json["model"], "kokoro");
}

#[tokio::test]
async fn unconfigured_engines_say_which_setting_is_missing() {
    let config = clawdia_config::parse("", std::path::Path::new("/home/claw")).unwrap();
    let speech = clawdia_speech::from_config(&config.speech).unwrap();
    let notes: &dyn clawdia_core::VoiceNotes = &speech;
    assert!(!notes.can_transcribe() && !notes.can_speak());
    let error = speech.transcribe_file(b"RIFF").await.unwrap_err().to_string();
    assert_eq!(error, "speech to text is not configured ([speech] stt)");
    let error = speech.speak("hi", AudioFormat::Wav).await.unwrap_err().to_string();
    assert_eq!(error, "text to speech is not configured ([speech] tts)");
}
