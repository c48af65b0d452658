//! `cargo xtask bench big-chats`: what many large chats at once cost the gateway. Starts the
//! release `clawdia` (or `--binary PATH`) against an instant mock LLM, sends `--clients`
//! concurrent chat completions (default 100) of `--bytes` each (default 1,000,000, under the
//! 1 MiB body limit) on fresh connections, and prints the gateway's RSS before, at its peak
//! (VmHWM) and 5 s after, with the answers' status codes. It runs twice: with the default
//! `[gateway]` limits, and with `max_concurrent_turns` raised past the client count (every
//! turn at once, as before the cap existed). Figures only; it never fails on them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clawdia_test_support::{MockLlm, MockOptions, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bench_gateway::{launch, make_home_with, rss_kb};

struct Run {
    label: String,
    idle_kb: u64,
    peak_kb: u64,
    after_kb: u64,
    statuses: BTreeMap<u16, usize>,
    elapsed: Duration,
}

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let mut clients = 100usize;
    let mut bytes = 1_000_000usize;
    let mut binary: Option<PathBuf> = None;
    let mut rest = args;
    while let [flag, value, tail @ ..] = rest {
        match *flag {
            "--clients" => clients = value.parse().context("--clients N")?,
            "--bytes" => bytes = value.parse().context("--bytes N")?,
            "--binary" => binary = Some(PathBuf::from(value)),
            _ => bail!("usage: cargo xtask bench big-chats [--clients N] [--bytes N] [--binary PATH]"),
        }
        rest = tail;
    }
    if !rest.is_empty() {
        bail!("usage: cargo xtask bench big-chats [--clients N] [--bytes N] [--binary PATH]");
    }
    let binary = crate::bench_gateway::given_or_built(binary)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let mock = MockLlm::start_with(MockOptions {
            record_requests: false,
            default_reply: Reply::text("ok"),
            ..MockOptions::default()
        })
        .await?;
        let uncapped = format!("max_concurrent_turns = {}\n", clients + 1);
        let mut runs = Vec::new();
        for (label, extra) in [("default limits", String::new()), ("no turn cap", uncapped)] {
            runs.push(measure(&binary, &mock, label, &extra, clients, bytes).await?);
        }
        println!();
        println!(
            "{clients} concurrent chat completions of {bytes} bytes each ({})",
            binary.display()
        );
        for run in runs {
            println!(
                "  {:<15} idle {:>6.1} MB  peak {:>6.1} MB  5 s after {:>6.1} MB  in {:>5.2} s  statuses {:?}",
                run.label,
                mb(run.idle_kb),
                mb(run.peak_kb),
                mb(run.after_kb),
                run.elapsed.as_secs_f64(),
                run.statuses
            );
        }
        Ok(())
    })
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

async fn measure(
    binary: &Path,
    mock: &MockLlm,
    label: &str,
    gateway_extra: &str,
    clients: usize,
    bytes: usize,
) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    make_home_with(binary, home, mock, gateway_extra)?;
    let (gateway, addr, _) = launch(binary, home).await?;
    let pid = gateway.0.id();
    let token = std::fs::read_to_string(home.join("secrets/gateway-token"))?.trim().to_string();
    // One small turn first, so the idle figure includes a warmed-up gateway.
    chat(addr, &token, 10).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_kb = rss_kb(pid, "VmRSS:");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let token = token.clone();
        tasks.push(tokio::spawn(async move { chat(addr, &token, bytes).await }));
    }
    let mut statuses = BTreeMap::new();
    for task in tasks {
        let status = task.await.context("client task")??;
        *statuses.entry(status).or_insert(0) += 1;
    }
    let elapsed = started.elapsed();
    let peak_kb = rss_kb(pid, "VmHWM:");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after_kb = rss_kb(pid, "VmRSS:");
    drop(gateway);
    Ok(Run { label: label.to_string(), idle_kb, peak_kb, after_kb, statuses, elapsed })
}

/// One chat completion whose user message is `bytes` long, on its own connection; its status.
async fn chat(addr: SocketAddr, token: &str, bytes: usize) -> anyhow::Result<u16> {
    let body =
        format!(r#"{{"model":"main","messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(bytes));
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    Ok(String::from_utf8_lossy(response.get(9..12).unwrap_or_default()).parse().unwrap_or(0))
}
