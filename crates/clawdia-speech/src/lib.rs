//! Speech for Clawdia's channels: the engines behind clawdia-core's `SpeechToText` and
//! `TextToSpeech` seams, chosen by `[speech]`, and the audio they take and give.
//!
//! - `openai`: any OpenAI-compatible endpoint (`/audio/transcriptions`, `/audio/speech`): OpenAI,
//!   Groq, local Whisper and TTS servers. Audio goes there only when the owner configured it.
//! - `elevenlabs`: ElevenLabs text to speech (raw PCM back); `http` is the client both share.
//! - `audio`, `wav`, `ogg`: decoding WAV and Ogg/Opus (Telegram voice notes) into mono PCM,
//!   encoding replies back, resampling (rubato).
//! - `local` (feature `local`): Whisper on candle, in process.
//! - `engines`: `[speech]` -> the configured engines (`Speech`), and the helpers a channel
//!   wants: transcribe a file's bytes, speak text as a voice note.
//!
//! Architecture invariant: this crate is a capability; it depends on foundation crates only, and
//! a channel reaches it through the core seams the composition root hands it.

pub mod audio;
pub mod elevenlabs;
mod engines;
mod http;
#[cfg(feature = "local")]
pub mod local;
pub mod ogg;
pub mod openai;
pub mod wav;
pub mod wer;

pub use audio::{AudioFormat, decode, encode, resample};
pub use engines::{Speech, from_config, stt_from_config, tts_from_config};

/// rustls needs a process-wide crypto provider before the first TLS client is built; ring is the
/// one the workspace builds. A second install is a harmless no-op.
fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
