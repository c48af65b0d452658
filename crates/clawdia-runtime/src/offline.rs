//! Working with no API key and no network. `init_config` picks what `clawdia init` writes:
//! the shipped default (Anthropic) when `ANTHROPIC_API_KEY` is set; otherwise the same file plus
//! a `[providers.local]` section, with the `main` agent on the local chat model when one is
//! installed in the home, or on Anthropic with the local model as its last fallback when none is
//! (so pulling a model later is enough). An agent on the local model gets short replies
//! (`LOCAL_MAX_TOKENS`) and a lean tool policy
//! (`LOCAL_TOOLS`): a small model's context (2,048 tokens by default) cannot hold the dozen
//! default tools' definitions beside a conversation. `local_tool_fits` tells `clawdia doctor`
//! which tools each local model in an agent's chain has room for. `check_chain` is the
//! first-run check `clawdia chat` makes: when no model of the agent's chain can possibly answer
//! (no key resolves, no local model is installed) it returns the one-line way out.

use std::path::Path;

use clawdia_config::{AgentConfig, Config, ProviderKind};
use clawdia_core::{ChatRequest, Message};

use crate::Runtime;

/// The chat model `init` names when none is installed yet.
pub const DEFAULT_LOCAL_MODEL: &str = "SmolLM2-135M-Instruct";

/// The key the shipped default config reads.
const DEFAULT_KEY_ENV: &str = "ANTHROPIC_API_KEY";

/// The tools `init` allows an agent on the local model: what fits SmolLM2's 2,048-token context
/// with room left for the conversation (`clawdia doctor` reports the fit).
pub const LOCAL_TOOLS: [&str; 3] = ["read", "list", "brain_query"];

/// The reply length `init` sets for an agent on the local model: a 135M model greedily decoding
/// can repeat itself until the context is full, minutes of CPU for a wall of text.
pub const LOCAL_MAX_TOKENS: u32 = 256;

/// The commented tools section of the shipped default, replaced for an agent on the local model.
const DEFAULT_TOOLS: &str =
    "# [agents.main.tools]\n# allow = [\"fs\", \"web\", \"brain\", \"exec\"]            # the default\n";

const LOCAL_PROVIDER: &str = "[providers.local]                            # a model from models/, run in process\nkind = \"local\"\n# idle_unload_secs = 300                     # unload after this long without a request\n\n";

/// The config `clawdia init` writes for `home`.
pub fn init_config(home: &Path) -> String {
    let default = clawdia_config::default_config_toml();
    if std::env::var_os(DEFAULT_KEY_ENV).is_some_and(|key| !key.is_empty()) {
        return default;
    }
    let agent_model = "model = \"anthropic/claude-sonnet-4-5\"\n";
    let Some(at) = default.find("[agents.main]\n") else { return default };
    if !default.contains(agent_model) {
        return default;
    }
    let (head, tail) = default.split_at(at);
    let tail = match installed_chat_model(&home.join("models")) {
        Some(model) => tail
            .replacen(
                agent_model,
                &format!(
                    "model = \"local/{model}\"                  # no API key was set at init: the local model\n\
                     max_tokens = {LOCAL_MAX_TOKENS}                           # a small model may ramble: keep replies short\n"
                ),
                1,
            )
            .replacen(DEFAULT_TOOLS, &local_tools_section(), 1),
        None => tail.replacen(
            agent_model,
            &format!(
                "{agent_model}fallbacks = [\"local/{DEFAULT_LOCAL_MODEL}\"]      # after `clawdia models pull {DEFAULT_LOCAL_MODEL}`\n"
            ),
            1,
        ),
    };
    format!("{head}{LOCAL_PROVIDER}{tail}")
}

/// `[agents.main.tools]` for an agent on the local model.
fn local_tools_section() -> String {
    let allow: Vec<String> = LOCAL_TOOLS.iter().map(|tool| format!("\"{tool}\"")).collect();
    format!(
        "# A small local model's context holds only a few tool definitions beside the conversation\n\
         # (`clawdia doctor` shows which fit); the default, for remote models: [\"fs\", \"web\", \"brain\", \"exec\"]\n\
         [agents.main.tools]\n\
         allow = [{}]\n",
        allow.join(", ")
    )
}

