//! `cargo xtask bench sched`: the scheduler's figures.
//!
//! - Jitter: 1,000 `every 1s` agentTurn jobs (against an instant in-process gateway, so the
//!   figure is the scheduler's own) run by the real scheduler loop on a real `cron.db` for 60 s;
//!   jitter is each run's recorded start minus its due time (both from the run history).
//! - Kill: a host job whose 50-process tree (leader, 7 subshells with 6 children each, one
//!   branch double-forked out with `setsid`, every process ignoring SIGTERM) outlives its
//!   timeout; the time from the timeout to the last process being gone, minus the KILL grace.
//! - RSS: the release `clawdia up` with 0 and with 1,000 jobs defined in its config.
//!
//! Figures only; it never fails on timing. Options: `--seconds N` (jitter run, default 60),
//! `--jobs N` (default 1000).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use async_trait::async_trait;
use clawdia_core::{
    AgentInfo, AuditEvent, AuditSink, Gateway, TurnError, TurnEvent, TurnEvents, TurnOutcome, TurnRequest,
    Usage,
};
use clawdia_sched::job::{Action, CatchUp, Job};
use clawdia_sched::process::{HostCommand, run_host};
use clawdia_sched::{Context, CronDb, Holder, Schedule, Settings};

struct NoAudit;

impl AuditSink for NoAudit {
    fn record(&self, _event: AuditEvent) {}
}

/// Answers every turn at once.
struct Instant0;

#[async_trait]
impl Gateway for Instant0 {
    fn agents(&self) -> Vec<AgentInfo> {
        Vec::new()
    }

    async fn run_turn(
        &self,
        request: TurnRequest,
        events: &dyn TurnEvents,
    ) -> Result<TurnOutcome, TurnError> {
        events.event(TurnEvent::Started { session: "bench".into(), agent: request.agent.clone() });
        Ok(TurnOutcome {
            session_id: "bench".into(),
            text: "ok".into(),
            usage: Usage::default(),
            cost_usd: 0.0,
            model: None,
            attempts: Vec::new(),
            used_fallback: false,
            hit_max_tokens: false,
        })
    }
}

fn settings(home: &Path) -> Settings {
    Settings {
        home: home.to_path_buf(),
        workspace: home.join("workspaces/cron"),
        allow_host_jobs: true,
        sandbox: clawdia_sandbox::Choice::Off,
        helper: PathBuf::from("clawdia"),
        hidden: Vec::new(),
        kill_grace: Duration::from_millis(200),
        catch_up_grace: Duration::from_secs(3600),
        failure_hook: None,
        history_days: 90,
        prune_days: 14,
        secret_rotation: Vec::new(),
        drain: Duration::from_secs(5),
    }
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let mut seconds = 60u64;
    let mut jobs = 1000usize;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--seconds" => seconds = rest.next().and_then(|v| v.parse().ok()).context("--seconds N")?,
            "--jobs" => jobs = rest.next().and_then(|v| v.parse().ok()).context("--jobs N")?,
            other => bail!("unknown argument {other} (bench sched [--seconds N] [--jobs N])"),
        }
    }
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "clawdia scheduler benchmark ({cores} cores, load average {})",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    clawdia_sandbox::become_child_subreaper().map_err(|e| anyhow::anyhow!("{e}"))?;
    runtime.block_on(kill_tree())?;
    runtime.block_on(jitter(jobs, seconds))?;
    rss(jobs)?;
    Ok(())
}

