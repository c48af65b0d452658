//! [`LazyLocal`]: the local model as the gateway holds it. Building one only checks the model
//! folder and reads `config.json` (so the model id and dimensions are known at once and a
//! missing model is reported at startup); the 90 MB of weights are loaded on a blocking thread
//! the first time something is embedded, so a gateway that never searches never pays for them.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use clawdia_core::{EmbedError, Embedder};
use tokio::sync::OnceCell;

use crate::local::{FORWARD_BATCH, LocalEmbedder, ModelFiles, model_id_for, read_config};

/// A [`LocalEmbedder`] loaded on first use.
#[derive(Debug)]
pub struct LazyLocal {
    dir: PathBuf,
    threads: Option<usize>,
    model_id: String,
    dimensions: usize,
    /// The outcome of the one load attempt; a failed load is kept (loading is deterministic,
    /// and retrying would reread 90 MB on every call).
    loaded: OnceCell<Result<LocalEmbedder, EmbedError>>,
}

impl LazyLocal {
    /// Checks that `dir` holds a model and reads its config; `threads` is passed to
    /// [`LocalEmbedder::load`] when the weights are loaded.
    pub fn new(dir: &Path, threads: Option<usize>) -> Result<LazyLocal, EmbedError> {
        let files = ModelFiles::locate(dir)?;
        let config = read_config(&files.config)?;
        Ok(LazyLocal {
            dir: dir.to_path_buf(),
            threads,
            model_id: model_id_for(dir),
            dimensions: config.hidden_size,
            loaded: OnceCell::new(),
        })
    }

    async fn model(&self) -> Result<&LocalEmbedder, EmbedError> {
        let loaded = self
            .loaded
            .get_or_init(|| async {
                let (dir, threads) = (self.dir.clone(), self.threads);
                tokio::task::spawn_blocking(move || LocalEmbedder::load(&dir, threads)).await.unwrap_or_else(
                    |error| Err(EmbedError::Unavailable(format!("loading the local model failed: {error}"))),
                )
            })
            .await;
        loaded.as_ref().map_err(Clone::clone)
    }
}

#[async_trait]
impl Embedder for LazyLocal {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn batch_size(&self) -> usize {
        FORWARD_BATCH
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.model().await?.embed(texts).await
    }
}
