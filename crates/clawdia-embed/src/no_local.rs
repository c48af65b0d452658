//! The stand-in for [`LazyLocal`] in builds without the `local` feature: same constructor, so
//! callers compile either way, but it always reports the local model as unavailable.

use std::path::Path;

use clawdia_core::EmbedError;

/// A local model that this build cannot run (the `local` feature is off).
#[derive(Debug)]
pub struct LazyLocal {
    _never: std::convert::Infallible,
}

impl LazyLocal {
    /// Always `EmbedError::Unavailable`: this build has no in-process model.
    pub fn new(dir: &Path, _threads: Option<usize>) -> Result<LazyLocal, EmbedError> {
        Err(EmbedError::Unavailable(format!(
            "cannot use the local model in {}: clawdia was built without the `local` embedding feature",
            dir.display()
        )))
    }
}

#[async_trait::async_trait]
impl clawdia_core::Embedder for LazyLocal {
    fn model_id(&self) -> &str {
        match self._never {}
    }

    fn dimensions(&self) -> usize {
        match self._never {}
    }

    async fn embed(&self, _texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        match self._never {}
    }
}
