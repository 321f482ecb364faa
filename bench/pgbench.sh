#!/usr/bin/env bash
# Throughput and latency of `pgbench -S` directly against PostgreSQL, through PgBouncer
# (session mode, when installed), through Gatehouse (audit on, built-in pack on) and through
# Gatehouse with one column of pgbench_accounts configured as `[[sensitive]]` ("gh-sensitive":
# full governance, masking analysis on every statement), run interleaved in one session so
# they share the machine's conditions. Not part of `make test`.
#
# Usage: bench/pgbench.sh [--all] [seconds-per-run (10)] [rounds (3)]
# Prints one line per run and a summary with medians, the proxies' CPU per transaction
# (user+system from /proc/PID/stat before and after each run, divided by transactions) and
# the ratios to direct and to PgBouncer, then the table of targets (full governance is
# "gh-sensitive"). --all also runs bench/idle.sh 1000 and bench/masking.sh 3 and puts their
# figures in that table.
ALL=0
if [ "${1:-}" = --all ]; then ALL=1; shift; fi
DURATION=${1:-10}
ROUNDS=${2:-3}
source "$(dirname "$0")/lib.sh"
PGBENCH=$(command -v pgbench || echo "$BINDIR/pgbench")
BOUNCER_PORT=$(free_port)
"$PGBENCH" -i -q -s 10 -h 127.0.0.1 -p "$PG_PORT" -U postgres bench >/dev/null 2>&1

TARGETS=(direct gatehouse)
if command -v pgbouncer >/dev/null; then
  cat > "$WORK/pgbouncer.ini" <<INI
[databases]
bench = host=127.0.0.1 port=$PG_PORT dbname=bench user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/users.txt
pool_mode = session
max_client_conn = 200
default_pool_size = 20
logfile = $WORK/pgbouncer.log
INI
  echo '"postgres" ""' > "$WORK/users.txt"
  [ "$(id -u)" = 0 ] && chown postgres "$WORK"/pgbouncer.ini "$WORK"/users.txt
  as_pg pgbouncer "$WORK/pgbouncer.ini" >/dev/null 2>&1 & PIDS+=($!)
  TARGETS=(direct pgbouncer gatehouse)
else
  echo "pgbouncer not installed (apt-get install pgbouncer): comparing with direct only" >&2
fi

start_gatehouse gatehouse ""
TOKEN=$("$GH" token issue --config "$WORK/gatehouse.toml" --identity bench-bot --kind agent --ttl 2h)
declare -A PID_OF=([gatehouse]=$GH_PID)
MAIN_PORT=$GH_PORT
start_gatehouse gh-sensitive '[[sensitive]]
target = "bench"
columns = ["public.pgbench_accounts.filler"]
mask = "full"'
SENS_PORT=$GH_PORT; PID_OF[gh-sensitive]=$GH_PID
SENS_TOKEN=$("$GH" token issue --config "$WORK/gh-sensitive.toml" --identity bench-bot --kind agent --ttl 2h)
GH_PORT=$MAIN_PORT
TARGETS+=(gh-sensitive)
# GATEHOUSE_BASELINE_BIN: also run another build (e.g. the previous commit's) as "baseline",
# interleaved with the others, to compare two builds in one run.
if [ -n "${GATEHOUSE_BASELINE_BIN:-}" ]; then
  MAIN_GH=$GH; MAIN_PORT=$GH_PORT; GH=$GATEHOUSE_BASELINE_BIN
  start_gatehouse baseline ""
  BASE_PORT=$GH_PORT; PID_OF[baseline]=$GH_PID
  BASE_TOKEN=$("$GH" token issue --config "$WORK/baseline.toml" --identity bench-bot --kind agent --ttl 2h)
  GH=$MAIN_GH; GH_PORT=$MAIN_PORT
  TARGETS+=(baseline)
fi
sleep 1
if [[ " ${TARGETS[*]} " == *" pgbouncer "* ]]; then
  PID_OF[pgbouncer]=$(pgrep -f "^pgbouncer $WORK/pgbouncer.ini" | head -1 || true)
fi
# User+system CPU ticks of a process (/proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

conn() {
  case $1 in
    direct)    echo "-h 127.0.0.1 -p $PG_PORT -U postgres" ;;
    pgbouncer) echo "-h 127.0.0.1 -p $BOUNCER_PORT -U postgres" ;;
    gatehouse) echo "-h 127.0.0.1 -p $GH_PORT -U bench-bot" ;;
    baseline)  echo "-h 127.0.0.1 -p $BASE_PORT -U bench-bot" ;;
    gh-sensitive) echo "-h 127.0.0.1 -p $SENS_PORT -U bench-bot" ;;
  esac
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
SCENARIOS=("1 simple" "8 simple" "8 prepared")
for round in $(seq "$ROUNDS"); do
  for sc in "${SCENARIOS[@]}"; do
    read -r clients mode <<<"$sc"
    for t in "${TARGETS[@]}"; do
      pw=$TOKEN; [ "$t" = baseline ] && pw=$BASE_TOKEN; [ "$t" = gh-sensitive ] && pw=$SENS_TOKEN
      pid=${PID_OF[$t]:-}; before=0; [ -n "$pid" ] && before=$(cpu_ticks "$pid")
      out=$(PGPASSWORD=$pw "$PGBENCH" -n -S -T "$DURATION" -c "$clients" -j "$clients" -M "$mode" $(conn "$t") bench 2>&1) || { echo "$out" >&2; exit 1; }
      tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out")
      lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' <<<"$out")
      tx=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$out")
      cpu="-"; [ -n "$pid" ] && cpu=$(( ($(cpu_ticks "$pid") - before) * TICK_US / (tx > 0 ? tx : 1) ))
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$clients/$mode" "$t" "$tps" "$lat" "$cpu" | tee -a "$RESULTS"
    done
  done
