//! `LocalChat`, the `ModelClient` of a `kind = "local"` provider: the model named by the request
//! (a folder under `models/`) is loaded on the first request, kept while requests keep coming,
//! and dropped after `idle_unload` without one, so an idle gateway holds no weights.
//!
//! One model slot behind an async mutex: a request takes the lock, loads the model if it is not
//! the one loaded (dropping the other: only one is resident), and generates on a blocking thread
//! that holds the lock until it finishes, so concurrent requests queue rather than load twice
//! or compete for the same cores. Deltas cross from the blocking thread over a channel and reach
//! the sink on the caller's task. Dropping the request's future sets a cancel flag the
//! generation loop checks between tokens, and the blocking thread notices a closed channel too;
//! either way the lock is released within one forward pass.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clawdia_core::{
    ChatRequest, ChatResponse, DeltaSink, Message, ModelClient, ModelDelta, ModelError, StopReason, Usage,
};
use tokio::sync::Mutex;

use crate::engine::{Engine, EngineOptions, Generation};
use crate::toolcall::{self, StreamFilter};
use crate::{LocalError, release_memory};

/// How the local provider runs.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// `$CLAWDIA_HOME/models`: model names are folders in it.
    pub models_dir: PathBuf,
    /// Generation threads (`None`: one per core).
    pub threads: Option<usize>,
    /// Unload the model after this long without a request; zero keeps it loaded.
    pub idle_unload: Duration,
    /// Most tokens of prompt + reply (the model's own limit may be lower).
    pub context_length: usize,
}

/// The in-process chat model provider.
#[derive(Clone)]
pub struct LocalChat {
    shared: Arc<Shared>,
}

struct Shared {
    settings: LocalSettings,
    slot: Arc<Mutex<Slot>>,
    loads: AtomicUsize,
    reaper_running: AtomicBool,
}

#[derive(Default)]
struct Slot {
    engine: Option<Engine>,
    last_used: Option<Instant>,
}

impl std::fmt::Debug for LocalChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalChat").field("settings", &self.shared.settings).finish_non_exhaustive()
    }
}

/// Sets the cancel flag when the request's future is dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl LocalChat {
    pub fn new(settings: LocalSettings) -> LocalChat {
        LocalChat {
            shared: Arc::new(Shared {
                settings,
                slot: Arc::new(Mutex::new(Slot::default())),
                loads: AtomicUsize::new(0),
                reaper_running: AtomicBool::new(false),
            }),
        }
    }

    pub fn settings(&self) -> &LocalSettings {
        &self.shared.settings
    }

    /// How many times a model was loaded (for tests and the benchmark).
    pub fn loads(&self) -> usize {
        self.shared.loads.load(Ordering::Relaxed)
    }

    /// The name of the loaded model, if one is loaded. Waits for a running generation.
    pub async fn loaded(&self) -> Option<String> {
        self.shared.slot.lock().await.engine.as_ref().map(|engine| engine.name().to_string())
    }

    /// Loads `model` now (if it is not loaded) and returns how long that took.
    pub async fn preload(&self, model: &str) -> Result<Duration, ModelError> {
        let mut slot = Arc::clone(&self.shared.slot).lock_owned().await;
        let shared = Arc::clone(&self.shared);
        let model = model.to_string();
        let started = Instant::now();
        let task = tokio::task::spawn_blocking(move || {
            ensure_loaded(&shared, &mut slot, &model)?;
            slot.last_used = Some(Instant::now());
            Ok::<(), LocalError>(())
        });
        task.await.map_err(|error| ModelError::Other(format!("local model task failed: {error}")))??;
        schedule_unload(&self.shared);
        Ok(started.elapsed())
    }

    /// Runs one request and also reports the generation's timings (for the benchmark).
    pub async fn complete_timed(
        &self,
        request: &ChatRequest,
        sink: &dyn DeltaSink,
    ) -> Result<(ChatResponse, Generation), ModelError> {
        let cancel = Arc::new(AtomicBool::new(false));
        let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancel));
        let mut slot = Arc::clone(&self.shared.slot).lock_owned().await;
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<ModelDelta>();
        let shared = Arc::clone(&self.shared);
        let owned_request = request.clone();
        let task = tokio::task::spawn_blocking(move || {
            let result = run(&shared, &mut slot, &owned_request, &cancel, &sender);
            slot.last_used = Some(Instant::now());
            result
        });
        while let Some(delta) = receiver.recv().await {
            sink.delta(delta);
        }
        let result =
            task.await.map_err(|error| ModelError::Other(format!("local model task failed: {error}")))?;
        schedule_unload(&self.shared);
        result.map_err(ModelError::from)
    }
}

