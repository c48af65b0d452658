//! `Brain`: the database plus the embedder and the search settings, as the rest of Clawdia uses
//! it. Queries embed their text (when vectors exist for the configured model) and run the search
//! on a blocking thread; writes wake a background task that embeds new chunks in batches, so
//! embedding never sits on a request path.

use std::path::Path;
use std::sync::Arc;

use clawdia_core::Embedder;
use tokio::sync::Notify;

use crate::db::{BrainError, Db, Fusion, PutOutcome, SearchMode, SearchQuery, SearchResult};
use crate::parse::{ParseOptions, parse_markdown, sha256_hex};

/// Search tuning from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct BrainSettings {
    pub fusion: Fusion,
    pub rrf_k: f64,
    /// Fusion weight of the full-text arm.
    pub fts_weight: f64,
    /// Fusion weight of the vector arm.
    pub vector_weight: f64,
    /// With several chunks per page: fusion weight of the page's whole-page full-text match.
    pub page_weight: f64,
    pub max_chunks_per_page: usize,
    pub boosts: Vec<(String, f64)>,
    pub exclude: Vec<String>,
}

impl Default for BrainSettings {
    fn default() -> Self {
        BrainSettings {
            // Chosen on SciFact's 809 train queries (`cargo xtask bench brain --sweep`): convex
            // fusion with min-max normalized arms and equal weights nDCG@10 0.7085; the best RRF,
            // rrf_k 5, 0.7011 (rrf_k 10 0.698, 60 below 0.689). Since full text ranks whole
            // pages: convex with equal weights 0.7241, vector_weight 0.75 0.7271, 0.5 0.7293;
            // the best RRF (rrf_k 5) 0.7193. LoCoMo recall@10 is flat between 0.7 and 1.
            fusion: Fusion::Convex,
            rrf_k: 10.0,
            fts_weight: 1.0,
            vector_weight: 1.0,
            page_weight: 1.0,
            max_chunks_per_page: 1,
            boosts: Vec::new(),
            exclude: Vec::new(),
        }
    }
}

/// Forward batches handed to the embedder per `embed` call while catching up.
const PENDING_BATCHES: usize = 8;

/// A search request as tools, the CLI and MCP clients make it.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub text: String,
    pub k: usize,
    pub mode: SearchMode,
    /// Only slugs with one of these prefixes.
    pub include: Vec<String>,
    /// Extra prefixes to exclude (on top of the configured ones).
    pub exclude: Vec<String>,
    /// Linked neighbours of the top hits to pull in.
    pub expand_graph: usize,
    pub as_of: Option<i64>,
}

impl Query {
    pub fn new(text: impl Into<String>, k: usize) -> Query {
        Query {
            text: text.into(),
            k,
            mode: SearchMode::Hybrid,
            include: Vec::new(),
            exclude: Vec::new(),
            expand_graph: 0,
            as_of: None,
        }
    }
}

pub struct Brain {
    /// Where `brain.db` lives; it is opened on first use so a gateway that never touches the
    /// brain pays nothing for it (idle RSS, startup time).
    path: std::path::PathBuf,
    db: std::sync::Mutex<Option<Arc<Db>>>,
    embedder: Result<Arc<dyn Embedder>, String>,
    settings: BrainSettings,
    wake: Arc<Notify>,
}

impl Brain {
    /// `embedder` is the model to use, or why there is none (said in search notices).
    pub fn new(db: Db, embedder: Result<Arc<dyn Embedder>, String>, settings: BrainSettings) -> Brain {
        Brain {
            path: db.path().to_path_buf(),
            db: std::sync::Mutex::new(Some(Arc::new(db))),
            embedder,
            settings,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The brain at `state_dir/brain.db`, opened (and created) on first use.
    pub fn open(
        state_dir: &Path,
        embedder: Result<Arc<dyn Embedder>, String>,
        settings: BrainSettings,
    ) -> Brain {
        Brain {
            path: state_dir.join("brain.db"),
            db: std::sync::Mutex::new(None),
            embedder,
            settings,
            wake: Arc::new(Notify::new()),
        }
    }

    /// The database, opening it on first use.
    pub fn db(&self) -> Result<Arc<Db>, BrainError> {
        let mut slot = self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(db) = slot.as_ref() {
            return Ok(db.clone());
        }
        let db = Arc::new(Db::open(&self.path)?);
        *slot = Some(db.clone());
        Ok(db)
    }

    pub fn settings(&self) -> &BrainSettings {
        &self.settings
    }

    pub fn embedder(&self) -> Option<&Arc<dyn Embedder>> {
        self.embedder.as_ref().ok()
    }

    /// Runs a blocking database call off the async worker threads.
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Db) -> Result<T, BrainError> + Send + 'static,
    ) -> Result<T, BrainError> {
        let db = self.db()?;
        tokio::task::spawn_blocking(move || work(&db))
            .await
            .map_err(|e| BrainError::Database(format!("brain task failed: {e}")))?
    }

