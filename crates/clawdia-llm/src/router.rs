//! The fallback chain: `Router` holds one `ModelClient` per provider, runs a request against an
//! ordered chain of `provider/model` refs, retries a model after a transient failure (rate limit,
//! overload, reset, timeout) as its `RetryPolicy` allows, records every attempt, and puts failing
//! providers on a cooldown so later calls skip them without a request. Cooldowns live in one
//! mutex-guarded map; a call takes the lock only briefly, never across an await.
//!
//! A model is retried only while nothing of its failed reply reached the sink; once text was
//! streamed, the chain moves on, and the sink hears `discard` right before the next model is
//! tried (never when no model is left, so nobody announces a fallback that does not happen).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clawdia_core::{
    Attempt, ChainOutcome, ChatRequest, DeltaSink, ModelClient, ModelDelta, ModelError, ModelRef, Models,
};

use crate::settings::RetryPolicy;

/// No cooldown lasts longer than this, whatever a provider's `Retry-After` says.
const MAX_COOLDOWN: Duration = Duration::from_secs(3600);
/// The wait suggested to the caller after a 429 that named none.
const RATE_LIMIT_HINT: Duration = Duration::from_secs(1);

struct Provider {
    client: Arc<dyn ModelClient>,
    cooldown: Duration,
    retry: RetryPolicy,
}

/// A cooldown deadline, and whether a rate limit (429) started it.
#[derive(Debug, Clone, Copy)]
struct Cooling {
    until: Instant,
    rate_limited: bool,
}

/// Providers by name plus their cooldown deadlines; implements [`Models`].
#[derive(Default)]
pub struct Router {
    providers: HashMap<String, Provider>,
    cooling_until: Mutex<HashMap<String, Cooling>>,
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
    Cooling(Cooling),
    Ready,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Registers (or replaces) a provider; `cooldown` is how long it is skipped after a failure
    /// that cools it down (a longer `Retry-After` wins, up to one hour), `retry` how a transient
    /// failure is retried before that.
    pub fn add(&mut self, name: &str, client: Arc<dyn ModelClient>, cooldown: Duration, retry: RetryPolicy) {
        self.providers.insert(name.to_string(), Provider { client, cooldown, retry });
    }

    /// Time left on the provider's cooldown, `None` when it is not cooling down.
    pub fn cooldown_remaining(&self, provider: &str) -> Option<Duration> {
        let until = self.cooldowns().get(provider)?.until;
        let remaining = until.saturating_duration_since(Instant::now());
        (!remaining.is_zero()).then_some(remaining)
    }

