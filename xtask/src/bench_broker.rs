//! `cargo xtask bench broker [--requests N] [--binary PATH]`: the request broker's own latency
//! against the release gateway and the instant mock LLM on loopback. Figures: from a request
//! file appearing in `state/broker/inbox/` to the owner's alert being written by the `log`
//! route (the assessment by the administrator agent included); from the owner's reply ("yes",
//! `POST /v1/approvals/{id}/reply`) to the approved command having run (`/usr/bin/touch`);
//! and the bridge's sign + verify per message, in process, with the nonce kept in memory and in
//! `broker.db`. Figures only.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clawdia_test_support::{MockLlm, MockOptions, Reply};

use crate::bench_gateway::launch;
use crate::loadgen;

const USAGE: &str = "usage: cargo xtask bench broker [--requests N] [--binary PATH]";

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let (requests, binary) = crate::bench_gateway::count_and_binary(args, "--requests", 50, USAGE)?;
    bridge_figures()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(bench(&binary, requests))
}

struct Memory(Mutex<std::collections::HashSet<String>>);

impl clawdia_core::bridge::NonceLog for Memory {
    fn record(&self, nonce: &str, _ts: i64) -> Result<bool, String> {
        Ok(self.0.lock().map_err(|e| e.to_string())?.insert(nonce.to_string()))
    }
}

fn bridge_figures() -> anyhow::Result<()> {
    let key = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let body = "Request 5e1f0a77 (restart nginx): done.\nResult:\n$ /usr/bin/systemctl restart nginx";
    let n = 20_000;
    let memory = Memory(Mutex::default());
    let start = Instant::now();
    for i in 0..n {
        let signed = clawdia_core::bridge::sign(key, body, 1_000_000 + i)?;
        clawdia_core::bridge::verify(key, &signed, 1_000_000 + i, 300, &memory)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let in_memory = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let dir = tempfile::tempdir()?;
    let broker = clawdia_store::Broker::open(dir.path())?;
    struct Db<'a>(&'a clawdia_store::Broker);
    impl clawdia_core::bridge::NonceLog for Db<'_> {
        fn record(&self, nonce: &str, ts: i64) -> Result<bool, String> {
            self.0.record_nonce(nonce, ts, ts - 600).map_err(|e| e.to_string())
        }
    }
    let n_db = 2_000;
    let start = Instant::now();
    for i in 0..n_db {
        let signed = clawdia_core::bridge::sign(key, body, 1_000_000 + i)?;
        clawdia_core::bridge::verify(key, &signed, 1_000_000 + i, 300, &Db(&broker))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let with_db = start.elapsed().as_secs_f64() * 1e6 / n_db as f64;
    println!(
        "bridge: sign + verify {in_memory:.1} µs per message (nonces in memory), {with_db:.1} µs (nonces in broker.db)"
    );
    Ok(())
}

async fn bench(binary: &Path, requests: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    let mock = MockLlm::start_with(MockOptions {
        record_requests: false,
        default_reply: Reply::text("Low risk: it creates one empty file."),
        ..MockOptions::default()
    })
    .await?;
    let out = Command::new(binary).arg("--home").arg(home).args(["init", "--force"]).output()?;
    if !out.status.success() {
        bail!("clawdia init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let config = format!(
        "[gateway]\nport = 0\n\n[providers.mock]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[agents.main]\nmodel = \"mock/bench\"\n\n\
         [agents.admin]\nmodel = \"mock/admin\"\n\n[agents.admin.elevated]\nsenders = []\n\
         [[agents.admin.elevated.commands]]\npath = \"/usr/bin/touch\"\nargs = [\"*/done-*\"]\n\n\
         [broker]\nadmin_agent = \"admin\"\n\n[alerts]\nroutes = [\"log\"]\n",
        mock.openai_base_url()
    );
    std::fs::write(home.join("clawdia.toml"), config)?;
    let (_gateway, addr, _) = launch(binary, home).await?;
    let token = std::fs::read_to_string(home.join("secrets/gateway-token"))?.trim().to_string();
    let inbox = home.join("state/broker/inbox");
    std::fs::create_dir_all(&inbox)?;
    let log = home.join("logs/alerts.log");
    let mut asked = Vec::with_capacity(requests);
    let mut acted = Vec::with_capacity(requests);
    for index in 0..requests + 5 {
        let id = format!("b{index:06}");
        let marker = home.join(format!("done-{index}"));
        let request = serde_json::json!({
            "action": "create a marker", "reason": "bench",
            "commands": [["/usr/bin/touch", marker.to_str().context("path")?]],
        });
        let partial = inbox.join(format!(".{id}.partial"));
        std::fs::write(&partial, request.to_string())?;
        let start = Instant::now();
        std::fs::rename(&partial, inbox.join(format!("{id}.json")))?;
        let needle = format!("Request {id}:");
        wait(|| std::fs::read_to_string(&log).is_ok_and(|text| text.contains(&needle)), "the owner's alert")
            .await?;
        let alerted = start.elapsed();
        let mut client = loadgen::Client::connect(
            addr,
            &format!("/v1/approvals/{id}/reply"),
            Some(&token),
            r#"{"text":"yes"}"#,
        )
        .await?;
        let start = Instant::now();
        let status = client.send().await?;
        if status != 200 {
            bail!("the reply to {id} got HTTP {status}");
        }
        wait(|| marker.exists(), "the approved command").await?;
        let ran = start.elapsed();
        if index >= 5 {
            asked.push(alerted);
            acted.push(ran);
        }
    }
    asked.sort();
    acted.sort();
    let p = |v: &[Duration], q| loadgen::percentile_ms(v, q);
    println!("clawdia request broker (release build, instant mock LLM, {requests} requests on loopback)");
    println!(
        "  request file appears -> owner's alert written (admin assessment included):  p50 {:.2} ms  p99 {:.2} ms",
        p(&asked, 50.0),
        p(&asked, 99.0)
    );
    println!(
        "  owner's reply \"yes\" -> approved command has run:                           p50 {:.2} ms  p99 {:.2} ms",
        p(&acted, 50.0),
        p(&acted, 99.0)
    );
    Ok(())
}

async fn wait(mut done: impl FnMut() -> bool, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        if Instant::now() > deadline {
            bail!("{what} did not come within 20 s");
        }
        tokio::time::sleep(Duration::from_micros(300)).await;
    }
    Ok(())
}
