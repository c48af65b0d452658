//! `cargo bench -p clawdia-sandbox --bench exec`: spawn-to-exit latency of a sandboxed `true`
//! for each mechanism that works here (and unsandboxed, for reference), as p50/p99 over 200
//! runs. Prints figures; never fails on a timing.

use std::time::{Duration, Instant};

use clawdia_sandbox::{Mechanism, Policy, find_bwrap, run};

const HELPER: &str = env!("CARGO_BIN_EXE_clawdia-sandbox-helper");
const RUNS: usize = 200;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let workspace = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("scratch workspace");
    let policy = Policy::new(workspace.path());
    let mut mechanisms = Vec::new();
    if let Some(bwrap) = find_bwrap() {
        mechanisms.push(Mechanism::Bubblewrap { bwrap, helper: HELPER.into() });
    }
    mechanisms.push(Mechanism::Builtin { helper: HELPER.into() });
    mechanisms.push(Mechanism::Unsandboxed);
    println!("sandboxed `true`, spawn to exit, {RUNS} runs each");
    for mechanism in mechanisms {
        let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = Instant::now();
            match run(&mechanism, &policy, "true", |_| {}).await {
                Ok(outcome) if outcome.exit_code == Some(0) => times.push(started.elapsed()),
                Ok(outcome) => {
                    println!("{:>10}: `true` failed: {}", mechanism.name(), outcome.output.trim());
                    break;
                }
                Err(error) => {
                    println!("{:>10}: unavailable: {error}", mechanism.name());
                    break;
                }
            }
        }
        if times.len() == RUNS {
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            let (p50, p99) = (times[RUNS / 2], times[RUNS * 99 / 100]);
            println!("{:>10}: p50 {:.1} ms  p99 {:.1} ms", mechanism.name(), ms(p50), ms(p99));
        }
    }
}