/// The first usable local chat model in `models_dir`: catalogue chat models first, then any
/// folder with a `.gguf`.
pub fn installed_chat_model(models_dir: &Path) -> Option<String> {
    let models = clawdia_local::models::list(models_dir).ok()?;
    let chat = |model: &&clawdia_local::models::ModelStatus| {
        model.usable && model.kind == Some(clawdia_local::models::ModelKind::Chat)
    };
    let catalogue = models.iter().filter(chat).find(|model| model.catalogue.is_some());
    catalogue.or_else(|| models.iter().find(chat)).map(|model| model.name.clone())
}

/// `Err(one line)` when no model in `agent`'s chain can answer: every remote provider's key
/// fails to resolve and no local model of the chain is installed.
pub fn check_chain(config: &Config, agent: &AgentConfig) -> Result<(), String> {
    let chain = std::iter::once(&agent.model).chain(&agent.fallbacks);
    for model in chain {
        let Some(provider) = config.providers.get(&model.provider) else { continue };
        let usable = match (&provider.local, provider.kind) {
            (Some(local), ProviderKind::Local) => local.models_dir.join(&model.model).is_dir(),
            _ => provider.api_key.as_ref().is_none_or(|key| key.resolve().is_ok()),
        };
        if usable {
            return Ok(());
        }
    }
    Err(format!(
        "no model of agent `{}` can answer: set a provider key (e.g. export {DEFAULT_KEY_ENV}=...) or install a local model with `clawdia models pull {DEFAULT_LOCAL_MODEL}`",
        agent.name
    ))
}

/// Which of an agent's tools one local model in its chain has room for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalToolFit {
    /// `provider/model`.
    pub model: String,
    /// Tokens of context the model runs with.
    pub context_length: usize,
    /// The tools offered, in the order sent.
    pub kept: Vec<String>,
    /// The tools left out for lack of room.
    pub left_out: Vec<String>,
}

/// For each installed local model in `agent`'s chain: which of the agent's built-in tools it
/// would be offered on a first turn (the system prompt as the workspace files make it now, a
/// one-word message), measured with the model's own tokenizer and template exactly as a turn
/// is fitted. Reads only the model's GGUF header. Models not installed are skipped (the
/// provider check reports them).
pub fn local_tool_fits(runtime: &Runtime, agent: &AgentConfig) -> Vec<Result<LocalToolFit, String>> {
    let mut fits = Vec::new();
    for model in std::iter::once(&agent.model).chain(&agent.fallbacks) {
        let Some(local) = runtime.config.providers.get(&model.provider).and_then(|p| p.local.as_ref()) else {
            continue;
        };
        let dir = local.models_dir.join(&model.model);
        if !dir.is_dir() {
            continue;
        }
        let fit = || -> Result<LocalToolFit, String> {
            let prompter = clawdia_local::Prompter::load(&dir, local.context_length)
                .map_err(|error| format!("{model}: {error}"))?;
            let boundary = clawdia_core::random::hex(8).map_err(|error| error.to_string())?;
            let request = ChatRequest {
                model: model.model.clone(),
                system: runtime.agents.system_prompt(&agent.name, &boundary).unwrap_or_default(),
                messages: vec![Message::user("hello")],
                tools: runtime.agents.tool_specs(&agent.name).unwrap_or_default(),
                max_tokens: agent.max_tokens,
                temperature: agent.temperature,
                stream: true,
                stop: Vec::new(),
            };
            let fitted = prompter.fit(&request).map_err(|error| format!("{model}: {error}"))?;
            Ok(LocalToolFit {
                model: model.to_string(),
                context_length: prompter.context_length(),
                kept: fitted.tools_kept,
                left_out: fitted.tools_left_out,
            })
        };
        fits.push(fit());
    }
    fits
}
