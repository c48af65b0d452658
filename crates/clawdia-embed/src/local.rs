//! The in-process embedder: sentence-transformers all-MiniLM-L6-v2 (or any BERT model in the
//! same Hugging Face layout) on candle, f32 on the CPU, reproducing sentence-transformers
//! exactly: WordPiece tokens truncated to `max_seq_length` (256, from
//! `sentence_bert_config.json` when present), padded within a forward batch, BERT with the
//! attention mask and all-zero token types, mean pooling over the real (non-padding) tokens,
//! then L2 normalization.
//!
//! Within one `embed` call texts are sorted by token count and run in forward batches of at
//! most `FORWARD_BATCH` texts and `FORWARD_TOKENS` padded tokens, so short texts are not
//! padded to the length of long ones and long ones do not make huge temporaries; results go
//! back in the caller's order. The forward pass runs on a blocking thread (`spawn_blocking`),
//! one call at a time (a semaphore: concurrent passes would only compete for the same cores
//! and multiply memory), so the async runtime is never blocked.
//!
//! Threads: the work runs inside a dedicated rayon pool of `threads` workers (default: rayon's
//! own default, `RAYON_NUM_THREADS` or the number of logical CPUs). That bounds the matrix
//! multiplications (gemm runs its tasks in the current rayon pool), the softmax and layer-norm
//! kernels and tokenization, which is nearly all of the time. candle's large element-wise ops
//! use a process-wide pool of its own, sized once by `CANDLE_NUM_THREADS` (else
//! `RAYON_NUM_THREADS`, else the physical cores); set that variable to cap them too.
//!
//! Weights are read into memory (`VarBuilder::from_buffered_safetensors`) rather than mmapped:
//! candle copies them into its own f32 storage either way, and reading avoids `unsafe` and a
//! mapping that another process could truncate under us.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config as BertConfig};
use clawdia_core::{EmbedError, Embedder, first_line};
use tokenizers::{Encoding, Tokenizer, TruncationParams};
use tokio::sync::Semaphore;

/// sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2, used when the model folder has
/// no `sentence_bert_config.json` saying otherwise.
const DEFAULT_MAX_TOKENS: usize = 256;
/// Texts per forward pass, at most.
pub(crate) const FORWARD_BATCH: usize = 32;
/// Padded tokens per forward pass, at most: 32 texts of up to 64 tokens, 8 of 256. Bounds the
/// attention scores (texts x 12 heads x tokens^2 floats) to ~25 MB; bigger temporaries cost
/// more in page faults than they save.
const FORWARD_TOKENS: usize = 2048;
/// What to do about a missing or broken model file.
const FETCH_HINT: &str = "run scripts/fetch-models.sh to fetch all-MiniLM-L6-v2";

/// all-MiniLM-L6-v2 (or another BERT sentence-embedding model) loaded in process.
pub struct LocalEmbedder {
    model_id: String,
    model: Arc<Model>,
    /// One forward pass at a time: they would only compete for the same cores, and each holds
    /// its activations in memory.
    gate: Arc<Semaphore>,
}

/// What the blocking thread needs; shared behind an `Arc`.
struct Model {
    bert: BertModel,
    tokenizer: Tokenizer,
    dimensions: usize,
    pad_id: u32,
    device: Device,
    pool: rayon::ThreadPool,
}

