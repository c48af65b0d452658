//! The real all-MiniLM-L6-v2 (from `scripts/fetch-models.sh`): 384-dimensional unit vectors,
//! sentence-transformers' known similarities, agreement with reference vectors computed by
//! `test_data/reference.py` on the same files, 256-token truncation, and vectors that do not
//! depend on batching, order or padding. Skipped (with a printed reason) without the weights,
//! except under `CI`.

use std::sync::OnceLock;

use clawdia_core::Embedder;
use clawdia_embed::{LazyLocal, LocalEmbedder};

use crate::{assert_close, dot, minilm_dir, norm, strings};

/// The model, loaded once for the whole binary; `None` when the weights are absent.
/// Every caller prints its own skip notice.
fn model() -> Option<&'static LocalEmbedder> {
    static MODEL: OnceLock<LocalEmbedder> = OnceLock::new();
    let dir = minilm_dir()?;
    Some(MODEL.get_or_init(|| LocalEmbedder::load(&dir, None).expect("all-MiniLM-L6-v2 loads")))
}

const FOOD: &str = "A man is eating food.";
const BREAD: &str = "A man is eating a piece of bread.";
const BABY: &str = "The girl is carrying a baby.";

/// First 8 components of the reference vectors (`reference.py`, float64 numpy BERT).
const REFERENCE: [(&str, [f32; 8]); 4] = [
    (FOOD, [0.033242, 0.004406, -0.006277, 0.048379, -0.138702, -0.033617, 0.101128, -0.054385]),
    (BREAD, [0.052518, 0.055241, -0.011188, -0.005745, -0.127208, -0.022252, 0.076879, 0.013185]),
    (BABY, [-0.036309, -0.035653, -0.027223, 0.038320, 0.070778, -0.016580, 0.061681, 0.054438]),
    ("", [-0.118838, 0.048299, -0.002548, -0.011011, 0.051951, 0.010292, 0.115433, 0.000701]),
];

/// 600 words; the model sees only its first 256 tokens.
fn long_text() -> String {
    (0..200).map(|index| format!("word{index} lorem ipsum")).collect::<Vec<_>>().join(" ")
}

/// Reference for [`long_text`], truncated to 256 tokens as sentence-transformers does.
const LONG_REFERENCE: [f32; 8] =
    [-0.018678, -0.009318, 0.019090, -0.019355, -0.008846, 0.030982, 0.040982, -0.056176];

#[tokio::test]
async fn vectors_are_384_dimensional_unit_vectors() {
    let Some(model) = model() else { return };
    assert_eq!(model.model_id(), "local/all-MiniLM-L6-v2");
    assert_eq!(model.dimensions(), 384);
    let vectors = model.embed(&strings(&[FOOD, "", "ünïcödé ✓ 東京"])).await.expect("embeds");
    for vector in &vectors {
        assert_eq!(vector.len(), 384);
        assert!((norm(vector) - 1.0).abs() < 1e-5, "norm {}", norm(vector));
    }
}

#[tokio::test]
async fn similar_sentences_score_high_and_unrelated_ones_low() {
    let Some(model) = model() else { return };
    let vectors = model.embed(&strings(&[FOOD, BREAD, BABY])).await.expect("embeds");
    let related = dot(&vectors[0], &vectors[1]);
    let unrelated = dot(&vectors[0], &vectors[2]);
    assert!(related > 0.6, "cos(food, bread) = {related}");
    assert!(unrelated < 0.2, "cos(food, baby) = {unrelated}");
    // The reference implementation's values.
    assert!((related - 0.755337).abs() < 1e-3, "cos(food, bread) = {related}");
    assert!((unrelated - -0.104958).abs() < 1e-3, "cos(food, baby) = {unrelated}");
}

#[tokio::test]
async fn vectors_match_the_reference_implementation() {
    let Some(model) = model() else { return };
    let texts: Vec<String> = REFERENCE.iter().map(|(text, _)| (*text).to_string()).collect();
    let vectors = model.embed(&texts).await.expect("embeds");
    for (vector, (text, want)) in vectors.iter().zip(REFERENCE) {
        assert_close(vector, &want, 1e-3, text);
    }
}

#[tokio::test]
async fn long_texts_are_truncated_to_256_tokens() {
    let Some(model) = model() else { return };
    let long = long_text();
    let vectors = model.embed(std::slice::from_ref(&long)).await.expect("embeds");
    assert_close(&vectors[0], &LONG_REFERENCE, 1e-3, "600-word text");
    // Words past the 256th token change nothing.
    let longer = format!("{long} and then something entirely different about the sea");
    let extended = model.embed(&[longer]).await.expect("embeds");
    assert_close(&extended[0], &vectors[0], 1e-6, "text extended past the limit");
}

#[tokio::test]
async fn batching_order_and_padding_do_not_change_vectors() {
    let Some(model) = model() else { return };
    let mut texts = strings(&[FOOD, BREAD, BABY, "", "ok"]);
    texts.push(long_text());
    // 40 texts of 0 to 117 words: two forward batches with very different padding.
    texts.extend((0..34).map(|index| "the quick brown fox jumps over the lazy dog ".repeat(index % 14)));
    let together = model.embed(&texts).await.expect("embeds");
    let mut reversed_input = texts.clone();
    reversed_input.reverse();
    let mut reversed = model.embed(&reversed_input).await.expect("embeds");
    reversed.reverse();
    for (index, text) in texts.iter().enumerate() {
        let single = model.embed(std::slice::from_ref(text)).await.expect("embeds");
        assert_close(&together[index], &single[0], 1e-4, &format!("batched #{index}"));
        assert_close(&reversed[index], &single[0], 1e-4, &format!("reversed #{index}"));
    }
}

#[tokio::test]
async fn lazy_local_gives_the_same_vectors() {
    let Some(dir) = minilm_dir() else { return };
    let lazy = LazyLocal::new(&dir, None).expect("model folder is complete");
    assert_eq!(lazy.model_id(), "local/all-MiniLM-L6-v2");
    assert_eq!(lazy.dimensions(), 384);
    let vectors = lazy.embed(&strings(&[FOOD])).await.expect("embeds");
    assert_close(&vectors[0], &REFERENCE[0].1, 1e-3, "lazy");
}
