//! `[speech]` -> the engines, and what a channel does with them (also as core's `VoiceNotes`
//! seam, which the composition root hands a channel): `Speech::transcribe_file` takes
//! a voice note's bytes (WAV or Ogg/Opus, recognised by content), refuses audio longer than
//! `max_seconds` and returns the text; `Speech::speak` returns a reply as encoded audio. A
//! `local/<model>` engine is loaded from its folder under `models/` when this build has the
//! local engines, and is otherwise `Unavailable` with a line saying why.

use std::sync::Arc;

use clawdia_config::{SpeechConfig, SpeechEngine};
use clawdia_core::{Pcm, SpeechError, SpeechToText, TextToSpeech, Transcript};

use crate::audio::AudioFormat;
use crate::elevenlabs::ElevenLabsSpeaker;
use crate::openai::{Endpoint, OpenAiSpeaker, OpenAiTranscriber};

/// The configured engines; either may be absent (`[speech] stt` / `tts` unset).
#[derive(Clone)]
pub struct Speech {
    pub stt: Option<Arc<dyn SpeechToText>>,
    pub tts: Option<Arc<dyn TextToSpeech>>,
    /// The longest audio transcribed.
    pub max_seconds: u64,
}

impl std::fmt::Debug for Speech {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Speech")
            .field("stt", &self.stt.as_ref().map(|engine| engine.name()))
            .field("tts", &self.tts.as_ref().map(|engine| engine.name()))
            .field("max_seconds", &self.max_seconds)
            .finish()
    }
}

/// Builds the engines `[speech]` names. Secrets are resolved now, so a missing key is reported
/// at start-up; local models load on first use.
pub fn from_config(config: &SpeechConfig) -> Result<Speech, SpeechError> {
    Ok(Speech {
        stt: stt_from_config(config)?,
        tts: tts_from_config(config)?,
        max_seconds: config.max_seconds,
    })
}

/// The speech-to-text engine `[speech] stt` names, if any: for a caller that carries on without
/// it when it cannot be built (a missing model), keeping the other engine.
pub fn stt_from_config(config: &SpeechConfig) -> Result<Option<Arc<dyn SpeechToText>>, SpeechError> {
    config.stt.as_ref().map(|engine| transcriber(engine, config)).transpose()
}

/// The text-to-speech engine `[speech] tts` names, if any.
pub fn tts_from_config(config: &SpeechConfig) -> Result<Option<Arc<dyn TextToSpeech>>, SpeechError> {
    config.tts.as_ref().map(|engine| speaker(engine, config)).transpose()
}

fn endpoint(engine: &SpeechEngine) -> Result<Option<Endpoint>, SpeechError> {
    let SpeechEngine::OpenAi { provider, model, base_url, api_key } = engine else {
        return Ok(None);
    };
    let api_key = match api_key {
        None => None,
        Some(reference) => Some(
            reference
                .resolve()
                .map_err(|error| SpeechError::Unavailable(format!("{}: {error}", engine.name())))?
                .expose()
                .to_string(),
        ),
    };
    Ok(Some(Endpoint {
        base_url: base_url.clone(),
        api_key,
        name: format!("{provider}/{model}"),
        model: model.clone(),
    }))
}

fn transcriber(engine: &SpeechEngine, config: &SpeechConfig) -> Result<Arc<dyn SpeechToText>, SpeechError> {
    if let Some(endpoint) = endpoint(engine)? {
        return Ok(Arc::new(OpenAiTranscriber::new(&endpoint, config.language.clone())?));
    }
    if let SpeechEngine::ElevenLabs { .. } = engine {
        return Err(SpeechError::Unavailable(format!(
            "{}: ElevenLabs is text to speech only here",
            engine.name()
        )));
    }
    #[cfg(feature = "local")]
    if let SpeechEngine::Local { dir, .. } = engine {
        let whisper = crate::local::LocalWhisper::new(&engine.name(), dir, config.language.clone())?;
        return Ok(Arc::new(whisper.with_idle_unload(config.idle_unload)));
    }
    Err(local_unavailable(engine))
}

fn speaker(engine: &SpeechEngine, config: &SpeechConfig) -> Result<Arc<dyn TextToSpeech>, SpeechError> {
    if let SpeechEngine::ElevenLabs { model, base_url, api_key } = engine {
        let key = api_key
            .resolve()
            .map_err(|error| SpeechError::Unavailable(format!("{}: {error}", engine.name())))?;
        return Ok(Arc::new(ElevenLabsSpeaker::new(base_url, key.expose(), model, &config.voice)?));
    }
    if let Some(endpoint) = endpoint(engine)? {
        return Ok(Arc::new(OpenAiSpeaker::new(&endpoint, &config.voice)?));
    }
    #[cfg(feature = "local")]
    if let SpeechEngine::Local { dir, .. } = engine {
        let runtime = crate::local::onnx_runtime_path(dir);
        let piper = crate::local::LocalPiper::new(&engine.name(), dir, &runtime, config.threads)?;
        return Ok(Arc::new(piper.with_idle_unload(config.idle_unload)));
    }
    Err(local_unavailable(engine))
}

fn local_unavailable(engine: &SpeechEngine) -> SpeechError {
    SpeechError::Unavailable(format!(
        "{}: local speech engines are not in this build (use an OpenAI-compatible provider)",
        engine.name()
    ))
}

impl Speech {
    /// The text of a voice note or audio file (WAV or Ogg/Opus).
    pub async fn transcribe_file(&self, bytes: &[u8]) -> Result<Transcript, SpeechError> {
        let Some(stt) = &self.stt else {
            return Err(SpeechError::Unavailable(
                "speech to text is not configured ([speech] stt)".to_string(),
            ));
        };
        let pcm = crate::audio::decode(bytes)?;
        self.check_length(&pcm)?;
        stt.transcribe(&pcm).await
    }

    /// Refuses audio longer than `max_seconds`, and audio with nothing in it.
    pub fn check_length(&self, pcm: &Pcm) -> Result<(), SpeechError> {
        let seconds = pcm.seconds();
        if pcm.samples.is_empty() {
            return Err(SpeechError::Audio("the audio is empty".to_string()));
        }
        if seconds > self.max_seconds as f64 {
            return Err(SpeechError::Audio(format!(
                "the audio is {} s long, more than the {} s transcribed ([speech] max_seconds)",
                seconds.ceil(),
                self.max_seconds
            )));
        }
        Ok(())
    }

    /// `text` spoken, encoded as `format`.
    pub async fn speak(&self, text: &str, format: AudioFormat) -> Result<Vec<u8>, SpeechError> {
        let Some(tts) = &self.tts else {
            return Err(SpeechError::Unavailable(
                "text to speech is not configured ([speech] tts)".to_string(),
            ));
        };
        let pcm = tts.synthesize(text).await?;
        crate::audio::encode(&pcm, format)
    }
}

#[async_trait::async_trait]
impl clawdia_core::VoiceNotes for Speech {
    fn can_transcribe(&self) -> bool {
        self.stt.is_some()
    }

    fn can_speak(&self) -> bool {
        self.tts.is_some()
    }

    async fn transcribe_note(&self, bytes: &[u8]) -> Result<Transcript, SpeechError> {
        self.transcribe_file(bytes).await
    }

    async fn voice_note(&self, text: &str) -> Result<Vec<u8>, SpeechError> {
        self.speak(text, AudioFormat::OggOpus).await
    }
}
