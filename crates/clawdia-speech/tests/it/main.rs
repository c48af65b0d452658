//! Integration tests of `clawdia-speech` through its public API: audio files in and out (WAV of
//! every common shape, Ogg/Opus from our encoder and from `opusenc`, speech from `espeak-ng`),
//! hostile files that must fail in one line and never panic, and the OpenAI-compatible engines
//! against real HTTP servers on loopback that check each request's shape.

mod audio;
mod elevenlabs;
#[cfg(feature = "local")]
mod local;
mod loopback;
mod remote;

use std::path::Path;

/// Under CI a missing tool is a failure; elsewhere a printed skip.
pub fn skip_or_fail(what: &str, why: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} must run in CI: {why}");
    }
    println!("skipped {what}: {why}");
}

/// Runs a host tool for test data; `None` (after a skip or failure notice) when it is missing.
#[allow(clippy::disallowed_methods, reason = "tests make their audio with espeak-ng and opus-tools")]
pub fn tool(what: &str, program: &str, args: &[&str]) -> Option<()> {
    if !Path::new("/usr/bin").join(program).exists() {
        skip_or_fail(what, &format!("{program} is not installed (apt install espeak-ng opus-tools)"));
        return None;
    }
    let status = std::process::Command::new(program).args(args).output().expect("run the tool");
    assert!(
        status.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    Some(())
}

/// `text` spoken by espeak-ng, as the WAV file it writes (22,050 Hz, 16-bit mono).
pub fn espeak(what: &str, text: &str) -> Option<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("speech.wav");
    tool(what, "espeak-ng", &["-w", path.to_str().unwrap(), text])?;
    Some(std::fs::read(path).unwrap())
}
