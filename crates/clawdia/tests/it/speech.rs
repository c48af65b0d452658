//! `clawdia speech say|transcribe` through the real binary: a sentence spoken by the local Piper
//! voice into a voice note and transcribed back by local Whisper (models from
//! `$CLAWDIA_TEST_MODELS`, linked into the home's `models/`; skipped with the reason when absent,
//! a failure under `CI`), and the one-line errors for what is missing or broken.

use std::path::PathBuf;

use crate::support::{Home, stderr, stdout};

fn models_root() -> PathBuf {
    std::env::var_os("CLAWDIA_TEST_MODELS").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/clawdia/models")
    })
}

/// Links the local speech models into `home/models`; `false` (after saying why) when absent.
pub(crate) fn link_models(home: &Home) -> bool {
    let root = models_root();
    let needed =
        ["whisper-tiny.en/model.bin", "piper-joe/en_US-joe-medium.onnx", "onnxruntime/libonnxruntime.so"];
    if let Some(missing) = needed.iter().find(|file| !root.join(file).is_file()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must fetch the speech models first: {missing} in {}",
            root.display()
        );
        println!("skipped: {missing} not found in {} (run scripts/fetch-models.sh)", root.display());
        return false;
    }
    if !std::path::Path::new("/usr/bin/espeak-ng").is_file() {
        assert!(std::env::var_os("CI").is_none(), "CI must install espeak-ng first");
        println!("skipped: espeak-ng is not installed (apt install espeak-ng)");
        return false;
    }
    let models = home.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    for folder in ["whisper-tiny.en", "piper-joe", "onnxruntime"] {
        std::os::unix::fs::symlink(root.join(folder), models.join(folder)).unwrap();
    }
    true
}

#[test]
fn speech_say_writes_a_voice_note_that_transcribe_reads_back() {
    let home =
        Home::with_agent_extra("\n[speech]\nstt = \"local/whisper-tiny.en\"\ntts = \"local/piper-joe\"\n");
    if !link_models(&home) {
        return;
    }
    let note = home.path().join("reply.ogg");
    let sentence = "Remind me to water the plants tonight.";
    let out = home.run(&["speech", "say", sentence, "-o", note.to_str().unwrap()]);
    assert!(out.status.success(), "say failed: {}", stderr(&out));
    assert!(stderr(&out).contains("local/piper-joe spoke it in"), "{}", stderr(&out));
    let bytes = std::fs::read(&note).unwrap();
    assert!(bytes.starts_with(b"OggS"), "not an Ogg file");

    let out = home.run(&["speech", "transcribe", note.to_str().unwrap()]);
    assert!(out.status.success(), "transcribe failed: {}", stderr(&out));
    let text = stdout(&out);
    let words = clawdia_speech::wer::words(&text);
    for word in ["water", "plants", "tonight"] {
        assert!(words.iter().any(|w| w == word), "`{word}` missing from {text:?}");
    }
    assert!(stderr(&out).contains("local/whisper-tiny.en transcribed it in"), "{}", stderr(&out));

    let wav = home.path().join("reply.wav");
    let out = home.run(&["speech", "say", "Done.", "-o", wav.to_str().unwrap()]);
    assert!(out.status.success(), "say failed: {}", stderr(&out));
    assert!(std::fs::read(&wav).unwrap().starts_with(b"RIFF"), "not a WAV file");
}

#[test]
fn speech_commands_say_in_one_line_what_is_missing_or_broken() {
    let home = Home::new();
    let out = home.run(&["speech", "transcribe", "note.ogg"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "clawdia: error: speech to text is not configured: set [speech] stt in clawdia.toml\n"
    );
    let out = home.run(&["speech", "say", "hi", "-o", "x.wav"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "clawdia: error: text to speech is not configured: set [speech] tts in clawdia.toml\n"
    );
    let out = home.run(&["speech", "say", "hi", "-o", "x.mp3"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "clawdia: error: x.mp3: write .wav, or .ogg/.opus for a voice note\n");

    // A remote engine (the mock's OpenAI-compatible provider): a broken file is refused before
    // any upload, in one line.
    let home = Home::with_agent_extra("\n[speech]\nstt = \"alt/whisper-1\"\n");
    let broken = home.path().join("broken.ogg");
    std::fs::write(&broken, b"OggS\x07not really a voice note").unwrap();
    let out = home.run(&["speech", "transcribe", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let error = stderr(&out);
    assert!(
        error.starts_with(&format!("clawdia: error: {}: unreadable audio: Ogg/Opus: ", broken.display())),
        "{error}"
    );
    assert_eq!(error.lines().count(), 1, "{error}");
    let out = home.run(&["speech", "transcribe", "/nonexistent/note.ogg"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("clawdia: error: cannot read /nonexistent/note.ogg: "),
        "{}",
        stderr(&out)
    );
}
