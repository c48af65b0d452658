//! `cargo xtask bench gateway`: the release `clawdia` against an instant in-process mock LLM.
//! Prints: launch to `/health` ready; idle RSS after 10 s; per-turn gateway overhead p50/p99
//! through `/v1/chat/completions` (gateway latency minus the mock's own latency, both measured
//! sequentially with the same client); the turn latency when the provider answers 429
//! (Retry-After 0) twice before the 200, i.e. what the gateway's retries cost the user (target
//! 50 ms or less); turns/s with 10 and 100 concurrent clients; peak RSS; and the bytes of the
//! model request for the user message "ping" with the default workspace.
//!
//! `--retries-only` launches the gateway once and measures only the plain and the retried turn.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clawdia_test_support::{MockLlm, MockOptions, Reply};

use crate::loadgen;

const CHAT_BODY: &str = r#"{"model":"main","messages":[{"role":"user","content":"ping"}]}"#;

pub(crate) struct Gateway(pub(crate) Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn rss_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `[COUNT_FLAG N] [--binary PATH]` of a benchmark: the count (at least 1; `default` when not
/// given) and the release binary to run (given, or built from this tree).
pub(crate) fn count_and_binary(
    args: &[&str],
    count_flag: &str,
    default: usize,
    usage: &str,
) -> anyhow::Result<(usize, PathBuf)> {
    let mut count = default;
    let mut binary: Option<PathBuf> = None;
    let mut rest = args;
    while let [flag, value, tail @ ..] = rest {
        match *flag {
            "--binary" => binary = Some(PathBuf::from(value)),
            flag if flag == count_flag => count = value.parse().with_context(|| format!("{count_flag} N"))?,
            _ => bail!("{usage}"),
        }
        rest = tail;
    }
    if !rest.is_empty() || count == 0 {
        bail!("{usage}");
    }
    Ok((count, given_or_built(binary)?))
}

/// The binary to benchmark: the one given with `--binary`, else this tree's release build.
pub(crate) fn given_or_built(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match given {
        Some(binary) => Ok(binary),
        None => {
            println!("building the release binary...");
            build_release(&crate::workspace_root())
        }
    }
}

pub(crate) fn build_release(root: &Path) -> anyhow::Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "clawdia"])
        .current_dir(root)
        .status()
        .context("cargo build --release -p clawdia")?;
    if !status.success() {
        bail!("release build failed");
    }
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    Ok(target.join("release/clawdia"))
}

fn make_home(binary: &Path, home: &Path, mock: &MockLlm) -> anyhow::Result<()> {
    make_home_with(binary, home, mock, "")
}

