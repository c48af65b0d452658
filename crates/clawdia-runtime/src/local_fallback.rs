//! The last-resort local fallback says so. `LocalFallbackNote` wraps the provider `Router`: when
//! a chain's final answer comes from a `local` provider that was not the chain's first model
//! (every remote model before it failed or was cooling down), a short note is appended to the
//! reply text, streamed as one more text delta so streamed and stored text stay identical. The
//! note is part of the reply (CLI, HTTP API and transcript alike), so whoever reads the answer
//! knows a small on-device model wrote it. Replies that carry tool calls are left alone; the
//! turn's final text answer gets the note.

use std::collections::HashSet;

use async_trait::async_trait;
use clawdia_core::{ChainOutcome, ChatRequest, DeltaSink, Message, ModelDelta, ModelRef, Models};
use clawdia_llm::Router;

/// The note appended to a reply from the local fallback model `model`.
pub fn note(model: &ModelRef) -> String {
    format!("(Answered by the local fallback model {model}: the remote models were unavailable.)")
}

/// The router plus the names of the `local` providers.
#[derive(Debug)]
pub struct LocalFallbackNote {
    router: Router,
    local_providers: HashSet<String>,
}

impl LocalFallbackNote {
    pub fn new(router: Router, local_providers: HashSet<String>) -> LocalFallbackNote {
        LocalFallbackNote { router, local_providers }
    }
}

#[async_trait]
impl Models for LocalFallbackNote {
    async fn complete(&self, chain: &[ModelRef], request: ChatRequest, sink: &dyn DeltaSink) -> ChainOutcome {
        let mut outcome = self.router.complete(chain, request, sink).await;
        if let Ok((model, response)) = &mut outcome.result
            && self.local_providers.contains(&model.provider)
            && chain.first() != Some(model)
            && let Message::Assistant { text, tool_calls } = &mut response.message
            && tool_calls.is_empty()
        {
            let addition = if text.is_empty() { note(model) } else { format!("\n\n{}", note(model)) };
            sink.delta(ModelDelta::Text(addition.clone()));
            text.push_str(&addition);
        }
        outcome
    }
}
