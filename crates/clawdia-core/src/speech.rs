//! The speech seams any channel uses (Telegram voice notes, phone calls): speech-to-text and
//! text-to-speech, each implemented by a local engine or an OpenAI-compatible endpoint in
//! `clawdia-speech` and chosen by `[speech]`. Audio crosses the seam as 16-bit mono PCM with
//! its sample rate; decoding containers (OGG/Opus, WAV) and encoding replies are the speech
//! crate's business, not the channels'.

use async_trait::async_trait;

/// Mono 16-bit PCM.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pcm {
    pub sample_rate: u32,
    pub samples: Vec<i16>,
}

impl Pcm {
    /// The audio's length in seconds.
    pub fn seconds(&self) -> f64 {
        if self.sample_rate == 0 { 0.0 } else { self.samples.len() as f64 / f64::from(self.sample_rate) }
    }
}

/// What a transcription found.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transcript {
    pub text: String,
    /// The language the engine detected or was told, if it says.
    pub language: Option<String>,
}

/// Why speech failed; one line each, naming the engine.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpeechError {
    /// The audio could not be read (a broken or unsupported file).
    #[error("unreadable audio: {0}")]
    Audio(String),
    /// The engine is not set up (missing model files, no endpoint configured).
    #[error("{0}")]
    Unavailable(String),
    /// The engine failed on this input (a remote error, a model error).
    #[error("{0}")]
    Failed(String),
}

/// Speech to text.
#[async_trait]
pub trait SpeechToText: Send + Sync {
    /// The engine's name for logs and `clawdia speech`: `local/whisper-tiny.en`, `groq/...`.
    fn name(&self) -> String;
    async fn transcribe(&self, audio: &Pcm) -> Result<Transcript, SpeechError>;
}

/// Text to speech.
#[async_trait]
pub trait TextToSpeech: Send + Sync {
    fn name(&self) -> String;
    async fn synthesize(&self, text: &str) -> Result<Pcm, SpeechError>;
}

/// What a channel does with speech, over the encoded audio it carries: a capability crate (a
/// channel) cannot name `clawdia-speech`, so the composition root hands it this seam, which the
/// speech crate implements over the configured engines (decoding, length limits, encoding).
#[async_trait]
pub trait VoiceNotes: Send + Sync {
    /// Whether speech to text is configured (else voice notes get a text reply saying so).
    fn can_transcribe(&self) -> bool;
    /// Whether text to speech is configured (else replies stay text).
    fn can_speak(&self) -> bool;
    /// The text of a voice note or audio file (Ogg/Opus or WAV, recognised by content).
    async fn transcribe_note(&self, bytes: &[u8]) -> Result<Transcript, SpeechError>;
    /// `text` spoken, as an Ogg/Opus voice note (mono, 48 kHz).
    async fn voice_note(&self, text: &str) -> Result<Vec<u8>, SpeechError>;
}
