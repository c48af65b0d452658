#!/usr/bin/env bash
# Regenerates crates/clawdia/startup.order: the functions of the release binary that start-up
# and an idle `clawdia up` run, which the release link lays out next to each other (see
# crates/clawdia/build.rs) so an idle daemon maps a few hundred KiB of code instead of most of
# the binary. Symbol names carry hashes that change with the code, so rerun this after larger
# changes (then `cargo xtask bench gateway` shows idle RSS back at its target); a stale entry
# is skipped by the linker, never an error. Needs valgrind (apt install valgrind).
#
#   scripts/startup-order.sh [BINARY]   (default: builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clawdia-target}"
binary="${1:-}"
if [ -z "$binary" ]; then
  cargo build --release --quiet -p clawdia
  binary="$CARGO_TARGET_DIR/release/clawdia"
fi
binary="$(realpath "$binary")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$binary" --home "$work/home" init --force >/dev/null
# The benchmark's home: one OpenAI-style provider (never called while idle) and one agent.
cat > "$work/home/clawdia.toml" <<TOML
[gateway]
port = 0

[providers.mock]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[agents.main]
model = "mock/bench"
TOML
CLAWDIA_LOG=error valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
  --callgrind-out-file="$work/callgrind.out" "$binary" --home "$work/home" up >/dev/null 2>"$work/valgrind.log" &
pid=$!
# Under valgrind start-up takes seconds; then idle as long as the benchmark does (10 s) and more.
for _ in $(seq 1 120); do
  [ -f "$work/home/state/gateway.json" ] && break
  sleep 0.5
done
[ -f "$work/home/state/gateway.json" ] || { echo "startup-order: the gateway did not start" >&2; exit 1; }
sleep 20
kill -TERM "$pid"
wait "$pid" || true
# Every function of the binary that ran (callgrind's `'N` recursion suffixes removed), first
# seen first.
awk -v bin="$binary" '
  /^ob=/ { ob = substr($0, 4) }
  /^fn=/ { name = substr($0, 4); sub(/\047[0-9]+$/, "", name)
           if (ob == bin && name !~ /^0x/ && !(name in seen)) { seen[name] = 1; print name } }
' "$work/callgrind.out" > crates/clawdia/startup.order
echo "startup-order: $(wc -l < crates/clawdia/startup.order) functions -> crates/clawdia/startup.order"
