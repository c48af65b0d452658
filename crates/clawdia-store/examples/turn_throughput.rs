//! Throughput of the per-turn hot path (`open` + `append` of a user message and a reply +
//! `record_usage`) on a temporary state dir. Prints figures; asserts nothing.
//!
//! `cargo run --release -p clawdia-store --example turn_throughput [sessions] [turns per session]`

use std::time::Instant;

use clawdia_core::{Message, ModelRef, SessionStore, Usage};
use clawdia_store::Store;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<usize>());
    let sessions = args.next().transpose()?.unwrap_or(200);
    let turns = args.next().transpose()?.unwrap_or(25);
    let dir = std::env::temp_dir().join(format!("clawdia-store-bench-{}", clawdia_core::random::hex(6)?));
    let store = Store::open(&dir)?;
    let model = ModelRef { provider: "anthropic".into(), model: "claude-sonnet-4-5".into() };
    let usage = Usage { input_tokens: 1200, output_tokens: 300, cache_read_tokens: 0, cache_write_tokens: 0 };
    let reply = Message::assistant("A reply of a typical length. ".repeat(12));

    let started = Instant::now();
    for turn in 0..turns {
        for session in 0..sessions {
            let id = format!("s-{session:05}");
            store.open("main", &id, "boundary")?;
            store.append(&id, &[Message::user(format!("question {turn}")), reply.clone()])?;
            store.record_usage("main", &id, &model, &usage, 0.0081)?;
        }
    }
    let elapsed = started.elapsed();
    let total = sessions * turns;
    println!(
        "{total} turns ({sessions} sessions x {turns}, transcripts up to {} messages) in {:.2?}: {:.0} turns/s, {:.0} us/turn",
        turns * 2,
        elapsed,
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / total as f64,
    );
    let started = Instant::now();
    let (tokens, usd) = store.usage_since("main", 0)?;
    println!("usage_since over {total} ledger rows: {:.2?} ({tokens} tokens, ${usd:.2})", started.elapsed());
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
