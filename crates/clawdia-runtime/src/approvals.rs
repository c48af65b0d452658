//! The owner's approval requests: the store (`state/broker.db`, behind the core
//! `ApprovalStore` seam) and the sweep that expires requests nobody decided within
//! `[broker] ttl`, telling each waiting session.

use std::sync::Arc;
use std::time::Duration;

use clawdia_config::Config;
use clawdia_core::ApprovalStore;

use crate::{Runtime, RuntimeError, state_dir};

/// Opens the home's request store.
pub fn open(config: &Config) -> Result<Arc<dyn ApprovalStore>, RuntimeError> {
    let dir = state_dir(&config.home);
    let broker = clawdia_store::Broker::open(&dir)
        .map_err(|e| RuntimeError::Store { dir: dir.clone(), message: e.to_string() })?;
    Ok(Arc::new(broker))
}

/// How often the gateway looks for expired requests: a tenth of the TTL, between 1 s and 30 s.
pub fn sweep_interval(ttl: Duration) -> Duration {
    (ttl / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// Expires due requests every `sweep_interval`, as a daemon component.
pub fn component(runtime: &Runtime) -> crate::daemon::Component {
    let agents = runtime.agents.clone();
    let every = sweep_interval(runtime.config.broker.ttl);
    crate::daemon::Component::new("approvals", move |token: crate::daemon::CancellationToken| {
        let agents = agents.clone();
        async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = token.cancelled() => return Ok(()),
                    _ = tick.tick() => {}
                }
                let ignore = |_event: clawdia_core::TurnEvent| {};
                let expired = tokio::select! {
                    () = token.cancelled() => return Ok(()),
                    expired = agents.expire_approvals(&ignore) => expired,
                };
                if expired > 0 {
                    tracing::info!(expired, "approval requests expired undecided");
                }
            }
        }
    })
}
