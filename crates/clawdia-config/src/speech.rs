//! `[speech]`: the engines that turn voice notes and calls into text and replies back into speech.
//! Each engine is named like an agent's model: `"local/<model>"` runs in the gateway from a
//! folder under the home's `models/` (audio never leaves the machine), `"PROVIDER/MODEL"` uses
//! the OpenAI-compatible audio endpoints of a `[providers]` entry of kind `openai` (its
//! `base_url` and `api_key`), and `"elevenlabs/<model_id>"` (text to speech only) uses
//! ElevenLabs with the key and URL of `[speech.elevenlabs]`: ElevenLabs is no chat provider, so
//! it has no `[providers]` entry an agent could name. `idle_unload` drops an unused local model
//! from memory. The raw table as written and its validation; `raw.rs` and `validate.rs` only
//! call in.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;
use crate::raw::RawSecret;
use crate::validate::Context;
use crate::{ProviderConfig, ProviderKind, SecretRef};

/// Defaults of `[speech]`.
pub(crate) mod defaults {
    pub const VOICE: &str = "alloy";
    pub const MAX_SECONDS: u64 = 600;
    pub const IDLE_UNLOAD: &str = "10m";
    pub const ELEVENLABS_URL: &str = "https://api.elevenlabs.io";
}

/// The prefix of an in-process engine.
const LOCAL: &str = "local";
/// The prefix of an ElevenLabs voice.
const ELEVENLABS: &str = "elevenlabs";

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
    /// Text to speech: `"local/<voice>"`, a folder under `models/` (e.g. `"local/piper-joe"`),
    /// `"PROVIDER/MODEL"` where PROVIDER is a `[providers]` entry of kind `openai` whose
    /// `/audio/speech` is used (e.g. `"openai/gpt-4o-mini-tts"`), or
    /// `"elevenlabs/<model_id>"` (e.g. `"elevenlabs/eleven_flash_v2_5"`) with the key in
    /// `[speech.elevenlabs]` and the voice id in `voice`.
    #[schemars(with = "Option<String>")]
    pub tts: Option<Spanned<String>>,
    /// The voice a provider's text to speech speaks with (a local voice folder has its own); for
    /// ElevenLabs the voice id (e.g. `"21m00Tcm4TlvDq8ikWAM"`), which must then be set.
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
    /// How long a local model (`local/...` Whisper or Piper) stays in memory unused before it is
    /// dropped; the next voice note or reply loads it again. A number with `s`, `m`, `h` or `d`
    /// (`"90s"`, `"10m"`), or `"off"` to keep it loaded once used.
    #[schemars(with = "Option<String>", extend("default" = defaults::IDLE_UNLOAD))]
    pub idle_unload: Option<Spanned<String>>,
    /// ElevenLabs, for `tts = "elevenlabs/<model_id>"`.
    #[serde(default)]
    pub elevenlabs: Option<RawElevenLabs>,
}

/// ElevenLabs' text to speech (`POST /v1/text-to-speech/{voice}`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ElevenLabs")]
pub(crate) struct RawElevenLabs {
    /// The API key (`xi-api-key`) as a secret reference.
    pub api_key: RawSecret,
    /// The API root, `http://` or `https://`, without `/v1`.
    #[schemars(with = "Option<String>", extend("default" = defaults::ELEVENLABS_URL))]
    pub base_url: Option<Spanned<String>>,
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
    /// How long an unused local model stays loaded; `None`: for good.
    pub idle_unload: Option<Duration>,
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
            idle_unload: crate::broker::parse_ttl(defaults::IDLE_UNLOAD),
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
    /// ElevenLabs (text to speech): `[speech.elevenlabs]`'s URL (no trailing `/`) and key.
    ElevenLabs { model: String, base_url: String, api_key: SecretRef },
}

