//! The in-process engines (cargo feature `local`, on by default): Whisper speech to text on
//! candle, read from its CTranslate2 folder, and a Piper voice on ONNX Runtime for text to
//! speech. Audio and text given to them never leave the machine. Each loads on first use and
//! leaves memory after `[speech] idle_unload` unused (`resident`).

mod ct2;
mod mel;
mod piper;
mod resident;
mod whisper;

pub use piper::LocalPiper;
pub use whisper::LocalWhisper;

/// Where ONNX Runtime is: `$ORT_DYLIB_PATH`, else `onnxruntime/libonnxruntime.so` in the models
/// folder that holds `voice_dir` (where scripts/fetch-models.sh puts it).
pub fn onnx_runtime_path(voice_dir: &std::path::Path) -> std::path::PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(path) => std::path::PathBuf::from(path),
        None => voice_dir.parent().unwrap_or(voice_dir).join("onnxruntime").join("libonnxruntime.so"),
    }
}
