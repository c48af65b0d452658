//! One loaded chat model and its generation loop, all synchronous (callers run it on a blocking
//! thread). `Engine::load` finds the `.gguf` in a model folder, reads its header, builds the
//! quantized llama or qwen2 weights (candle, CPU), the tokenizer (the folder's `tokenizer.json`
//! or one rebuilt from the GGUF metadata) and the chat template. `Engine::generate` renders the
//! prompt (fitted to the context by `fit::Prompter`: the tools that fit, then the newest messages;
//! tools left out are logged as a warning), runs the prompt in chunks, then samples token by token: greedy when the temperature is unset or 0, else
//! temperature sampling; it stops at the end-of-turn tokens, at `max_tokens`, at the context
//! limit, or when `cancel` is set (checked between chunks and tokens, so a dropped request stops
//! within one forward pass).
//!
//! Threads: generation runs inside the engine's own rayon pool of `threads` workers (dense
//! matmuls and rayon work). candle's quantized matmul kernels use a process-wide pool sized once
//! from `CANDLE_NUM_THREADS` (else `RAYON_NUM_THREADS`, else the physical cores), which the
//! binary pins to `DEFAULT_KERNEL_THREADS` before any thread starts (see `pin_kernel_threads`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::quantized::gguf_file::Content;
use candle_core::{DType, Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};
use candle_transformers::models::{quantized_llama, quantized_qwen2};
use clawdia_core::{ChatRequest, StopReason, first_line};
use tokenizers::Tokenizer;

use crate::LocalError;
use crate::fit::{Fitted, Prompter};
use crate::gguf::GgufInfo;

/// Prompt tokens per forward pass while reading the prompt: bounds the attention temporaries.
const PREFILL_CHUNK: usize = 256;
/// Repetition penalty over the last `REPEAT_WINDOW` tokens. Small models loop on greedy decoding
/// without it; 1.1 is llama.cpp's default.
const REPEAT_PENALTY: f32 = 1.1;
const REPEAT_WINDOW: usize = 64;
/// Tokens that end a turn in the common templates, besides the GGUF's EOS.
const END_TOKENS: [&str; 5] = ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "<end_of_turn>"];

/// How an engine is built.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Workers of the engine's rayon pool (`None`: rayon's default).
    pub threads: Option<usize>,
    /// Most tokens of prompt + reply (also capped by the model).
    pub context_length: usize,
}

enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
}

impl Weights {
    fn forward(&mut self, input: &Tensor, position: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(model) => model.forward(input, position),
            Weights::Qwen2(model) => model.forward(input, position),
        }
    }

    fn clear(&mut self) {
        match self {
            Weights::Llama(model) => model.clear_kv_cache(),
            Weights::Qwen2(model) => model.clear_kv_cache(),
        }
    }
}

/// A model ready to generate.
pub struct Engine {
    name: String,
    architecture: String,
    weights: Weights,
    prompter: Prompter,
    stop_ids: Vec<u32>,
    device: Device,
    pool: Arc<rayon::ThreadPool>,
    /// The tools left out of the last request that lost any, so the warning is logged once
    /// per change rather than on every model call of a turn.
    warned_left_out: Vec<String>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.name)
            .field("architecture", &self.architecture)
            .field("context_length", &self.prompter.context_length())
            .finish_non_exhaustive()
    }
}

/// What one generation produced.
#[derive(Debug, Clone)]
pub struct Generation {
    /// The raw output text (special tokens removed).
    pub output: String,
    pub input_tokens: usize,
    pub output_tokens: usize,
    /// `EndTurn` or `MaxTokens`.
    pub stop: StopReason,
    /// From the start of `generate` to the first sampled token.
    pub time_to_first_token: Duration,
    /// From the first sampled token to the last.
    pub decode_time: Duration,
}

/// The `.gguf` file of a model folder (the first by name when there are several).
pub fn find_gguf(dir: &Path) -> Result<PathBuf, LocalError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|error| LocalError::NotInstalled(format!("cannot read {}: {error}", dir.display())))?;
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("gguf")) && path.is_file())
        .collect();
    found.sort();
    found
        .into_iter()
        .next()
        .ok_or_else(|| LocalError::NotInstalled(format!("no .gguf file in {}", dir.display())))
}

