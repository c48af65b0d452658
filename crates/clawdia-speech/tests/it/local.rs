//! The local Whisper engine on real speech: espeak-ng sentences transcribed by whisper-tiny.en
//! (from `$CLAWDIA_TEST_MODELS`, installed by scripts/fetch-models.sh), checked word by word;
//! a folder without the model and a broken model file fail in one line.

use std::path::PathBuf;

use clawdia_core::{SpeechError, SpeechToText};
use clawdia_speech::local::LocalWhisper;
use clawdia_speech::wer::word_error_rate;

use super::{espeak, skip_or_fail};

fn whisper_dir() -> Option<PathBuf> {
    let root = match std::env::var_os("CLAWDIA_TEST_MODELS") {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/clawdia/models"),
    };
    let dir = root.join("whisper-tiny.en");
    if dir.join("model.bin").is_file() {
        return Some(dir);
    }
    skip_or_fail(
        "local Whisper tests",
        &format!("no model in {} (run scripts/fetch-models.sh)", dir.display()),
    );
    None
}

#[tokio::test]
async fn whisper_tiny_transcribes_espeak_sentences() {
    let Some(dir) = whisper_dir() else { return };
    let engine = LocalWhisper::new("local/whisper-tiny.en", &dir, Some("en".into())).unwrap();
    // espeak-ng's voice is far from the speech Whisper learned from: tiny.en gets some words of
    // it wrong, so the check is on the words that carry the request and on the mean error rate.
    let sentences = [
        ("Please call my mother tomorrow morning.", ["call", "mother", "tomorrow"]),
        (
            "Good morning. Please remind me to call the dentist on Monday, and add milk and coffee to the shopping list.",
            ["dentist", "monday", "coffee"],
        ),
        ("Remind me to buy milk and bread.", ["remind", "milk", "bread"]),
    ];
    let mut total = 0.0;
    for (sentence, key_words) in sentences {
        let Some(wav) = espeak("local Whisper tests", sentence) else { return };
        let audio = clawdia_speech::decode(&wav).unwrap();
        let transcript = engine.transcribe(&audio).await.unwrap();
        let error = word_error_rate(sentence, &transcript.text);
        println!("{sentence:?} -> {:?} (WER {error:.2})", transcript.text);
        let heard = clawdia_speech::wer::words(&transcript.text);
        for word in key_words {
            assert!(heard.iter().any(|w| w == word), "`{word}` missing from {:?}", transcript.text);
        }
        assert!(error <= 0.5, "{sentence:?} came back as {:?}", transcript.text);
        total += error;
    }
    let mean = total / sentences.len() as f64;
    assert!(mean <= 0.25, "mean word error rate {mean:.2}");
    // Silence is not turned into words.
    let silence = clawdia_core::Pcm { sample_rate: 16_000, samples: vec![0; 32_000] };
    let transcript = engine.transcribe(&silence).await.unwrap();
    assert!(
        clawdia_speech::wer::words(&transcript.text).len() <= 2,
        "silence came back as {:?}",
        transcript.text
    );
}

#[tokio::test]
async fn a_missing_or_broken_model_fails_in_one_line() {
    let empty = tempfile::tempdir().unwrap();
    let error = LocalWhisper::new("local/whisper-tiny.en", empty.path(), None).unwrap_err();
    assert!(matches!(error, SpeechError::Unavailable(_)));
    assert!(error.to_string().starts_with("local/whisper-tiny.en: no Whisper model in "), "{error}");

    std::fs::write(empty.path().join("model.bin"), b"\x06\0\0\0\x0c\0WhisperSpec\0\x03\0\0\0\xff\0\0\0")
        .unwrap();
    let engine = LocalWhisper::new("local/whisper-tiny.en", empty.path(), None).unwrap();
    let audio = clawdia_core::Pcm { sample_rate: 16_000, samples: vec![0; 16_000] };
    let error = engine.transcribe(&audio).await.unwrap_err().to_string();
    assert_eq!(error, "local/whisper-tiny.en: model.bin ends inside a variable name (at byte 26 of 26)");
}
