//! `cargo xtask bench web [--turns N] [--binary PATH]`: the web channel's figures, from the
//! release binary against an instant mock LLM: the bytes of a cold load of the chat page (the
//! UI's own files, and the API's JSON it fetches) and the time until the page is usable, both in
//! headless Chromium on loopback (`xtask/web/cold-load.mjs`); the per-turn round trip over the
//! WebSocket (send `turn`, receive `turn_done`) against the same turn over `POST /v1/turns`
//! (request to the end of its SSE stream), on one connection each; and the gateway's RSS idle
//! with the web on, and with 20 browser sockets open. Figures only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clawdia_test_support::{MockLlm, MockOptions, Reply};
use serde_json::{Value, json};
use tungstenite::Message;
use tungstenite::client::IntoClientRequest as _;

use crate::bench_gateway::{launch, rss_kb};
use crate::loadgen;

const USAGE: &str = "usage: cargo xtask bench web [--turns N] [--binary PATH]";

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let (turns, binary) = crate::bench_gateway::count_and_binary(args, "--turns", 500, USAGE)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(bench(&binary, turns))
}

fn pair(binary: &Path, home: &Path) -> anyhow::Result<Value> {
    let out = Command::new(binary).arg("--home").arg(home).args(["web", "pair", "--json"]).output()?;
    if !out.status.success() {
        bail!("clawdia web pair failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Signs a browser in with a fresh code; its cookie (`name=value`).
fn sign_in(binary: &Path, home: &Path, addr: SocketAddr) -> anyhow::Result<String> {
    let code = pair(binary, home)?["code"].as_str().context("no code")?.to_string();
    let body = json!({"code": code}).to_string();
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "POST /v1/web/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase().starts_with("set-cookie:").then(|| line[11..].trim().to_string())
        })
        .and_then(|cookie| cookie.split(';').next().map(str::to_string))
        .with_context(|| format!("sign-in failed: {}", response.lines().next().unwrap_or("")))
}

fn socket(addr: SocketAddr, cookie: &str) -> anyhow::Result<tungstenite::WebSocket<TcpStream>> {
    let mut request = format!("ws://{addr}/v1/ws").into_client_request()?;
    request.headers_mut().insert("Cookie", cookie.parse()?);
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (mut ws, _) = tungstenite::client(request, stream).map_err(|e| anyhow::anyhow!("WebSocket: {e}"))?;
    ws.send(Message::text(json!({"type": "hello", "boot": null, "since": null}).to_string()))?;
    loop {
        if let Message::Text(text) = ws.read()?
            && text.contains("\"welcome\"")
        {
            return Ok(ws);
        }
    }
}

/// `count` turns over one socket, each from sending `turn` to receiving its `turn_done`.
fn socket_turns(ws: &mut tungstenite::WebSocket<TcpStream>, count: usize) -> anyhow::Result<Vec<Duration>> {
    let mut session: Option<String> = None;
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        ws.send(Message::text(
            json!({"type": "turn", "agent": "main", "session": session, "message": "ping"}).to_string(),
        ))?;
        loop {
            let Message::Text(text) = ws.read()? else { continue };
            if !text.contains("\"turn_done\"") {
                continue;
            }
            let done: Value = serde_json::from_str(&text)?;
            if done["ok"] != true {
                bail!("a turn failed: {done}");
            }
            session = done["session"].as_str().map(str::to_string);
            break;
        }
        latencies.push(start.elapsed());
    }
    Ok(latencies)
}

/// `count` turns over `POST /v1/turns` on one keep-alive connection, each to the end of its
/// chunked SSE body.
fn http_turns(addr: SocketAddr, token: &str, count: usize) -> anyhow::Result<Vec<Duration>> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut session: Option<String> = None;
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let body = json!({"agent": "main", "message": "ping", "session": session}).to_string();
        let start = Instant::now();
        write!(
            writer,
            "POST /v1/turns HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut line = String::new();
        // The head.
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            if line == "\r\n" {
                break;
            }
            if line.is_empty() {
                bail!("connection closed");
            }
        }
        // Chunks until the last, empty one.
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim(), 16).context("chunk size")?;
            let mut chunk = vec![0u8; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            if session.is_none()
                && let Some(at) = chunk.windows(10).position(|w| w == b"\"session\":")
            {
                let rest = String::from_utf8_lossy(&chunk[at + 11..]).to_string();
                session = rest.split('"').next().map(str::to_string);
            }
        }
        latencies.push(start.elapsed());
    }
    Ok(latencies)
}

