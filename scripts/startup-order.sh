#!/usr/bin/env bash
# Regenerates crates/clawdia/startup.order: the functions of the release binary that start-up
# and an idle `clawdia up` run (health probes included), which the release link lays out next to each other (see
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
sleep 2
# A daemon gets health probes (the benchmark's launch polls /health too): their path belongs in
# the idle set.
port="$(sed -n 's/.*"addr":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$work/home/state/gateway.json")"
for _ in 1 2 3; do
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
  grep -q "200 OK" <&3 || { echo "startup-order: /health did not answer" >&2; exit 1; }
  exec 3<&-
done
sleep 20
kill -TERM "$pid"
wait "$pid" || true
# Every function of the binary that ran (callgrind's `'N` recursion suffixes removed), sorted so
# a regenerated list diffs well (they all sit in one block; the order within it hardly matters).
awk -v bin="$binary" '
  /^ob=/ { ob = substr($0, 4) }
  /^fn=/ { name = substr($0, 4); sub(/\047[0-9]+$/, "", name)
           if (ob == bin && name !~ /^0x/ && name !~ / / && !(name in seen)) { seen[name] = 1; print name } }
' "$work/callgrind.out" | LC_ALL=C sort > crates/clawdia/startup.order
echo "startup-order: $(wc -l < crates/clawdia/startup.order) functions -> crates/clawdia/startup.order"
