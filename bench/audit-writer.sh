#!/usr/bin/env bash
# CPU the audit writer thread spends per event: crates/audit/examples/append_bench.rs (statement
# events like the proxy's, through AuditWriter into SQLite in a temporary directory), run
# several times in release mode. Not part of `make test`.
#
# Usage: bench/audit-writer.sh [events (200000)] [batch (32)] [runs (5)]
# `batch` events per transaction (about 32 at 15k statements/s); 0 sends as fast as the queue
# takes them. Prints one line per run and the median of the writer's CPU µs per event.
# With CALLGRIND=1, runs once under valgrind instead and prints the writer thread's
# instructions per event (SHA-256 runs without SHA-NI under valgrind, so it is shown apart).
set -euo pipefail
EVENTS=${1:-200000}
BATCH=${2:-32}
RUNS=${3:-5}
cd "$(dirname "$0")/.."
cargo build --release -q -p audit --example append_bench
BIN="${CARGO_TARGET_DIR:-target}/release/examples/append_bench"

if [ "${CALLGRIND:-0}" = 1 ]; then
  OUT=$(mktemp -d /tmp/audit-callgrind.XXXXXX)
  trap 'rm -rf "$OUT"' EXIT
  valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT/cg.%p" \
    "$BIN" "$EVENTS" "$BATCH" 2>/dev/null
  # Thread 1 is main (the producer); the writer is the thread that ran Worker::run.
  for f in "$OUT"/cg.*-*; do
    grep -q 'audit::worker::Worker::run' "$f" || continue
    total=$(sed -n 's/^totals: //p' "$f")
    sha=$(callgrind_annotate "$f" 2>/dev/null | awk '/sha2::sha256::compress256/ {gsub(",", "", $1); print $1; exit}')
    awk -v t="$total" -v s="${sha:-0}" -v n="$EVENTS" 'BEGIN {
      printf "writer instructions per event: %.0f (SHA-256 compression %.0f, everything else %.0f)\n",
        t / n, s / n, (t - s) / n }'
  done
  exit 0
fi

for _ in $(seq "$RUNS"); do "$BIN" "$EVENTS" "$BATCH"; done | tee /dev/stderr |
  awk '{ for (i = 1; i <= NF; i++) if ($i == "=") print $(i + 1) }' | sort -n |
  awk '{ v[NR] = $1 } END { printf "median writer CPU: %s us/event over %d runs\n", v[int((NR + 1) / 2)], NR }'