#[async_trait]
impl ModelClient for LocalChat {
    async fn complete(
        &self,
        request: &ChatRequest,
        sink: &dyn DeltaSink,
    ) -> Result<ChatResponse, ModelError> {
        self.complete_timed(request, sink).await.map(|(response, _)| response)
    }
}

/// Loads `model` into the slot unless it is already there.
fn ensure_loaded(shared: &Shared, slot: &mut Slot, model: &str) -> Result<(), LocalError> {
    if slot.engine.as_ref().is_some_and(|engine| engine.name() == model) {
        return Ok(());
    }
    if slot.engine.take().is_some() {
        release_memory();
    }
    let dir = model_dir(&shared.settings, model)?;
    let options =
        EngineOptions { threads: shared.settings.threads, context_length: shared.settings.context_length };
    let engine = Engine::load(&dir, &options)?;
    shared.loads.fetch_add(1, Ordering::Relaxed);
    slot.engine = Some(engine);
    Ok(())
}

/// The folder of `model`: a plain folder name under the models directory.
fn model_dir(settings: &LocalSettings, model: &str) -> Result<PathBuf, LocalError> {
    let plain = !model.is_empty() && !model.starts_with('.') && !model.contains(['/', '\\']);
    if !plain {
        return Err(LocalError::NotInstalled(format!("`{model}` is not a model folder name")));
    }
    let dir = settings.models_dir.join(model);
    if !dir.is_dir() {
        return Err(LocalError::NotInstalled(format!(
            "local model `{model}` is not installed in {} (run `clawdia models pull {model}` or `clawdia models add {model} --from PATH`)",
            settings.models_dir.display()
        )));
    }
    Ok(dir)
}

/// One request on the blocking thread: load if needed, generate while streaming, then split the
/// output into text and tool calls.
fn run(
    shared: &Shared,
    slot: &mut Slot,
    request: &ChatRequest,
    cancel: &AtomicBool,
    sender: &tokio::sync::mpsc::UnboundedSender<ModelDelta>,
) -> Result<(ChatResponse, Generation), LocalError> {
    ensure_loaded(shared, slot, &request.model)?;
    let Some(engine) = slot.engine.as_mut() else {
        return Err(LocalError::Model("the local model is not loaded".to_string()));
    };
    let tools_offered = !request.tools.is_empty();
    let mut filter = StreamFilter::new(tools_offered);
    let mut on_output = |output: &str| {
        let chunk = filter.next(output);
        chunk.is_empty() || sender.send(ModelDelta::Text(chunk.to_string())).is_ok()
    };
    let generation = engine.generate(request, cancel, &mut on_output)?;
    let parsed = if tools_offered {
        toolcall::parse(&generation.output).map_err(|error| LocalError::Model(error.to_string()))?
    } else {
        toolcall::Parsed { text: generation.output.trim_end().to_string(), tool_calls: Vec::new() }
    };
    let rest = filter.finish(&parsed.text);
    if !rest.is_empty() {
        let _ = sender.send(ModelDelta::Text(rest.to_string()));
    }
    for call in &parsed.tool_calls {
        let _ = sender.send(ModelDelta::ToolCallStarted { id: call.id.clone(), name: call.name.clone() });
    }
    let stop_reason = if !parsed.tool_calls.is_empty() { StopReason::ToolUse } else { generation.stop };
    let response = ChatResponse {
        message: Message::Assistant { text: parsed.text, tool_calls: parsed.tool_calls },
        usage: Usage {
            input_tokens: generation.input_tokens as u64,
            output_tokens: generation.output_tokens as u64,
            ..Usage::default()
        },
        stop_reason,
    };
    Ok((response, generation))
}

/// Starts the idle timer that unloads the model, unless one is running.
fn schedule_unload(shared: &Arc<Shared>) {
    let idle = shared.settings.idle_unload;
    if idle.is_zero() || shared.reaper_running.swap(true, Ordering::AcqRel) {
        return;
    }
    let weak: Weak<Shared> = Arc::downgrade(shared);
    tokio::spawn(async move {
        loop {
            let Some(shared) = weak.upgrade() else { return };
            let wait = {
                let mut slot = shared.slot.lock().await;
                let idle_for = slot.last_used.map_or(idle, |used| used.elapsed());
                if slot.engine.is_none() || idle_for >= idle {
                    if slot.engine.take().is_some() {
                        tracing::info!(idle_secs = idle.as_secs(), "unloaded the idle local chat model");
                        release_memory();
                    }
                    shared.reaper_running.store(false, Ordering::Release);
                    return;
                }
                idle - idle_for
            };
            drop(shared);
            tokio::time::sleep(wait).await;
        }
    });
}