    /// Hybrid (or single-arm) search. The query is embedded only when the brain holds vectors of
    /// the configured model; otherwise the search is full text and the result says why.
    pub async fn search(&self, query: &Query) -> Result<SearchResult, BrainError> {
        let mut notice = None;
        let mut vector = None;
        if query.mode != SearchMode::FullText {
            match &self.embedder {
                Err(why) => {
                    notice = Some(format!("vector search unavailable ({why}); full-text results only"))
                }
                Ok(embedder) => {
                    let stored = self.blocking(|db| db.embedding_model()).await?;
                    match stored {
                        Some((model, _)) if model == embedder.model_id() => {
                            match embedder.embed(std::slice::from_ref(&query.text)).await {
                                Ok(mut vectors) => vector = vectors.pop(),
                                Err(error) => {
                                    notice = Some(format!(
                                        "vector search unavailable ({error}); full-text results only"
                                    ))
                                }
                            }
                        }
                        _ => {
                            notice = Some(format!(
                                "no vectors for {} yet (embedding runs in the background); full-text results only",
                                embedder.model_id()
                            ))
                        }
                    }
                }
            }
        }
        let mut exclude = self.settings.exclude.clone();
        exclude.extend(query.exclude.iter().cloned());
        let search = SearchQuery {
            text: query.text.clone(),
            k: query.k.max(1),
            mode: query.mode,
            vector,
            fusion: self.settings.fusion,
            rrf_k: self.settings.rrf_k,
            fts_weight: self.settings.fts_weight,
            vector_weight: self.settings.vector_weight,
            page_weight: self.settings.page_weight,
            boosts: self.settings.boosts.clone(),
            exclude,
            include: query.include.clone(),
            max_chunks_per_page: self.settings.max_chunks_per_page,
            candidates: (query.k * 4).max(50),
            expand_graph: query.expand_graph,
            as_of: query.as_of,
        };
        let mut result = self.blocking(move |db| db.search(&search)).await?;
        if result.notice.is_none() {
            result.notice = notice;
        }
        Ok(result)
    }

    /// Writes a markdown page (from an agent or an MCP client) and schedules its embedding.
    pub async fn put_markdown(
        &self,
        slug: &str,
        title: Option<&str>,
        body: &str,
        source: &str,
    ) -> Result<PutOutcome, BrainError> {
        let options = ParseOptions { source: source.to_string(), ..ParseOptions::default() };
        let mut page =
            parse_markdown(slug, body, &options).map_err(|e| BrainError::Invalid(e.to_string()))?;
        page.content_hash = sha256_hex(body.as_bytes());
        if let Some(title) = title.filter(|t| !t.trim().is_empty()) {
            page.title = title.trim().to_string();
        }
        let outcome = self.blocking(move |db| db.put_page(&page)).await?;
        self.wake.notify_one();
        Ok(outcome)
    }

    /// Embeds every chunk that has no vector for the current model, in batches. Returns how
    /// many were embedded. `progress(done, remaining_estimate)` is called after each batch.
    pub async fn embed_pending(&self, progress: &mut (dyn FnMut(usize) + Send)) -> Result<usize, BrainError> {
        let embedder = match &self.embedder {
            Ok(embedder) => embedder.clone(),
            Err(_) => return Ok(0),
        };
        let (model, dims) = (embedder.model_id().to_string(), embedder.dimensions());
        self.blocking(move |db| db.set_embedding_model(&model, dims)).await?;
        // Several forward batches per call: the embedder sorts a call's texts by length before
        // batching them, so a bigger call wastes less work on padding.
        let batch = embedder.batch_size().max(1).saturating_mul(PENDING_BATCHES);
        let mut done = 0;
        loop {
            let pending = self.blocking(move |db| db.chunks_to_embed(batch)).await?;
            if pending.is_empty() {
                return Ok(done);
            }
            let texts: Vec<String> = pending.iter().map(|(_, text)| text.clone()).collect();
            let vectors = embedder.embed(&texts).await.map_err(|e| BrainError::Embedding(e.to_string()))?;
            if vectors.len() != pending.len() {
                return Err(BrainError::Embedding(format!(
                    "{} vectors for {} texts",
                    vectors.len(),
                    pending.len()
                )));
            }
            let rows: Vec<(i64, Vec<f32>)> = pending.iter().map(|(id, _)| *id).zip(vectors).collect();
            let count = rows.len();
            self.blocking(move |db| db.store_vectors(&rows)).await?;
            done += count;
            progress(done);
        }
    }

    /// Wakes the background embedder (after an import or a write from outside this process).
    pub fn wake_embedder(&self) {
        self.wake.notify_one();
    }

    /// Starts the background embedder: it embeds whatever is pending now and after every wake.
    /// Failures are logged and retried on the next wake; they never reach a request.
    pub fn spawn_embedder(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        self.embedder.as_ref().ok()?;
        let brain = self.clone();
        Some(tokio::spawn(async move {
            loop {
                // Nothing to embed until the brain has been opened by some use.
                if brain.db.lock().map(|slot| slot.is_none()).unwrap_or(true) {
                    brain.wake.notified().await;
                    continue;
                }
                match brain.embed_pending(&mut |_| {}).await {
                    Ok(0) => {}
                    Ok(count) => tracing::info!(count, "embedded brain chunks"),
                    Err(error) => {
                        tracing::warn!(%error, "brain embedding failed; will retry on the next write")
                    }
                }
                brain.wake.notified().await;
            }
        }))
    }
}
