//! `[brain.dream]`: the dream cycle, which distils new chat transcripts into the brain. The raw
//! table as written (with its defaults, documented in the schema) and its validation: the agent
//! must exist, the scorer must be a `provider/model` of a configured provider, numbers in range.
//! The scheduler parses the cron expression and zone itself (its errors name
//! `brain.dream.schedule`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clawdia_core::ModelRef;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use crate::error::ConfigError;
use crate::validate::Context;
use crate::{AgentConfig, ProviderConfig};

pub(crate) const SCHEDULE: &str = "0 3 * * *";
pub(crate) const AGENT: &str = "main";
pub(crate) const MIN_SCORE: u8 = 6;
pub(crate) const MAX_TRANSCRIPTS: usize = 50;
pub(crate) const CONTEXT_MESSAGES: usize = 6;
pub(crate) const MAX_SLICE_CHARS: usize = 24_000;
pub(crate) const TIMEOUT_SECS: u64 = 3600;
pub(crate) const TURN_TIMEOUT_SECS: u64 = 600;
pub(crate) const PROMPTS_DIR: &str = "prompts";

/// The dream cycle: a cheap model scores what is new in each transcript since the last run, and
/// the worthy parts are distilled into pages, dated facts and takes by turns of `agent` that may
/// only read and write the brain. `clawdia brain dream [--dry-run]` runs it by hand.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Dream")]
pub(crate) struct RawDream {
    /// Run the dream cycle on `schedule` while the gateway runs (`clawdia brain dream` works
    /// either way).
    #[schemars(extend("default" = false))]
    pub enabled: Option<bool>,
    /// When it runs: a cron expression (5 or 6 fields) in `tz`.
    #[schemars(with = "Option<String>", extend("default" = SCHEDULE))]
    pub schedule: Option<Spanned<String>>,
    /// The time zone of `schedule`.
    #[schemars(with = "Option<String>", extend("default" = "UTC"))]
    pub tz: Option<Spanned<String>>,
    /// The agent whose sessions are distilled. Its model chain runs the distillers, and its tool
    /// policy must allow the `brain` group.
    #[schemars(with = "Option<String>", extend("default" = AGENT))]
    pub agent: Option<Spanned<String>>,
    /// A cheap `provider/model` that scores each transcript (default: the agent's model).
    #[schemars(with = "Option<String>")]
    pub scorer_model: Option<Spanned<String>>,
    /// Transcripts scoring below this (0-10) are not distilled.
    #[schemars(with = "Option<u8>", extend("default" = MIN_SCORE))]
    pub min_score: Option<Spanned<u8>>,
    /// Most transcript slices scored in one run; the rest waits for the next run.
    #[schemars(with = "Option<usize>", extend("default" = MAX_TRANSCRIPTS))]
    pub max_transcripts: Option<Spanned<usize>>,
    /// A run stops starting new work after this many tokens (scoring and distilling).
    #[schemars(with = "Option<u64>")]
    pub max_tokens: Option<Spanned<u64>>,
    /// A run stops starting new work after spending this many US dollars (from `[prices]`).
    #[schemars(with = "Option<f64>")]
    pub max_usd: Option<Spanned<f64>>,
    /// Earlier, already distilled messages shown before the new part of a transcript.
    #[schemars(with = "Option<usize>", extend("default" = CONTEXT_MESSAGES))]
    pub context_messages: Option<Spanned<usize>>,
    /// Longer new parts are cut into slices of at most this many characters, each scored and
    /// distilled on its own.
    #[schemars(with = "Option<usize>", extend("default" = MAX_SLICE_CHARS))]
    pub max_slice_chars: Option<Spanned<usize>>,
    /// Hard cap on one scheduled run, in seconds.
    #[schemars(with = "Option<u64>", extend("default" = TIMEOUT_SECS))]
    pub timeout_seconds: Option<Spanned<u64>>,
    /// Hard cap on one distiller turn, in seconds.
    #[schemars(with = "Option<u64>", extend("default" = TURN_TIMEOUT_SECS))]
    pub turn_timeout_seconds: Option<Spanned<u64>>,
    /// The folder holding `dream-score.md` and `dream-distil.md`, the prompts the owner edits
    /// (written with defaults by `clawdia init` and by the first run when missing).
    #[schemars(with = "Option<String>", extend("default" = PROMPTS_DIR))]
    pub prompts_dir: Option<Spanned<String>>,
}

