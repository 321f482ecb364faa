#!/usr/bin/env bash
# Idle sessions: N authenticated sessions held open through Gatehouse (each holds its
# upstream connection), then the proxy's resident memory growth and the latency of a new
# connection (connect, authenticate, SELECT 1) while they are held, against the same before.
# Not part of `make test`.
#
# Usage: bench/idle.sh [sessions (1000)]
# Needs the repository's .venv (psycopg), created by `make venv`.
N=${1:-1000}
export PG_MAX_CONNECTIONS=$((N + 50))
source "$(dirname "$0")/lib.sh"
ulimit -n $((4 * N + 256)) 2>/dev/null || true
# GATEHOUSE_EXTRA_TOML: extra configuration for the proxy (e.g. "[limits]\nsession_threads = 2").
start_gatehouse gatehouse "$(printf "%b" "${GATEHOUSE_EXTRA_TOML:-}")"
TOKEN=$("$GH" token issue --config "$WORK/gatehouse.toml" --identity idle-bot --kind agent --ttl 2h)
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$GH_PID/status"; }
"$ROOT/.venv/bin/python" - "$GH_PORT" "$TOKEN" "$N" "$GH_PID" <<'PY'
import statistics, sys, time
import psycopg
port, token, n, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
dsn = dict(host="127.0.0.1", port=port, user="idle-bot", password=token, dbname="bench")

def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])

def connect_ms(samples=30):
    out = []
    for _ in range(samples):
        t = time.perf_counter()
        with psycopg.connect(**dsn) as c:
            c.execute("SELECT 1").fetchone()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)

connect_ms(5)  # warm-up: first connections, catalog load, allocator pools
before_rss, before_ms = rss_kb(), connect_ms()
held = []
t = time.perf_counter()
for i in range(n):
    c = psycopg.connect(**dsn, autocommit=True)
    c.execute("SELECT 1")
    held.append(c)
opened_s = time.perf_counter() - t
time.sleep(1)
during_rss, during_ms = rss_kb(), connect_ms()
growth_mb = (during_rss - before_rss) / 1024
print(f"\nidle sessions held          {n} (opened in {opened_s:.1f} s)")
print(f"proxy RSS                   {before_rss / 1024:.1f} MB -> {during_rss / 1024:.1f} MB: "
      f"+{growth_mb:.1f} MB, {(during_rss - before_rss) / n:.1f} KB per session (target <= 50 MB, <= 50 KB)")
print(f"new connection + SELECT 1   {before_ms:.2f} ms before, {during_ms:.2f} ms while held "
      f"({during_ms / before_ms:.2f}x)")
import os
if os.environ.get("BENCH_SUMMARY"):
    with open(os.environ["BENCH_SUMMARY"], "a") as f:
        f.write(f"idle_growth_mb\t{growth_mb:.1f}\n")
        f.write(f"idle_kb_per_session\t{(during_rss - before_rss) / n:.1f}\n")
        f.write(f"idle_connect_ratio\t{during_ms / before_ms:.2f}\n")
for c in held:
    c.close()
PY
