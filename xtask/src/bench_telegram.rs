//! `cargo xtask bench telegram [--messages N] [--binary PATH]`: the Telegram channel's own
//! overhead. The Bot API double of `clawdia-test-support` (in this process, on loopback: it
//! holds `getUpdates` open until an update is queued, and notes the moment of every call the
//! bot makes) feeds the release gateway one owner message at a time; the instant mock LLM
//! answers. Figures: from the moment the update is handed to the waiting `getUpdates` to the
//! bot's first call back (`sendChatAction`) and to its reply (`sendMessage`), p50 and p99; then
//! updates/s when N messages arrive in one batch from N chats. `batch_ms = 0`: the quiet window
//! that gathers a person's burst into one turn (600 ms by default) would be measured otherwise.
//! Figures only.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clawdia_test_support::telegram::{BotApi, TOKEN};
use clawdia_test_support::{MockLlm, MockOptions, Reply};

use crate::bench_gateway::launch;
use crate::loadgen;

const USAGE: &str = "usage: cargo xtask bench telegram [--messages N] [--binary PATH]";
const OWNER: i64 = 4242;

pub fn run(args: &[&str]) -> anyhow::Result<()> {
    let (messages, binary) = crate::bench_gateway::count_and_binary(args, "--messages", 200, USAGE)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    runtime.block_on(bench(&binary, messages))
}

/// When the bot first called `method` for `chat` (polling the double's record; the moment
/// is the double's own, so the polling interval does not count).
async fn wait_for(api: &BotApi, method: &str, chat: i64) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(at) = api.first_call_at(method, chat) {
            return Ok(at);
        }
        if Instant::now() > deadline {
            bail!("no {method} for chat {chat} within 20 s");
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
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
    let api = BotApi::start().await?;
    let out = Command::new(binary).arg("--home").arg(home).args(["init", "--force"]).output()?;
    if !out.status.success() {
        bail!("clawdia init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    std::fs::write(home.join("bot-token"), TOKEN)?;
    let config = format!(
        "[gateway]\nport = 0\n\n[providers.mock]\nkind = \"openai\"\nbase_url = \"{}\"\n\n[agents.main]\nmodel = \"mock/bench\"\n\n[owner]\ntelegram = {OWNER}\n\n[channels.telegram]\ntoken = {{ file = \"bot-token\" }}\napi_root = \"{}\"\npoll_timeout_secs = 20\nbatch_ms = 0\n",
        mock.openai_base_url(),
        api.api_root()
    );
    std::fs::write(home.join("clawdia.toml"), config)?;
    let (_gateway, _, _) = launch(binary, home).await?;
    // Warm up, then one message at a time, each from its own chat (a fresh session each).
    let mut first_call = Vec::with_capacity(messages);
    let mut reply = Vec::with_capacity(messages);
    for index in 0..(messages + 20) {
        let chat = 10_000 + i64::try_from(index).unwrap_or(0);
        api.text(chat, OWNER, "ping");
        let typing = wait_for(&api, "sendChatAction", chat).await?;
        let sent = wait_for(&api, "sendMessage", chat).await?;
        let handed =
            api.handed().iter().find(|(c, _)| *c == chat).map(|(_, at)| *at).context("not handed")?;
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
        api.text(base + i64::try_from(index).unwrap_or(0), OWNER, "ping");
    }
    for index in 0..messages {
        wait_for(&api, "sendMessage", base + i64::try_from(index).unwrap_or(0)).await?;
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
