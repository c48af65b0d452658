//! A local model that is loaded on first use and dropped again after `[speech] idle_unload`
//! without one, so an idle gateway does not hold Whisper's and Piper's few hundred MB.
//!
//! `Resident::lease` hands out a `Lease` (the model behind an `Arc`): loading happens once for
//! concurrent callers (they wait on one load lock, on a blocking thread), and while any lease is
//! alive the model is in use and is never dropped. A lease's drop marks the model used now. One
//! reaper task per loaded model wakes when the idle time would run out, drops the model if no
//! lease is out and the idle time has passed, and otherwise sleeps again; the next lease loads it
//! anew. Freed heap pages go back to the kernel (`malloc_trim`), which is what makes the RSS fall.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use clawdia_core::SpeechError;

/// A model `T` loaded on demand and unloaded when idle.
pub(crate) struct Resident<T> {
    shared: Arc<Shared<T>>,
}

struct Shared<T> {
    name: String,
    /// `None`: once loaded, kept.
    idle: Option<Duration>,
    /// Held while loading, so concurrent first uses load once.
    load: tokio::sync::Mutex<()>,
    state: Mutex<State<T>>,
    reaper_running: AtomicBool,
    loads: AtomicUsize,
}

struct State<T> {
    model: Option<Arc<T>>,
    /// Leases alive: while above zero the model is not dropped.
    in_use: usize,
    last_used: Instant,
}

/// The model while it is used: derefs to it; dropping it marks the model used now.
pub(crate) struct Lease<T> {
    model: Arc<T>,
    shared: Arc<Shared<T>>,
}

impl<T> Deref for Lease<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.model
    }
}

impl<T> Drop for Lease<T> {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.in_use = state.in_use.saturating_sub(1);
        state.last_used = Instant::now();
    }
}

impl<T> Shared<T> {
    /// The state; a panic elsewhere while it was held leaves nothing half-done in it (every
    /// change is one assignment), so a poisoned lock is taken as is.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A lease of the loaded model, if it is loaded.
    fn lease(self: &Arc<Self>) -> Option<Lease<T>> {
        let mut state = self.lock();
        let model = state.model.clone()?;
        state.in_use += 1;
        Some(Lease { model, shared: Arc::clone(self) })
    }
}

impl<T: Send + Sync + 'static> Resident<T> {
    /// `name` is the engine's, for messages and logs.
    pub(crate) fn new(name: &str, idle: Option<Duration>) -> Resident<T> {
        Resident {
            shared: Arc::new(Shared {
                name: name.to_string(),
                idle: idle.filter(|idle| !idle.is_zero()),
                load: tokio::sync::Mutex::new(()),
                state: Mutex::new(State { model: None, in_use: 0, last_used: Instant::now() }),
                reaper_running: AtomicBool::new(false),
                loads: AtomicUsize::new(0),
            }),
        }
    }

    /// The model, loaded by `load` on a blocking thread when it is not loaded.
    pub(crate) async fn lease<F>(&self, load: F) -> Result<Lease<T>, SpeechError>
    where
        F: FnOnce() -> Result<T, SpeechError> + Send + 'static,
    {
        if let Some(lease) = self.shared.lease() {
            return Ok(lease);
        }
        let _loading = self.shared.load.lock().await;
        if let Some(lease) = self.shared.lease() {
            return Ok(lease);
        }
        let name = self.shared.name.clone();
        let model = tokio::task::spawn_blocking(load)
            .await
            .map_err(|error| SpeechError::Failed(format!("{name}: loading stopped: {error}")))??;
        let model = Arc::new(model);
        self.shared.loads.fetch_add(1, Ordering::Relaxed);
        let lease = {
            let mut state = self.shared.lock();
            state.model = Some(Arc::clone(&model));
            state.in_use += 1;
            state.last_used = Instant::now();
            Lease { model, shared: Arc::clone(&self.shared) }
        };
        schedule_unload(&self.shared);
        Ok(lease)
    }

    /// Whether the model is in memory now.
    pub(crate) fn loaded(&self) -> bool {
        self.shared.lock().model.is_some()
    }

    /// How many times the model was loaded.
    pub(crate) fn loads(&self) -> usize {
        self.shared.loads.load(Ordering::Relaxed)
    }
}