impl Engine {
    /// Loads the chat model in `dir`.
    pub fn load(dir: &Path, options: &EngineOptions) -> Result<Engine, LocalError> {
        let started = Instant::now();
        let path = find_gguf(dir)?;
        let mut file = std::fs::File::open(&path)
            .map_err(|error| LocalError::Model(format!("cannot open {}: {error}", path.display())))?;
        let content = Content::read(&mut file).map_err(|error| {
            LocalError::Model(format!("{} is not a GGUF file ({})", path.display(), first_line(&error)))
        })?;
        let info = GgufInfo::from_content(&content)
            .map_err(|message| LocalError::Model(format!("{}: {message}", path.display())))?;
        let device = Device::Cpu;
        let model_error = |error: candle_core::Error| {
            LocalError::Model(format!("{}: {}", path.display(), first_line(&error)))
        };
        let weights = match info.architecture.as_str() {
            "llama" => Weights::Llama(
                quantized_llama::ModelWeights::from_gguf(content, &mut file, &device).map_err(model_error)?,
            ),
            "qwen2" => Weights::Qwen2(
                quantized_qwen2::ModelWeights::from_gguf(content, &mut file, &device).map_err(model_error)?,
            ),
            other => {
                return Err(LocalError::Model(format!(
                    "{}: architecture `{other}` is not supported (llama and qwen2 are)",
                    path.display()
                )));
            }
        };
        let prompter = Prompter::from_info(dir, &info, options.context_length)?;
        let mut stop_ids: Vec<u32> = END_TOKENS.iter().filter_map(|token| info.token_id(token)).collect();
        stop_ids.extend(info.eos_token_id);
        stop_ids.sort_unstable();
        stop_ids.dedup();
        let context_length = prompter.context_length();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.threads.unwrap_or(0))
            .thread_name(|index| format!("clawdia-local-{index}"))
            .build()
            .map_err(|error| LocalError::Model(format!("cannot start the model threads: {error}")))
            .map(Arc::new)?;
        let name = dir.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        tracing::info!(
            model = %name,
            architecture = %info.architecture,
            context_length,
            threads = pool.current_num_threads(),
            load_ms = started.elapsed().as_millis(),
            "loaded local chat model"
        );
        Ok(Engine {
            name,
            architecture: info.architecture,
            weights,
            prompter,
            stop_ids,
            device,
            pool,
            warned_left_out: Vec::new(),
        })
    }

    /// The model folder's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn context_length(&self) -> usize {
        self.prompter.context_length()
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        self.prompter.tokenizer()
    }

    /// The prompt for `request` fitted to the context (see `fit`): the tools that fit in the
    /// request's order, then the newest messages.
    pub fn prompt_tokens(&self, request: &ChatRequest) -> Result<Fitted, LocalError> {
        self.prompter.fit(request)
    }

    /// Logs what fitting left out: tools as a warning (once per change: the agent offers the
    /// same tools on every call of a turn), dropped messages as info.
    fn report_fit(&mut self, fitted: &Fitted) {
        if fitted.tools_left_out.is_empty() {
            self.warned_left_out.clear();
        } else if fitted.tools_left_out != self.warned_left_out {
            tracing::warn!(
                model = %self.name,
                context_length = self.context_length(),
                kept = %fitted.tools_kept.join(","),
                left_out = %fitted.tools_left_out.join(","),
                "local model: {} of {} tool definitions left out to fit the context; narrow the agent's [agents.NAME.tools] allow list to the tools it needs",
                fitted.tools_left_out.len(),
                fitted.tools_kept.len() + fitted.tools_left_out.len(),
            );
            self.warned_left_out = fitted.tools_left_out.clone();
        }
        if fitted.messages_dropped > 0 {
            tracing::info!(
                dropped = fitted.messages_dropped,
                "local model: oldest messages dropped to fit the context"
            );
        }
    }

    /// Generates a reply to `request`. `on_output` receives the whole output so far after every
    /// token that completes a character; returning `false` stops generation (as `cancel` does).
    pub fn generate(
        &mut self,
        request: &ChatRequest,
        cancel: &AtomicBool,
        on_output: &mut (dyn FnMut(&str) -> bool + Send),
    ) -> Result<Generation, LocalError> {
        let pool = Arc::clone(&self.pool);
        pool.install(|| self.generate_inner(request, cancel, on_output))
    }

    fn generate_inner(
        &mut self,
        request: &ChatRequest,
        cancel: &AtomicBool,
        on_output: &mut (dyn FnMut(&str) -> bool + Send),
    ) -> Result<Generation, LocalError> {
        let started = Instant::now();
        let fitted = self.prompt_tokens(request)?;
        self.report_fit(&fitted);
        let prompt = fitted.ids;
        let budget =
            (request.max_tokens.max(1) as usize).min(self.context_length().saturating_sub(prompt.len()));
        let model_error =
            |error: candle_core::Error| LocalError::Model(format!("local model: {}", first_line(&error)));
        self.weights.clear();
        let mut position = 0;
        let mut logits = None;
        for chunk in prompt.chunks(PREFILL_CHUNK) {
            if cancel.load(Ordering::Relaxed) {
                return Err(LocalError::Cancelled);
            }
            let input = Tensor::new(chunk, &self.device).and_then(|t| t.unsqueeze(0)).map_err(model_error)?;
            logits = Some(self.weights.forward(&input, position).map_err(model_error)?);
            position += chunk.len();
        }
        let mut logits = logits.ok_or_else(|| LocalError::Model("the prompt is empty".to_string()))?;
        let sampling = match request.temperature {
            Some(temperature) if temperature > 0.0 => Sampling::All { temperature: f64::from(temperature) },
            _ => Sampling::ArgMax,
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos() as u64)
            .unwrap_or(0);
        let mut sampler = LogitsProcessor::from_sampling(seed, sampling);
        let mut generated: Vec<u32> = Vec::with_capacity(budget);
        let mut first_token = None;
        let mut stop = StopReason::MaxTokens;
        let mut stopped: Option<String> = None;
        while generated.len() < budget {
            if cancel.load(Ordering::Relaxed) {
                return Err(LocalError::Cancelled);
            }
            let next = self.sample(&logits, &generated, &mut sampler).map_err(model_error)?;
            first_token.get_or_insert_with(Instant::now);
            if self.stop_ids.contains(&next) {
                stop = StopReason::EndTurn;
                break;
            }
            generated.push(next);
            let text = self
                .tokenizer()
                .decode(&generated, true)
                .map_err(|error| LocalError::Model(format!("tokenizer: {}", first_line(&*error))))?;
            if let Some(cut) = stop_cut(&text, &request.stop) {
                stopped = Some(text[..cut].to_string());
                stop = StopReason::EndTurn;
                break;
            }
            // A character split across tokens decodes as U+FFFD until its last byte arrives; the
            // start of a stop sequence is held back until it is clear it is not one.
            let shown = &text[..text.len() - held_back(&text, &request.stop)];
            if !text.ends_with('\u{FFFD}') && !on_output(shown) {
                return Err(LocalError::Cancelled);
            }
            if generated.len() >= budget {
                break;
            }
            let input =
                Tensor::new(&[next], &self.device).and_then(|t| t.unsqueeze(0)).map_err(model_error)?;
            logits = self.weights.forward(&input, position).map_err(model_error)?;
            position += 1;
        }
        let output = match stopped {
            Some(output) => output,
            None => self
                .tokenizer()
                .decode(&generated, true)
                .map_err(|error| LocalError::Model(format!("tokenizer: {}", first_line(&*error))))?,
        };
        let first = first_token.unwrap_or_else(Instant::now);
        Ok(Generation {
            output,
            input_tokens: prompt.len(),
            output_tokens: generated.len(),
            stop,
            time_to_first_token: first.duration_since(started),
            decode_time: first.elapsed(),
        })
    }

    fn sample(
        &self,
        logits: &Tensor,
        generated: &[u32],
        sampler: &mut LogitsProcessor,
    ) -> candle_core::Result<u32> {
        let logits = logits.squeeze(0)?.to_dtype(DType::F32)?;
        let recent = &generated[generated.len().saturating_sub(REPEAT_WINDOW)..];
        let logits = if recent.is_empty() {
            logits
        } else {
            candle_transformers::utils::apply_repeat_penalty(&logits, REPEAT_PENALTY, recent)?
        };
        sampler.sample(&logits)
    }
}

