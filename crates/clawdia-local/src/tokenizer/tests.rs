//! The tokenizer rebuild on a tiny hand-made GGUF vocabulary: BPE merges apply in rank order,
//! byte-level mapping turns spaces into `Ġ`, digits split one by one for `smollm`, special tokens
//! stay whole, and decoding gives back the text.

use super::*;

fn info(pre: &str) -> GgufInfo {
    let tokens: Vec<String> =
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "a", "b", "Ġ", "1", "2", "ab", "Ġab", "12"]
            .iter()
            .map(|token| token.to_string())
            .collect();
    let mut token_types = vec![1; tokens.len()];
    token_types[..3].fill(3);
    GgufInfo {
        architecture: "llama".into(),
        name: None,
        context_length: Some(2048),
        chat_template: None,
        tokens,
        token_types,
        merges: vec!["a b".into(), "Ġ ab".into(), "1 2".into()],
        tokenizer_model: "gpt2".into(),
        pre_tokenizer: Some(pre.into()),
        bos_token_id: Some(1),
        eos_token_id: Some(2),
    }
}

fn ids(tokenizer: &Tokenizer, text: &str) -> Vec<u32> {
    tokenizer.encode(text, false).map(|encoding| encoding.get_ids().to_vec()).unwrap_or_default()
}

#[test]
fn merges_apply_and_spaces_become_g() {
    let tokenizer = from_gguf(&info("smollm")).unwrap();
    assert_eq!(ids(&tokenizer, "ab ab"), vec![8, 9]);
    assert_eq!(tokenizer.decode(&[8, 9], true).unwrap(), "ab ab");
}

#[test]
fn smollm_splits_digits_but_gpt2_does_not() {
    let smollm = from_gguf(&info("smollm")).unwrap();
    assert_eq!(ids(&smollm, "12"), vec![6, 7]);
    let gpt2 = from_gguf(&info("gpt-2")).unwrap();
    assert_eq!(ids(&gpt2, "12"), vec![10]);
}

#[test]
fn special_tokens_stay_whole_and_are_skipped_when_decoding() {
    let tokenizer = from_gguf(&info("smollm")).unwrap();
    assert_eq!(ids(&tokenizer, "<|im_start|>ab<|im_end|>"), vec![1, 8, 2]);
    assert_eq!(tokenizer.decode(&[1, 8, 2], true).unwrap(), "ab");
    assert_eq!(tokenizer.decode(&[1, 8, 2], false).unwrap(), "<|im_start|>ab<|im_end|>");
}

#[test]
fn other_tokenizer_models_are_refused_with_the_fix() {
    let mut llama = info("smollm");
    llama.tokenizer_model = "llama".into();
    let error = from_gguf(&llama).unwrap_err().to_string();
    assert!(error.contains("tokenizer.json"), "{error}");
}

#[test]
fn a_malformed_merge_is_an_error() {
    let mut broken = info("smollm");
    broken.merges.push("nospace".into());
    assert!(from_gguf(&broken).unwrap_err().to_string().contains("nospace"));
}

#[test]
fn qwen2_and_llama3_patterns_compile() {
    for pre in ["qwen2", "llama-bpe"] {
        let tokenizer = from_gguf(&info(pre)).unwrap();
        assert_eq!(tokenizer.decode(&ids(&tokenizer, "ab ab"), true).unwrap(), "ab ab", "{pre}");
    }
}
