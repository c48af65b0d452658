//! The dream cycle in the composition root: `[brain.dream]` turned into a `clawdia_brain::Dream`
//! over the session store (transcripts with their positions), the gateway's models (the scorer)
//! and its agents (the distillers, through the `Gateway` seam), for `clawdia brain dream` and the
//! scheduler's `brain.dream` job.

use std::sync::Arc;

use clawdia_brain::dream::{Dream, DreamSettings, TranscriptEntry, Transcripts};
use clawdia_core::{Gateway, SessionStore};
use clawdia_store::Store;

use crate::Runtime;

/// Transcripts from `sessions.db`, as stored (no repair: the dream only reads).
struct StoreTranscripts {
    store: Arc<Store>,
}

impl Transcripts for StoreTranscripts {
    fn entries_after(&self, session_id: &str, after: u64) -> Result<Vec<TranscriptEntry>, String> {
        let messages = self.store.messages(session_id).map_err(|e| e.to_string())?;
        Ok(messages
            .into_iter()
            .filter(|stored| stored.seq > after)
            .map(|stored| TranscriptEntry { seq: stored.seq, at: stored.at, message: stored.message })
            .collect())
    }
}

/// The dream cycle of `runtime`'s config; `Err` says why it cannot run (its agent is missing).
pub fn dream(runtime: &Runtime) -> Result<Dream, String> {
    let config = &runtime.config.brain.dream;
    let agent = runtime.config.agents.get(&config.agent).ok_or_else(|| {
        format!("brain.dream.agent: no agent named `{}`; set [brain.dream] agent", config.agent)
    })?;
    let settings = DreamSettings {
        agent: agent.name.clone(),
        scorer: config.scorer_model.clone().unwrap_or_else(|| agent.model.clone()),
        min_score: config.min_score,
        max_transcripts: config.max_transcripts,
        max_tokens: config.max_tokens,
        max_usd: config.max_usd,
        daily_tokens: agent.budget.daily_tokens,
        daily_usd: agent.budget.daily_usd,
        context_messages: config.context_messages,
        max_slice_chars: config.max_slice_chars,
        turn_timeout: config.turn_timeout,
        prompts_dir: config.prompts_dir.clone(),
    };
    Ok(Dream {
        brain: runtime.brain.clone(),
        store: runtime.store.clone() as Arc<dyn SessionStore>,
        transcripts: Arc::new(StoreTranscripts { store: runtime.store.clone() }),
        models: runtime.models.clone(),
        gateway: runtime.agents.clone() as Arc<dyn Gateway>,
        pricer: runtime.pricer.clone(),
        settings,
    })
}
