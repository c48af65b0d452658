//! Developer tasks, run as `cargo xtask TASK`:
//!
//! - `bench gateway` — starts the release binary against an instant mock LLM and prints launch
//!   time, idle RSS, per-turn overhead, the turn latency when the provider answers 429 twice
//!   before the 200 (`--retries-only`: just that and a plain turn), throughput at 10 and 100
//!   clients, peak RSS, and the bytes sent to the model for "ping". Figures only; it never fails
//!   on a timing.
//! - `bench ask` — from a turn whose tool call needs the owner's approval to the owner's alert
//!   hook having it (p50, p90, max).
//! - `bench big-chats` — gateway RSS idle, at its peak and after 100 concurrent 1 MB chat
//!   completions, with the default limits and without the turn cap.
//! - `bench brain` — SciFact nDCG@10 / recall@100 (full text, vector, hybrid), LoCoMo evidence
//!   recall@5/@10, import throughput and hybrid latency at the SciFact size and at 50k chunks.
//! - `bench local` — the in-process chat model (SmolLM2-135M-Instruct Q4): load time, time to
//!   first token, decode tokens/s for a 128-token reply, RSS loaded and after the idle unload.
//! - `bench web` — the web UI's cold-load bytes and time to usable in headless Chromium, a
//!   turn's round trip over the WebSocket against `/v1/turns`, RSS with 20 browser sockets;
//! - `bench broker` — a request file to the owner's alert, the owner's "yes" to the approved
//!   command having run, and the bridge's sign + verify per message.
//! - `bench telegram` — a Telegram update to the bot's first call back and to its reply, and
//!   updates/s for a burst, against a Bot API double;
//! - `bench speech` — local Whisper: load time and RSS, real-time factor on a 10 s espeak-ng
//!   sample, word error rate on espeak-ng sentences, Piper time to first audio, Ogg/Opus
//!   encoding of a reply, RSS with both models loaded and after their idle unload
//! - `bench sched` — scheduling jitter p50/p99 of 1,000 `every 1s` jobs over 60 s, time from a
//!   timeout to the last process of a 50-process tree being gone, gateway RSS with 1,000 jobs.
//! - `gen` — writes the generated docs (`docs/config-reference.md`, `docs/clawdia.example.toml`);
//!   `gen --check` fails when they are stale (also checked by a test).
//!
//! The tidy checks (`//!` on every file, crate dependency rules) are tests in `tidy.rs`.
#![allow(clippy::disallowed_methods)] // xtask runs cargo and the release binary

mod bench_ask;
mod bench_big_chats;
mod bench_brain;
mod bench_broker;
mod bench_gateway;
mod bench_local;
mod bench_sched;
mod bench_speech;
mod bench_telegram;
mod bench_web;
mod docs;
mod loadgen;
#[cfg(test)]
mod tidy;

use std::path::PathBuf;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["bench", "gateway", rest @ ..] => bench_gateway::run(rest),
        ["bench", "big-chats", rest @ ..] => bench_big_chats::run(rest),
        ["bench", "ask", rest @ ..] => bench_ask::run(rest),
        ["bench", "brain", rest @ ..] => bench_brain::run(rest),
        ["bench", "local", rest @ ..] => bench_local::run(rest),
        ["bench", "sched", rest @ ..] => bench_sched::run(rest),
        ["bench", "speech", rest @ ..] => bench_speech::run(rest),
        ["bench", "web", rest @ ..] => bench_web::run(rest),
        ["bench", "telegram", rest @ ..] => bench_telegram::run(rest),
        ["bench", "broker", rest @ ..] => bench_broker::run(rest),
        ["gen"] => docs::write(&workspace_root()),
        ["gen", "--check"] => docs::check(&workspace_root()),
        _ => {
            eprintln!(
                "usage: cargo xtask (bench gateway [--seconds N | --retries-only] [--binary PATH] | bench big-chats [--clients N] [--bytes N] [--binary PATH] | bench ask [--count N] [--binary PATH] | bench brain [--no-scale] | bench local [--threads N] | bench sched [--seconds N] [--jobs N] | bench speech [--model DIR] [--threads N] [--idle SECS] | bench web [--turns N] [--binary PATH] | bench telegram [--messages N] [--binary PATH] | bench broker [--requests N] [--binary PATH] | gen [--check])"
            );
            std::process::exit(2);
        }
    };
    // The error and its causes on one line, without the backtrace `RUST_BACKTRACE` would add.
    if let Err(error) = result {
        eprintln!("xtask: {error:#}");
        std::process::exit(1);
    }
}
