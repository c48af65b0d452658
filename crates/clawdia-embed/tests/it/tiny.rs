//! The local embedder end to end on `test_data/tiny-bert` (2 layers, 8 dimensions, random
//! weights, 16-token limit): vectors equal the numpy reference, batching and order do not
//! change them, the thread count does not either, every broken model file is reported as
//! `Unavailable` naming the file and the fix, and `LazyLocal` knows its identity before loading.

use std::path::Path;

use clawdia_core::{EmbedError, Embedder};
use clawdia_embed::{LazyLocal, LocalEmbedder};

use crate::{assert_close, norm, strings, tiny_model_dir};

/// Texts and their reference vectors from `reference.py test_data/tiny-bert ...` (float64).
/// The fourth is 27 tokens long and truncated to the fixture's 16.
const REFERENCE: [(&str, [f32; 8]); 5] = [
    (
        "A man is eating food.",
        [-0.177268, 0.439863, -0.177763, -0.317356, 0.727137, -0.053679, -0.296477, -0.152558],
    ),
    ("the girl 42", [-0.073933, 0.539319, -0.313683, -0.404539, 0.631709, -0.172977, -0.104124, -0.042452]),
    ("", [-0.307089, 0.477717, -0.166254, -0.313820, 0.689052, -0.024270, -0.192671, -0.197117]),
    (
        "a b c d e f g h i j k l m n o p q r s t u v w x y z",
        [-0.034062, 0.524342, -0.314365, -0.388395, 0.629850, -0.140355, -0.238792, 0.028219],
    ),
    ("Zebra! über", [-0.035523, 0.519260, -0.214097, -0.439994, 0.628289, -0.143036, -0.272802, 0.006858]),
];

fn load(threads: Option<usize>) -> LocalEmbedder {
    LocalEmbedder::load(&tiny_model_dir(), threads).expect("tiny model loads")
}

#[tokio::test]
async fn vectors_match_the_numpy_reference() {
    let embedder = load(None);
    assert_eq!(embedder.model_id(), "local/tiny-bert");
    assert_eq!(embedder.dimensions(), 8);
    let texts: Vec<String> = REFERENCE.iter().map(|(text, _)| (*text).to_string()).collect();
    let vectors = embedder.embed(&texts).await.expect("embeds");
    assert_eq!(vectors.len(), REFERENCE.len());
    for (vector, (text, want)) in vectors.iter().zip(REFERENCE) {
        assert_eq!(vector.len(), 8);
        assert!((norm(vector) - 1.0).abs() < 1e-5, "{text:?} not unit length");
        assert_close(vector, &want, 1e-4, text);
    }
}

#[tokio::test]
async fn batch_order_and_padding_do_not_change_vectors() {
    let embedder = load(None);
    let mut texts: Vec<String> = REFERENCE.iter().map(|(text, _)| (*text).to_string()).collect();
    // 40 texts of many lengths: more than one forward batch of 32.
    texts.extend((0..35).map(|count| "man eating food ".repeat(count % 7)));
    let together = embedder.embed(&texts).await.expect("embeds");
    let mut reversed_input = texts.clone();
    reversed_input.reverse();
    let mut reversed = embedder.embed(&reversed_input).await.expect("embeds");
    reversed.reverse();
    for (index, text) in texts.iter().enumerate() {
        let single = embedder.embed(std::slice::from_ref(text)).await.expect("embeds");
        assert_close(&together[index], &single[0], 1e-5, &format!("batched #{index}"));
        assert_close(&reversed[index], &single[0], 1e-5, &format!("reversed #{index}"));
    }
}

#[tokio::test]
async fn thread_count_does_not_change_vectors() {
    let texts = strings(&["A man is eating food.", "the girl 42"]);
    let one = load(Some(1)).embed(&texts).await.expect("embeds");
    let two = load(Some(2)).embed(&texts).await.expect("embeds");
    for (a, b) in one.iter().zip(&two) {
        assert_close(a, b, 1e-6, "1 vs 2 threads");
    }
}

#[tokio::test]
async fn empty_input_gives_no_vectors() {
    assert_eq!(load(None).embed(&[]).await, Ok(Vec::new()));
}

