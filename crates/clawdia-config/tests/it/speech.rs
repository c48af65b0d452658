//! `[speech]`: engines named `local/<model>` or `PROVIDER/MODEL` of an OpenAI-compatible
//! provider, the defaults, and the one-line errors for everything else.

use clawdia_config::{SecretRef, SpeechEngine, parse};

use super::home;

const GROQ: &str = "[providers.groq]\nkind = \"openai\"\nbase_url = \"https://api.groq.com/openai/v1\"\napi_key = { env = \"GROQ_API_KEY\" }\n";

#[test]
fn speech_is_off_by_default() {
    let config = parse("", &home()).unwrap();
    assert_eq!(config.speech.stt, None);
    assert_eq!(config.speech.tts, None);
    assert_eq!(config.speech.voice, "alloy");
    assert_eq!(config.speech.language, None);
    assert_eq!(config.speech.max_seconds, 600);
}

#[test]
fn speech_engines_are_local_folders_or_openai_providers() {
    let text = format!(
        "{GROQ}[speech]\nstt = \"groq/whisper-large-v3-turbo\"\ntts = \"local/piper-joe\"\nvoice = \"nova\"\nlanguage = \"de\"\nmax_seconds = 60\nthreads = 2\n"
    );
    let config = parse(&text, &home()).unwrap();
    assert_eq!(
        config.speech.stt,
        Some(SpeechEngine::OpenAi {
            provider: "groq".into(),
            model: "whisper-large-v3-turbo".into(),
            base_url: "https://api.groq.com/openai/v1".into(),
            api_key: Some(SecretRef::Env("GROQ_API_KEY".into())),
        })
    );
    let tts = config.speech.tts.as_ref().unwrap();
    assert_eq!(tts.name(), "local/piper-joe");
    assert!(
        matches!(tts, SpeechEngine::Local { dir, .. } if *dir == home().join("models").join("piper-joe"))
    );
    assert_eq!(config.speech.voice, "nova");
    assert_eq!(config.speech.language.as_deref(), Some("de"));
    assert_eq!(config.speech.max_seconds, 60);
    assert_eq!(config.speech.threads, Some(2));
}

#[test]
fn bad_speech_settings_name_line_and_key() {
    let anthropic = "[providers.claude]\nkind = \"anthropic\"\nbase_url = \"https://api.anthropic.com\"\n";
    for (text, expected) in [
        (
            "[speech]\nstt = \"whisper\"\n".to_string(),
            "clawdia.toml:2: speech.stt: `whisper` is not \"local/<model>\" or \"PROVIDER/MODEL\"",
        ),
        ("[speech]\ntts = \"local/\"\n".to_string(), "clawdia.toml:2: speech.tts: `local/` is not"),
        (
            "[speech]\nstt = \"local/../x\"\n".to_string(),
            "clawdia.toml:2: speech.stt: `../x` is not a folder name under models/",
        ),
        (
            "[speech]\nstt = \"groq/whisper\"\n".to_string(),
            "clawdia.toml:2: speech.stt: no provider `groq` in [providers]",
        ),
        (
            format!("{anthropic}[speech]\ntts = \"claude/voice\"\n"),
            "clawdia.toml:5: speech.tts: provider `claude` is not of kind \"openai\"",
        ),
        (
            "[speech]\nlanguage = \"english\"\n".to_string(),
            "clawdia.toml:2: speech.language: `english` is not an ISO 639-1 code",
        ),
        ("[speech]\nvoice = \" \"\n".to_string(), "clawdia.toml:2: speech.voice: must not be empty"),
        ("[speech]\nmax_seconds = 0\n".to_string(), "clawdia.toml:2: speech.max_seconds: must be at least 1"),
        ("[speech]\nthreads = 0\n".to_string(), "clawdia.toml:2: speech.threads: must be at least 1"),
        ("[speech]\nengine = \"x\"\n".to_string(), "clawdia.toml:2: speech.engine: unknown key"),
    ] {
        let error = parse(&text, &home()).expect_err(&text).to_string();
        assert!(error.starts_with(expected), "for config:\n{text}\ngot: {error}");
        assert!(!error.contains('\n'), "error spans lines: {error}");
    }
    // The positive control: the same shapes, valid, parse.
    parse(&format!("{GROQ}[speech]\nstt = \"groq/whisper\"\nlanguage = \"en\"\n"), &home()).unwrap();
}
