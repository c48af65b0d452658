//! Clawdia's text embedders, the implementations of `clawdia_core::Embedder`:
//! [`LocalEmbedder`] runs sentence-transformers all-MiniLM-L6-v2 in process on the CPU (candle +
//! tokenizers, behind the default `local` feature), [`LazyLocal`] is the same model loaded on
//! first use, and [`OpenAiEmbedder`] calls any OpenAI-compatible `POST {base_url}/embeddings`.
//!
//! Architecture invariant: this crate knows model files and the embeddings wire format, nothing
//! about the brain, its database or configuration files; it meets the rest of Clawdia only
//! through the `Embedder` seam. It never downloads anything at run time: the local model's files
//! come from `scripts/fetch-models.sh`, and a missing or broken file is
//! `EmbedError::Unavailable` naming the file and that fix.

#[cfg(feature = "local")]
mod lazy;
#[cfg(feature = "local")]
mod local;
#[cfg(not(feature = "local"))]
mod no_local;
mod openai;

#[cfg(feature = "local")]
pub use lazy::LazyLocal;
#[cfg(feature = "local")]
pub use local::LocalEmbedder;
#[cfg(not(feature = "local"))]
pub use no_local::LazyLocal;
pub use openai::OpenAiEmbedder;

/// Installs rustls' `ring` crypto provider as the process default (reqwest is built without a
/// provider of its own). Calling it again, or after someone else installed one, is harmless.
fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
