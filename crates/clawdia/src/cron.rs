//! `clawdia cron add|rm|list|run|history|unlock`: scheduled jobs from the command line. The CLI
//! opens `state/cron.db` directly (WAL; a running gateway picks up added and removed jobs within
//! a second or two). `cron run` runs a job now in this process, waits, and prints the outcome;
//! it builds the agents for agent jobs, and holds the job's lock like the gateway does.

use std::path::PathBuf;

use clawdia_sched::job::{Action, CatchUp, DEFAULT_TIMEOUT_SECONDS, Job};
use clawdia_sched::{Schedule, Status, Trigger};

use crate::{CronCommand, Failure, Outcome, load_config};

pub async fn run(home: PathBuf, command: CronCommand) -> Outcome {
    let config = load_config(&home)?;
    match command {
        CronCommand::List => {
            let db = clawdia_runtime::sched::open_cron(&config).map_err(Failure::config)?;
            let jobs = db.jobs()?;
            if jobs.is_empty() {
                println!("no jobs (add one with `clawdia cron add`, or in [cron.jobs] of clawdia.toml)");
            }
            for job in &jobs {
                println!("{}", clawdia_sched::list_line(job));
            }
            Ok(())
        }
        CronCommand::Add(add) => {
            let db = clawdia_runtime::sched::open_cron(&config).map_err(Failure::config)?;
            let job = job_from(*add, &config)?;
            let settings = clawdia_sched::Settings::from_config(&config, clawdia_runtime::sandbox_helper());
            let now = clawdia_sched::now_ms();
            job.check_runnable(&settings, now).await.map_err(Failure::config)?;
            db.add_job(&job, now)?;
            println!("added job `{}`: {}", job.name, job.schedule.describe());
            Ok(())
        }
        CronCommand::Rm { name } => {
            let db = clawdia_runtime::sched::open_cron(&config).map_err(Failure::config)?;
            db.remove_job(&name)?;
            println!("removed job `{name}`");
            Ok(())
        }
        CronCommand::History { name, limit, json } => {
            let db = clawdia_runtime::sched::open_cron(&config).map_err(Failure::config)?;
            let runs = db.history(&name, limit)?;
            if runs.is_empty() && db.job(&name).is_err() {
                return Err(format!("no job named `{name}` and no runs of it").into());
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
                return Ok(());
            }
            if runs.is_empty() {
                println!("job `{name}` has not run yet");
            }
            for run in runs {
                let took = run.ended_ms.map(|end| format!(" {:.2}s", (end - run.started_ms) as f64 / 1000.0));
                let code = run.exit_code.map(|c| format!(" exit {c}")).unwrap_or_default();
                let cost = if run.cost_usd > 0.0 || run.tokens > 0 {
                    format!(" ${:.4} {} tokens", run.cost_usd, run.tokens)
                } else {
                    String::new()
                };
                let last = run.output_tail.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
                println!(
                    "#{} {} {} {}{code}{}{cost}  {last}",
                    run.id,
                    clawdia_core::time::rfc3339_utc(run.started_ms),
                    run.trigger,
                    run.status.as_str(),
                    took.unwrap_or_default(),
                );
            }
            Ok(())
        }
        CronCommand::Unlock { name } => {
            let db = clawdia_runtime::sched::open_cron(&config).map_err(Failure::config)?;
            let store = clawdia_store::Store::open(&clawdia_runtime::state_dir(&home))?;
            let row = clawdia_sched::lock::unlock(&db, &store, &name)?;
            println!("cleared lock `{}` (held by PID {} on {})", row.name, row.pid, row.host);
            Ok(())
        }
        CronCommand::Run { name } => run_now(config, &name).await,
    }
}

async fn run_now(config: clawdia_config::Config, name: &str) -> Outcome {
    // Grandchildren that escape the job's process group come back to this process.
    if let Err(error) = clawdia_sandbox::become_child_subreaper() {
        tracing::warn!("{error}");
    }
    let runtime = clawdia_runtime::build(config).map_err(Failure::config)?;
    let job = runtime.cron.job(name)?.job;
    let context = clawdia_runtime::sched::context(&runtime);
    let report = clawdia_sched::run_job(&context, &job, Trigger::Manual, None).await;
    let code = report.exit_code.map(|c| format!(", exit {c}")).unwrap_or_default();
    let cost = if report.cost_usd > 0.0 { format!(", ${:.4}", report.cost_usd) } else { String::new() };
    let session = report.session.as_deref().map(|s| format!(", session {s}")).unwrap_or_default();
    println!("job `{name}`: {}{code}{cost}{session}", report.status.as_str());
    if !report.output.trim().is_empty() {
        println!("{}", report.output.trim_end());
    }
    match report.status {
        Status::Ok => Ok(()),
        status => Err(format!("job `{name}` {}", status.as_str()).into()),
    }
}

fn job_from(add: crate::CronAdd, config: &clawdia_config::Config) -> Result<Job, Failure> {
    let schedule = match (&add.cron, &add.every, &add.at) {
        (Some(expr), None, None) => Schedule::cron(expr, add.tz.as_deref()),
        (None, Some(every), None) => Schedule::every(every),
        (None, None, Some(at)) => Schedule::at(at, add.tz.as_deref()),
        _ => return Err(Failure::config("give exactly one of --cron, --every or --at")),
    }
    .map_err(Failure::config)?;
    if add.tz.is_some() && add.every.is_some() {
        return Err(Failure::config("--tz applies to --cron and --at"));
    }
    let action = match (add.exec, add.agent, add.prompt) {
        (Some(command), None, None) => Action::Exec { command, host: add.host, egress: add.egress },
        (None, Some(agent), Some(prompt)) => {
            if !config.agents.contains_key(&agent) {
                let known: Vec<&str> = config.agents.keys().map(String::as_str).collect();
                return Err(Failure::config(format!(
                    "unknown agent `{agent}` (configured: {})",
                    known.join(", ")
                )));
            }
            if add.host {
                return Err(Failure::config("--host applies to --exec jobs"));
            }
            if !add.egress.is_empty() {
                return Err(Failure::config("--egress applies to --exec jobs"));
            }
            Action::AgentTurn { agent, prompt, session: add.session, heartbeat: None }
        }
        _ => return Err(Failure::config("give either --exec COMMAND, or --agent AGENT with --prompt TEXT")),
    };
    let tools_allow = add.tools_allow.map(|list| {
        list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect::<Vec<_>>()
    });
    let job = Job {
        name: add.name,
        schedule,
        action,
        timeout_seconds: add.timeout.unwrap_or(DEFAULT_TIMEOUT_SECONDS),
        tools_allow,
        failure_alert: add.failure_alert,
        enabled: true,
        catch_up: if add.skip_missed { CatchUp::Skip } else { CatchUp::Once },
    };
    job.validate().map_err(Failure::config)?;
    Ok(job)
}
