#!/usr/bin/env bash
# compose.sh: composed routes against a local upstream: a fan-out of three calls delayed 10 ms each at 200
# concurrent clients (latency next to the slowest call), and the gateway CPU per composed request next to a
# single-call route (calls without delay, so the gateway's own cost shows).
# bffgate (1 worker thread) on CPU 0; wrk and the upstream share CPU 1; rounds interleave.
# Usage: bench/compose.sh [SECONDS_PER_ROUND] [ROUNDS]      (defaults: 5 s, 3 rounds)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${1:-5}
ROUNDS=${2:-3}
BUILD="$ROOT/build-bench"
PORT=18081

command -v wrk >/dev/null || { echo "bench needs wrk: apt-get install wrk" >&2; exit 1; }
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" >/dev/null

WORK=$(mktemp -d)
UPSTREAM_PID=
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  [ -n "$UPSTREAM_PID" ] && kill "$UPSTREAM_PID" 2>/dev/null && wait "$UPSTREAM_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

taskset -c 1 "$BUILD/bench/bench_fast_upstream" >"$WORK/upstream.port" 2>"$WORK/upstream.log" &
UPSTREAM_PID=$!
for _ in $(seq 100); do [ -s "$WORK/upstream.port" ] && break; sleep 0.02; done
UPORT=$(head -1 "$WORK/upstream.port")

cat >"$WORK/gateway.json" <<JSON
{ "server": { "listen": [{ "address": "127.0.0.1", "port": $PORT }], "log_level": "warn", "access_log": false },
  "functions": {},
  "upstreams": { "svc": { "url": "http://127.0.0.1:$UPORT", "max_connections": 4096, "timeout_ms": 2000 } },
  "frontends": ["bench.json"] }
JSON
cat >"$WORK/bench.json" <<'JSON'
{ "name": "bench",
  "defaults": { "concurrency": 10000, "queue_max": 10000 },
  "routes": [
    { "path": "/fanout", "steps": [[
        { "name": "a", "upstream": "svc", "path": "/delay/10/a" },
        { "name": "b", "upstream": "svc", "path": "/delay/10/b" },
        { "name": "c", "upstream": "svc", "path": "/delay/10/c" } ]] },
    { "path": "/single", "steps": [{ "name": "a", "upstream": "svc", "path": "/delay/10/a" }] },
    { "path": "/fanout0", "steps": [[
        { "name": "a", "upstream": "svc", "path": "/json/a" },
        { "name": "b", "upstream": "svc", "path": "/json/b" },
        { "name": "c", "upstream": "svc", "path": "/json/c" } ]] },
    { "path": "/single0", "steps": [{ "name": "a", "upstream": "svc", "path": "/json/a" }] }
  ] }
JSON
# "functions" must be an object; bffgate refuses an entry file without one, so an empty one is given.
taskset -c 0 "$BUILD/gateway/bffgate" --threads 1 "$WORK/gateway.json" 2>"$WORK/bffgate.log" &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/single0" >/dev/null && break; sleep 0.05; done

TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }
to_us() { awk '{ v = $1 + 0; if ($1 ~ /ms$/) v *= 1000; else if ($1 ~ /[0-9]s$/) v *= 1000000; printf "%.0f", v }'; }

declare -A RPS CPU P50 P99
run() { # target connections
  local target=$1 conns=$2 before after out
  before=$(cpu_ticks)
  out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${DURATION}s" --latency "http://127.0.0.1:$PORT/$target")
  after=$(cpu_ticks)
  local reqs rps p50 p99 cpu_us
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1 == "50%" {print $2}' | to_us)
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}' | to_us)
  cpu_us=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$reqs" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
  echo "round $round  $target c=$conns  rps=$rps  p50=$p50  p99=$p99  cpu_us_per_req=$cpu_us" >&2
  RPS[$target]+="$rps "; CPU[$target]+="$cpu_us "; P50[$target]+="$p50 "; P99[$target]+="$p99 "
}
for round in $(seq "$ROUNDS"); do
  run fanout 200
  run single 200
  run fanout0 64
  run single0 64
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n| route | clients | req/s (median) | p50 (us) | p99 (us) | server CPU us/req |\n|---|---|---|---|---|---|\n'
for target in fanout single fanout0 single0; do
  conns=200; [ "${target%0}" != "$target" ] && conns=64
  printf '| %s | %s | %s | %s | %s | %s |\n' "$target" "$conns" "$(echo "${RPS[$target]}" | median)" \
    "$(echo "${P50[$target]}" | median)" "$(echo "${P99[$target]}" | median)" "$(echo "${CPU[$target]}" | median)"
done
echo
echo "fanout: 3 calls of 10 ms in one group; single: 1 call of 10 ms; *0: the same without delay."
echo "wrk -t1, ${DURATION}s x $ROUNDS rounds; bffgate --threads 1 on CPU 0, wrk and the upstream on CPU 1; $(nproc) CPUs, $(uname -r)"
