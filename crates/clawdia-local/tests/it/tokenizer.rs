//! The tokenizer rebuilt from SmolLM2's GGUF metadata: text round-trips, words map to the
//! vocabulary's own tokens (`Ġworld`), digits split one by one as SmolLM2's pre-tokenizer does,
//! and ChatML's special tokens are single ids.

use clawdia_local::gguf::GgufInfo;
use clawdia_local::tokenizer::from_gguf;

use crate::{SMOLLM2_FILE, smollm2_dir};

fn setup() -> Option<(GgufInfo, tokenizers::Tokenizer)> {
    let dir = smollm2_dir()?;
    let info = GgufInfo::read(&dir.join(SMOLLM2_FILE)).unwrap();
    let tokenizer = from_gguf(&info).unwrap();
    Some((info, tokenizer))
}

#[test]
fn text_round_trips() {
    let Some((_, tokenizer)) = setup() else { return };
    for text in [
        "Hello, world!",
        "  leading spaces and trailing  ",
        "Numbers 2024 and 3.14159, émigré café, 日本語, emoji 🦀\n\ttabs\r\nCRLF",
        "fn main() { println!(\"{}\", 1 + 2); }",
    ] {
        let encoding = tokenizer.encode(text, false).unwrap();
        assert_eq!(tokenizer.decode(encoding.get_ids(), false).unwrap(), text);
    }
}

#[test]
fn words_map_to_vocabulary_tokens() {
    let Some((info, tokenizer)) = setup() else { return };
    let encoding = tokenizer.encode("Hello world", false).unwrap();
    let expected = [info.token_id("Hello").unwrap(), info.token_id("Ġworld").unwrap()];
    assert_eq!(encoding.get_ids(), expected);
}

#[test]
fn digits_split_one_by_one() {
    let Some((info, tokenizer)) = setup() else { return };
    let encoding = tokenizer.encode("2024", false).unwrap();
    let expected: Vec<u32> = ["2", "0", "2", "4"].iter().map(|d| info.token_id(d).unwrap()).collect();
    assert_eq!(encoding.get_ids(), expected);
}

#[test]
fn chatml_tokens_are_single_special_ids() {
    let Some((info, tokenizer)) = setup() else { return };
    assert_eq!(info.architecture, "llama");
    assert_eq!(info.tokenizer_model, "gpt2");
    let encoding = tokenizer.encode("<|im_start|>user\nHi<|im_end|>", false).unwrap();
    let ids = encoding.get_ids();
    assert_eq!(ids.first(), info.token_id("<|im_start|>").as_ref());
    assert_eq!(ids.last(), info.token_id("<|im_end|>").as_ref());
    assert_eq!(tokenizer.decode(ids, true).unwrap(), "user\nHi");
}

#[test]
fn the_chat_template_is_the_one_the_model_ships() {
    let Some((info, _)) = setup() else { return };
    let template = info.chat_template.unwrap();
    assert!(template.contains("<|im_start|>") && template.contains("SmolLM"), "{template}");
}
