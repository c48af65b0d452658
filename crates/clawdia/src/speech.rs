//! `clawdia speech transcribe FILE` and `clawdia speech say TEXT -o FILE`: the configured speech
//! engines (`[speech] stt`, `tts`) checked by hand. `transcribe` reads a WAV or Ogg/Opus file and
//! prints its text on stdout (the engine and how long it took on stderr); `say` writes the spoken
//! text as WAV or Ogg/Opus, chosen by the output file's extension.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Subcommand;
use clawdia_speech::AudioFormat;

use crate::{Failure, Outcome, load_config};

#[derive(Subcommand)]
pub enum SpeechCommand {
    /// Print the text of a WAV or Ogg/Opus file, transcribed by `[speech] stt`.
    Transcribe { file: PathBuf },
    /// Speak TEXT with `[speech] tts` into FILE: `.wav`, or `.ogg`/`.opus` for a voice note.
    Say {
        text: String,
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
}

/// The speech engines for the channels' voice notes, when a channel that takes them is on and
/// `[speech]` names an engine. Each engine is built on its own: one that cannot be (a missing
/// key or model) is reported and left out, and the other still works. Local models load on
/// first use, so a gateway that never hears a voice note never loads them.
pub fn for_channels(config: &clawdia_config::Config) -> Option<Arc<dyn clawdia_core::VoiceNotes>> {
    let settings = &config.speech;
    if config.channels.telegram.is_none() || (settings.stt.is_none() && settings.tts.is_none()) {
        return None;
    }
    let stt = clawdia_speech::stt_from_config(settings).unwrap_or_else(|error| {
        tracing::warn!("speech to text is off for the channels: {error}");
        None
    });
    let tts = clawdia_speech::tts_from_config(settings).unwrap_or_else(|error| {
        tracing::warn!("text to speech is off for the channels: {error}");
        None
    });
    let speech = clawdia_speech::Speech { stt, tts, max_seconds: settings.max_seconds };
    Some(Arc::new(speech))
}

pub async fn run(home: PathBuf, command: SpeechCommand) -> Outcome {
    let config = load_config(&home)?;
    // Only the engine the command uses is built: a missing voice does not stop a transcription.
    let mut settings = config.speech.clone();
    match command {
        SpeechCommand::Transcribe { .. } => settings.tts = None,
        SpeechCommand::Say { .. } => settings.stt = None,
    }
    let speech = clawdia_speech::from_config(&settings).map_err(Failure::config)?;
    match command {
        SpeechCommand::Transcribe { file } => {
            let Some(engine) = &speech.stt else {
                return Err(Failure::config(
                    "speech to text is not configured: set [speech] stt in clawdia.toml",
                ));
            };
            let bytes = read_audio(&file)?;
            let started = Instant::now();
            let transcript = speech
                .transcribe_file(&bytes)
                .await
                .map_err(|error| format!("{}: {error}", file.display()))?;
            eprintln!("{} transcribed it in {:.2} s", engine.name(), started.elapsed().as_secs_f64());
            println!("{}", transcript.text);
            Ok(())
        }
        SpeechCommand::Say { text, output } => {
            let Some(format) = AudioFormat::from_extension(&output) else {
                return Err(
                    format!("{}: write .wav, or .ogg/.opus for a voice note", output.display()).into()
                );
            };
            let Some(engine) = &speech.tts else {
                return Err(Failure::config(
                    "text to speech is not configured: set [speech] tts in clawdia.toml",
                ));
            };
            let started = Instant::now();
            let bytes = speech.speak(&text, format).await?;
            std::fs::write(&output, &bytes)
                .map_err(|error| format!("cannot write {}: {error}", output.display()))?;
            eprintln!(
                "{} spoke it in {:.2} s: {} ({} bytes)",
                engine.name(),
                started.elapsed().as_secs_f64(),
                output.display(),
                bytes.len()
            );
            Ok(())
        }
    }
}

/// The file's bytes, refusing anything larger than an audio file the engines take.
fn read_audio(path: &Path) -> Result<Vec<u8>, Failure> {
    let size =
        std::fs::metadata(path).map_err(|error| format!("cannot read {}: {error}", path.display()))?.len();
    let limit = clawdia_speech::audio::MAX_FILE_BYTES as u64;
    if size > limit {
        return Err(format!(
            "{}: {} MiB is more than the {} MiB read",
            path.display(),
            size >> 20,
            limit >> 20
        )
        .into());
    }
    std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()).into())
}
