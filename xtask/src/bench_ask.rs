//! `cargo xtask bench ask [--count N] [--binary PATH]`: how long the owner waits to hear about a
//! tool call that needs approval. The release gateway runs an agent with `ask = ["write"]` and
//! `[alerts] routes = ["hook"]`; an instant mock model calls `write` in every turn; the hook (a
//! shell that reads the alert from stdin, then appends the wall clock in nanoseconds to a file)
//! marks when the owner's side has the alert. Each figure runs from the moment the client sends
//! the turn to the hook's mark, so it includes the HTTP request, the model call, the gate, the
//! request's storage, the outbox queue and the hook process's start. Figures only.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clawdia_test_support::{MockLlm, MockOptions, Reply};

use crate::bench_gateway::launch;
use crate::loadgen;

const USAGE: &str = "usage: cargo xtask bench ask [--count N] [--binary PATH]";

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let mut count = 20usize;
    let mut binary: Option<PathBuf> = None;
    let mut rest = args;
    while let [flag, value, tail @ ..] = rest {
        match *flag {
            "--count" => count = value.parse().context("--count N")?,
            "--binary" => binary = Some(PathBuf::from(value)),
            _ => bail!(USAGE),
        }
        rest = tail;
    }
    if !rest.is_empty() || count == 0 {
        bail!(USAGE);
    }
    let binary = crate::bench_gateway::given_or_built(binary)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(bench(&binary, count))
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

fn marks(file: &Path) -> Vec<u128> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect()
}

async fn bench(binary: &Path, count: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    let mock = MockLlm::start_with(MockOptions {
        record_requests: false,
        default_reply: Reply::tool_calls(vec![("write", r#"{"path":"note.txt","content":"hello"}"#)]),
        ..MockOptions::default()
    })
    .await?;
    let out = Command::new(binary).arg("--home").arg(home).args(["init", "--force"]).output()?;
    if !out.status.success() {
        bail!("clawdia init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let received = home.join("hook-received");
    let script = format!("cat > /dev/null; date +%s%N >> '{}'", received.display());
    let config = format!(
        "[gateway]\nport = 0\n\n[providers.mock]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[agents.main]\nmodel = \"mock/bench\"\n\n[agents.main.tools]\nask = [\"write\"]\n\n[alerts]\nroutes = [\"hook\"]\nhook = [\"/bin/sh\", \"-c\", {}]\n",
        mock.openai_base_url(),
        serde_json::Value::String(script)
    );
    std::fs::write(home.join("clawdia.toml"), config)?;
    let (_gateway, addr, _) = launch(binary, home).await?;
    let token = std::fs::read_to_string(home.join("secrets/gateway-token"))?.trim().to_string();
    let body = r#"{"model":"main","messages":[{"role":"user","content":"write the note"}]}"#;
    let mut latencies = Vec::with_capacity(count);
    for index in 0..count {
        let sent = now_ns();
        loadgen::sequential(addr, "/v1/chat/completions", Some(&token), body, 1).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mark = loop {
            if let Some(mark) = marks(&received).get(index) {
                break *mark;
            }
            if Instant::now() > deadline {
                bail!("the hook did not receive alert {} within 10 s", index + 1);
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        latencies.push(Duration::from_nanos(u64::try_from(mark.saturating_sub(sent)).unwrap_or(u64::MAX)));
    }
    latencies.sort();
    let p = |q| loadgen::percentile_ms(&latencies, q);
    println!();
    println!("ask -> owner's hook (release build, instant mock LLM, {count} turns one after another)");
    println!(
        "  turn sent -> hook has the alert:   p50 {:.1} ms  p90 {:.1} ms  max {:.1} ms",
        p(50.0),
        p(90.0),
        latencies.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
    );
    Ok(())
}
