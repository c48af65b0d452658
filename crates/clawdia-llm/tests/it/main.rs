//! The one integration-test binary of clawdia-llm: the real clients and the router against the
//! mock LLM server over loopback HTTP, for both wire formats and both stream modes. Shared
//! helpers live here; `clients.rs` covers replies and errors, `shape.rs` what goes on the wire,
//! and `router.rs` the fallback chain.

mod clients;
mod router;
mod shape;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use clawdia_core::{ChatRequest, DeltaSink, Message, ModelClient, ModelDelta, ModelRef};
use clawdia_llm::{AnthropicClient, OpenAiClient, ProviderSettings};
use clawdia_test_support::MockLlm;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    Anthropic,
    OpenAi,
}

/// Every (wire format, stream mode) combination.
pub fn combos() -> [(Wire, bool); 4] {
    [(Wire::Anthropic, true), (Wire::Anthropic, false), (Wire::OpenAi, true), (Wire::OpenAi, false)]
}

pub fn settings(mock: &MockLlm, wire: Wire) -> ProviderSettings {
    clawdia_llm::install_crypto_provider();
    let base_url = match wire {
        Wire::Anthropic => mock.anthropic_base_url(),
        Wire::OpenAi => mock.openai_base_url(),
    };
    let mut settings = ProviderSettings::new(format!("{wire:?}").to_lowercase(), base_url);
    settings.api_key = Some("test-key".to_string());
    settings.connect_timeout = Duration::from_secs(2);
    settings.read_timeout = Duration::from_secs(5);
    settings
}

pub fn client_with(settings: ProviderSettings, wire: Wire) -> Arc<dyn ModelClient> {
    match wire {
        Wire::Anthropic => Arc::new(AnthropicClient::new(settings).expect("valid settings")),
        Wire::OpenAi => Arc::new(OpenAiClient::new(settings).expect("valid settings")),
    }
}

pub fn client(mock: &MockLlm, wire: Wire) -> Arc<dyn ModelClient> {
    client_with(settings(mock, wire), wire)
}

pub fn request(stream: bool) -> ChatRequest {
    ChatRequest {
        model: "mock-model".to_string(),
        system: String::new(),
        messages: vec![Message::user("hello")],
        tools: Vec::new(),
        max_tokens: 256,
        temperature: None,
        stop: Vec::new(),
        stream,
    }
}

/// Records deltas and discards.
#[derive(Default)]
pub struct Recorder {
    pub deltas: Mutex<Vec<ModelDelta>>,
    pub discards: Mutex<usize>,
}

impl Recorder {
    pub fn deltas(&self) -> Vec<ModelDelta> {
        self.deltas.lock().expect("lock").clone()
    }

    pub fn text(&self) -> String {
        self.deltas()
            .into_iter()
            .filter_map(|delta| match delta {
                ModelDelta::Text(text) => Some(text),
                ModelDelta::ToolCallStarted { .. } => None,
            })
            .collect()
    }

    pub fn discards(&self) -> usize {
        *self.discards.lock().expect("lock")
    }
}

impl DeltaSink for Recorder {
    fn delta(&self, delta: ModelDelta) {
        self.deltas.lock().expect("lock").push(delta);
    }

    fn discard(&self, _failed: &ModelRef, _next: &ModelRef) {
        *self.discards.lock().expect("lock") += 1;
        self.deltas.lock().expect("lock").clear();
    }
}
