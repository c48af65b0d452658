#!/usr/bin/env bash
# Fresh machine → a running gateway: builds the release binary, creates a home if there is none
# ($CLAWDIA_HOME, default ~/.clawdia), and runs `clawdia up` in the foreground.
# Provider keys come from the environment (e.g. ANTHROPIC_API_KEY); edit clawdia.toml for others.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clawdia-target}"
cargo build --release --locked -p clawdia
BIN="$CARGO_TARGET_DIR/release/clawdia"
HOME_DIR="${CLAWDIA_HOME:-$HOME/.clawdia}"
if [ ! -f "$HOME_DIR/clawdia.toml" ]; then
  "$BIN" --home "$HOME_DIR" init
fi
exec "$BIN" --home "$HOME_DIR" up "$@"