async fn jitter(jobs: usize, seconds: u64) -> anyhow::Result<()> {
    let home = tempfile::tempdir()?;
    let db = Arc::new(CronDb::open(&home.path().join("state")).map_err(|e| anyhow::anyhow!("{e}"))?);
    let start = clawdia_sched::now_ms();
    for i in 0..jobs {
        let job = Job {
            name: format!("j{i:04}"),
            schedule: Schedule::every("1s").map_err(|e| anyhow::anyhow!("{e}"))?,
            action: Action::AgentTurn {
                agent: "main".into(),
                prompt: "tick".into(),
                session: None,
                heartbeat: None,
            },
            timeout_seconds: 30,
            tools_allow: None,
            failure_alert: None,
            enabled: true,
            catch_up: CatchUp::Skip,
        };
        // Anchors spread over one second, like jobs added at different times.
        db.add_job(&job, start + (i as i64 * 1000 / jobs as i64)).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let context = Arc::new(Context {
        db: db.clone(),
        audit: Arc::new(NoAudit),
        notifier: Arc::new(clawdia_core::NoNotifier),
        gateway: Some(Arc::new(Instant0)),
        housekeeping: None,
        settings: settings(home.path()),
        holder: Holder::me(),
    });
    let began = clawdia_sched::now_ms();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(clawdia_sched::scheduler::run(context, async move {
        let _ = stopped.await;
    }));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let _ = stop.send(());
    task.await?.map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut jitters = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for i in 0..jobs {
        for run in db.history(&format!("j{i:04}"), 100_000).map_err(|e| anyhow::anyhow!("{e}"))? {
            *statuses.entry(run.status.as_str()).or_insert(0usize) += 1;
            if run.trigger == "schedule"
                && let Some(due) = run.due_ms
                && due >= began
            {
                jitters.push(run.started_ms - due);
            }
        }
    }
    jitters.sort_unstable();
    let expected = jobs as u64 * seconds;
    println!(
        "jitter ({jobs} jobs every 1s, {seconds} s, real cron.db): {} runs of ~{expected} expected; fire - due p50 {} ms, p99 {} ms, max {} ms (target p99 <= 50 ms); statuses {:?}",
        jitters.len(),
        percentile(&jitters, 0.5),
        percentile(&jitters, 0.99),
        jitters.last().copied().unwrap_or(0),
        statuses,
    );
    Ok(())
}

const TREE: &str = r#"
trap '' TERM
: > pids
for branch in 1 2 3 4 5 6; do
  sh -c 'trap "" TERM; for i in 1 2 3 4 5 6; do sleep 1000 & echo $! >> pids; done; echo $$ >> pids; wait' &
done
setsid sh -c 'trap "" TERM; for i in 1 2 3 4 5 6; do sleep 1000 & echo $! >> pids; done; echo $$ >> pids; wait' &
echo $$ >> pids
while [ "$(wc -l < pids)" -lt 50 ]; do sleep 0.01; done
echo ready
wait
"#;

async fn kill_tree() -> anyhow::Result<()> {
    let mut after_grace = Vec::new();
    let grace = Duration::from_millis(200);
    let timeout = Duration::from_secs(2);
    for round in 0..5 {
        let home = tempfile::tempdir()?;
        let started = Instant::now();
        let outcome = run_host(HostCommand {
            command: TREE,
            cwd: home.path(),
            env: Vec::new(),
            timeout,
            kill_grace: grace,
            tail_bytes: 1000,
            run_id: format!("bench-kill-{round}"),
        })
        .await?;
        let pids: Vec<i32> = std::fs::read_to_string(home.path().join("pids"))?
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
        while pids.iter().any(|pid| clawdia_sched::procfs::stat(*pid).is_some()) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let gone = started.elapsed();
        if !outcome.timed_out || !outcome.output_tail.contains("ready") || pids.len() != 50 {
            bail!("the tree did not start as planned: {} pids, {outcome:?}", pids.len());
        }
        after_grace.push(gone.saturating_sub(timeout).saturating_sub(grace).as_secs_f64() * 1000.0);
    }
    after_grace.sort_by(f64::total_cmp);
    println!(
        "kill: 50-process tree ignoring TERM (one branch setsid'd out), timeout {} s, grace {} ms: last process gone {:.1} ms after the grace (median of 5; max {:.1} ms; target <= 200 ms)",
        timeout.as_secs(),
        grace.as_millis(),
        after_grace[after_grace.len() / 2],
        after_grace.last().copied().unwrap_or(0.0)
    );
    Ok(())
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// RSS of the release gateway, idle for 5 s, with `jobs` jobs in its config.
fn gateway_rss(binary: &Path, jobs: usize) -> anyhow::Result<u64> {
    let home = tempfile::tempdir()?;
    let out = Command::new(binary).arg("--home").arg(home.path()).args(["init", "--force"]).output()?;
    if !out.status.success() {
        bail!("clawdia init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut config = String::from(
        "[gateway]\nport = 0\n\n[providers.mock]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\n[agents.main]\nmodel = \"mock/bench\"\n\n[brain.embedder]\nkind = \"none\"\n",
    );
    for i in 0..jobs {
        config.push_str(&format!("\n[cron.jobs.j{i:04}]\nevery = \"1h\"\nexec = \"true\"\n"));
    }
    std::fs::write(home.path().join("clawdia.toml"), config)?;
    let mut child = Command::new(binary)
        .arg("--home")
        .arg(home.path())
        .arg("up")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("clawdia gateway listening") {
                let _ = tx.send(());
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(5));
    let rss = rss_kb(child.id());
    let _ = child.kill();
    let _ = child.wait();
    ready.context("the gateway did not start")?;
    Ok(rss)
}

fn rss(jobs: usize) -> anyhow::Result<()> {
    let root = crate::workspace_root();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "clawdia"])
        .current_dir(&root)
        .status()
        .context("cargo build --release -p clawdia")?;
    if !status.success() {
        bail!("release build failed");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let binary = target.join("release/clawdia");
    let empty = gateway_rss(&binary, 0)?;
    let full = gateway_rss(&binary, jobs)?;
    println!(
        "rss: release gateway idle {:.1} MB with 0 jobs, {:.1} MB with {jobs} jobs defined (+{:.1} MB)",
        empty as f64 / 1024.0,
        full as f64 / 1024.0,
        (full as f64 - empty as f64) / 1024.0
    );
    Ok(())
}