impl LocalEmbedder {
    /// Loads `config.json`, `tokenizer.json` and `model.safetensors` from `dir` (Hugging Face
    /// layout, as written by `scripts/fetch-models.sh`). `threads` sizes the rayon pool the
    /// model runs in (`None` or 0: rayon's default). A missing or unreadable file is
    /// `EmbedError::Unavailable` naming the file and the fix.
    pub fn load(dir: &Path, threads: Option<usize>) -> Result<LocalEmbedder, EmbedError> {
        let started = std::time::Instant::now();
        let files = ModelFiles::locate(dir)?;
        let config = read_config(&files.config)?;
        let max_tokens = max_tokens(dir, &config);
        let tokenizer = read_tokenizer(&files.tokenizer, max_tokens)?;
        let weights = std::fs::read(&files.weights)
            .map_err(|error| unavailable(&files.weights, &format!("cannot read it ({error})")))?;
        let device = Device::Cpu;
        let bert = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)
            .and_then(|weights| BertModel::load(weights, &config))
            .map_err(|error| {
                unavailable(&files.weights, &format!("not usable BERT weights ({})", first_line(&error)))
            })?;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.unwrap_or(0))
            .thread_name(|index| format!("clawdia-embed-{index}"))
            .build()
            .map_err(|error| {
                EmbedError::Unavailable(format!("cannot start the embedding threads: {error}"))
            })?;
        let model_id = model_id_for(dir);
        tracing::info!(
            model = %model_id,
            dimensions = config.hidden_size,
            max_tokens,
            threads = pool.current_num_threads(),
            load_ms = started.elapsed().as_millis(),
            "loaded local embedding model"
        );
        let model = Model {
            bert,
            tokenizer,
            dimensions: config.hidden_size,
            pad_id: u32::try_from(config.pad_token_id).unwrap_or(0),
            device,
            pool,
        };
        Ok(LocalEmbedder { model_id, model: Arc::new(model), gate: Arc::new(Semaphore::new(1)) })
    }

    /// `local/` + the model folder's name, e.g. `local/all-MiniLM-L6-v2`.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }
}

impl fmt::Debug for LocalEmbedder {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("LocalEmbedder")
            .field("model_id", &self.model_id)
            .field("dimensions", &self.model.dimensions)
            .field("threads", &self.model.pool.current_num_threads())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimensions(&self) -> usize {
        self.model.dimensions
    }

    fn batch_size(&self) -> usize {
        FORWARD_BATCH
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let permit = Arc::clone(&self.gate)
            .acquire_owned()
            .await
            .map_err(|_| EmbedError::Failed("local embedder is shut down".to_string()))?;
        let model = Arc::clone(&self.model);
        let texts = texts.to_vec();
        // The permit moves into the task, so a caller that gives up waiting does not let a
        // second forward pass start while this one still runs.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            model.embed(&texts)
        });
        task.await.map_err(|error| EmbedError::Failed(format!("local embedding task failed: {error}")))?
    }
}

impl Model {
    /// Embeds `texts` in the caller's order; runs entirely inside the model's rayon pool.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        self.pool.install(|| {
            let inputs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let encodings = self
                .tokenizer
                .encode_batch_fast(inputs, true)
                .map_err(|error| EmbedError::Failed(format!("tokenizer: {}", first_line(&*error))))?;
            let lengths: Vec<usize> = encodings.iter().map(|encoding| encoding.get_ids().len()).collect();
            let mut vectors = vec![Vec::new(); texts.len()];
            for batch in batches_by_length(&lengths, FORWARD_BATCH, FORWARD_TOKENS) {
                let members: Vec<&Encoding> = batch.iter().map(|&index| &encodings[index]).collect();
                let embedded = self
                    .forward(&members)
                    .map_err(|error| EmbedError::Failed(format!("local model: {}", first_line(&error))))?;
                for (index, vector) in batch.into_iter().zip(embedded) {
                    vectors[index] = vector;
                }
            }
            Ok(vectors)
        })
    }

    /// One forward pass over `encodings`, padded to the longest of them.
    fn forward(&self, encodings: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let longest = encodings.iter().map(|encoding| encoding.get_ids().len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(encodings.len() * longest);
        let mut mask = Vec::with_capacity(encodings.len() * longest);
        for encoding in encodings {
            let tokens = encoding.get_ids();
            let padding = longest - tokens.len();
            ids.extend_from_slice(tokens);
            ids.extend(std::iter::repeat_n(self.pad_id, padding));
            mask.extend(std::iter::repeat_n(1u32, tokens.len()));
            mask.extend(std::iter::repeat_n(0u32, padding));
        }
        let shape = (encodings.len(), longest);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let token_types = ids.zeros_like()?;
        let hidden = self.bert.forward(&ids, &token_types, Some(&mask))?;
        mean_pool_normalize(&hidden, &mask)?.to_vec2::<f32>()
    }
}

/// sentence-transformers' Pooling (mean over tokens whose mask is 1) followed by Normalize:
/// `hidden` is (batch, tokens, dims), `mask` (batch, tokens); returns (batch, dims).
pub(crate) fn mean_pool_normalize(hidden: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9f32, f32::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12f32, f32::MAX)?;
    mean.broadcast_div(&norms)
}

