//! MCP tool-call round trip on a warm server: `cargo bench -p clawdia-mcp --bench roundtrip`.
//!
//! For each server (the fake server's `echo`, and `server-everything`'s `echo` when installed in
//! `$HOME/.cache/clawdia/npm` or `CLAWDIA_TEST_NPM`), in the real sandbox (auto: bubblewrap
//! when it works): the cold start (spawn, handshake, tool listing), then after a warm-up the
//! p50/p90/p99 of `McpServer::call` over `CLAWDIA_BENCH_CALLS` calls (default 2000). As the
//! baseline, the same call written by hand as one JSON-RPC line on the same sandboxed pipes
//! (no rmcp), which is the server's own time plus the pipe; the difference is the client's
//! overhead.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clawdia_config::{McpServerConfig, Sandbox};
use clawdia_mcp::{Launch, McpServer};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

const HELPER: &str = env!("CARGO_BIN_EXE_clawdia-mcp-sandbox-helper");

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(what: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let p50 = percentile(&samples, 0.5);
    println!(
        "{what:<44} n={:<5} p50 {:>7.3} ms  p90 {:>7.3} ms  p99 {:>7.3} ms",
        samples.len(),
        ms(p50),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 0.99))
    );
    p50
}

fn config(name: &str, args: Vec<String>, dir: PathBuf) -> McpServerConfig {
    McpServerConfig {
        name: name.into(),
        command: "node".into(),
        args,
        env: Vec::new(),
        agents: vec!["main".into()],
        timeout: Duration::from_secs(30),
        sandbox: Sandbox::Auto,
        egress: Vec::new(),
        dir,
        memory_bytes: 32 << 30,
        cpu_seconds: 3600,
        processes: 256,
        open_files: 1024,
        file_size_bytes: 256 << 20,
    }
}

/// The same `tools/call` as raw JSON-RPC lines on the sandboxed pipes.
async fn raw_baseline(
    config: &McpServerConfig,
    tool: &str,
    arguments: serde_json::Value,
    calls: usize,
) -> Vec<Duration> {
    let mechanism = clawdia_sandbox::detect_cached(HELPER.as_ref()).await.best().expect("a sandbox");
    let mut policy = clawdia_sandbox::Policy::new(&config.dir);
    policy.limits.address_space = Some(config.memory_bytes);
    let mut child =
        clawdia_sandbox::spawn_stdio(&mechanism, &policy, &config.command, &config.args).await.unwrap();
    let (mut stdin, stdout) = child.take_pipes().unwrap();
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    let mut exchange = async |request: serde_json::Value, answer: bool| {
        stdin.write_all(format!("{request}\n").as_bytes()).await.unwrap();
        stdin.flush().await.unwrap();
        if answer {
            // Skip notifications until the response with our id.
            loop {
                line.clear();
                stdout.read_line(&mut line).await.unwrap();
                if line.contains("\"id\"") {
                    break;
                }
            }
        }
    };
    let init = serde_json::json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}});
    exchange(init, true).await;
    exchange(serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), false).await;
    let mut samples = Vec::with_capacity(calls);
    for id in 1..=(calls + 200) {
        let request = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}});
        let started = Instant::now();
        exchange(request, true).await;
        if id > 200 {
            samples.push(started.elapsed());
        }
    }
    child.kill(Duration::from_millis(200)).await;
    samples
}

async fn bench(name: &str, args: Vec<String>, tool: &str, arguments: serde_json::Value, calls: usize) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = config(name, args, dir.path().join(name));
    std::fs::create_dir_all(&config.dir).unwrap();
    let launch = Launch { helper: HELPER.into(), hidden: Vec::new(), cache_dir: None };
    let server: Arc<McpServer> = McpServer::new(config.clone(), launch, None);
    let started = Instant::now();
    server.tools().await.unwrap();
    println!(
        "{:<44} {:>9.1} ms",
        format!("{name}: cold start (sandbox, handshake, list)"),
        started.elapsed().as_secs_f64() * 1000.0
    );
    let object = arguments.as_object().unwrap().clone();
    for _ in 0..200 {
        server.call(tool, object.clone()).await.unwrap();
    }
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        server.call(tool, object.clone()).await.unwrap();
        samples.push(started.elapsed());
    }
    server.stop().await;
    let client = report(&format!("{name}: McpServer::call `{tool}`"), samples);
    let raw = report(
        &format!("{name}: raw JSON-RPC line (server + pipe)"),
        raw_baseline(&config, tool, arguments, calls).await,
    );
    println!(
        "{:<44} {:>7.3} ms",
        format!("{name}: client overhead (p50 difference)"),
        (client.as_secs_f64() - raw.as_secs_f64()) * 1000.0
    );
}

fn main() {
    let calls: usize = std::env::var("CLAWDIA_BENCH_CALLS").ok().and_then(|n| n.parse().ok()).unwrap_or(2000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let fake = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fake-mcp-server.js").to_string();
        bench("fake", vec![fake], "echo", serde_json::json!({"text": "ping"}), calls).await;
        let npm = std::env::var_os("CLAWDIA_TEST_NPM")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/clawdia/npm")));
        let everything =
            npm.map(|dir| dir.join("node_modules/@modelcontextprotocol/server-everything/dist/index.js"));
        match everything.filter(|script| script.exists()) {
            Some(script) => {
                let args = vec![script.display().to_string(), "stdio".to_string()];
                bench("everything", args, "echo", serde_json::json!({"message": "ping"}), calls).await;
            }
            None => println!("server-everything: skipped (not installed; bash scripts/test.sh installs it)"),
        }
    });
}