#[tokio::test]
async fn concurrent_calls_each_get_their_own_vectors() {
    let embedder = std::sync::Arc::new(load(None));
    let calls = REFERENCE.map(|(text, want)| {
        let embedder = embedder.clone();
        tokio::spawn(async move { (embedder.embed(&[text.to_string()]).await.expect("embeds"), text, want) })
    });
    for call in calls {
        let (vectors, text, want) = call.await.expect("task");
        assert_close(&vectors[0], &want, 1e-4, text);
    }
}

/// A copy of the tiny model in a temp folder, with `break_it` applied.
fn broken_copy(break_it: impl FnOnce(&Path)) -> tempfile::TempDir {
    let temp = tempfile::tempdir().expect("tempdir");
    for entry in std::fs::read_dir(tiny_model_dir()).expect("fixture") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), temp.path().join(entry.file_name())).expect("copy");
    }
    break_it(temp.path());
    temp
}

/// Loading fails as `Unavailable` naming `file` and the fetch script.
#[track_caller]
fn check_unavailable(result: Result<LocalEmbedder, EmbedError>, file: &str) {
    match result {
        Err(EmbedError::Unavailable(message)) => {
            assert!(message.contains(file), "message should name {file}: {message}");
            assert!(message.contains("scripts/fetch-models.sh"), "message should give the fix: {message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
        Err(other) => panic!("expected Unavailable naming {file}, got {other:?}"),
        Ok(_) => panic!("expected Unavailable naming {file}, but it loaded"),
    }
}

#[test]
fn missing_folder_or_files_are_unavailable_with_the_fix() {
    check_unavailable(
        LocalEmbedder::load(Path::new("/nonexistent/all-MiniLM-L6-v2"), None),
        "all-MiniLM-L6-v2",
    );
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let dir = broken_copy(|dir| std::fs::remove_file(dir.join(file)).expect("remove"));
        check_unavailable(LocalEmbedder::load(dir.path(), None), file);
    }
}

#[test]
fn corrupt_files_are_unavailable_naming_the_file() {
    let garbage =
        |file: &'static str| move |dir: &Path| std::fs::write(dir.join(file), b"{ not json").expect("write");
    check_unavailable(LocalEmbedder::load(broken_copy(garbage("config.json")).path(), None), "config.json");
    check_unavailable(
        LocalEmbedder::load(broken_copy(garbage("tokenizer.json")).path(), None),
        "tokenizer.json",
    );
    check_unavailable(
        LocalEmbedder::load(broken_copy(garbage("model.safetensors")).path(), None),
        "model.safetensors",
    );
    // An interrupted download: the weights cut in half.
    let truncated = broken_copy(|dir| {
        let path = dir.join("model.safetensors");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    });
    check_unavailable(LocalEmbedder::load(truncated.path(), None), "model.safetensors");
    // Weights that do not fit the config (another model's config.json).
    let mismatched = broken_copy(|dir| {
        let path = dir.join("config.json");
        let text = std::fs::read_to_string(&path)
            .expect("read")
            .replace("\"hidden_size\": 8", "\"hidden_size\": 16");
        std::fs::write(&path, text).expect("write");
    });
    check_unavailable(LocalEmbedder::load(mismatched.path(), None), "model.safetensors");
}

#[tokio::test]
async fn lazy_local_knows_its_identity_before_loading_and_then_embeds() {
    let lazy = LazyLocal::new(&tiny_model_dir(), Some(1)).expect("model folder is complete");
    assert_eq!(lazy.model_id(), "local/tiny-bert");
    assert_eq!(lazy.dimensions(), 8);
    let vectors = lazy.embed(&strings(&[REFERENCE[0].0])).await.expect("embeds");
    assert_close(&vectors[0], &REFERENCE[0].1, 1e-4, "lazy");
}

#[tokio::test]
async fn lazy_local_reports_missing_models_at_once_and_broken_weights_on_use() {
    match LazyLocal::new(Path::new("/nonexistent/all-MiniLM-L6-v2"), None) {
        Err(EmbedError::Unavailable(message)) => {
            assert!(message.contains("scripts/fetch-models.sh"), "{message}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let broken = broken_copy(|dir| std::fs::write(dir.join("model.safetensors"), b"junk").expect("write"));
    let lazy = LazyLocal::new(broken.path(), None).expect("files are present");
    for _ in 0..2 {
        match lazy.embed(&strings(&["hello"])).await {
            Err(EmbedError::Unavailable(message)) => {
                assert!(message.contains("model.safetensors"), "{message}")
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