/// `[brain.dream]`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct DreamConfig {
    pub enabled: bool,
    pub schedule: String,
    pub tz: String,
    pub agent: String,
    /// `None`: the agent's own model.
    pub scorer_model: Option<ModelRef>,
    pub min_score: u8,
    pub max_transcripts: usize,
    pub max_tokens: Option<u64>,
    pub max_usd: Option<f64>,
    pub context_messages: usize,
    pub max_slice_chars: usize,
    pub timeout: Duration,
    pub turn_timeout: Duration,
    /// Absolute.
    pub prompts_dir: PathBuf,
}

pub(crate) fn validate(
    context: &Context,
    raw: RawDream,
    agents: &BTreeMap<String, AgentConfig>,
    providers: &BTreeMap<String, ProviderConfig>,
) -> Result<DreamConfig, ConfigError> {
    let key = |field: &'static str| ["brain", "dream", field];
    let enabled = raw.enabled.unwrap_or(false);
    let agent = match raw.agent {
        Some(agent) if !agents.contains_key(agent.get_ref()) => {
            let known = agents.keys().cloned().collect::<Vec<_>>().join(", ");
            let message = format!("unknown agent `{}` (configured: {known})", agent.get_ref());
            return Err(context.error(agent.span(), &key("agent"), message));
        }
        Some(agent) => agent.into_inner(),
        None => AGENT.to_string(),
    };
    if enabled && !agents.contains_key(&agent) {
        let message = format!("the dream cycle is enabled but there is no agent `{agent}`; set `agent`");
        return Err(context.error(0..0, &key("agent"), message));
    }
    let scorer_model = match raw.scorer_model {
        None => None,
        Some(text) => Some(crate::validate::model_ref(context, &text, &key("scorer_model"), providers)?),
    };
    let min_score = match raw.min_score {
        None => MIN_SCORE,
        Some(score) if *score.get_ref() <= 10 => score.into_inner(),
        Some(score) => return Err(context.error(score.span(), &key("min_score"), "must be from 0 to 10")),
    };
    let text = |value: Option<Spanned<String>>, field: &'static str, default: &str| match value {
        None => Ok(default.to_string()),
        Some(value) if value.get_ref().trim().is_empty() => {
            Err(context.error(value.span(), &key(field), "must not be empty"))
        }
        Some(value) => Ok(value.into_inner().trim().to_string()),
    };
    let max_slice_chars = match raw.max_slice_chars {
        None => MAX_SLICE_CHARS,
        Some(chars) if *chars.get_ref() >= 1000 => chars.into_inner(),
        Some(chars) => {
            return Err(context.error(chars.span(), &key("max_slice_chars"), "must be at least 1000"));
        }
    };
    let seconds =
        |value, field, default| context.positive(value, &key(field), default).map(Duration::from_secs);
    Ok(DreamConfig {
        enabled,
        schedule: text(raw.schedule, "schedule", SCHEDULE)?,
        tz: text(raw.tz, "tz", "UTC")?,
        agent,
        scorer_model,
        min_score,
        max_transcripts: context.positive(raw.max_transcripts, &key("max_transcripts"), MAX_TRANSCRIPTS)?,
        max_tokens: match raw.max_tokens {
            None => None,
            Some(tokens) => Some(context.positive(Some(tokens), &key("max_tokens"), 1)?),
        },
        max_usd: match raw.max_usd {
            None => None,
            Some(usd) => Some(context.usd(usd, &key("max_usd"))?),
        },
        context_messages: raw.context_messages.map(Spanned::into_inner).unwrap_or(CONTEXT_MESSAGES),
        max_slice_chars,
        timeout: seconds(raw.timeout_seconds, "timeout_seconds", TIMEOUT_SECS)?,
        turn_timeout: seconds(raw.turn_timeout_seconds, "turn_timeout_seconds", TURN_TIMEOUT_SECS)?,
        prompts_dir: context.path(&text(raw.prompts_dir, "prompts_dir", PROMPTS_DIR)?),
    })
}
