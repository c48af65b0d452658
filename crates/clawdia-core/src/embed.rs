//! The embedding seam: turns texts into vectors. Implementations: a local in-process model and
//! any OpenAI-compatible `/v1/embeddings` endpoint (`clawdia-embed`). Vectors are L2-normalized,
//! so cosine similarity is a dot product. The model's identity is stored with the vectors; a
//! different `model_id` means a different space, never to be mixed.

use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EmbedError {
    /// No model to embed with (weights missing, endpoint not configured); callers fall back to
    /// full-text search and say so.
    #[error("no embedding model available: {0}")]
    Unavailable(String),
    #[error("embedding endpoint rate limited")]
    RateLimited,
    #[error("embedding failed: {0}")]
    Failed(String),
}

#[async_trait]
pub trait Embedder: Send + Sync {
    /// Stable identity of the vector space, e.g. `local/all-MiniLM-L6-v2` or
    /// `openai/text-embedding-3-small`.
    fn model_id(&self) -> &str;
    /// Length of every vector this model returns.
    fn dimensions(&self) -> usize;
    /// How many texts one `embed` call should carry.
    fn batch_size(&self) -> usize {
        32
    }
    /// One L2-normalized vector per text, in order. CPU-heavy implementations run off the async
    /// worker threads, so calling this never blocks the gateway's request path.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;
}
