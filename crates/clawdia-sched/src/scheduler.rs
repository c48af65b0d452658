//! The scheduler loop inside the gateway: one timer over a heap of next due times. When a job
//! is due its run is spawned as its own task (a failing or hanging run never holds the loop up;
//! its own timeout ends it), and the next due time is computed from the schedule. Jobs added or
//! removed by the CLI in another process are picked up within a second or two (the `jobs_version`
//! counter in cron.db). At startup, missed runs are caught up once within the grace window or
//! skipped, per job, and runs left `running` by a dead process are marked `interrupted`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::db::StoredJob;
use crate::job::CatchUp;
use crate::runner::{self, Trigger};
use crate::schedule::Compiled;
use crate::{Context, SchedError, now_ms, procfs};

/// How often the loop checks cron.db for jobs changed by another process.
const RELOAD_EVERY: Duration = Duration::from_millis(1000);

struct Entry {
    stored: StoredJob,
    compiled: Compiled,
    next_due: Option<i64>,
}

/// Runs the scheduler until `shutdown` resolves; then starts nothing new, lets runs in progress
/// finish for up to `settings.drain`, and cancels the rest (their process trees are killed),
/// marking them interrupted.
pub async fn run(
    context: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), SchedError> {
    let me = std::process::id() as i64;
    context.db.mark_interrupted(&context.holder.host, |pid| pid != me && pid_alive(pid), now_ms())?;
    let mut entries: HashMap<String, Entry> = HashMap::new();
    let mut heap: BinaryHeap<Reverse<(i64, String)>> = BinaryHeap::new();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut version = context.db.jobs_version()?;
    load(&context, &mut entries, &mut heap, &mut running, true)?;
    tokio::pin!(shutdown);
    let mut reload = tokio::time::interval(RELOAD_EVERY);
    reload.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next = heap.peek().map(|Reverse((due, _))| *due);
        let sleep = async {
            match next {
                Some(due) => {
                    let wait = (due - now_ms()).max(0) as u64;
                    tokio::time::sleep(Duration::from_millis(wait)).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut shutdown => break,
            _ = sleep => fire_due(&context, &mut entries, &mut heap, &mut running),
            _ = reload.tick() => {
                match context.db.jobs_version() {
                    Ok(current) if current != version => {
                        version = current;
                        if let Err(error) = load(&context, &mut entries, &mut heap, &mut running, false) {
                            tracing::warn!(%error, "cannot reload the jobs");
                        }
                    }
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "cannot read cron.db"),
                }
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
        }
    }
    if !running.is_empty() && !context.settings.drain.is_zero() {
        let finished = async { while running.join_next().await.is_some() {} };
        if tokio::time::timeout(context.settings.drain, finished).await.is_err() {
            tracing::warn!(
                running = running.len(),
                "scheduled runs still going after the drain (gateway.drain_secs): cancelling them"
            );
        }
    }
    running.abort_all();
    while running.join_next().await.is_some() {}
    context.db.mark_interrupted(&context.holder.host, |pid| pid != me && pid_alive(pid), now_ms())?;
    Ok(())
}

fn pid_alive(pid: i64) -> bool {
    i32::try_from(pid).is_ok_and(procfs::running)
}

/// Starts every run that is due and schedules the next one of each job.
fn fire_due(
    context: &Arc<Context>,
    entries: &mut HashMap<String, Entry>,
    heap: &mut BinaryHeap<Reverse<(i64, String)>>,
    running: &mut JoinSet<()>,
) {
    let now = now_ms();
    while let Some(Reverse((due, _))) = heap.peek() {
        if *due > now {
            break;
        }
        let Some(Reverse((due, name))) = heap.pop() else { break };
        let Some(entry) = entries.get_mut(&name) else { continue };
        if entry.next_due != Some(due) {
            continue; // superseded by a reload
        }
        let mut next = entry.compiled.next_after(due);
        if let Some(at) = next
            && at <= now
        {
            // Fell behind (a suspended machine, a stalled loop): do not fire a burst.
            next = entry.compiled.next_after(now);
        }
        entry.next_due = next;
        if let Some(at) = next {
            heap.push(Reverse((at, name.clone())));
        }
        let job = entry.stored.job.clone();
        let context = context.clone();
        running.spawn(async move {
            if let Err(error) = context.db.set_next_due(&job.name, next) {
                tracing::warn!(job = %job.name, %error, "cannot store the next due time");
            }
            runner::run_job(&context, &job, Trigger::Schedule, Some(due)).await;
        });
    }
}

/// (Re)loads the jobs from cron.db. At startup (`starting`), missed runs are caught up or
/// skipped; on a reload, unchanged jobs keep their next due time.
fn load(
    context: &Arc<Context>,
    entries: &mut HashMap<String, Entry>,
    heap: &mut BinaryHeap<Reverse<(i64, String)>>,
    running: &mut JoinSet<()>,
    starting: bool,
) -> Result<(), SchedError> {
    let now = now_ms();
    let stored = context.db.jobs()?;
    entries.retain(|name, _| stored.iter().any(|s| &s.job.name == name));
    for job in stored {
        let name = job.job.name.clone();
        if !job.job.enabled {
            entries.remove(&name);
            continue;
        }
        if let Some(existing) = entries.get(&name)
            && existing.stored.job == job.job
        {
            continue;
        }
        let compiled = match job.job.schedule.compile(job.created_ms) {
            Ok(compiled) => compiled,
            Err(error) => {
                tracing::warn!(job = %name, %error, "job skipped: its schedule cannot be used");
                continue;
            }
        };
        let mut next = match job.next_due_ms {
            Some(due) if due > now => Some(due),
            Some(due) if starting => {
                catch_up(context, &job, &compiled, due, now, running);
                compiled.next_after(now)
            }
            _ => compiled.next_after(now),
        };
        if !starting && job.next_due_ms.is_none() {
            next = compiled.next_after(now);
        }
        if let Err(error) = context.db.set_next_due(&name, next) {
            tracing::warn!(job = %name, %error, "cannot store the next due time");
        }
        if let Some(at) = next {
            heap.push(Reverse((at, name.clone())));
        }
        entries.insert(name, Entry { stored: job, compiled, next_due: next });
    }
    Ok(())
}

/// Runs missed while the gateway was down: with `CatchUp::Once`, one run now when the latest
/// missed due time is within the grace window; otherwise a `skipped` history row says so.
fn catch_up(
    context: &Arc<Context>,
    job: &StoredJob,
    compiled: &Compiled,
    first_missed: i64,
    now: i64,
    running: &mut JoinSet<()>,
) {
    let mut latest = first_missed;
    let mut missed = 1u64;
    while let Some(next) = compiled.next_after(latest) {
        if next > now || missed >= 100_000 {
            break;
        }
        latest = next;
        missed += 1;
    }
    let grace = i64::try_from(context.settings.catch_up_grace.as_millis()).unwrap_or(i64::MAX);
    if job.job.catch_up == CatchUp::Once && now - latest <= grace {
        let context = context.clone();
        let job = job.job.clone();
        running.spawn(async move {
            runner::run_job(&context, &job, Trigger::CatchUp, Some(latest)).await;
        });
        return;
    }
    let why = match job.job.catch_up {
        CatchUp::Skip => "catch_up = skip".to_string(),
        CatchUp::Once => format!(
            "the latest was more than {}s ago (catch_up_grace_seconds)",
            context.settings.catch_up_grace.as_secs()
        ),
    };
    let reason = format!("missed {missed} run(s) while the gateway was down; not caught up: {why}");
    if let Err(error) =
        context.db.record_skip(&job.job.name, Trigger::CatchUp.as_str(), Some(latest), now, &reason)
    {
        tracing::warn!(job = %job.job.name, %error, "cannot record skipped runs");
    }
}
