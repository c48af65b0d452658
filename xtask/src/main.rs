//! Developer tasks, run as `cargo xtask TASK`:
//!
//! - `bench gateway` — starts the release binary against an instant mock LLM and prints launch
//!   time, idle RSS, per-turn overhead, throughput at 10 and 100 clients, peak RSS, and the
//!   bytes sent to the model for "hi". Figures only; it never fails on a timing.
//! - `gen` — writes the generated docs (`docs/config-reference.md`, `docs/clawdia.example.toml`);
//!   `gen --check` fails when they are stale (also checked by a test).
//!
//! The tidy checks (`//!` on every file, crate dependency rules) are tests in `tidy.rs`.
#![allow(clippy::disallowed_methods)] // xtask runs cargo and the release binary

mod bench_gateway;
mod docs;
mod loadgen;
#[cfg(test)]
mod tidy;

use std::path::PathBuf;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_default()
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["bench", "gateway", rest @ ..] => bench_gateway::run(rest),
        ["gen"] => docs::write(&workspace_root()),
        ["gen", "--check"] => docs::check(&workspace_root()),
        _ => {
            eprintln!("usage: cargo xtask (bench gateway [--seconds N] | gen [--check])");
            std::process::exit(2);
        }
    }
}
