#!/usr/bin/env bash
# Masking throughput and proxy memory: a 1,000,000-row result with two masked columns
# through Gatehouse, the same result unmasked through Gatehouse, and direct. Reports rows/s
# (median of N runs, psql reading the whole result) and the proxy's peak RSS (VmHWM).
# Not part of `make test`.
#
# Usage: bench/masking.sh [runs (3)] [rows (1000000)]
RUNS=${1:-3}
ROWS=${2:-1000000}
source "$(dirname "$0")/lib.sh"

psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres bench -c "
  CREATE TABLE people (id int PRIMARY KEY, email text, ssn text, note text);
  INSERT INTO people SELECT g, 'user' || g || '@example.com',
    lpad((g % 900 + 100)::text, 3, '0') || '-' || lpad((g % 90 + 10)::text, 2, '0') || '-' || lpad((g % 9000 + 1000)::text, 4, '0'),
    'note ' || g FROM generate_series(1, $ROWS) g;
  ANALYZE people;"

SENSITIVE='[[sensitive]]
target = "bench"
columns = ["public.people.email"]
tags = ["pii"]
mask = "email"
[[sensitive]]
target = "bench"
columns = ["public.people.ssn"]
tags = ["pii"]
mask = "last4"'
start_gatehouse masked "$SENSITIVE"
MASKED_PORT=$GH_PORT; MASKED_PID=$GH_PID
start_gatehouse plain ""
PLAIN_PORT=$GH_PORT; PLAIN_PID=$GH_PID
TOKEN_M=$("$GH" token issue --config "$WORK/masked.toml" --identity bench --ttl 2h)
TOKEN_P=$("$GH" token issue --config "$WORK/plain.toml" --identity bench --ttl 2h)

SQL="SELECT id, email, ssn, note FROM people"
run() { # port user token -> seconds
  local start end
  start=$(date +%s.%N)
  PGPASSWORD=$3 psql -X -At -h 127.0.0.1 -p "$1" -U "$2" bench -c "$SQL" > "$WORK/out.txt"
  end=$(date +%s.%N)
  python3 -c "print($end - $start)"
}
: > "$WORK/times.tsv"
for r in $(seq "$RUNS"); do
  printf 'direct\t%s\n' "$(run "$PG_PORT" postgres "")" >> "$WORK/times.tsv"
  printf 'unmasked\t%s\n' "$(run "$PLAIN_PORT" bench "$TOKEN_P")" >> "$WORK/times.tsv"
  printf 'masked\t%s\n' "$(run "$MASKED_PORT" bench "$TOKEN_M")" >> "$WORK/times.tsv"
  grep -q '@example.com' "$WORK/out.txt" && ! grep -q '^1|user1@' "$WORK/out.txt" || { echo "masked output looks wrong" >&2; exit 1; }
done
hwm() { awk '/VmHWM/ {print $2/1024 " MB"}' "/proc/$1/status"; }
python3 - "$WORK/times.tsv" "$ROWS" <<'PY'
import sys, statistics, collections
t = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, v = line.split()
    t[k].append(float(v))
rows = int(sys.argv[2])
med = {k: statistics.median(v) for k, v in t.items()}
for k in ("direct", "unmasked", "masked"):
    print(f"{k:<9} {med[k]:7.2f} s  {rows / med[k]:>10.0f} rows/s")
print(f"masked/unmasked throughput: {med['unmasked'] / med['masked']:.2f}x")
import os
if os.environ.get("BENCH_SUMMARY"):
    with open(os.environ["BENCH_SUMMARY"], "a") as f:
        f.write(f"masked_throughput_ratio\t{med['unmasked'] / med['masked']:.2f}\n")
PY
echo "proxy peak RSS: masked $(hwm "$MASKED_PID"), unmasked $(hwm "$PLAIN_PID")"
[ -n "${BENCH_SUMMARY:-}" ] && printf 'masked_peak_rss_mb\t%s\n' "$(hwm "$MASKED_PID" | cut -d' ' -f1)" >> "$BENCH_SUMMARY"
true
