//! `[speech]`: the engines that turn voice notes and calls into text and replies back into speech.
//! Each engine is named like an agent's model: `"local/<model>"` runs in the gateway from a
//! folder under the home's `models/` (audio never leaves the machine), `"PROVIDER/MODEL"` uses
//! the OpenAI-compatible audio endpoints of a `[providers]` entry of kind `openai` (its
//! `base_url` and `api_key`). The raw table as written and its validation; `raw.rs` and
//! `validate.rs` only call in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;
use crate::validate::Context;
use crate::{ProviderConfig, ProviderKind, SecretRef};

/// Defaults of `[speech]`.
pub(crate) mod defaults {
    pub const VOICE: &str = "alloy";
    pub const MAX_SECONDS: u64 = 600;
}

/// The prefix of an in-process engine.
const LOCAL: &str = "local";

/// Speech engines for voice notes and calls. Without `stt`, voice notes are not transcribed;
/// without `tts`, replies are sent as text only.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Speech")]
pub(crate) struct RawSpeech {
    /// Speech to text: `"local/<model>"`, a folder under `models/` (e.g.
    /// `"local/whisper-tiny.en"`), or `"PROVIDER/MODEL"` where PROVIDER is a `[providers]` entry
    /// of kind `openai` whose `/audio/transcriptions` is used (e.g.
    /// `"groq/whisper-large-v3-turbo"`). Audio leaves the machine only with a provider.
    #[schemars(with = "Option<String>")]
    pub stt: Option<Spanned<String>>,
    /// Text to speech: `"local/<voice>"`, a folder under `models/` (e.g. `"local/piper-joe"`), or
    /// `"PROVIDER/MODEL"` where PROVIDER is a `[providers]` entry of kind `openai` whose
    /// `/audio/speech` is used (e.g. `"openai/gpt-4o-mini-tts"`).
    #[schemars(with = "Option<String>")]
    pub tts: Option<Spanned<String>>,
    /// The voice a provider's text to speech speaks with (a local voice folder has its own).
    #[schemars(with = "Option<String>", extend("default" = defaults::VOICE))]
    pub voice: Option<Spanned<String>>,
    /// The language spoken, as an ISO 639-1 code (`"en"`, `"de"`): a hint that makes
    /// transcription faster and surer. Unset: the engine detects it.
    #[schemars(with = "Option<String>")]
    pub language: Option<Spanned<String>>,
    /// The longest audio transcribed, in seconds; a longer voice note is refused with a reply
    /// saying so.
    #[schemars(with = "Option<u64>", extend("default" = defaults::MAX_SECONDS))]
    pub max_seconds: Option<Spanned<u64>>,
    /// Threads the local voice (`tts = "local/..."`, ONNX Runtime) computes with. Unset: one per
    /// core. Local Whisper runs on candle's pool, which the gateway's local models share.
    #[schemars(with = "Option<usize>")]
    pub threads: Option<Spanned<usize>>,
}

/// `[speech]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeechConfig {
    pub stt: Option<SpeechEngine>,
    pub tts: Option<SpeechEngine>,
    pub voice: String,
    pub language: Option<String>,
    pub max_seconds: u64,
    pub threads: Option<usize>,
}

impl Default for SpeechConfig {
    fn default() -> SpeechConfig {
        SpeechConfig {
            stt: None,
            tts: None,
            voice: defaults::VOICE.to_string(),
            language: None,
            max_seconds: defaults::MAX_SECONDS,
            threads: None,
        }
    }
}

/// Where one speech engine runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpeechEngine {
    /// In the gateway, from `dir` (absolute: `<home>/models/<model>`).
    Local { model: String, dir: PathBuf },
    /// An OpenAI-compatible endpoint: the `[providers]` entry's URL and key.
    OpenAi { provider: String, model: String, base_url: String, api_key: Option<SecretRef> },
}

impl SpeechEngine {
    /// The name as configured: `local/whisper-tiny.en`, `groq/whisper-large-v3-turbo`.
    pub fn name(&self) -> String {
        match self {
            SpeechEngine::Local { model, .. } => format!("{LOCAL}/{model}"),
            SpeechEngine::OpenAi { provider, model, .. } => format!("{provider}/{model}"),
        }
    }
}

pub(crate) fn validate(
    context: &Context,
    raw: RawSpeech,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<SpeechConfig, ConfigError> {
    let defaults = SpeechConfig::default();
    let voice = match raw.voice {
        None => defaults.voice,
        Some(voice) if voice.get_ref().trim().is_empty() => {
            return Err(context.error(voice.span(), &["speech", "voice"], "must not be empty"));
        }
        Some(voice) => voice.into_inner().trim().to_string(),
    };
    let language = match raw.language {
        None => None,
        Some(language) => {
            let code = language.get_ref().trim();
            if code.len() == 2 && code.chars().all(|c| c.is_ascii_lowercase()) {
                Some(code.to_string())
            } else {
                let message =
                    format!("`{code}` is not an ISO 639-1 code: two lowercase letters, e.g. \"en\"");
                return Err(context.error(language.span(), &["speech", "language"], message));
            }
        }
    };
    let threads = match raw.threads {
        None => None,
        Some(threads) if *threads.get_ref() >= 1 => Some(threads.into_inner()),
        Some(threads) => {
            return Err(context.error(threads.span(), &["speech", "threads"], "must be at least 1"));
        }
    };
    Ok(SpeechConfig {
        stt: raw.stt.map(|stt| engine(context, stt, "stt", providers)).transpose()?,
        tts: raw.tts.map(|tts| engine(context, tts, "tts", providers)).transpose()?,
        voice,
        language,
        max_seconds: context.positive(raw.max_seconds, &["speech", "max_seconds"], defaults.max_seconds)?,
        threads,
    })
}

fn engine(
    context: &Context,
    value: Spanned<String>,
    key: &'static str,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<SpeechEngine, ConfigError> {
    let error = |message: String| context.error(value.span(), &["speech", key], message);
    let text = value.get_ref().trim();
    let Some((prefix, model)) =
        text.split_once('/').filter(|(prefix, model)| !prefix.is_empty() && !model.is_empty())
    else {
        return Err(error(format!(
            "`{text}` is not \"local/<model>\" or \"PROVIDER/MODEL\" (e.g. \"local/whisper-tiny.en\")"
        )));
    };
    if prefix == LOCAL {
        if model.contains('/') || model.starts_with('.') {
            return Err(error(format!(
                "`{model}` is not a folder name under models/ (e.g. whisper-tiny.en)"
            )));
        }
        let dir = context.path(crate::raw::defaults::MODELS_DIR).join(model);
        return Ok(SpeechEngine::Local { model: model.to_string(), dir });
    }
    let Some(provider) = providers.get(prefix) else {
        return Err(error(format!(
            "no provider `{prefix}` in [providers] (use \"local/<model>\" or a provider of kind \"openai\")"
        )));
    };
    if provider.kind != ProviderKind::OpenAi {
        return Err(error(format!(
            "provider `{prefix}` is not of kind \"openai\": speech needs OpenAI-compatible /audio endpoints"
        )));
    }
    Ok(SpeechEngine::OpenAi {
        provider: prefix.to_string(),
        model: model.to_string(),
        base_url: provider.base_url.clone(),
        api_key: provider.api_key.clone(),
    })
}
