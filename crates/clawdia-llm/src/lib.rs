//! Clawdia's model providers: hand-rolled Anthropic Messages and OpenAI-compatible Chat
//! Completions clients on reqwest (streaming over SSE and non-streaming), the SSE parser they
//! share, and the [`Router`] that runs a fallback chain of models with per-provider retries of
//! transient failures and cooldowns.
//!
//! Architecture invariant: this crate knows the provider wire formats and nothing about
//! configuration files, sessions or tools; it meets the rest of Clawdia only through the
//! `clawdia_core` model seam (`ModelClient`, `Models`). The JSON wire types live here and
//! nowhere else.

mod anthropic;
mod http;
mod openai;
mod router;
mod settings;
pub mod sse;

pub use anthropic::AnthropicClient;
pub use openai::OpenAiClient;
pub use router::Router;
pub use settings::{ProviderSettings, RetryPolicy};

/// Installs rustls' `ring` crypto provider as the process default. reqwest is built without a
/// provider of its own, so this must run before the first client is built; the constructors
/// call it, and calling it again (or after someone else installed one) is harmless.
pub fn install_crypto_provider() {
    let _already_installed = rustls::crypto::ring::default_provider().install_default();
}
