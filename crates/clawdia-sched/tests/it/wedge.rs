//! No wedges: a job whose tree spawns grandchildren, double-forks out of its process group and
//! session (`setsid`), and ignores SIGTERM everywhere leaves no process behind after its timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clawdia_sched::job::{Action, CatchUp, Job};
use clawdia_sched::{Schedule, Status, Trigger, procfs, run_job};

use crate::{Audit, context};

/// Every PID the script wrote to `pids`, once there are `count`.
fn pids(path: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn host_job(name: &str, command: &str, timeout_seconds: u64) -> Job {
    Job {
        name: name.into(),
        schedule: Schedule::every("1h").unwrap(),
        action: Action::Exec { command: command.into(), host: true, egress: Vec::new() },
        timeout_seconds,
        tools_allow: None,
        failure_alert: None,
        enabled: true,
        catch_up: CatchUp::Once,
    }
}

const WEDGE_SCRIPT: &str = r#"
trap '' TERM
echo $$ > pids
sh -c 'trap "" TERM; echo $$ >> pids; exec sleep 1000' &
sleep 1000 &
echo $! >> pids
setsid sh -c 'trap "" TERM; sh -c "trap \"\" TERM; echo \$\$ >> pids; exec sleep 1000" & echo $$ >> pids' &
while [ "$(wc -l < pids)" -lt 5 ]; do sleep 0.05; done
echo ready
while true; do sleep 1; done
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tree_that_double_forks_and_ignores_term_is_gone_after_the_timeout() {
    clawdia_sandbox::become_child_subreaper().unwrap();
    let home = tempfile::tempdir().unwrap();
    let context = context(home.path(), None, Arc::new(Audit::default()));
    let report = run_job(&context, &host_job("wedge", WEDGE_SCRIPT, 3), Trigger::Manual, None).await;
    assert_eq!(report.status, Status::Timeout, "{report:?}");
    assert!(report.output.contains("ready"), "the tree was fully started: {report:?}");
    let pids = pids(&home.path().join("workspaces/cron/pids"));
    assert_eq!(pids.len(), 5, "leader, two grandchildren, the setsid shell and its child: {pids:?}");
    // Everything is gone (zombies included: they were reaped), allowing the kernel a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    let left = loop {
        let left: Vec<i32> = pids.iter().copied().filter(|pid| procfs::stat(*pid).is_some()).collect();
        if left.is_empty() || Instant::now() > deadline {
            break left;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let states: Vec<_> = left.iter().map(|p| (p, procfs::stat(*p))).collect();
    assert!(left.is_empty(), "processes left behind: {states:?}");
    let history = context.db.history("wedge", 5).unwrap();
    assert_eq!(history[0].status, Status::Timeout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemonized_leftover_of_a_finished_job_is_killed_too() {
    // As `clawdia up` does: a child subreaper with the orphan reaper, so a leftover that dies
    // after the run's own reaping pass is still collected.
    clawdia_sandbox::become_child_subreaper().unwrap();
    let _reaper = clawdia_sandbox::spawn_orphan_reaper(Duration::from_millis(100));
    let home = tempfile::tempdir().unwrap();
    let context = context(home.path(), None, Arc::new(Audit::default()));
    let script = r#"setsid sh -c 'echo $$ > pids; exec sleep 1000' & while [ ! -s pids ]; do sleep 0.05; done; echo done"#;
    let report = run_job(&context, &host_job("daemonizes", script, 30), Trigger::Manual, None).await;
    assert_eq!(report.status, Status::Ok, "{report:?}");
    let pid = pids(&home.path().join("workspaces/cron/pids"))[0];
    let deadline = Instant::now() + Duration::from_secs(10);
    while procfs::stat(pid).is_some() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(procfs::stat(pid).is_none(), "the escaped sleep is still there: {:?}", procfs::stat(pid));
}
