//! The local engines on real speech: espeak-ng sentences transcribed by whisper-tiny.en, and the
//! Piper voice's speech transcribed back by Whisper (both from `$CLAWDIA_TEST_MODELS`, installed
//! by scripts/fetch-models.sh), checked word by word; a folder without the model and a broken
//! model file fail in one line.

use std::path::PathBuf;

use clawdia_core::{SpeechError, SpeechToText, TextToSpeech};
use clawdia_speech::local::{LocalPiper, LocalWhisper};
use clawdia_speech::wer::word_error_rate;

use super::{espeak, skip_or_fail};

fn models_root() -> PathBuf {
    match std::env::var_os("CLAWDIA_TEST_MODELS") {
        Some(root) => PathBuf::from(root),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/clawdia/models"),
    }
}

fn whisper_dir() -> Option<PathBuf> {
    let dir = models_root().join("whisper-tiny.en");
    if dir.join("model.bin").is_file() {
        return Some(dir);
    }
    skip_or_fail(
        "local Whisper tests",
        &format!("no model in {} (run scripts/fetch-models.sh)", dir.display()),
    );
    None
}

/// The Piper voice folder and the ONNX Runtime library.
fn piper() -> Option<(PathBuf, PathBuf)> {
    let dir = models_root().join("piper-joe");
    let runtime = models_root().join("onnxruntime/libonnxruntime.so");
    if dir.join("en_US-joe-medium.onnx").is_file() && runtime.is_file() {
        return Some((dir, runtime));
    }
    let why =
        format!("no voice in {} or no {} (run scripts/fetch-models.sh)", dir.display(), runtime.display());
    skip_or_fail("local Piper tests", &why);
    None
}

#[tokio::test]
async fn piper_speaks_what_whisper_hears_back() {
    let (Some((voice, runtime)), Some(whisper)) = (piper(), whisper_dir()) else { return };
    let speaker = LocalPiper::new("local/piper-joe", &voice, &runtime, Some(2)).unwrap();
    let listener = LocalWhisper::new("local/whisper-tiny.en", &whisper, None).unwrap();
    let sentence = "Tomorrow you have a meeting with the dentist at nine.";
    let speech = speaker.synthesize(sentence).await.unwrap();
    assert_eq!(speech.sample_rate, 22_050);
    assert!((1.5..8.0).contains(&speech.seconds()), "{} s of speech", speech.seconds());
    let transcript = listener.transcribe(&speech).await.unwrap();
    let error = word_error_rate(sentence, &transcript.text);
    println!("{sentence:?} -> {:?} (WER {error:.2})", transcript.text);
    // The voice samples noise (VITS), and Whisper writes "nine" as "9": the words that carry the
    // message must be heard, and most of the rest.
    let heard = clawdia_speech::wer::words(&transcript.text);
    for word in ["meeting", "dentist"] {
        assert!(heard.iter().any(|w| w == word), "`{word}` missing from {:?}", transcript.text);
    }
    assert!(error <= 0.4, "Piper's {sentence:?} was heard as {:?}", transcript.text);
    // A long reply is spoken whole, piece by piece, and a note longer than Whisper's 30-second
    // window is transcribed window by window: the first and the last sentence are both heard.
    let long = "The library opens at ten in the morning on weekdays. \
        On Saturdays it opens at noon and closes early in the afternoon. \
        Books may be borrowed for three weeks and renewed twice online. \
        Children's books are on the ground floor near the main entrance. \
        The reading room upstairs is quiet and has comfortable chairs. \
        Late returns cost a small fee for every day they are overdue. \
        The café next to the library serves coffee, tea and sandwiches. \
        Members can reserve a study room for up to two hours at a time. \
        Printing and copying are available at the desk near the stairs. \
        Finally, remember that the library is closed on public holidays.";
    let speech = speaker.synthesize(long).await.unwrap();
    assert!(speech.seconds() > 30.0, "{} s for ten sentences", speech.seconds());
    let heard = clawdia_speech::wer::words(&listener.transcribe(&speech).await.unwrap().text);
    for word in ["library", "weekdays", "holidays"] {
        assert!(heard.iter().any(|w| w == word), "`{word}` missing from {heard:?}");
    }
    // Text that starts like an option is spoken, not passed to espeak-ng as one.
    let dashed = speaker.synthesize("--version").await.unwrap();
    assert!(dashed.seconds() > 0.3);
    let error = speaker.synthesize("  ").await.unwrap_err();
    assert_eq!(error.to_string(), "there is no text to speak");
}