/// Where the output ends when it contains a stop sequence: the start of the earliest one.
fn stop_cut(text: &str, stops: &[String]) -> Option<usize> {
    stops.iter().filter(|stop| !stop.is_empty()).filter_map(|stop| text.find(stop.as_str())).min()
}

/// How many bytes at the end of `text` could be the start of a stop sequence (and so must not
/// be shown yet).
fn held_back(text: &str, stops: &[String]) -> usize {
    stops
        .iter()
        .flat_map(|stop| {
            stop.char_indices().skip(1).map(|(end, _)| &stop[..end]).filter(|prefix| text.ends_with(prefix))
        })
        .map(str::len)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{held_back, stop_cut};

    fn stops(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn output_ends_before_the_earliest_stop_sequence() {
        assert_eq!(stop_cut("one two END three", &stops(&["END"])), Some(8));
        assert_eq!(stop_cut("a STOP b END", &stops(&["END", "STOP"])), Some(2));
        assert_eq!(stop_cut("nothing here", &stops(&["END"])), None);
        assert_eq!(stop_cut("text", &stops(&[""])), None);
        assert_eq!(stop_cut("text", &[]), None);
    }

    #[test]
    fn a_possible_start_of_a_stop_sequence_is_held_back() {
        assert_eq!(held_back("one two EN", &stops(&["END"])), 2);
        assert_eq!(held_back("one two E", &stops(&["END", "Elsewhere"])), 1);
        assert_eq!(held_back("one two", &stops(&["END"])), 0);
        // A whole stop sequence is cut, not held back.
        assert_eq!(held_back("x END", &stops(&["END"])), 0);
        assert_eq!(held_back("naïx", &stops(&["ïve"])), 0);
        assert_eq!(held_back("naïv", &stops(&["ïve"])), "ïv".len());
        assert_eq!(held_back("naï", &stops(&["ïve"])), "ï".len());
    }
}