    fn cooldowns(&self) -> MutexGuard<'_, HashMap<String, Cooling>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.cooling_until.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn standing(&self, model: &ModelRef, now: Instant) -> Standing {
        if !self.providers.contains_key(&model.provider) {
            return Standing::Unknown;
        }
        match self.cooldowns().get(&model.provider) {
            Some(&cooling) if cooling.until > now => Standing::Cooling(cooling),
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
                Standing::Cooling(cooling) => {
                    if earliest.is_none_or(|(_, best)| cooling.until < best) {
                        earliest = Some((index, cooling.until));
                    }
                }
            }
        }
        earliest.map(|(index, _)| index)
    }

    fn cool_down(&self, provider: &str, configured: Duration, error: &ModelError) {
        let (asked, rate_limited) = match error {
            ModelError::RateLimited { retry_after } => (retry_after.unwrap_or(Duration::ZERO), true),
            _ => (Duration::ZERO, false),
        };
        let length = configured.max(asked).min(MAX_COOLDOWN);
        if length.is_zero() {
            return;
        }
        let until = Instant::now() + length;
        let mut cooldowns = self.cooldowns();
        let entry = cooldowns.entry(provider.to_string()).or_insert(Cooling { until, rate_limited });
        if entry.until < until {
            *entry = Cooling { until, rate_limited };
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

    fn discard(&self, failed: &ModelRef, next: &ModelRef) {
        self.inner.discard(failed, next);
    }
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What one chain run collected so far: every attempt, the error to report, and whether only
/// rate limits stood in the way (with the wait each rate-limited entry suggested).
struct Run {
    attempts: Vec<Attempt>,
    /// The last error of a model that was asked; before any was, the last skip's.
    last_error: ModelError,
    asked_any: bool,
    rate_limit_waits: Vec<Duration>,
    other_failure: bool,
}

impl Run {
    /// The final failure of one chain entry (after its retries); `asked` is false for an entry
    /// skipped without a request (cooling down, unknown provider), whose error says less.
    fn entry_failed(&mut self, error: ModelError, rate_limit_wait: Option<Duration>, asked: bool) {
        match rate_limit_wait {
            Some(wait) => self.rate_limit_waits.push(wait),
            None => self.other_failure = true,
        }
        if asked || !self.asked_any {
            self.last_error = error;
        }
        self.asked_any |= asked;
    }

    fn failed(self) -> ChainOutcome {
        let retry_after = if self.other_failure { None } else { self.rate_limit_waits.into_iter().min() };
        ChainOutcome { result: Err(self.last_error), attempts: self.attempts, retry_after }
    }
}

#[async_trait]
impl Models for Router {
    async fn complete(
        &self,
        chain: &[ModelRef],
        mut request: ChatRequest,
        sink: &dyn DeltaSink,
    ) -> ChainOutcome {
        let mut run = Run {
            attempts: Vec::with_capacity(chain.len()),
            last_error: ModelError::Other("the model chain is empty".to_string()),
            asked_any: false,
            rate_limit_waits: Vec::new(),
            other_failure: false,
        };
        let forced = self.forced_entry(chain);
        // The model whose streamed deltas become void once another model is tried.
        let mut cut_off: Option<ModelRef> = None;
        for (index, model) in chain.iter().enumerate() {
            let now = Instant::now();
            let provider = match self.standing(model, now) {
                Standing::Unknown => {
                    let error = ModelError::UnknownProvider(model.provider.clone());
                    run.attempts.push(failed(model, &error, 0, 0));
                    run.entry_failed(error, None, false);
                    continue;
                }
                Standing::Cooling(cooling) if forced != Some(index) => {
                    let remaining = cooling.until.saturating_duration_since(now);
                    let error = ModelError::CoolingDown {
                        remaining_secs: remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0),
                    };
                    run.attempts.push(failed(model, &error, 0, 0));
                    run.entry_failed(error, cooling.rate_limited.then_some(remaining), false);
                    continue;
                }
                Standing::Cooling(_) | Standing::Ready => match self.providers.get(&model.provider) {
                    Some(provider) => provider,
                    None => continue,
                },
            };
            request.model.clone_from(&model.model);
            let mut retry = 0;
            loop {
                if let Some(failed_model) = cut_off.take() {
                    sink.discard(&failed_model, model);
                }
                let tracking = TrackingSink { inner: sink, emitted: AtomicBool::new(false) };
                let started = Instant::now();
                let result = provider.client.complete(&request, &tracking).await;
                let elapsed = elapsed_ms(started);
                let error = match result {
                    Ok(response) => {
                        run.attempts.push(Attempt {
                            model: model.clone(),
                            failure: None,
                            detail: None,
                            elapsed_ms: elapsed,
                            retry,
                        });
                        let result = Ok((model.clone(), response));
                        return ChainOutcome { result, attempts: run.attempts, retry_after: None };
                    }
                    Err(error) => error,
                };
                tracing::warn!(model = %model, retry, reason = error.reason(), %error, "model attempt failed");
                run.attempts.push(failed(model, &error, elapsed, retry));
                let streamed = tracking.emitted.load(Ordering::Relaxed);
                if streamed {
                    cut_off = Some(model.clone());
                }
                if matches!(error, ModelError::Cancelled) {
                    return ChainOutcome { result: Err(error), attempts: run.attempts, retry_after: None };
                }
                let asked = match &error {
                    ModelError::RateLimited { retry_after } => *retry_after,
                    _ => None,
                };
                if !streamed
                    && error.is_transient()
                    && let Some(wait) = provider.retry.wait(retry + 1, asked)
                {
                    retry += 1;
                    tracing::info!(model = %model, retry, wait_ms = wait.as_millis() as u64, "retrying the model");
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    continue;
                }
                if error.cools_down_provider() {
                    self.cool_down(&model.provider, provider.cooldown, &error);
                }
                let rate_limit_wait =
                    matches!(error, ModelError::RateLimited { .. }).then(|| asked.unwrap_or(RATE_LIMIT_HINT));
                run.entry_failed(error, rate_limit_wait, true);
                break;
            }
        }
        run.failed()
    }
}

fn failed(model: &ModelRef, error: &ModelError, elapsed_ms: u64, retry: u32) -> Attempt {
    Attempt {
        model: model.clone(),
        failure: Some(error.reason().to_string()),
        detail: Some(error.to_string()),
        elapsed_ms,
        retry,
    }
}

#[cfg(test)]
mod tests;
