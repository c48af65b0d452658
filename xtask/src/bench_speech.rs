//! `cargo xtask bench speech [--model DIR] [--threads N]`: the local speech engines on espeak-ng
//! speech. Prints the Whisper model's load time and the RSS it adds, the real-time factor of
//! transcribing a 10-second sample (time / audio length; best of 3, after one warm-up), the word
//! error rate on a few espeak-ng sentences; then the Piper voice (`piper-joe`): load time, time to
//! first audio for one sentence (the whole sentence is synthesized at once, so this is the time
//! to the complete sentence; best of 3 after a warm-up), its real-time factor, the word error
//! rate of Whisper on what it said, the cost of turning it into a voice note (Ogg/Opus), the RSS
//! with both models loaded, and the RSS once both were unloaded for being idle (`[speech]
//! idle_unload`, here `--idle SECS`, default 5, in the same process), with the time that took.
//! `--threads` sets `CANDLE_NUM_THREADS` (default: candle's, one per core) before any thread
//! starts. Figures only; it never fails on a timing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clawdia_core::{SpeechToText, TextToSpeech};
use clawdia_speech::AudioFormat;
use clawdia_speech::local::{LocalPiper, LocalWhisper};
use clawdia_speech::wer::word_error_rate;

const MODEL: &str = "whisper-tiny.en";
/// About ten seconds at espeak-ng's default speed.
const TEN_SECONDS: &str = "Good morning. Please remind me to call the dentist on Monday at nine, \
    and add eggs, milk and coffee to the shopping list. Also tell me the weather for the weekend.";
const SENTENCES: [&str; 5] = [
    "The weather is nice today.",
    "Please call my mother tomorrow morning.",
    "Remind me to buy milk and bread.",
    "What is on my calendar for Friday?",
    "Send a message to Ana saying I will be late.",
];

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn espeak(text: &str) -> anyhow::Result<clawdia_core::Pcm> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("speech.wav");
    #[allow(clippy::disallowed_methods, reason = "the benchmark makes its audio with espeak-ng")]
    let status = std::process::Command::new("espeak-ng")
        .arg("-w")
        .arg(&path)
        .arg(text)
        .status()
        .context("espeak-ng is needed (apt install espeak-ng)")?;
    if !status.success() {
        bail!("espeak-ng failed on {text:?}");
    }
    Ok(clawdia_speech::decode(&std::fs::read(&path)?)?)
}

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let root = std::env::var_os("CLAWDIA_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache/clawdia/models"));
    let mut model_dir = root.join(MODEL);
    let voice_dir = root.join("piper-joe");
    let mut idle = Duration::from_secs(5);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--model" => model_dir = PathBuf::from(rest.next().context("--model DIR")?),
            "--idle" => idle = Duration::from_secs(rest.next().context("--idle SECS")?.parse()?),
            "--threads" => {
                let threads: usize = rest.next().context("--threads N")?.parse()?;
                // SAFETY: set before the runtime or any other thread exists (run is called from
                // main with no threads started).
                unsafe { std::env::set_var("CANDLE_NUM_THREADS", threads.to_string()) };
            }
            other => bail!("unknown argument {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench(model_dir, voice_dir, idle))
}

async fn bench(model_dir: PathBuf, voice_dir: PathBuf, idle: Duration) -> anyhow::Result<()> {
    println!(
        "speech benchmark: {} (CANDLE_NUM_THREADS={})",
        model_dir.display(),
        std::env::var("CANDLE_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    let sample = espeak(TEN_SECONDS)?;
    let engine = LocalWhisper::new(&format!("local/{MODEL}"), &model_dir, Some("en".into()))?
        .with_idle_unload(Some(idle));
    let before = rss_kb();
    let started = Instant::now();
    engine.preload().await?;
    let load = started.elapsed();
    let loaded = rss_kb();
    println!(
        "load: {:.2} s, RSS {} MB before, {} MB loaded (+{} MB)",
        load.as_secs_f64(),
        before / 1024,
        loaded / 1024,
        loaded.saturating_sub(before) / 1024
    );

    let warm = engine.transcribe(&sample).await?;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        engine.transcribe(&sample).await?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "STT: {:.1} s sample in {best:.2} s (best of 3): real-time factor {:.3}; WER {:.3}",
        sample.seconds(),
        best / sample.seconds(),
        word_error_rate(TEN_SECONDS, &warm.text)
    );
    println!("  heard: {}", warm.text);
    let mut total = 0.0;
    for sentence in SENTENCES {
        let transcript = engine.transcribe(&espeak(sentence)?).await?;
        let error = word_error_rate(sentence, &transcript.text);
        total += error;
        println!("  WER {error:.3}: {sentence:?} -> {:?}", transcript.text);
    }
    println!(
        "STT: mean WER over {} espeak-ng sentences: {:.3}",
        SENTENCES.len(),
        total / SENTENCES.len() as f64
    );
    println!("RSS after transcribing: {} MB", rss_kb() / 1024);

    let runtime = clawdia_speech::local::onnx_runtime_path(&voice_dir);
    let voice =
        LocalPiper::new("local/piper-joe", &voice_dir, &runtime, Some(2))?.with_idle_unload(Some(idle));
    let sentence = "Your meeting with the dentist is tomorrow at nine, and the pharmacy closes at six.";
    let started = Instant::now();
    let first = voice.synthesize(sentence).await?;
    println!(
        "TTS: load + first sentence {:.2} s ({:.1} s of audio)",
        started.elapsed().as_secs_f64(),
        first.seconds()
    );
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        voice.synthesize(sentence).await?;
        best = best.min(started.elapsed().as_secs_f64());
    }
    println!(
        "TTS: time to first audio for one sentence {best:.3} s (best of 3): real-time factor {:.3}",
        best / first.seconds()
    );
    let heard = engine.transcribe(&first).await?;
    println!("TTS -> STT: WER {:.3}: {:?}", word_error_rate(sentence, &heard.text), heard.text);
    let started = Instant::now();
    let note = clawdia_speech::encode(&first, AudioFormat::OggOpus)?;
    println!(
        "voice note: {:.1} s of speech encoded to Ogg/Opus in {:.1} ms ({} bytes)",
        first.seconds(),
        started.elapsed().as_secs_f64() * 1000.0,
        note.len()
    );
    println!("RSS with Whisper and Piper loaded: {} MB", rss_kb() / 1024);
    if engine.loads() != 1 || voice.loads() != 1 {
        println!(
            "  (a model was unloaded during the run: Whisper loaded {} times, Piper {}; raise --idle)",
            engine.loads(),
            voice.loads()
        );
    }

    let started = Instant::now();
    let deadline = started + idle * 4 + Duration::from_secs(10);
    while engine.loaded() || voice.loaded() {
        if Instant::now() > deadline {
            bail!("the idle models were not unloaded within {:?}", deadline - started);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "RSS after idle unload ({} s idle_unload; both unloaded {:.1} s after the last use): {} MB",
        idle.as_secs(),
        started.elapsed().as_secs_f64(),
        rss_kb() / 1024
    );
    Ok(())
}
