//! The scheduler in the composition root: opens `state/cron.db` (syncing the config's jobs),
//! gives agents whose policy allows it the `cron` tool, supplies maintenance with the other
//! databases, the brain and the dream cycle (`Housekeeping`), and runs the scheduler loop beside
//! the HTTP server.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use clawdia_config::Config;
use clawdia_core::{AuditSink, Gateway, Severity, Tool};
use clawdia_sched::{Context, CronDb, Holder, Housekeeping, Settings, TaskDone};
use clawdia_store::Store;

use crate::{Runtime, RuntimeError};

/// Opens cron.db and syncs the config's jobs into it.
pub fn open_cron(config: &Config) -> Result<Arc<CronDb>, RuntimeError> {
    clawdia_sched::open(config).map_err(|e| RuntimeError::Cron(e.to_string()))
}

/// The `cron` tool; the agent's gate decides whether it is offered (it is not allowed by
/// default).
pub fn cron_tool(cron: &Arc<CronDb>, audit: Arc<dyn AuditSink>) -> Arc<dyn Tool> {
    Arc::new(clawdia_sched::CronTool::new(cron.clone(), audit))
}

/// The audit log, the session databases and the brain, for the maintenance templates; the
/// dream cycle (or why it cannot run) for the `brain.dream` job.
struct Housekeeper {
    store: Arc<Store>,
    brain: Arc<clawdia_brain::Brain>,
    dream: Result<Arc<clawdia_brain::dream::Dream>, String>,
}

#[async_trait]
impl Housekeeping for Housekeeper {
    fn high_severity_events(&self, since_ms: i64) -> Result<Vec<String>, String> {
        let records = self.store.recent_audit(Severity::HIGH, 1000).map_err(|e| e.to_string())?;
        let mut lines: Vec<(i64, String)> = records
            .into_iter()
            .filter(|record| record.at >= since_ms)
            .map(|record| {
                let event = record.event;
                let agent = event.agent.map(|a| format!(" agent={a}")).unwrap_or_default();
                (
                    record.at,
                    format!(
                        "{} [{}] {}{agent}: {}",
                        clawdia_core::time::rfc3339_utc(record.at),
                        event.severity.0,
                        event.kind,
                        event.detail
                    ),
                )
            })
            .collect();
        lines.sort_by_key(|(at, _)| *at);
        Ok(lines.into_iter().map(|(_, line)| line).collect())
    }

    async fn optimize_databases(&self) -> Result<Vec<String>, String> {
        let store = self.store.clone();
        let mut report = tokio::task::spawn_blocking(move || store.optimize())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let brain = self.brain.clone();
        let optimized = tokio::task::spawn_blocking(move || {
            brain.db().map_err(|e| e.to_string())?.optimize().map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?;
        report.push(match optimized {
            Ok(()) => "brain.db: FTS merge, ANALYZE, tombstones pruned, WAL checkpointed".to_string(),
            Err(error) => format!("brain.db: optimize failed: {error}"),
        });
        Ok(report)
    }

    async fn dream(&self) -> Result<TaskDone, TaskDone> {
        let dream = self.dream.as_ref().map_err(|why| TaskDone::from(why.clone()))?;
        match dream.run(false).await {
            Ok(report) => {
                let done =
                    TaskDone { report: report.render(), tokens: report.tokens, cost_usd: report.cost_usd };
                if report.failed() > 0 { Err(done) } else { Ok(done) }
            }
            Err(error) => Err(TaskDone::from(format!("dream: {error}"))),
        }
    }
}

/// What runs need, from a built runtime: its agents, audit log and databases.
pub fn context(runtime: &Runtime) -> Arc<Context> {
    let helper = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("clawdia"));
    Arc::new(Context {
        db: runtime.cron.clone(),
        audit: runtime.audit.clone(),
        notifier: runtime.notifier.clone(),
        gateway: Some(runtime.agents.clone() as Arc<dyn Gateway>),
        housekeeping: Some(Arc::new(Housekeeper {
            store: runtime.store.clone(),
            brain: runtime.brain.clone(),
            dream: crate::dream::dream(runtime).map(Arc::new),
        })),
        settings: Settings::from_config(&runtime.config, helper),
        holder: Holder::me(),
    })
}

/// The scheduler loop as a daemon component, when `[cron] enabled` (the default). Cancelling
/// the token stops it: running jobs are cancelled (their process trees killed) and marked
/// interrupted.
pub fn scheduler_component(runtime: &Runtime) -> Option<crate::daemon::Component> {
    if !runtime.config.cron.enabled {
        return None;
    }
    let context = context(runtime);
    Some(crate::daemon::Component::new("scheduler", move |token: crate::daemon::CancellationToken| {
        let context = context.clone();
        async move {
            clawdia_sched::scheduler::run(context, token.cancelled_owned())
                .await
                .map_err(|error| format!("the scheduler stopped: {error}"))
        }
    }))
}
