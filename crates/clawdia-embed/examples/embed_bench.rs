//! Throughput of the local embedder: 64 texts of ~40 words and 64 of ~200 words, embedded in
//! calls of 32, printed as texts per second. A benchmark, not a test: it prints and never fails
//! on a timing. Run it in release mode:
//!
//! ```text
//! cargo run --release -p clawdia-embed --example embed_bench [MODEL_DIR] [THREADS]
//! ```
//!
//! MODEL_DIR defaults to `$CLAWDIA_TEST_MODELS`, else `~/.clawdia/models/all-MiniLM-L6-v2`
//! (fetch it with `scripts/fetch-models.sh`).

use std::path::PathBuf;
use std::time::Instant;

use clawdia_core::Embedder;
use clawdia_embed::LocalEmbedder;

const WORDS: &[&str] = &[
    "the",
    "gateway",
    "routes",
    "each",
    "request",
    "to",
    "a",
    "model",
    "and",
    "records",
    "what",
    "it",
    "cost",
    "while",
    "memory",
    "pages",
    "are",
    "split",
    "into",
    "chunks",
    "that",
    "search",
    "ranks",
    "by",
    "meaning",
    "as",
    "well",
    "keywords",
    "small",
    "teams",
    "run",
    "their",
    "own",
    "assistant",
    "on",
    "one",
    "machine",
    "with",
    "scheduled",
    "jobs",
    "tools",
    "channels",
    "for",
    "chat",
    "mail",
    "voice",
    "calls",
    "notes",
    "calendar",
    "events",
    "people",
    "projects",
    "ideas",
    "later",
];

/// `count` texts of `words` pseudo-random words each (a fixed LCG, so runs are comparable).
fn texts(count: usize, words: usize, seed: u64) -> Vec<String> {
    let mut state = seed;
    (0..count)
        .map(|_| {
            let picked: Vec<&str> = (0..words)
                .map(|_| {
                    state =
                        state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                    WORDS[usize::try_from(state >> 33).unwrap_or(0) % WORDS.len()]
                })
                .collect();
            let mut text = picked.join(" ");
            text.push('.');
            text
        })
        .collect()
}

fn model_dir() -> PathBuf {
    if let Some(dir) = std::env::args().nth(1) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("CLAWDIA_TEST_MODELS") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
    home.join(".clawdia/models/all-MiniLM-L6-v2")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = model_dir();
    let threads = std::env::args().nth(2).map(|text| text.parse::<usize>()).transpose()?;
    let started = Instant::now();
    let embedder = LocalEmbedder::load(&dir, threads)?;
    println!(
        "{} ({} dims) loaded from {} in {} ms, threads: {}",
        embedder.model_id(),
        embedder.dimensions(),
        dir.display(),
        started.elapsed().as_millis(),
        threads.map_or_else(|| "default".to_string(), |count| count.to_string())
    );
    let batch = 32;
    // Warm up (first-touch allocations, thread start).
    embedder.embed(&texts(batch, 40, 7)).await?;
    for (label, words) in [("~40 words", 40), ("~200 words", 200)] {
        let inputs = texts(64, words, 42);
        // Best of three runs: the figure least disturbed by other work on the machine.
        let mut seconds = f64::INFINITY;
        for _ in 0..3 {
            let started = Instant::now();
            for chunk in inputs.chunks(batch) {
                embedder.embed(chunk).await?;
            }
            seconds = seconds.min(started.elapsed().as_secs_f64());
        }
        println!(
            "{label:>10}: 64 texts in {:.0} ms = {:.1} texts/s (batch {batch})",
            seconds * 1000.0,
            64.0 / seconds
        );
    }
    Ok(())
}
