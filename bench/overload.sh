#!/usr/bin/env bash
# overload.sh: a route offered ten times its capacity. Reports the admitted requests' p99 against the
# unloaded p99, the median of the 429 answers, and an idle route's p99 while its neighbour is flooded.
# Then the same flood against the process-wide mark instead (server.overload.max_inflight 4, the route
# itself unlimited): admitted p99 against unloaded, and the 503 answers.
# Usage: bench/overload.sh [SECONDS]   (default 5)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_PER_RUN=${1:-5}
BUILD="$ROOT/build-bench"
PORT=18081
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" >/dev/null
LOADGEN="$BUILD/bench/bench_loadgen"

taskset -c 0 "$BUILD/gateway/bffgate" --threads 1 "$ROOT/bench/overload/gateway.json" 2>/tmp/bffgate-overload.log &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/hello" >/dev/null && break; sleep 0.05; done

field() { awk -v s="$1" -v k="$2" '$1 == "status=" s { for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }'; }

echo "unloaded: /work with 2 connections (half its concurrency), /hello with 1" >&2
unloaded=$(taskset -c 1 "$LOADGEN" $PORT /work 2 "$SECONDS_PER_RUN")
hello_unloaded=$(taskset -c 1 "$LOADGEN" $PORT /hello 1 "$SECONDS_PER_RUN")
echo "overloaded: /work with 40 connections (10x its concurrency of 4), /hello with 1 alongside" >&2
taskset -c 1 "$LOADGEN" $PORT /hello 1 "$SECONDS_PER_RUN" >/tmp/bffgate-overload-hello.txt &
HELLO=$!
overloaded=$(taskset -c 1 "$LOADGEN" $PORT /work 40 "$SECONDS_PER_RUN")
wait $HELLO
hello_loaded=$(cat /tmp/bffgate-overload-hello.txt)

u99=$(echo "$unloaded" | field 200 p99_us)
o99=$(echo "$overloaded" | field 200 p99_us)
t50=$(echo "$overloaded" | field 429 p50_us)
h99u=$(echo "$hello_unloaded" | field 200 p99_us)
h99l=$(echo "$hello_loaded" | field 200 p99_us)
cat <<TABLE

| measure | value |
|---|---|
| /work unloaded: 200s per second, p99 | $(echo "$unloaded" | field 200 rps) req/s, ${u99} us |
| /work at 10x: 200s per second, p99 | $(echo "$overloaded" | field 200 rps) req/s, ${o99} us |
| /work at 10x: 429s per second, p50, p99 | $(echo "$overloaded" | field 429 rps) req/s, ${t50} us, $(echo "$overloaded" | field 429 p99_us) us |
| admitted p99 at 10x / unloaded p99 | $(awk -v a="$o99" -v b="$u99" 'BEGIN { printf "%.2f", a / b }') |
| /hello p99 alone / while /work is flooded | ${h99u} us / ${h99l} us |

bffgate --threads 1 on CPU 0, load on CPU 1, ${SECONDS_PER_RUN}s per run; /work sleeps 5 ms (ctx.sleep), concurrency 4, queue 0.
TABLE

# ---- the process-wide mark: server.overload.max_inflight ----
kill $PID 2>/dev/null; wait $PID 2>/dev/null || true
PORT=18082
taskset -c 0 "$BUILD/gateway/bffgate" --threads 1 "$ROOT/bench/overload/gateway_marks.json" 2>/tmp/bffgate-overload-marks.log &
PID=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/work" && break; sleep 0.05; done
echo "server.overload.max_inflight 4: /work with 2 connections, then 40" >&2
m_unloaded=$(taskset -c 1 "$LOADGEN" $PORT /work 2 "$SECONDS_PER_RUN")
m_overloaded=$(taskset -c 1 "$LOADGEN" $PORT /work 40 "$SECONDS_PER_RUN")
mu99=$(echo "$m_unloaded" | field 200 p99_us)
mo99=$(echo "$m_overloaded" | field 200 p99_us)
cat <<TABLE

| measure (server.overload.max_inflight 4, route unlimited) | value |
|---|---|
| /work unloaded: 200s per second, p99 | $(echo "$m_unloaded" | field 200 rps) req/s, ${mu99} us |
| /work at 10x: 200s per second, p99 | $(echo "$m_overloaded" | field 200 rps) req/s, ${mo99} us |
| /work at 10x: 503s per second, p50, p99 | $(echo "$m_overloaded" | field 503 rps) req/s, $(echo "$m_overloaded" | field 503 p50_us) us, $(echo "$m_overloaded" | field 503 p99_us) us |
| admitted p99 at 10x / unloaded p99 | $(awk -v a="$mo99" -v b="$mu99" 'BEGIN { printf "%.2f", a / b }') |
TABLE
