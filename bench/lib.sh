# Shared set-up for the benchmark scripts: a throwaway PostgreSQL on a free port and a
# release build of Gatehouse. Source it; it defines WORK, BINDIR, PG_PORT, GH and helpers,
# and removes everything on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# GATEHOUSE_BIN runs another build (e.g. an earlier commit's, to compare) instead of this tree's.
if [ -n "${GATEHOUSE_BIN:-}" ]; then
  GH=$GATEHOUSE_BIN
else
  cargo build --release -q -p gatehouse
  GH="$ROOT/target/release/gatehouse"
fi
BINDIR=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")
WORK=$(mktemp -d /tmp/gatehouse-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  pkill -f "$WORK/" 2>/dev/null || true
  as_pg "$BINDIR/pg_ctl" -D "$WORK/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] && chown postgres "$WORK"

PG_PORT=$(free_port)
as_pg "$BINDIR/initdb" -D "$WORK/pg" -U postgres --auth=trust --no-sync -E UTF8 --locale=C >/dev/null
as_pg "$BINDIR/pg_ctl" -D "$WORK/pg" -l "$WORK/pg.log" -w \
  -o "-p $PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=${PG_MAX_CONNECTIONS:-100} -c shared_buffers=256MB" start >/dev/null
as_pg "$BINDIR/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres bench

# start_gatehouse NAME EXTRA_TOML: writes $WORK/NAME.toml, starts serve, sets GH_PORT and GH_PID.
start_gatehouse() {
  GH_PORT=$(free_port)
  cat > "$WORK/$1.toml" <<TOML
data_dir = "$1-data"
[listen]
postgres = "127.0.0.1:$GH_PORT"
[[targets]]
name = "bench"
upstream = "postgresql://postgres@127.0.0.1:$PG_PORT/bench"
$2
TOML
  GATEHOUSE_LOG=warn "$GH" serve --config "$WORK/$1.toml" 2>"$WORK/$1.log" &
  GH_PID=$!
  PIDS+=("$GH_PID")
  for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$GH_PORT) 2>/dev/null && return 0; sleep 0.1; done
  cat "$WORK/$1.log" >&2
  return 1
}
