//! `cargo xtask bench local [--threads N] [--kernel-threads N] [--tokens N] [--model DIR]`: the
//! in-process chat model
//! (SmolLM2-135M-Instruct Q4_1 by default) through `clawdia_local::LocalChat`, as the gateway
//! runs it: model load time, time to first token, decode tokens/s for a reply of up to `--tokens`
//! tokens (default 128, greedy), and this process's RSS before loading, while loaded and after
//! the idle unload. `--threads` sizes the engine's rayon pool (default 2), `--kernel-threads`
//! candle's quantized-matmul pool (`CANDLE_NUM_THREADS`, default 1 as in the gateway), pinned
//! before any thread starts. Figures only; it never fails on a timing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clawdia_core::{ChatRequest, Message, NoDeltas};
use clawdia_local::{LocalChat, LocalSettings};

const MODEL: &str = "SmolLM2-135M-Instruct";
const PROMPT: &str =
    "Write a detailed essay about the history of the printing press and how it changed Europe.";

fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn default_model_dir() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    let root = std::env::var_os("CLAWDIA_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".cache/clawdia/models"));
    let candidates = [root.join(MODEL), home.join(".clawdia/models").join(MODEL)];
    candidates.iter().find(|dir| dir.is_dir()).cloned().unwrap_or_else(|| candidates[0].clone())
}

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let mut threads = 2usize;
    let mut kernel_threads = clawdia_local::DEFAULT_KERNEL_THREADS;
    let mut tokens = 128u32;
    let mut model_dir = default_model_dir();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match *arg {
            "--threads" => threads = rest.next().context("--threads N")?.parse()?,
            "--kernel-threads" => kernel_threads = rest.next().context("--kernel-threads N")?.parse()?,
            "--tokens" => tokens = rest.next().context("--tokens N")?.parse()?,
            "--model" => model_dir = PathBuf::from(rest.next().context("--model DIR")?),
            other => bail!(
                "unknown argument {other} (bench local [--threads N] [--kernel-threads N] [--tokens N] [--model DIR])"
            ),
        }
    }
    if !model_dir.is_dir() {
        bail!("{} not found: run scripts/fetch-models.sh (or pass --model DIR)", model_dir.display());
    }
    // SAFETY: first thing the bench does; no other thread exists yet (the runtime is built below).
    unsafe { clawdia_local::pin_kernel_threads(kernel_threads) };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(measure(model_dir, threads, tokens))
}

async fn measure(model_dir: PathBuf, threads: usize, tokens: u32) -> anyhow::Result<()> {
    let name = model_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let models_dir = model_dir.parent().map(PathBuf::from).unwrap_or_default();
    let idle = Duration::from_secs(2);
    let client = LocalChat::new(LocalSettings {
        models_dir,
        threads: Some(threads),
        idle_unload: idle,
        context_length: 2048,
    });
    let rss_before = rss_kb();
    let load = client.preload(&name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let rss_loaded = rss_kb();
    let request = ChatRequest {
        model: name.clone(),
        system: String::new(),
        messages: vec![Message::user(PROMPT)],
        tools: Vec::new(),
        max_tokens: tokens,
        temperature: None,
        stop: Vec::new(),
        stream: true,
    };
    // One short warm-up (first-use allocations, kernel pool start-up), then the measured reply.
    let mut warm = request.clone();
    warm.max_tokens = 4;
    client.complete_timed(&warm, &NoDeltas).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let (response, generation) =
        client.complete_timed(&request, &NoDeltas).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    let total = started.elapsed();
    let rss_generating = rss_kb();
    let decoded = generation.output_tokens.saturating_sub(1);
    let per_second = decoded as f64 / generation.decode_time.as_secs_f64().max(1e-9);
    let unload_started = Instant::now();
    while client.loaded().await.is_some() {
        if unload_started.elapsed() > idle + Duration::from_secs(30) {
            bail!("the model did not unload after the idle period");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_unloaded = rss_kb();
    let mib = |kb: u64| kb as f64 / 1024.0;
    println!(
        "local model bench: {name} ({threads} threads, CANDLE_NUM_THREADS={})",
        std::env::var("CANDLE_NUM_THREADS").unwrap_or_else(|_| "unset".into())
    );
    println!("  load time            {:>8.0} ms", load.as_secs_f64() * 1000.0);
    println!("  prompt tokens        {:>8}", generation.input_tokens);
    println!("  time to first token  {:>8.0} ms", generation.time_to_first_token.as_secs_f64() * 1000.0);
    println!(
        "  reply                {:>8} tokens ({:?}) in {:.2} s",
        generation.output_tokens,
        response.stop_reason,
        total.as_secs_f64()
    );
    println!("  decode speed         {per_second:>8.1} tokens/s");
    println!("  RSS before load      {:>8.1} MiB", mib(rss_before));
    println!(
        "  RSS loaded           {:>8.1} MiB (after generating: {:.1} MiB)",
        mib(rss_loaded),
        mib(rss_generating)
    );
    println!(
        "  RSS after unload     {:>8.1} MiB (idle unload after {} s)",
        mib(rss_unloaded),
        idle.as_secs()
    );
    Ok(())
}
