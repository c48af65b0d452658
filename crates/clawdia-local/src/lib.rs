//! Local models, offline: [`LocalChat`] runs a quantized GGUF chat model (llama or qwen2
//! architecture, e.g. SmolLM2-135M-Instruct or Qwen2.5-Instruct) in process on the CPU with
//! candle, behind `clawdia_core::ModelClient`, so the agent loop, sessions, budgets and the HTTP
//! API work unchanged with no API key and no network. [`models`] manages the home's `models/`
//! folder: the built-in catalogue with each model's files and sha256, `pull` from the model's
//! public hub, `add` from a folder, a single weights file or a Python wheel, `rm`, and `list`.
//!
//! Architecture invariant: a capability crate; it depends on `clawdia-core` only and knows
//! nothing of configuration files, the agent loop or other providers. The composition root
//! builds a `LocalChat` from `[providers.NAME] kind = "local"`.
//!
//! Module map: `gguf` (metadata), `tokenizer` (tokenizer.json rebuilt from GGUF), `template`
//! (chat template + tool prompt), `fit` (the tools and messages that fit the context), `toolcall` (parsing `<tool_call>` output, stream filter),
//! `engine` (weights + generation loop, synchronous), `client` (lazy load, queueing, idle
//! unload, cancellation), `models` (catalogue and the models folder).

mod client;
mod engine;
pub mod fit;
pub mod gguf;
pub mod models;
pub mod template;
pub mod tokenizer;
pub mod toolcall;

pub use client::{LocalChat, LocalSettings};
pub use engine::{Engine, EngineOptions, Generation, find_gguf};
pub use fit::{Fitted, Prompter};

use clawdia_core::ModelError;

/// Why the local model could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// The model folder or its weights are missing; the message says how to get them.
    #[error("{0}")]
    NotInstalled(String),
    /// The files are there but unusable (not GGUF, unsupported architecture, bad template).
    #[error("{0}")]
    Model(String),
    /// Even the last message alone leaves no room for a reply.
    #[error("the prompt is {tokens} tokens; the local model's context holds {context}")]
    TooLong { tokens: usize, context: usize },
    #[error("cancelled")]
    Cancelled,
}

impl From<LocalError> for ModelError {
    fn from(error: LocalError) -> ModelError {
        match error {
            LocalError::Cancelled => ModelError::Cancelled,
            LocalError::TooLong { .. } => ModelError::Rejected { status: 400, message: error.to_string() },
            LocalError::NotInstalled(message) | LocalError::Model(message) => ModelError::Other(message),
        }
    }
}

/// Hands freed memory back to the OS after a model is dropped: glibc keeps large freed blocks
/// in its heap once its mmap threshold has adapted, which would keep an unloaded model's
/// hundreds of megabytes in RSS.
pub(crate) fn release_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Kernel threads the local model runs with unless `CANDLE_NUM_THREADS` says otherwise.
///
/// candle's quantized matmuls run on a process-wide pool that busy-waits at a barrier between
/// kernels, sized once from `CANDLE_NUM_THREADS` (else `RAYON_NUM_THREADS`, else the physical
/// cores). On this 2-core machine, shared with the gateway and other work, two spinning kernel
/// threads made decoding 8x slower than one (4.3 vs 34.4 tokens/s, `cargo xtask bench local`),
/// while the engine's own rayon pool (`threads`) still helps. So the default is one.
pub const DEFAULT_KERNEL_THREADS: usize = 1;

/// Sizes candle's process-wide kernel pool, which reads `CANDLE_NUM_THREADS` once, on first use.
/// Does nothing when the variable is already set (the owner's choice wins).
///
/// # Safety
/// Must be called before the process starts any other thread (it sets an environment
/// variable), i.e. first thing in `main`.
pub unsafe fn pin_kernel_threads(threads: usize) {
    if threads == 0 || std::env::var_os("CANDLE_NUM_THREADS").is_some() {
        return;
    }
    // SAFETY: the caller guarantees no other thread exists yet.
    unsafe { std::env::set_var("CANDLE_NUM_THREADS", threads.to_string()) };
}

/// Installs rustls' `ring` crypto provider as the process default (reqwest is built without a
/// provider of its own). Calling it again is harmless.
fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