/// As `make_home`, with `gateway_extra` added to the `[gateway]` table.
pub(crate) fn make_home_with(
    binary: &Path,
    home: &Path,
    mock: &MockLlm,
    gateway_extra: &str,
) -> anyhow::Result<()> {
    let out = Command::new(binary).arg("--home").arg(home).args(["init", "--force"]).output()?;
    if !out.status.success() {
        bail!("clawdia init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let config = format!(
        "[gateway]\nport = 0\n{gateway_extra}\n[providers.mock]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[agents.main]\nmodel = \"mock/bench\"\n",
        mock.openai_base_url()
    );
    std::fs::write(home.join("clawdia.toml"), config)?;
    Ok(())
}

/// Spawns `clawdia up` and polls `/health` (1 ms steps) until it answers; returns the process,
/// its address and the launch-to-ready time.
pub(crate) async fn launch(binary: &Path, home: &Path) -> anyhow::Result<(Gateway, SocketAddr, Duration)> {
    let _ = std::fs::remove_file(home.join("state/gateway.json"));
    let start = Instant::now();
    let child = Command::new(binary)
        .arg("--home")
        .arg(home)
        .arg("up")
        .env("CLAWDIA_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("spawn clawdia up")?;
    let gateway = Gateway(child);
    let file = home.join("state/gateway.json");
    loop {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("gateway did not become ready within 10 s");
        }
        if let Ok(text) = std::fs::read(&file)
            && let Some(addr) = serde_json::from_slice::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["addr"].as_str().and_then(|a| a.parse::<SocketAddr>().ok()))
            && health(addr).await
        {
            return Ok((gateway, addr, start.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn health(addr: SocketAddr) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else { return false };
    if stream.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.is_err() {
        return false;
    }
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    response.starts_with(b"HTTP/1.1 200")
}

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    // `--binary PATH` benchmarks a given build (say, the previous release) instead of building
    // this tree's, so before/after figures come from one run of the same harness.
    let (args, given): (Vec<&str>, Option<PathBuf>) = match args.iter().position(|a| *a == "--binary") {
        Some(at) => {
            let path = args.get(at + 1).context("--binary PATH")?;
            let rest = args.iter().enumerate().filter(|(i, _)| *i != at && *i != at + 1).map(|(_, a)| *a);
            (rest.collect(), Some(PathBuf::from(path)))
        }
        None => (args.to_vec(), None),
    };
    let (seconds, retries_only): (u64, bool) = match args.as_slice() {
        ["--seconds", n] => (n.parse().context("--seconds N")?, false),
        ["--retries-only"] => (0, true),
        [] => (20, false),
        _ => bail!("usage: cargo xtask bench gateway [--seconds N | --retries-only] [--binary PATH]"),
    };
    let binary = given_or_built(given)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    if retries_only {
        return runtime.block_on(bench_retries(&binary));
    }
    runtime.block_on(bench(&binary, Duration::from_secs(seconds)))
}

/// Turns through the gateway while the provider answers 429 with `Retry-After: 0` twice before
/// the 200 (the default policy retries twice): each latency includes the three model requests.
async fn retried_turns(
    addr: SocketAddr,
    token: &str,
    mock: &MockLlm,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let mut client = loadgen::Client::connect(addr, "/v1/chat/completions", Some(token), CHAT_BODY).await?;
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        mock.push(Reply::status(429).retry_after("0"));
        mock.push(Reply::status(429).retry_after("0"));
        let start = Instant::now();
        let status = client.send().await?;
        if status != 200 {
            bail!("status {status} for a turn whose provider answered 429, 429, 200");
        }
        latencies.push(start.elapsed());
    }
    latencies.sort();
    Ok(latencies)
}

const RETRY_LINE: &str = "  429 twice (Retry-After 0) then 200:";

/// The retried-turns line: its percentiles, or why the turns were not answered.
fn print_retried(retried: &anyhow::Result<Vec<Duration>>) {
    match retried {
        Ok(retried) => println!(
            "{RETRY_LINE} p50 {:.3} ms  p99 {:.3} ms  (1000 sequential; target <= 50 ms)",
            loadgen::percentile_ms(retried, 50.0),
            loadgen::percentile_ms(retried, 99.0)
        ),
        Err(error) => println!("{RETRY_LINE} not answered: {error}"),
    }
}

async fn bench_retries(binary: &Path) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    let mock = MockLlm::start_with(MockOptions { record_requests: false, ..MockOptions::default() }).await?;
    make_home(binary, home, &mock)?;
    let (_gateway, addr, _) = launch(binary, home).await?;
    let token = std::fs::read_to_string(home.join("secrets/gateway-token"))?.trim().to_string();
    loadgen::sequential(addr, "/v1/chat/completions", Some(&token), CHAT_BODY, 200).await?;
    let mut plain = loadgen::sequential(addr, "/v1/chat/completions", Some(&token), CHAT_BODY, 1000).await?;
    plain.sort();
    // A build without retries (an older release under `--binary`) fails these turns: then the
    // line says so and the other figures are still measured.
    let retried = retried_turns(addr, &token, &mock, 1000).await;
    let p = |v: &[Duration], q| loadgen::percentile_ms(v, q);
    println!();
    println!("clawdia gateway retries (release build, instant mock LLM)");
    println!(
        "  plain turn:                         p50 {:.3} ms  p99 {:.3} ms  (1000 sequential)",
        p(&plain, 50.0),
        p(&plain, 99.0)
    );
    print_retried(&retried);
    Ok(())
}

async fn bench(binary: &Path, load_duration: Duration) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path();

    // The "ping" request, recorded by a mock that keeps requests.
    let recording = MockLlm::start().await;
    make_home(binary, home, &recording)?;
    let (gateway, addr, _) = launch(binary, home).await?;
    let token = std::fs::read_to_string(home.join("secrets/gateway-token"))?.trim().to_string();
    loadgen::sequential(addr, "/v1/chat/completions", Some(&token), CHAT_BODY, 1).await?;
    let ping_bytes =
        recording.requests().first().map(|r| r.body_bytes).context("no model request recorded")?;
    drop(gateway);

    // Everything else against an instant, non-recording mock.
    let mock = MockLlm::start_with(MockOptions {
        record_requests: false,
        default_reply: Reply::text("ok"),
        ..MockOptions::default()
    })
    .await?;
    make_home(binary, home, &mock)?;
    let mut launches = Vec::new();
    for _ in 0..5 {
        let (gateway, _, ready) = launch(binary, home).await?;
        launches.push(ready);
        drop(gateway);
    }
    launches.sort();
    let (gateway, addr, _) = launch(binary, home).await?;
    let pid = gateway.0.id();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle_rss = rss_kb(pid, "VmRSS:");

    let warm = loadgen::sequential(addr, "/v1/chat/completions", Some(&token), CHAT_BODY, 200).await?;
    drop(warm);
    let mut through =
        loadgen::sequential(addr, "/v1/chat/completions", Some(&token), CHAT_BODY, 3000).await?;
    let mut direct = loadgen::sequential(
        mock.addr(),
        "/v1/chat/completions",
        None,
        r#"{"model":"bench","messages":[{"role":"user","content":"hi"}]}"#,
        3000,
    )
    .await?;
    through.sort();
    direct.sort();
    // A build without retries (an older release under `--binary`) fails these turns: then the
    // line says so and the other figures are still measured.
    let retried = retried_turns(addr, &token, &mock, 1000).await;
    let p = |v: &[Duration], q| loadgen::percentile_ms(v, q);
    let after_sequential_rss = rss_kb(pid, "VmRSS:");

    let mut rates = Vec::new();
    for clients in [10usize, 100] {
        let (ok, failed) = loadgen::concurrent(
            addr,
            "/v1/chat/completions",
            Some(&token),
            CHAT_BODY,
            clients,
            load_duration,
        )
        .await?;
        rates.push((clients, ok as f64 / load_duration.as_secs_f64(), failed));
    }
    let peak_rss = rss_kb(pid, "VmHWM:");

    println!();
    println!(
        "clawdia gateway benchmark (release build, instant mock LLM, {} cores)",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0)
    );
    println!(
        "  launch to /health ready:  median {:.1} ms (min {:.1}, max {:.1}, 5 launches)",
        ms(launches[2]),
        ms(launches[0]),
        ms(launches[4])
    );
    println!("  idle RSS after 10 s:      {:.1} MB", idle_rss as f64 / 1024.0);
    println!(
        "  turn latency via gateway: p50 {:.3} ms  p99 {:.3} ms  (3000 sequential)",
        p(&through, 50.0),
        p(&through, 99.0)
    );
    println!("  mock latency direct:      p50 {:.3} ms  p99 {:.3} ms", p(&direct, 50.0), p(&direct, 99.0));
    println!(
        "  gateway overhead:         p50 {:.3} ms  p99 {:.3} ms",
        p(&through, 50.0) - p(&direct, 50.0),
        p(&through, 99.0) - p(&direct, 99.0)
    );
    print_retried(&retried);
    println!("  RSS after sequential run: {:.1} MB", after_sequential_rss as f64 / 1024.0);
    for (clients, rate, failed) in rates {
        println!(
            "  throughput {clients:>3} clients:   {rate:.0} turns/s over {} s ({failed} failed)",
            load_duration.as_secs()
        );
    }
    println!("  peak RSS (VmHWM):         {:.1} MB", peak_rss as f64 / 1024.0);
    println!("  model request for \"ping\": {ping_bytes} bytes");
    match startup_order_found(binary) {
        Some((found, listed)) => println!(
            "  start-up order:           {found} of {listed} listed functions found in the binary \
             (even a few missing cost idle RSS: run scripts/startup-order.sh)"
        ),
        None => {
            println!("  start-up order:           not checked (no `nm`, or no crates/clawdia/startup.order)")
        }
    }
    Ok(())
}

/// How many of the functions `crates/clawdia/startup.order` lists the binary still defines: the
/// list goes stale as the code changes, and idle RSS with it.
fn startup_order_found(binary: &Path) -> Option<(usize, usize)> {
    let listed =
        std::fs::read_to_string(crate::workspace_root().join("crates/clawdia/startup.order")).ok()?;
    let out = Command::new("nm").arg("--defined-only").arg(binary).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let defined: std::collections::HashSet<&str> =
        text.lines().filter_map(|line| line.split_whitespace().nth(2)).collect();
    let names: Vec<&str> = listed.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
    let found = names.iter().filter(|name| defined.contains(*name)).count();
    Some((found, names.len()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