#[tokio::test]
async fn a_voice_folder_without_a_voice_or_runtime_is_refused() {
    let empty = tempfile::tempdir().unwrap();
    let error =
        LocalPiper::new("local/piper-joe", empty.path(), &empty.path().join("x.so"), None).unwrap_err();
    assert!(matches!(error, SpeechError::Unavailable(_)));
    assert!(error.to_string().starts_with("local/piper-joe: no Piper voice (*.onnx) in "), "{error}");
    let Some((voice, _)) = piper() else { return };
    let library = empty.path().join("libonnxruntime.so");
    let error = LocalPiper::new("local/piper-joe", &voice, &library, None).unwrap_err();
    assert!(error.to_string().starts_with("local/piper-joe: no ONNX Runtime library at "), "{error}");
    // A broken library is an error, not a panic inside ort.
    std::fs::write(&library, b"not a shared library").unwrap();
    let speaker = LocalPiper::new("local/piper-joe", &voice, &library, None).unwrap();
    let error = speaker.synthesize("Hello.").await.unwrap_err();
    assert!(matches!(error, SpeechError::Unavailable(_)), "{error:?}");
    let expected = format!("local/piper-joe: cannot load ONNX Runtime from {}: ", library.display());
    assert!(error.to_string().starts_with(&expected), "{error}");
    assert!(!error.to_string().contains('\n'));
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

/// Polls `condition` every 10 ms for up to 30 s.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Runs `work` on its own task and polls `loaded` every 5 ms while it runs: once loaded, the
/// model must stay loaded until the work is done. Returns the work's result and how long the
/// model was seen loaded while in use.
async fn watched<T: Send + 'static>(
    loaded: impl Fn() -> bool,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> (T, std::time::Duration) {
    let task = tokio::spawn(work);
    let mut since: Option<std::time::Instant> = None;
    while !task.is_finished() {
        match (since, loaded()) {
            (None, true) => since = Some(std::time::Instant::now()),
            (Some(_), false) => panic!("the model was unloaded while in use"),
            _ => {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let in_use = since.map(|since| since.elapsed()).unwrap_or_default();
    (task.await.unwrap(), in_use)
}

const IDLE: std::time::Duration = std::time::Duration::from_millis(200);

#[tokio::test]
async fn idle_local_models_are_unloaded_and_load_again_on_the_next_use() {
    let (Some((voice, runtime)), Some(whisper)) = (piper(), whisper_dir()) else { return };
    let listener = std::sync::Arc::new(
        LocalWhisper::new("local/whisper-tiny.en", &whisper, None).unwrap().with_idle_unload(Some(IDLE)),
    );
    let speaker = std::sync::Arc::new(
        LocalPiper::new("local/piper-joe", &voice, &runtime, Some(2)).unwrap().with_idle_unload(Some(IDLE)),
    );
    assert!(!listener.loaded() && !speaker.loaded(), "nothing loads before the first use");
    let sentence = "Please call my mother tomorrow morning, and remind me to buy milk and bread.";

    // The voice: loaded while it speaks, never unloaded under a sentence that outlasts the idle
    // time, unloaded once idle, loaded again for the next sentence.
    let (speech, in_use) = {
        let engine = speaker.clone();
        let check = speaker.clone();
        watched(move || check.loaded(), async move { engine.synthesize(sentence).await }).await
    };
    let speech = speech.unwrap();
    println!("Piper held for {in_use:?} while speaking");
    assert!(speech.seconds() > 2.0);
    eventually("the idle voice is unloaded", || !speaker.loaded()).await;
    let again = speaker.synthesize("Hello again.").await.unwrap();
    assert!(again.seconds() > 0.3);
    assert_eq!(speaker.loads(), 2);

    // Whisper: the same, on what the voice said.
    let (transcript, in_use) = {
        let engine = listener.clone();
        let check = listener.clone();
        let audio = speech.clone();
        watched(move || check.loaded(), async move { engine.transcribe(&audio).await }).await
    };
    let transcript = transcript.unwrap();
    println!("Whisper held for {in_use:?} while transcribing: {:?}", transcript.text);
    assert!(
        in_use > IDLE,
        "the transcription ({in_use:?}) did not outlast the idle time: nothing was tested"
    );
    assert!(
        clawdia_speech::wer::words(&transcript.text).iter().any(|word| word == "mother"),
        "{:?}",
        transcript.text
    );
    eventually("the idle model is unloaded", || !listener.loaded()).await;
    assert_eq!(listener.loads(), 1);
    let transcript = listener.transcribe(&speech).await.unwrap();
    assert!(
        clawdia_speech::wer::words(&transcript.text).iter().any(|word| word == "milk"),
        "{:?}",
        transcript.text
    );
    assert_eq!(listener.loads(), 2, "loaded again for the next use");
    eventually("the model is unloaded again", || !listener.loaded()).await;
}

#[tokio::test]
async fn idle_unload_off_keeps_the_model() {
    let Some(whisper) = whisper_dir() else { return };
    let listener = LocalWhisper::new("local/whisper-tiny.en", &whisper, None).unwrap().with_idle_unload(None);
    listener.preload().await.unwrap();
    tokio::time::sleep(IDLE * 3).await;
    assert!(listener.loaded());
    let silence = clawdia_core::Pcm { sample_rate: 16_000, samples: vec![0; 16_000] };
    listener.transcribe(&silence).await.unwrap();
    assert_eq!(listener.loads(), 1);
}
