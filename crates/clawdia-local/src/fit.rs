//! Fitting a request into the model's context. A small model's context (2,048 tokens by
//! default) cannot hold every tool an agent may have: a dozen JSON signatures take more room than
//! the conversation. So the prompt is fitted in two steps, each measured with the model's own
//! tokenizer on the prompt its chat template renders:
//!
//! 1. Tools, in the order the request offers them (its priority): all of them when they fit
//!    beside the system prompt and the last message with room left for the reply; otherwise each
//!    tool in turn is kept if it still fits beside those kept before it, so one large schema does
//!    not push out the small ones after it. The tools left out are reported (`Fitted`), and the
//!    engine logs a warning naming them.
//! 2. Messages: the oldest are dropped (never the last) until the prompt fits.
//!
//! A `Prompter` needs only the GGUF header (tokenizer tables, chat template, context length), not
//! the weights, so `clawdia doctor` can tell which tools an agent's local model will be offered
//! without loading the model.

use std::path::Path;

use clawdia_core::{ChatRequest, first_line};
use tokenizers::Tokenizer;

use crate::LocalError;
use crate::gguf::GgufInfo;
use crate::template::ChatTemplate;

/// Fewest new tokens a reply must have room for (or `max_tokens`, if smaller).
pub const MIN_REPLY_ROOM: usize = 256;

/// Renders and measures prompts for one model.
pub struct Prompter {
    tokenizer: Tokenizer,
    template: ChatTemplate,
    context_length: usize,
}

impl std::fmt::Debug for Prompter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prompter")
            .field("template", &self.template)
            .field("context_length", &self.context_length)
            .finish_non_exhaustive()
    }
}

/// A request's prompt as it fits the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    /// The prompt's token ids.
    pub ids: Vec<u32>,
    /// Names of the tools offered to the model, in the request's order.
    pub tools_kept: Vec<String>,
    /// Names of the tools left out to make room, in the request's order.
    pub tools_left_out: Vec<String>,
    /// How many of the oldest messages were dropped.
    pub messages_dropped: usize,
}

impl Prompter {
    /// A prompter with `context_length` tokens of context (at least 64).
    pub fn new(tokenizer: Tokenizer, template: ChatTemplate, context_length: usize) -> Prompter {
        Prompter { tokenizer, template, context_length: context_length.max(64) }
    }

    /// The prompter of the chat model in `dir`, from the GGUF header only (no weights): the
    /// folder's `tokenizer.json` or the tokenizer rebuilt from the metadata, the model's chat
    /// template, and `context_length` capped by the model's own limit.
    pub fn load(dir: &Path, context_length: usize) -> Result<Prompter, LocalError> {
        let info = GgufInfo::read(&crate::find_gguf(dir)?)?;
        Prompter::from_info(dir, &info, context_length)
    }

    /// As `load`, from metadata already read.
    pub(crate) fn from_info(
        dir: &Path,
        info: &GgufInfo,
        context_length: usize,
    ) -> Result<Prompter, LocalError> {
        let tokenizer = crate::tokenizer::load_or_rebuild(dir, info)?;
        let source = info.chat_template.clone().or_else(|| template_from_config(dir));
        let bos = info.token(info.bos_token_id).unwrap_or_default();
        let eos = info.token(info.eos_token_id).unwrap_or_default();
        let template = ChatTemplate::new(source.as_deref(), bos, eos)?;
        let limit = context_length.min(info.context_length.unwrap_or(usize::MAX)).min(model_limit(info));
        Ok(Prompter::new(tokenizer, template, limit))
    }

    pub fn context_length(&self) -> usize {
        self.context_length
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The prompt for `request`: the tools that fit, then the newest messages that fit (see the
    /// module doc). `TooLong` when even the last message alone, with no tools, leaves less than
    /// the reply's room.
    pub fn fit(&self, request: &ChatRequest) -> Result<Fitted, LocalError> {
        let limit = self.context_length.saturating_sub(reply_room(request));
        let tools_kept = self.fitting_tools(request, limit)?;
        let (offered, tools_left_out): (Vec<_>, Vec<_>) =
            request.tools.iter().cloned().partition(|tool| tools_kept.contains(&tool.name));
        let tools_left_out = tools_left_out.into_iter().map(|tool| tool.name).collect();
        let request = ChatRequest { tools: offered, ..request.clone() };
        let total = request.messages.len();
        let mut keep = total;
        loop {
            let ids = self.tokens(&request, keep)?;
            if ids.len() <= limit {
                return Ok(Fitted { ids, tools_kept, tools_left_out, messages_dropped: total - keep });
            }
            if keep <= 1 {
                return Err(LocalError::TooLong { tokens: ids.len(), context: self.context_length });
            }
            keep -= 1;
        }
    }

    /// The names of the tools kept, measured with only the last message.
    fn fitting_tools(&self, request: &ChatRequest, limit: usize) -> Result<Vec<String>, LocalError> {
        let names = |tools: &[clawdia_core::ToolSpec]| tools.iter().map(|tool| tool.name.clone()).collect();
        if request.tools.is_empty() || self.tokens(request, 1)?.len() <= limit {
            return Ok(names(&request.tools));
        }
        let mut trial = ChatRequest { tools: Vec::new(), ..request.clone() };
        if self.tokens(&trial, 1)?.len() > limit {
            // Nothing fits beside the last message; `fit` reports it as too long.
            return Ok(Vec::new());
        }
        for tool in &request.tools {
            trial.tools.push(tool.clone());
            if self.tokens(&trial, 1)?.len() > limit {
                trial.tools.pop();
            }
        }
        Ok(names(&trial.tools))
    }

    /// The token ids of `request` rendered with its last `keep` messages.
    fn tokens(&self, request: &ChatRequest, keep: usize) -> Result<Vec<u32>, LocalError> {
        let prompt = self.template.render(request, Some(keep))?;
        let encoding = self
            .tokenizer
            .encode(prompt, false)
            .map_err(|error| LocalError::Model(format!("tokenizer: {}", first_line(&*error))))?;
        Ok(encoding.get_ids().to_vec())
    }
}

/// Tokens the reply needs room for.
fn reply_room(request: &ChatRequest) -> usize {
    (request.max_tokens.max(1) as usize).min(MIN_REPLY_ROOM)
}

/// The longest sequence the architecture's candle implementation supports.
pub(crate) fn model_limit(info: &GgufInfo) -> usize {
    match info.architecture.as_str() {
        "llama" => candle_transformers::models::quantized_llama::MAX_SEQ_LEN,
        _ => usize::MAX,
    }
}

/// `chat_template` from `tokenizer_config.json`, for GGUF files without one.
fn template_from_config(dir: &Path) -> Option<String> {
    let text = std::fs::read(dir.join("tokenizer_config.json")).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    value.get("chat_template")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests;
