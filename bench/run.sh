#!/usr/bin/env bash
# run.sh: wrk runs of bffgate's hello routes (Lua; Lua behind JWT HS256 with one reused token; C inline on the loop;
# C on the function pool), with server CPU time per request.
# Server pinned to CPU 0, wrk to CPU 1; rounds interleave so machine drift hits every workload alike.
# Usage: bench/run.sh [SECONDS_PER_ROUND] [ROUNDS]      (defaults: 5 s, 3 rounds)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DURATION=${1:-5}
ROUNDS=${2:-3}
BUILD="$ROOT/build-bench"
PORT=18080
CONNS=${BENCH_CONNECTIONS:-64}

command -v wrk >/dev/null || { echo "bench needs wrk: apt-get install wrk" >&2; exit 1; }
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" >/dev/null

taskset -c 0 "$BUILD/gateway/bffgate" --threads 1 --lib-path "$BUILD/functions/examples" \
  "$ROOT/bench/config/gateway.json" 2>/tmp/bffgate-bench.log &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/hello/c" >/dev/null && break; sleep 0.05; done

# An HS256 token for the protected route (bench/config/bench.secret), valid for an hour.
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }
SECRET=$(tr -d '\n' <"$ROOT/bench/config/bench.secret")
JWT_HEAD=$(printf '{"alg":"HS256","typ":"JWT"}' | b64url)
JWT_BODY=$(printf '{"sub":"bench","exp":%d}' $(($(date +%s) + 3600)) | b64url)
JWT_SIG=$(printf '%s.%s' "$JWT_HEAD" "$JWT_BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64url)
TOKEN="$JWT_HEAD.$JWT_BODY.$JWT_SIG"
curl -sf -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/auth/hello/lua" >/dev/null ||
  { echo "the protected route refused the bench token" >&2; exit 1; }
url_of() { case $1 in lua_jwt) echo "http://127.0.0.1:$PORT/auth/hello/lua" ;; *) echo "http://127.0.0.1:$PORT/hello/$1" ;; esac; }

TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

# wrk prints latencies as 812.00us, 1.20ms or 2.00s: convert to microseconds.
to_us() { awk '{ v = $1 + 0; if ($1 ~ /ms$/) v *= 1000; else if ($1 ~ /[0-9]s$/) v *= 1000000; printf "%.0f", v }'; }

declare -A RPS CPU P50 P99
for round in $(seq "$ROUNDS"); do
  for target in lua lua_jwt c c_pool; do
    before=$(cpu_ticks)
    out=$(taskset -c 1 wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H "Authorization: Bearer $TOKEN" "$(url_of "$target")")
    after=$(cpu_ticks)
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1 == "50%" {print $2}' | to_us)
    p99=$(echo "$out" | awk '$1 == "99%" {print $2}' | to_us)
    cpu_us=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="$reqs" 'BEGIN { printf "%.2f", t / hz * 1e6 / n }')
    echo "round $round  $target  rps=$rps  p50=$p50  p99=$p99  cpu_us_per_req=$cpu_us" >&2
    RPS[$target]+="$rps "; CPU[$target]+="$cpu_us "; P50[$target]+="$p50 "; P99[$target]+="$p99 "
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '\n| route | req/s (median) | p50 (us) | p99 (us) | server CPU us/req | req/s vs C hello | req/s vs Lua hello |\n|---|---|---|---|---|---|---|\n'
c_rps=$(echo "${RPS[c]}" | median)
lua_rps=$(echo "${RPS[lua]}" | median)
for target in lua lua_jwt c c_pool; do
  rps=$(echo "${RPS[$target]}" | median)
  printf '| hello/%s | %s | %s | %s | %s | %.2f | %.2f |\n' "$target" "$rps" "$(echo "${P50[$target]}" | median)" \
    "$(echo "${P99[$target]}" | median)" "$(echo "${CPU[$target]}" | median)" "$(awk -v a="$rps" -v b="$c_rps" 'BEGIN{print a/b}')" \
    "$(awk -v a="$rps" -v b="$lua_rps" 'BEGIN{print a/b}')"
done
echo
echo "wrk -t1 -c$CONNS, ${DURATION}s x $ROUNDS rounds; bffgate --threads 1 on CPU 0, wrk on CPU 1; $(nproc) CPUs, $(uname -r)"
