//! Working with no API key and no network. `init_config` picks what `clawdia init` writes:
//! the shipped default (Anthropic) when `ANTHROPIC_API_KEY` is set; otherwise the same file plus
//! a `[providers.local]` section, with the `main` agent on the local chat model when one is
//! installed in the home, or on Anthropic with the local model as its last fallback when none is
//! (so pulling a model later is enough). `check_chain` is the first-run check `clawdia chat`
//! makes: when no model of the agent's chain can possibly answer (no key resolves, no local
//! model is installed) it returns the one-line way out.

use std::path::Path;

use clawdia_config::{AgentConfig, Config, ProviderKind};

/// The chat model `init` names when none is installed yet.
pub const DEFAULT_LOCAL_MODEL: &str = "SmolLM2-135M-Instruct";

/// The key the shipped default config reads.
const DEFAULT_KEY_ENV: &str = "ANTHROPIC_API_KEY";

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
        Some(model) => tail.replacen(
            agent_model,
            &format!("model = \"local/{model}\"                  # no API key was set at init: the local model\n"),
            1,
        ),
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
