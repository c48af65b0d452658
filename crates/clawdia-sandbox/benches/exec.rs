//! `cargo bench -p clawdia-sandbox --bench exec`: spawn-to-exit latency of a sandboxed `true`
//! for each mechanism that works here (and unsandboxed, for reference), as p50/p99 over 200
//! runs; then the same with an egress allowlist (the proxy set up, handed over and torn down
//! per run), and one request through the proxy to a server on the host (curl, when installed).
//! Prints figures; never fails on a timing.

use std::time::{Duration, Instant};

use clawdia_sandbox::{Mechanism, Network, Policy, find_bwrap, run};

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
    for mechanism in &mechanisms {
        measure(mechanism, &policy, "true", "").await;
    }
    // A server on the host's loopback that answers every request, reachable through the proxy.
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a server");
    let port = server.local_addr().expect("its address").port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut stream, _)) = server.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
                    .await;
            });
        }
    });
    let mut egress = policy.clone();
    egress.network = Network::Allow(vec![format!("127.0.0.1:{port}")]);
    println!("with an egress allowlist (proxy per run), {RUNS} runs each");
    let curl = std::path::Path::new("/usr/bin/curl").exists();
    let fetch = format!("NO_PROXY= no_proxy= curl -sSf http://127.0.0.1:{port}/ >/dev/null");
    for mechanism in mechanisms.iter().filter(|m| !matches!(m, Mechanism::Unsandboxed)) {
        measure(mechanism, &egress, "true", " + egress").await;
        if curl {
            measure(mechanism, &egress, &fetch, " + curl via proxy").await;
        }
    }
    if !curl {
        println!("(curl is not installed: no request through the proxy measured)");
    }
}

async fn measure(mechanism: &Mechanism, policy: &Policy, command: &str, label: &str) {
    let name = format!("{}{label}", mechanism.name());
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        match run(mechanism, policy, command, |_| {}).await {
            Ok(outcome) if outcome.exit_code == Some(0) => times.push(started.elapsed()),
            Ok(outcome) => {
                println!("{name:>28}: `{command}` failed: {}", outcome.output.trim());
                return;
            }
            Err(error) => {
                println!("{name:>28}: unavailable: {error}");
                return;
            }
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p99) = (times[RUNS / 2], times[RUNS * 99 / 100]);
    println!("{name:>28}: p50 {:.1} ms  p99 {:.1} ms", ms(p50), ms(p99));
}