impl SpeechEngine {
    /// The name as configured: `local/whisper-tiny.en`, `groq/whisper-large-v3-turbo`.
    pub fn name(&self) -> String {
        match self {
            SpeechEngine::Local { model, .. } => format!("{LOCAL}/{model}"),
            SpeechEngine::OpenAi { provider, model, .. } => format!("{provider}/{model}"),
            SpeechEngine::ElevenLabs { model, .. } => format!("{ELEVENLABS}/{model}"),
        }
    }
}

pub(crate) fn validate(
    context: &Context,
    raw: RawSpeech,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<SpeechConfig, ConfigError> {
    let defaults = SpeechConfig::default();
    let voice_set = raw.voice.is_some();
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
    let idle_unload = match raw.idle_unload {
        None => defaults.idle_unload,
        Some(text) if matches!(text.get_ref().trim(), "off" | "0") => None,
        Some(text) => Some(crate::broker::parse_ttl(text.get_ref()).ok_or_else(|| {
            context.error(
                text.span(),
                &["speech", "idle_unload"],
                format!(
                    "`{}` is not a duration: a number of at least 1 with s, m, h or d, e.g. \"10m\" (at most 365d), or \"off\"",
                    text.get_ref()
                ),
            )
        })?),
    };
    let elevenlabs = raw.elevenlabs.map(|table| elevenlabs(context, table)).transpose()?;
    let engines = Engines { providers, elevenlabs: elevenlabs.as_ref() };
    let stt = raw.stt.map(|stt| engine(context, stt, "stt", &engines)).transpose()?;
    let tts = match raw.tts {
        None => None,
        Some(tts) => {
            let span = tts.span();
            let engine = engine(context, tts, "tts", &engines)?;
            if matches!(engine, SpeechEngine::ElevenLabs { .. }) && !voice_set {
                return Err(context.error(
                    span,
                    &["speech", "tts"],
                    "ElevenLabs needs a voice id: set [speech] voice (e.g. \"21m00Tcm4TlvDq8ikWAM\")",
                ));
            }
            Some(engine)
        }
    };
    Ok(SpeechConfig {
        stt,
        tts,
        voice,
        language,
        max_seconds: context.positive(raw.max_seconds, &["speech", "max_seconds"], defaults.max_seconds)?,
        threads,
        idle_unload,
    })
}

/// What an engine's prefix may name besides `local`.
struct Engines<'a> {
    providers: &'a BTreeMap<String, ProviderConfig>,
    /// `[speech.elevenlabs]`: its base URL and key.
    elevenlabs: Option<&'a (String, SecretRef)>,
}

fn elevenlabs(context: &Context, raw: RawElevenLabs) -> Result<(String, SecretRef), ConfigError> {
    let base_url = match raw.base_url {
        None => defaults::ELEVENLABS_URL.to_string(),
        Some(base_url) => {
            let url = base_url.get_ref().trim().trim_end_matches('/');
            let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
            if rest.is_none_or(|host| host.is_empty() || host.contains(char::is_whitespace)) {
                return Err(context.error(
                    base_url.span(),
                    &["speech", "elevenlabs", "base_url"],
                    format!("`{}` is not an http:// or https:// URL", base_url.get_ref()),
                ));
            }
            url.to_string()
        }
    };
    let api_key = context.secret(raw.api_key, &["speech", "elevenlabs", "api_key"])?;
    Ok((base_url, api_key))
}

fn engine(
    context: &Context,
    value: Spanned<String>,
    key: &'static str,
    engines: &Engines,
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
    if prefix == ELEVENLABS {
        if key != "tts" {
            return Err(error(format!("ElevenLabs is text to speech only here: `{text}` cannot be stt")));
        }
        let Some((base_url, api_key)) = engines.elevenlabs else {
            return Err(error(format!(
                "`{text}` needs the ElevenLabs key: add [speech.elevenlabs] api_key = {{ env = \"ELEVENLABS_API_KEY\" }}"
            )));
        };
        return Ok(SpeechEngine::ElevenLabs {
            model: model.to_string(),
            base_url: base_url.clone(),
            api_key: api_key.clone(),
        });
    }
    let Some(provider) = engines.providers.get(prefix) else {
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
