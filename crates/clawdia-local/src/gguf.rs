//! What a GGUF file says about itself: the architecture, the context length, the chat template
//! and the tokenizer tables, read from the metadata header (`candle_core::quantized::gguf_file`)
//! without loading any tensor. `tokenizer` turns the tables into a `tokenizers::Tokenizer` when
//! the model folder has no `tokenizer.json`.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{Content, Value};

use crate::LocalError;

/// The metadata the chat engine needs.
#[derive(Debug, Clone)]
pub struct GgufInfo {
    /// `general.architecture`: `llama`, `qwen2`, ...
    pub architecture: String,
    /// `general.name`, when present.
    pub name: Option<String>,
    /// `<arch>.context_length`, when present.
    pub context_length: Option<usize>,
    /// `tokenizer.chat_template`, when present.
    pub chat_template: Option<String>,
    pub tokens: Vec<String>,
    /// `tokenizer.ggml.token_type` (1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte).
    pub token_types: Vec<i32>,
    /// `tokenizer.ggml.merges`, each `left right`.
    pub merges: Vec<String>,
    /// `tokenizer.ggml.model`: `gpt2` (byte-level BPE) is the one supported.
    pub tokenizer_model: String,
    /// `tokenizer.ggml.pre`: the pre-tokenizer flavour (`smollm`, `qwen2`, `llama-bpe`, ...).
    pub pre_tokenizer: Option<String>,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

impl GgufInfo {
    /// Reads the header of `path`.
    pub fn read(path: &Path) -> Result<GgufInfo, LocalError> {
        let mut file = std::fs::File::open(path)
            .map_err(|error| LocalError::Model(format!("cannot open {}: {error}", path.display())))?;
        let content = Content::read(&mut file).map_err(|error| {
            LocalError::Model(format!(
                "{} is not a GGUF file ({})",
                path.display(),
                clawdia_core::first_line(&error)
            ))
        })?;
        GgufInfo::from_content(&content)
            .map_err(|message| LocalError::Model(format!("{}: {message}", path.display())))
    }

    /// Extracts the fields from already parsed GGUF content.
    pub fn from_content(content: &Content) -> Result<GgufInfo, String> {
        let metadata = &content.metadata;
        let text = |key: &str| metadata.get(key).and_then(|value| value.to_string().ok()).cloned();
        let number = |key: &str| metadata.get(key).and_then(as_u64);
        let architecture = text("general.architecture").ok_or("no general.architecture in the metadata")?;
        let strings = |key: &str| -> Vec<String> {
            metadata
                .get(key)
                .and_then(|value| value.to_vec().ok())
                .map(|items| items.iter().filter_map(|item| item.to_string().ok().cloned()).collect())
                .unwrap_or_default()
        };
        let token_types = metadata
            .get("tokenizer.ggml.token_type")
            .and_then(|value| value.to_vec().ok())
            .map(|items| items.iter().map(|item| as_u64(item).unwrap_or(1) as i32).collect())
            .unwrap_or_default();
        Ok(GgufInfo {
            context_length: number(&format!("{architecture}.context_length")).map(|n| n as usize),
            name: text("general.name"),
            chat_template: text("tokenizer.chat_template"),
            tokens: strings("tokenizer.ggml.tokens"),
            token_types,
            merges: strings("tokenizer.ggml.merges"),
            tokenizer_model: text("tokenizer.ggml.model").unwrap_or_default(),
            pre_tokenizer: text("tokenizer.ggml.pre"),
            bos_token_id: number("tokenizer.ggml.bos_token_id").map(|n| n as u32),
            eos_token_id: number("tokenizer.ggml.eos_token_id").map(|n| n as u32),
            architecture,
        })
    }

    /// The token text of `id`.
    pub fn token(&self, id: Option<u32>) -> Option<&str> {
        self.tokens.get(id? as usize).map(String::as_str)
    }

    /// Token ids by text, for the special tokens the engine looks up.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.tokens.iter().position(|token| token == text).map(|index| index as u32)
    }

    /// Ids of the tokens whose type marks them special (control or user-defined).
    pub fn special_ids(&self) -> HashMap<u32, bool> {
        self.token_types
            .iter()
            .enumerate()
            .filter(|(_, kind)| **kind == 3 || **kind == 4)
            .map(|(index, kind)| (index as u32, *kind == 3))
            .collect()
    }
}

fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::U8(v) => Some(u64::from(*v)),
        Value::I8(v) => u64::try_from(*v).ok(),
        Value::U16(v) => Some(u64::from(*v)),
        Value::I16(v) => u64::try_from(*v).ok(),
        Value::U32(v) => Some(u64::from(*v)),
        Value::I32(v) => u64::try_from(*v).ok(),
        Value::U64(v) => Some(*v),
        Value::I64(v) => u64::try_from(*v).ok(),
        _ => None,
    }
}
