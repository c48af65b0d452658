//! The fallback chain: `Router` holds one `ModelClient` per provider, runs a request against an
//! ordered chain of `provider/model` refs, records every attempt, and puts failing providers on
//! a cooldown so later calls skip them without a request. Cooldowns live in one mutex-guarded
//! map; a call takes the lock only briefly, never across an await.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clawdia_core::{
    Attempt, ChainOutcome, ChatRequest, DeltaSink, ModelClient, ModelDelta, ModelError, ModelRef, Models,
};

/// No cooldown lasts longer than this, whatever a provider's `Retry-After` says.
const MAX_COOLDOWN: Duration = Duration::from_secs(3600);

struct Provider {
    client: Arc<dyn ModelClient>,
    cooldown: Duration,
}

/// Providers by name plus their cooldown deadlines; implements [`Models`].
#[derive(Default)]
pub struct Router {
    providers: HashMap<String, Provider>,
    cooling_until: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.providers.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("Router").field("providers", &names).finish_non_exhaustive()
    }
}

/// Where one chain entry stands before it is tried.
enum Standing {
    Unknown,
    Cooling(Instant),
    Ready,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Registers (or replaces) a provider; `cooldown` is how long it is skipped after a failure
    /// that cools it down (a longer `Retry-After` wins, up to one hour).
    pub fn add(&mut self, name: &str, client: Arc<dyn ModelClient>, cooldown: Duration) {
        self.providers.insert(name.to_string(), Provider { client, cooldown });
    }

    /// Time left on the provider's cooldown, `None` when it is not cooling down.
    pub fn cooldown_remaining(&self, provider: &str) -> Option<Duration> {
        let until = *self.cooldowns().get(provider)?;
        let remaining = until.saturating_duration_since(Instant::now());
        (!remaining.is_zero()).then_some(remaining)
    }

    fn cooldowns(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.cooling_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn standing(&self, model: &ModelRef, now: Instant) -> Standing {
        if !self.providers.contains_key(&model.provider) {
            return Standing::Unknown;
        }
        match self.cooldowns().get(&model.provider) {
            Some(&until) if until > now => Standing::Cooling(until),
            _ => Standing::Ready,
        }
    }

    /// When every entry is cooling down (or unknown), the index of the one whose cooldown ends
    /// first: it is tried anyway rather than failing without a single request.
    fn forced_entry(&self, chain: &[ModelRef]) -> Option<usize> {
        let now = Instant::now();
        let mut earliest: Option<(usize, Instant)> = None;
        for (index, model) in chain.iter().enumerate() {
            match self.standing(model, now) {
                Standing::Ready => return None,
                Standing::Unknown => {}
                Standing::Cooling(until) => {
                    if earliest.is_none_or(|(_, best)| until < best) {
                        earliest = Some((index, until));
                    }
                }
            }
        }
        earliest.map(|(index, _)| index)
    }

    fn cool_down(&self, provider: &str, configured: Duration, error: &ModelError) {
        let asked = match error {
            ModelError::RateLimited { retry_after: Some(retry_after) } => *retry_after,
            _ => Duration::ZERO,
        };
        let length = configured.max(asked).min(MAX_COOLDOWN);
        if length.is_zero() {
            return;
        }
        let until = Instant::now() + length;
        let mut cooldowns = self.cooldowns();
        let entry = cooldowns.entry(provider.to_string()).or_insert(until);
        if *entry < until {
            *entry = until;
        }
    }
}

/// Passes deltas through and remembers whether any were sent.
struct TrackingSink<'a> {
    inner: &'a dyn DeltaSink,
    emitted: AtomicBool,
}

impl DeltaSink for TrackingSink<'_> {
    fn delta(&self, delta: ModelDelta) {
        self.emitted.store(true, Ordering::Relaxed);
        self.inner.delta(delta);
    }

    fn discard(&self) {
        self.inner.discard();
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl Models for Router {
    async fn complete(
        &self,
        chain: &[ModelRef],
        mut request: ChatRequest,
        sink: &dyn DeltaSink,
    ) -> ChainOutcome {
        let mut attempts = Vec::with_capacity(chain.len());
        let mut last_error = ModelError::Other("the model chain is empty".to_string());
        let forced = self.forced_entry(chain);
        for (index, model) in chain.iter().enumerate() {
            let now = Instant::now();
            let provider = match self.standing(model, now) {
                Standing::Unknown => {
                    let error = ModelError::UnknownProvider(model.provider.clone());
                    attempts.push(failed(model, &error, 0));
                    last_error = error;
                    continue;
                }
                Standing::Cooling(until) if forced != Some(index) => {
                    let remaining = until.saturating_duration_since(now);
                    let error = ModelError::CoolingDown {
                        remaining_secs: remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0),
                    };
                    attempts.push(failed(model, &error, 0));
                    last_error = error;
                    continue;
                }
                Standing::Cooling(_) | Standing::Ready => match self.providers.get(&model.provider) {
                    Some(provider) => provider,
                    None => continue,
                },
            };
            request.model.clone_from(&model.model);
            let tracking = TrackingSink { inner: sink, emitted: AtomicBool::new(false) };
            let started = Instant::now();
            let result = provider.client.complete(&request, &tracking).await;
            let elapsed = elapsed_ms(started);
            match result {
                Ok(response) => {
                    attempts.push(Attempt {
                        model: model.clone(),
                        failure: None,
                        detail: None,
                        elapsed_ms: elapsed,
                    });
                    return ChainOutcome { result: Ok((model.clone(), response)), attempts };
                }
                Err(error) => {
                    tracing::warn!(model = %model, reason = error.reason(), %error, "model attempt failed");
                    attempts.push(failed(model, &error, elapsed));
                    if tracking.emitted.load(Ordering::Relaxed) {
                        sink.discard();
                    }
                    if matches!(error, ModelError::Cancelled) {
                        return ChainOutcome { result: Err(error), attempts };
                    }
                    if error.cools_down_provider() {
                        self.cool_down(&model.provider, provider.cooldown, &error);
                    }
                    last_error = error;
                }
            }
        }
        ChainOutcome { result: Err(last_error), attempts }
    }
}

fn failed(model: &ModelRef, error: &ModelError, elapsed_ms: u64) -> Attempt {
    Attempt {
        model: model.clone(),
        failure: Some(error.reason().to_string()),
        detail: Some(error.to_string()),
        elapsed_ms,
    }
}

#[cfg(test)]
mod tests;
