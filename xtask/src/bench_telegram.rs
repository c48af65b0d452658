//! `cargo xtask bench telegram [--messages N] [--binary PATH]`: the Telegram channel's own
//! overhead. A minimal Bot API double (in this process, raw HTTP on loopback: it answers
//! `getMe`, holds `getUpdates` open until an update is queued, and notes the time of every call
//! the bot makes) feeds the release gateway one owner message at a time; the instant mock LLM
//! answers. Figures: from the moment the update is handed to the waiting `getUpdates` to the
//! bot's first call back (`sendChatAction`) and to its reply (`sendMessage`), p50 and p99; then
//! updates/s when N messages arrive in one batch from N chats. `batch_ms = 0`: the quiet window
//! that gathers a person's burst into one turn (600 ms by default) would be measured otherwise.
//! Figures only.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clawdia_test_support::{MockLlm, MockOptions, Reply};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::bench_gateway::launch;
use crate::loadgen;

const USAGE: &str = "usage: cargo xtask bench telegram [--messages N] [--binary PATH]";
const OWNER: i64 = 4242;

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let (messages, binary) = crate::bench_gateway::count_and_binary(args, "--messages", 200, USAGE)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(bench(&binary, messages))
}

/// The Bot API double's state.
#[derive(Default)]
struct Fake {
    queue: Mutex<VecDeque<Value>>,
    next_id: Mutex<i64>,
    /// (method, chat, when) of every call the bot made besides polling.
    calls: Mutex<Vec<(String, i64, Instant)>>,
    /// When each update was handed to a poll, by chat.
    handed: Mutex<Vec<(i64, Instant)>>,
    queued: Notify,
    called: Notify,
}

impl Fake {
    fn push(&self, chat: i64, text: &str) {
        let mut next = self.next_id.lock().unwrap();
        *next += 1;
        let update = json!({"update_id": *next, "message": {
            "message_id": *next, "date": 0, "text": text,
            "chat": {"id": chat, "type": "private"},
            "from": {"id": OWNER, "is_bot": false, "first_name": "Owner"},
        }});
        self.queue.lock().unwrap().push_back(update);
        self.queued.notify_waiters();
    }

    async fn answer(&self, method: &str, body: &Value) -> Value {
        match method {
            "getMe" => json!({"id": 1, "is_bot": true, "first_name": "Bench", "username": "bench_bot"}),
            "getUpdates" => {
                let offset = body["offset"].as_i64().unwrap_or(0);
                let deadline = Instant::now() + Duration::from_secs(body["timeout"].as_u64().unwrap_or(0));
                loop {
                    let notified = self.queued.notified();
                    {
                        let mut queue = self.queue.lock().unwrap();
                        queue.retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                        if !queue.is_empty() {
                            let now = Instant::now();
                            let mut handed = self.handed.lock().unwrap();
                            let updates: Vec<Value> = queue.drain(..).collect();
                            for update in &updates {
                                handed.push((update["message"]["chat"]["id"].as_i64().unwrap_or(0), now));
                            }
                            return Value::Array(updates);
                        }
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                        return json!([]);
                    }
                }
            }
            other => {
                let chat = body["chat_id"].as_i64().unwrap_or(0);
                self.calls.lock().unwrap().push((other.to_string(), chat, Instant::now()));
                self.called.notify_waiters();
                json!({"message_id": 1, "date": 0, "chat": {"id": chat, "type": "private"}})
            }
        }
    }
}

async fn serve_connection(fake: Arc<Fake>, mut stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        let body: Value = serde_json::from_slice(&buffer[head_end..head_end + length]).unwrap_or(Value::Null);
        buffer.drain(..head_end + length);
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let method = path.rsplit('/').next().unwrap_or("").to_string();
        let result = fake.answer(&method, &body).await;
        let out = json!({"ok": true, "result": result}).to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{out}",
            out.len()
        );
        stream.write_all(response.as_bytes()).await?;
    }
}

