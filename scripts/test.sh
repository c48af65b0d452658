#!/usr/bin/env bash
# Fresh machine → the whole test suite: installs what the tests need (the official `openai`
# Python SDK, used unchanged against the gateway), checks formatting-free lints (clippy with
# -D warnings), then runs every test with cargo-nextest.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clawdia-target}"
export CARGO_TERM_COLOR=never

if ! python3 -c "import openai" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check "openai>=1.40,<3"
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

cargo clippy --locked --workspace --all-targets --quiet -- -D warnings
cargo nextest run --locked --workspace --no-fail-fast