done

if [ "$ALL" = 1 ]; then
  export BENCH_SUMMARY="$WORK/summary.tsv"
  : > "$BENCH_SUMMARY"
  GATEHOUSE_BIN=$GH "$ROOT/bench/idle.sh" 1000
  GATEHOUSE_BIN=$GH "$ROOT/bench/masking.sh" 3
fi

python3 - "$RESULTS" "${BENCH_SUMMARY:-}" <<'PY'
import sys, statistics, collections
rows = [l.split('\t') for l in open(sys.argv[1]).read().splitlines()]
d = collections.defaultdict(lambda: collections.defaultdict(list))
for _, sc, t, tps, lat, cpu in rows:
    d[sc][t].append((float(tps), float(lat), None if cpu == "-" else float(cpu)))
print("\nscenario      target        tps (median)  latency ms  proxy CPU us/tx  /direct  /pgbouncer  CPU/pgbouncer")
meds = {}
for sc, ts in d.items():
    med = meds[sc] = {}
    for t, v in ts.items():
        cpus = [x[2] for x in v if x[2] is not None]
        med[t] = (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                  statistics.median(cpus) if cpus else None)
    pb = med.get("pgbouncer")
    for t, (tps, lat, cpu) in med.items():
        extra = ""
        if t not in ("direct", "pgbouncer"):
            extra = f"  {tps / med['direct'][0]:>6.2f}x"
            extra += f"  {tps / pb[0]:>9.2f}x" if pb else f"  {'-':>10}"
            extra += f"  {cpu / pb[2]:>12.2f}x" if pb and pb[2] and cpu else f"  {'-':>13}"
        cpu_s = f"{cpu:>15.0f}" if cpu is not None else f"{'-':>15}"
        print(f"{sc:<13} {t:<13} {tps:>12.0f}  {lat:>10.3f} {cpu_s}{extra}")
    if pb and "direct" in med and "gatehouse" in med and sc.startswith("1/"):
        added_g = (med["gatehouse"][1] - med["direct"][1]) * 1000
        added_p = (pb[1] - med["direct"][1]) * 1000
        print(f"{'':13} latency added over direct: gatehouse {added_g:.0f} us, pgbouncer {added_p:.0f} us (target: gatehouse <= pgbouncer + 10 us)")

# The issue's targets, full governance = gh-sensitive (pack on, audit on, a sensitive column).
summary = {}
if len(sys.argv) > 2 and sys.argv[2]:
    for line in open(sys.argv[2]):
        k, v = line.split()
        summary[k] = float(v)
G = "gh-sensitive"
def get(sc, t, i):
    return meds.get(sc, {}).get(t, (None, None, None))[i]
out = []
def ratio(sc, i, inverse=False):
    g, p = get(sc, G, i), get(sc, "pgbouncer", i)
    if g is None or not p:
        return None
    return p / g if inverse else g / p
r = ratio("8/simple", 0); out.append(("-S -c 8 simple, full governance: tps / PgBouncer", r, ">= 0.90", r is not None and r >= 0.9))
r = ratio("8/prepared", 0); out.append(("-S -c 8 -M prepared, full governance: tps / PgBouncer", r, ">= 1.00", r is not None and r >= 1.0))
g, p, dl = get("1/simple", G, 1), get("1/simple", "pgbouncer", 1), get("1/simple", "direct", 1)
if None not in (g, p, dl):
    ag, ap = (g - dl) * 1000, (p - dl) * 1000
    out.append((f"-S -c 1 latency added over direct, us (PgBouncer {ap:.0f})", ag, f"<= {ap + 10:.0f}", ag <= ap + 10))
for sc in meds:
    r = ratio(sc, 2); out.append((f"proxy CPU per transaction / PgBouncer's, {sc}", r, "<= 1.20", r is not None and r <= 1.2))
if summary:
    v = summary.get("idle_growth_mb"); out.append(("1,000 idle sessions: proxy RSS growth, MB", v, "<= 50", v is not None and v <= 50))
    v = summary.get("idle_kb_per_session"); out.append(("1,000 idle sessions: KB per session", v, "<= 50", v is not None and v <= 50))
    v = summary.get("idle_connect_ratio"); out.append(("new connection latency while 1,000 held / before", v, "~1", v is not None and v <= 1.5))
    v = summary.get("masked_throughput_ratio"); out.append(("1,000,000 rows, two masked columns: throughput / unmasked", v, ">= 0.80", v is not None and v >= 0.8))
    v = summary.get("masked_peak_rss_mb"); out.append(("1,000,000 masked rows: proxy peak RSS, MB", v, "<= 64", v is not None and v <= 64))
print("\ntarget                                                              measured   target    met")
for name, v, target, ok in out:
    vs = f"{v:>9.2f}" if v is not None else f"{'-':>9}"
    print(f"{name:<66} {vs}  {target:<8}  {'yes' if ok else 'NO'}")
PY
echo "gatehouse audit events: $("$GH" audit verify --config "$WORK/gatehouse.toml")"
