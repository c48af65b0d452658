//! The sandbox helper as a binary of this crate, for its tests and benchmark
//! (`CARGO_BIN_EXE_...`): the real gateway re-executes the `clawdia` binary instead, whose
//! `main` makes the same call.

fn main() {
    clawdia_sandbox::init_main_if_requested();
    eprintln!(
        "usage: clawdia-mcp-sandbox-helper {} SPEC (started by the sandbox, not by hand)",
        clawdia_sandbox::INIT_ARG
    );
    std::process::exit(2);
}