/// Indexes of texts grouped into forward batches: sorted by length (ties in input order) so
/// little padding is computed, at most `max_texts` texts and at most `max_tokens` padded tokens
/// (texts x longest) per batch, so long texts go in smaller batches.
pub(crate) fn batches_by_length(lengths: &[usize], max_texts: usize, max_tokens: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&index| lengths[index]);
    let mut batches = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    for index in order {
        // Sorted, so this text is the longest of the batch if it joins.
        let padded = (current.len() + 1) * lengths[index];
        if !current.is_empty() && (current.len() >= max_texts || padded > max_tokens) {
            batches.push(std::mem::take(&mut current));
        }
        current.push(index);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// The three files a model folder must hold.
pub(crate) struct ModelFiles {
    pub config: PathBuf,
    pub tokenizer: PathBuf,
    pub weights: PathBuf,
}

impl ModelFiles {
    /// Checks that `dir` holds the files, without reading them.
    pub(crate) fn locate(dir: &Path) -> Result<ModelFiles, EmbedError> {
        if !dir.is_dir() {
            return Err(EmbedError::Unavailable(format!(
                "model folder {} does not exist; {FETCH_HINT}",
                dir.display()
            )));
        }
        let files = ModelFiles {
            config: dir.join("config.json"),
            tokenizer: dir.join("tokenizer.json"),
            weights: dir.join("model.safetensors"),
        };
        for path in [&files.config, &files.tokenizer, &files.weights] {
            if !path.is_file() {
                return Err(unavailable(path, "missing"));
            }
        }
        Ok(files)
    }
}

/// Parses the model's `config.json` as a BERT config.
pub(crate) fn read_config(path: &Path) -> Result<BertConfig, EmbedError> {
    let text =
        std::fs::read(path).map_err(|error| unavailable(path, &format!("cannot read it ({error})")))?;
    let config: BertConfig = serde_json::from_slice(&text)
        .map_err(|error| unavailable(path, &format!("not a BERT config ({error})")))?;
    if config.hidden_size == 0
        || config.num_attention_heads == 0
        || !config.hidden_size.is_multiple_of(config.num_attention_heads)
    {
        return Err(unavailable(path, "hidden_size must be a non-zero multiple of num_attention_heads"));
    }
    Ok(config)
}

/// The tokenizer with sentence-transformers' truncation and no padding of its own (padding
/// happens per forward batch); `tokenizer.json` ships with fixed 128-token padding.
fn read_tokenizer(path: &Path, max_tokens: usize) -> Result<Tokenizer, EmbedError> {
    let mut tokenizer = Tokenizer::from_file(path)
        .map_err(|error| unavailable(path, &format!("not a tokenizer ({})", first_line(&*error))))?;
    tokenizer.with_padding(None);
    tokenizer
        .with_truncation(Some(TruncationParams { max_length: max_tokens, ..TruncationParams::default() }))
        .map_err(|error| unavailable(path, &format!("cannot truncate to {max_tokens} tokens ({error})")))?;
    Ok(tokenizer)
}

/// sentence-transformers' `max_seq_length` from `sentence_bert_config.json` (else 256), never
/// more than the model's position embeddings.
fn max_tokens(dir: &Path, config: &BertConfig) -> usize {
    #[derive(serde::Deserialize)]
    struct SentenceBertConfig {
        max_seq_length: usize,
    }
    let configured = std::fs::read(dir.join("sentence_bert_config.json"))
        .ok()
        .and_then(|text| serde_json::from_slice::<SentenceBertConfig>(&text).ok())
        .map(|config| config.max_seq_length)
        .filter(|&length| length > 2)
        .unwrap_or(DEFAULT_MAX_TOKENS);
    configured.min(config.max_position_embeddings)
}

/// `local/` + the folder's name.
pub(crate) fn model_id_for(dir: &Path) -> String {
    let name = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .or_else(|| {
            let absolute = dir.canonicalize().ok()?;
            Some(absolute.file_name()?.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "model".to_string());
    format!("local/{name}")
}

fn unavailable(path: &Path, problem: &str) -> EmbedError {
    EmbedError::Unavailable(format!("{}: {problem}; {FETCH_HINT}", path.display()))
}

#[cfg(test)]
mod tests;
