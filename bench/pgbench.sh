#!/usr/bin/env bash
# Throughput and latency of `pgbench -S` directly against PostgreSQL, through PgBouncer
# (session mode, when installed) and through Gatehouse (audit on), run interleaved in one
# session so the three share the machine's conditions. Not part of `make test`.
#
# Usage: bench/pgbench.sh [seconds-per-run (10)] [rounds (3)]
# Prints one line per run and a summary with medians and the ratios Gatehouse/direct and
# Gatehouse/PgBouncer.
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
  esac
}

RESULTS="$WORK/results.tsv"
: > "$RESULTS"
SCENARIOS=("1 simple" "8 simple" "8 prepared")
for round in $(seq "$ROUNDS"); do
  for sc in "${SCENARIOS[@]}"; do
    read -r clients mode <<<"$sc"
    for t in "${TARGETS[@]}"; do
      pw=$TOKEN; [ "$t" = baseline ] && pw=$BASE_TOKEN
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

python3 - "$RESULTS" <<'PY'
import sys, statistics, collections
rows = [l.split('\t') for l in open(sys.argv[1]).read().splitlines()]
d = collections.defaultdict(lambda: collections.defaultdict(list))
for _, sc, t, tps, lat, cpu in rows:
    d[sc][t].append((float(tps), float(lat), None if cpu == "-" else float(cpu)))
print("\nscenario      target      tps (median)  latency ms  proxy CPU us/tx  gatehouse/direct  gatehouse/pgbouncer  gatehouse/baseline")
for sc, ts in d.items():
    med = {}
    for t, v in ts.items():
        cpus = [x[2] for x in v if x[2] is not None]
        med[t] = (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v),
                  statistics.median(cpus) if cpus else None)
    g = med.get("gatehouse", (0, 0, None))[0]
    for t, (tps, lat, cpu) in med.items():
        extra = ""
        if t == "gatehouse":
            extra = f"  {g / med['direct'][0]:.2f}x"
            extra += f"             {g / med['pgbouncer'][0]:.2f}x" if "pgbouncer" in med else "               -"
            if "baseline" in med:
                extra += f"                {g / med['baseline'][0]:.2f}x"
        cpu_s = f"{cpu:>15.0f}" if cpu is not None else f"{'-':>15}"
        print(f"{sc:<13} {t:<11} {tps:>12.0f}  {lat:>10.3f} {cpu_s}{extra}")
PY
echo "gatehouse audit events: $("$GH" audit verify --config "$WORK/gatehouse.toml")"
