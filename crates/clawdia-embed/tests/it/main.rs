//! The one integration-test binary of clawdia-embed. `tiny.rs` drives the whole local path on a
//! tiny random BERT shipped in `test_data/tiny-bert` (always runs: loading, reference vectors,
//! batching, load errors, `LazyLocal`); `local.rs` checks the real all-MiniLM-L6-v2 against
//! sentence-transformers behaviour and reference vectors (skipped with a printed reason when
//! the weights are absent, a failure when `CI` is set); `openai.rs` runs the HTTP embedder
//! against a loopback axum server speaking the OpenAI embeddings wire format.
//!
//! Reference vectors come from `test_data/reference.py`, an independent float64 numpy
//! implementation of the same computation reading the same files.

#[cfg(feature = "local")]
mod local;
mod openai;
#[cfg(feature = "local")]
mod tiny;

#[cfg(feature = "local")]
use std::path::{Path, PathBuf};

#[cfg(feature = "local")]
/// The folder of the tiny fixture model.
pub fn tiny_model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/tiny-bert")
}

#[cfg(feature = "local")]
/// The real all-MiniLM-L6-v2 folder: `$CLAWDIA_TEST_MODELS/all-MiniLM-L6-v2` or
/// `$CLAWDIA_TEST_MODELS` itself, else `~/.clawdia/models/all-MiniLM-L6-v2`. `None` (after
/// printing why) when absent, unless `CI` is set: then absence fails the test.
pub fn minilm_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["config.json", "tokenizer.json", "model.safetensors"].iter().all(|file| dir.join(file).is_file())
    };
    let candidates: Vec<PathBuf> = match std::env::var_os("CLAWDIA_TEST_MODELS") {
        Some(root) => {
            let root = PathBuf::from(root);
            vec![root.join("all-MiniLM-L6-v2"), root]
        }
        None => {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            vec![home.join(".clawdia/models/all-MiniLM-L6-v2")]
        }
    };
    if let Some(found) = candidates.iter().find(|dir| complete(dir)) {
        return Some(found.clone());
    }
    let looked = candidates.iter().map(|dir| dir.display().to_string()).collect::<Vec<_>>().join(" or ");
    if std::env::var_os("CI").is_some() {
        panic!("all-MiniLM-L6-v2 weights not found in {looked}; CI must run scripts/fetch-models.sh first");
    }
    println!("skipped: all-MiniLM-L6-v2 weights not found in {looked} (run scripts/fetch-models.sh)");
    None
}

pub fn dot(left: &[f32], right: &[f32]) -> f32 {
    assert_eq!(left.len(), right.len(), "vectors of different lengths");
    left.iter().zip(right).map(|(a, b)| a * b).sum()
}

pub fn norm(vector: &[f32]) -> f32 {
    dot(vector, vector).sqrt()
}

#[cfg(feature = "local")]
/// Every component of `got` within `tolerance` of `want` (compared over `want`'s length).
pub fn assert_close(got: &[f32], want: &[f32], tolerance: f32, what: &str) {
    assert!(got.len() >= want.len(), "{what}: {} components, expected at least {}", got.len(), want.len());
    let worst = got.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(
        worst <= tolerance,
        "{what}: differs by {worst} > {tolerance}\n got {:?}\nwant {want:?}",
        &got[..want.len()]
    );
}

pub fn strings(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|text| (*text).to_string()).collect()
}