/// Starts the task that drops the model once it has been idle long enough, unless one runs.
fn schedule_unload<T: Send + Sync + 'static>(shared: &Arc<Shared<T>>) {
    let Some(idle) = shared.idle else { return };
    if shared.reaper_running.swap(true, Ordering::AcqRel) {
        return;
    }
    let weak: Weak<Shared<T>> = Arc::downgrade(shared);
    tokio::spawn(async move {
        loop {
            let Some(shared) = weak.upgrade() else { return };
            let wait = {
                let mut state = shared.lock();
                let idle_for = state.last_used.elapsed();
                if state.model.is_none() {
                    // Cleared under the lock a loader sets the model under: a model loaded after
                    // this starts a reaper of its own.
                    shared.reaper_running.store(false, Ordering::Release);
                    return;
                }
                if state.in_use == 0 && idle_for >= idle {
                    // Dropped under the lock: once `loaded()` says no, the memory is freed.
                    drop(state.model.take());
                    shared.reaper_running.store(false, Ordering::Release);
                    drop(state);
                    release_memory();
                    tracing::info!(engine = %shared.name, idle_secs = idle.as_secs(), "unloaded the idle speech model");
                    return;
                }
                // In use: look again a whole idle period after it ends at the earliest.
                idle.saturating_sub(idle_for).max(Duration::from_millis(10))
            };
            drop(shared);
            tokio::time::sleep(wait).await;
        }
    });
}

/// Returns freed heap pages to the kernel.
fn release_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Resident;

    /// Polls `condition` every 10 ms for up to 10 s.
    async fn eventually(what: &str, condition: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn an_idle_model_is_dropped_and_loaded_again_on_the_next_use() {
        let resident: Resident<Vec<u8>> = Resident::new("test", Some(Duration::from_millis(200)));
        assert!(!resident.loaded());
        let lease = resident.lease(|| Ok(vec![7; 1024])).await.unwrap();
        assert_eq!(lease[0], 7);
        drop(lease);
        assert!(resident.loaded());
        eventually("the model is unloaded", || !resident.loaded()).await;
        let lease = resident.lease(|| Ok(vec![8; 1024])).await.unwrap();
        assert_eq!(lease[0], 8, "loaded anew");
        assert_eq!(resident.loads(), 2);
        drop(lease);
        eventually("the model is unloaded again", || !resident.loaded()).await;
    }

    #[tokio::test]
    async fn a_model_in_use_is_never_dropped_under_it() {
        let resident: Resident<Vec<u8>> = Resident::new("test", Some(Duration::from_millis(50)));
        let lease = resident.lease(|| Ok(vec![1; 16])).await.unwrap();
        // Ten idle periods with the lease out: still loaded, and a second use shares the model.
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(500) {
            assert!(resident.loaded(), "unloaded while in use");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let second = resident.lease(|| Ok(vec![2; 16])).await.unwrap();
        assert_eq!(second[0], 1);
        assert_eq!(resident.loads(), 1);
        drop(lease);
        drop(second);
        eventually("the model is unloaded once unused", || !resident.loaded()).await;
    }

    #[tokio::test]
    async fn off_keeps_the_model_and_concurrent_first_uses_load_once() {
        let resident: Resident<u32> = Resident::new("test", None);
        let slow = || {
            std::thread::sleep(Duration::from_millis(100));
            Ok(5)
        };
        let (first, second) = tokio::join!(resident.lease(slow), resident.lease(slow));
        assert_eq!((*first.unwrap(), *second.unwrap()), (5, 5));
        assert_eq!(resident.loads(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(resident.loaded(), "idle_unload off keeps the model");
        let failed: Resident<u32> = Resident::new("test", None);
        let error = failed.lease(|| Err(clawdia_core::SpeechError::Unavailable("x: broken".into()))).await;
        assert_eq!(error.err().unwrap().to_string(), "x: broken");
        assert!(!failed.loaded());
    }
}
