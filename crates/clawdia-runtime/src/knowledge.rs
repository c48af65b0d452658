//! Building the knowledge brain from the config: `state/brain.db`, the embedder (a lazily loaded
//! local model, an OpenAI-compatible endpoint, or none), and the search settings.

use std::sync::Arc;

use clawdia_brain::{Brain, BrainSettings};
use clawdia_config::{Config, EmbedderConfig};
use clawdia_core::Embedder;

use crate::{RuntimeError, state_dir};

/// The embedder the config asks for, or why there is none (shown in search notices and
/// `doctor`).
pub fn embedder(config: &Config) -> Result<Arc<dyn Embedder>, String> {
    match &config.brain.embedder {
        EmbedderConfig::None => Err("embeddings are off (brain.embedder.kind = \"none\")".into()),
        EmbedderConfig::Local { dir, threads, .. } => clawdia_embed::LazyLocal::new(dir, *threads)
            .map(|e| Arc::new(e) as Arc<dyn Embedder>)
            .map_err(|e| e.to_string()),
        EmbedderConfig::OpenAi { base_url, api_key, model, dimensions } => {
            let key = match api_key {
                None => None,
                Some(reference) => Some(reference.resolve().map_err(|e| e.to_string())?.expose().to_string()),
            };
            clawdia_embed::OpenAiEmbedder::new(base_url, key, model, *dimensions)
                .map(|e| Arc::new(e) as Arc<dyn Embedder>)
                .map_err(|e| e.to_string())
        }
    }
}

/// Opens the brain of `config`'s home.
pub fn open_brain(config: &Config) -> Result<Arc<Brain>, RuntimeError> {
    let settings = BrainSettings {
        fusion: match config.brain.fusion {
            clawdia_config::BrainFusion::Rrf => clawdia_brain::db::Fusion::Rrf,
            clawdia_config::BrainFusion::Convex => clawdia_brain::db::Fusion::Convex,
        },
        rrf_k: config.brain.rrf_k,
        fts_weight: config.brain.fts_weight,
        vector_weight: config.brain.vector_weight,
        page_weight: config.brain.page_weight,
        max_chunks_per_page: config.brain.max_chunks_per_page,
        boosts: config.brain.boosts.clone(),
        exclude: config.brain.exclude.clone(),
    };
    let dir = state_dir(&config.home);
    Ok(Arc::new(Brain::open(&dir, embedder(config), settings)))
}