async fn bench(binary: &Path, turns: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    let mock = MockLlm::start_with(MockOptions {
        record_requests: false,
        default_reply: Reply::text("ok"),
        ..MockOptions::default()
    })
    .await?;
    crate::bench_gateway::make_home_with(binary, home, &mock, "")?;
    let (gateway, addr, _) = launch(binary, home).await?;
    let pid = gateway.0.id();
    let token = std::fs::read_to_string(home.join("secrets/gateway-token"))?.trim().to_string();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle_rss = rss_kb(pid, "VmRSS:");

    // The cold load, in Chromium (three runs, each a fresh profile).
    let script = crate::workspace_root().join("xtask/web/cold-load.mjs");
    let mut loads = Vec::new();
    for _ in 0..3 {
        let url = pair(binary, home)?["url"].as_str().context("no url")?.to_string();
        let url = url.replacen(&url[..url.find("/#").unwrap_or(0)], &format!("http://{addr}"), 1);
        let out = tokio::process::Command::new("node").arg(&script).arg(&url).output().await?;
        if !out.status.success() {
            bail!("the cold load failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        loads.push(serde_json::from_slice::<Value>(&out.stdout)?);
    }

    // Turns: the socket against /v1/turns, interleaved in rounds so drift hits both alike.
    let (socket_lat, http_lat, open_rss) = {
        let binary = binary.to_path_buf();
        let home = home.to_path_buf();
        let token = token.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<(Vec<Duration>, Vec<Duration>, u64)> {
            let cookie = sign_in(&binary, &home, addr)?;
            // 20 browsers with a socket open each, before any turn grew the heap.
            let mut open = Vec::new();
            for _ in 0..20 {
                open.push(socket(addr, &cookie)?);
            }
            std::thread::sleep(Duration::from_secs(2));
            let rss = rss_kb(pid, "VmRSS:");
            drop(open);
            let mut ws = socket(addr, &cookie)?;
            socket_turns(&mut ws, 50)?;
            http_turns(addr, &token, 50)?;
            let (mut over_socket, mut over_http) = (Vec::new(), Vec::new());
            let round = (turns / 5).max(1);
            for _ in 0..5 {
                over_socket.extend(socket_turns(&mut ws, round)?);
                over_http.extend(http_turns(addr, &token, round)?);
            }
            drop(ws);
            Ok((over_socket, over_http, rss))
        })
        .await??
    };
    let mut socket_lat = socket_lat;
    let mut http_lat = http_lat;
    socket_lat.sort();
    http_lat.sort();
    let p = |v: &[Duration], q| loadgen::percentile_ms(v, q);

    println!();
    println!("clawdia web channel (release build, instant mock LLM, headless Chromium on loopback)");
    let first = &loads[0];
    println!(
        "  cold load of the chat page:         {} bytes of UI files + {} bytes of API JSON = {:.1} KB (target <= 150 KB)",
        first["assets"],
        first["api"],
        (first["assets"].as_f64().unwrap_or(0.0) + first["api"].as_f64().unwrap_or(0.0)) / 1024.0
    );
    if let Some(files) = first["files"].as_object() {
        let list: Vec<String> = files.iter().map(|(name, size)| format!("{name} {size}")).collect();
        println!("    files: {}", list.join(", "));
    }
    let mut usable: Vec<f64> = loads.iter().filter_map(|l| l["usable_ms"].as_f64()).collect();
    usable.sort_by(f64::total_cmp);
    println!(
        "  navigation start -> usable:         {} ms (3 cold loads, fresh profiles)",
        usable.iter().map(|ms| format!("{ms:.0}")).collect::<Vec<_>>().join(" / ")
    );
    println!(
        "  turn over the WebSocket:            p50 {:.3} ms  p99 {:.3} ms  ({} turns, one socket)",
        p(&socket_lat, 50.0),
        p(&socket_lat, 99.0),
        socket_lat.len()
    );
    println!(
        "  same turn over POST /v1/turns:      p50 {:.3} ms  p99 {:.3} ms  ({} turns, one connection)",
        p(&http_lat, 50.0),
        p(&http_lat, 99.0),
        http_lat.len()
    );
    println!(
        "  socket overhead per turn:           {:+.3} ms at p50 (target within 1 ms)",
        p(&socket_lat, 50.0) - p(&http_lat, 50.0)
    );
    println!(
        "  gateway RSS:                        idle {:.1} MB (after 5 s); then 3 page loads and 20 browser sockets open: {:.1} MB",
        idle_rss as f64 / 1024.0,
        open_rss as f64 / 1024.0
    );
    drop(gateway);
    Ok(())
}