async fn start_fake() -> anyhow::Result<(Arc<Fake>, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let fake = Arc::new(Fake::default());
    let serving = fake.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_connection(serving.clone(), stream));
        }
    });
    Ok((fake, addr))
}

fn calls_for(fake: &Fake, method: &str, chat: i64) -> Option<Instant> {
    fake.calls.lock().unwrap().iter().find(|(m, c, _)| m == method && *c == chat).map(|(_, _, at)| *at)
}

async fn wait_for(fake: &Fake, method: &str, chat: i64) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let called = fake.called.notified();
        if let Some(at) = calls_for(fake, method, chat) {
            return Ok(at);
        }
        if Instant::now() > deadline {
            bail!("no {method} for chat {chat} within 20 s");
        }
        let _ = tokio::time::timeout(Duration::from_millis(50), called).await;
    }
}

async fn bench(binary: &Path, messages: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    let mock = MockLlm::start_with(MockOptions {
        record_requests: false,
        default_reply: Reply::text("ok"),
        ..MockOptions::default()
    })
    .await?;
    let (fake, fake_addr) = start_fake().await?;
    let out = Command::new(binary).arg("--home").arg(home).args(["init", "--force"]).output()?;
    if !out.status.success() {
        bail!("clawdia init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::write(home.join("bot-token"), "123:bench")?;
    let config = format!(
        "[gateway]\nport = 0\n\n[providers.mock]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[agents.main]\nmodel = \"mock/bench\"\n\n[owner]\ntelegram = {OWNER}\n\n[channels.telegram]\ntoken = {{ file = \"bot-token\" }}\napi_root = \"http://{fake_addr}\"\npoll_timeout_secs = 20\nbatch_ms = 0\n",
        mock.openai_base_url()
    );
    std::fs::write(home.join("clawdia.toml"), config)?;
    let (_gateway, _, _) = launch(binary, home).await?;
    // Warm up, then one message at a time, each from its own chat (a fresh session each).
    let mut first_call = Vec::with_capacity(messages);
    let mut reply = Vec::with_capacity(messages);
    for index in 0..(messages + 20) {
        let chat = 10_000 + i64::try_from(index).unwrap_or(0);
        fake.push(chat, "ping");
        let typing = wait_for(&fake, "sendChatAction", chat).await?;
        let sent = wait_for(&fake, "sendMessage", chat).await?;
        let handed = fake
            .handed
            .lock()
            .unwrap()
            .iter()
            .find(|(c, _)| *c == chat)
            .map(|(_, at)| *at)
            .context("not handed")?;
        if index >= 20 {
            first_call.push(typing.saturating_duration_since(handed));
            reply.push(sent.saturating_duration_since(handed));
        }
    }
    first_call.sort();
    reply.sort();
    // A burst: `messages` updates from as many chats in one poll.
    let base = 1_000_000i64;
    let start = Instant::now();
    for index in 0..messages {
        fake.push(base + i64::try_from(index).unwrap_or(0), "ping");
    }
    for index in 0..messages {
        wait_for(&fake, "sendMessage", base + i64::try_from(index).unwrap_or(0)).await?;
    }
    let burst = start.elapsed();
    let p = |v: &[Duration], q| loadgen::percentile_ms(v, q);
    println!();
    println!(
        "clawdia Telegram channel (release build, a Bot API double and an instant mock LLM on loopback)"
    );
    println!(
        "  update handed to the poll -> first Bot API call (typing):  p50 {:.3} ms  p99 {:.3} ms  ({messages} messages)",
        p(&first_call, 50.0),
        p(&first_call, 99.0)
    );
    println!(
        "  update handed to the poll -> reply sent:                   p50 {:.3} ms  p99 {:.3} ms",
        p(&reply, 50.0),
        p(&reply, 99.0)
    );
    println!(
        "  a burst of {messages} messages from {messages} chats:               {:.0} updates/s ({:.0} ms in all)",
        messages as f64 / burst.as_secs_f64(),
        burst.as_secs_f64() * 1e3
    );
    Ok(())
}
