//! The sandbox helper as a binary of its own, for this crate's tests (`CARGO_BIN_EXE_...`):
//! the real gateway re-executes the `clawdia` binary instead, whose `main` makes the same call.

fn main() {
    clawdia_sandbox::init_main_if_requested();
    eprintln!(
        "usage: clawdia-sandbox-helper {} SPEC (started by the sandbox, not by hand)",
        clawdia_sandbox::INIT_ARG
    );
    std::process::exit(2);
}
