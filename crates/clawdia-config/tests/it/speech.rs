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

#[test]
fn elevenlabs_voices_take_the_key_of_their_own_table() {
    let text = "[speech]\ntts = \"elevenlabs/eleven_flash_v2_5\"\nvoice = \"21m00Tcm4TlvDq8ikWAM\"\n\
                [speech.elevenlabs]\napi_key = { env = \"ELEVENLABS_API_KEY\" }\n";
    let config = parse(text, &home()).unwrap();
    assert_eq!(
        config.speech.tts,
        Some(SpeechEngine::ElevenLabs {
            model: "eleven_flash_v2_5".into(),
            base_url: "https://api.elevenlabs.io".into(),
            api_key: SecretRef::Env("ELEVENLABS_API_KEY".into()),
        })
    );
    assert_eq!(config.speech.tts.as_ref().unwrap().name(), "elevenlabs/eleven_flash_v2_5");
    assert_eq!(config.speech.voice, "21m00Tcm4TlvDq8ikWAM");
    let text = "[speech]\ntts = \"elevenlabs/m\"\nvoice = \"v\"\n\
                [speech.elevenlabs]\nbase_url = \"http://127.0.0.1:8080/\"\napi_key = { file = \"el\" }\n";
    let config = parse(text, &home()).unwrap();
    assert_eq!(
        config.speech.tts,
        Some(SpeechEngine::ElevenLabs {
            model: "m".into(),
            base_url: "http://127.0.0.1:8080".into(),
            api_key: SecretRef::File(home().join("el")),
        })
    );
}

#[test]
fn idle_unload_is_a_duration_or_off() {
    let idle = |text: &str| parse(text, &home()).unwrap().speech.idle_unload;
    assert_eq!(idle(""), Some(std::time::Duration::from_secs(600)));
    assert_eq!(idle("[speech]\nidle_unload = \"90s\"\n"), Some(std::time::Duration::from_secs(90)));
    assert_eq!(idle("[speech]\nidle_unload = \"2h\"\n"), Some(std::time::Duration::from_secs(7_200)));
    assert_eq!(idle("[speech]\nidle_unload = \"off\"\n"), None);
    assert_eq!(idle("[speech]\nidle_unload = \"0\"\n"), None);
}

#[test]
fn bad_elevenlabs_and_idle_settings_name_line_and_key() {
    let table = "[speech.elevenlabs]\napi_key = { env = \"K\" }\n";
    for (text, expected) in [
        (
            "[speech]\ntts = \"elevenlabs/eleven_flash_v2_5\"\nvoice = \"v\"\n".to_string(),
            "clawdia.toml:2: speech.tts: `elevenlabs/eleven_flash_v2_5` needs the ElevenLabs key: add [speech.elevenlabs] api_key",
        ),
        (
            format!("[speech]\ntts = \"elevenlabs/eleven_flash_v2_5\"\n{table}"),
            "clawdia.toml:2: speech.tts: ElevenLabs needs a voice id: set [speech] voice",
        ),
        (
            format!("[speech]\nstt = \"elevenlabs/scribe_v1\"\n{table}"),
            "clawdia.toml:2: speech.stt: ElevenLabs is text to speech only here",
        ),
        (
            "[speech.elevenlabs]\nbase_url = \"api.elevenlabs.io\"\napi_key = { env = \"K\" }\n".to_string(),
            "clawdia.toml:2: speech.elevenlabs.base_url: `api.elevenlabs.io` is not an http:// or https:// URL",
        ),
        ("[speech.elevenlabs]\n".to_string(), "clawdia.toml:1: speech.elevenlabs: missing key `api_key`"),
        (
            "[speech]\nidle_unload = \"10 minutes\"\n".to_string(),
            "clawdia.toml:2: speech.idle_unload: `10 minutes` is not a duration",
        ),
        (
            "[speech]\nidle_unload = \"0s\"\n".to_string(),
            "clawdia.toml:2: speech.idle_unload: `0s` is not a duration",
        ),
    ] {
        let error = parse(&text, &home()).expect_err(&text).to_string();
        assert!(error.starts_with(expected), "for config:\n{text}\ngot: {error}");
        assert!(!error.contains('\n'), "error spans lines: {error}");
    }
    // The positive control: the same shapes, valid, parse.
    parse(
        &format!(
            "[speech]\ntts = \"elevenlabs/eleven_flash_v2_5\"\nvoice = \"v\"\nidle_unload = \"5m\"\n{table}"
        ),
        &home(),
    )
    .unwrap();
}
