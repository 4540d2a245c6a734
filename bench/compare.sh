#!/usr/bin/env bash
# compare.sh: bffgate against the gateways users would pick instead, on identical workloads, in one run.
#
# Targets (one worker process or thread each, pinned to CPU 0): bffgate, nginx + Lua (the OpenResty model
# Kong and APISIX build on), Node.js + Fastify, and a bare h2o handler answering from memory (bffgate's
# ceiling; hello only). wrk (and, for the fan-out, the local upstream) run on CPU 1. Rounds interleave
# targets and workloads (A B C A B C) so that drift in this shared VM hits all alike.
#
# Workloads: hello (a small JSON object from the platform's function: Lua, Lua, JS, memory),
# transform (a 2 KB JSON order reshaped), fanout (three upstream calls of 10 ms in parallel, merged),
# jwt (an HS256-protected hello, one reused token), jwt_distinct (the same with 4,096 distinct tokens in
# turn: more than bffgate's per-worker cache of verified tokens holds, so every request is verified, as the
# peers do), c_hello (bffgate's C function inline, next to the bare
# handler), routes (one of 10,000 routes); and two at a fixed offered load instead of as fast as possible:
# hello_fixed (BENCH_RATE, default 5000 requests/s) and fanout_fixed (BENCH_FANOUT_RATE, default 1000/s),
# sent by bench_loadgen on a schedule, each latency counted from when its request was due (a target that
# falls behind is charged for the queue it causes): what the gateway adds to latency at a load it carries.
#
# Reports per target and workload: requests/s, p50 and p99 latency, server CPU microseconds per request
# (from /proc, every process of the target), peak RSS, and the ratios to bffgate. Writes
# bench/results/compare.md and, when gnuplot is installed, bench/results/compare.png.
#
# Usage: bench/compare.sh [--install] [--smoke] [SECONDS_PER_RUN] [ROUNDS]    (defaults: 5 s, 3 rounds)
#   --install  install the peers first (bench/peers/install.sh: apt-get and npm)
#   --smoke    1 s runs, 1 round, 8 connections, and only the targets that are installed: checks that the
#              command works (the test suite runs this), measures nothing worth reading
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS="$ROOT/bench/peers"
INSTALL=0
SMOKE=0
while [ $# -gt 0 ]; do
  case $1 in
    --install) INSTALL=1; shift ;;
    --smoke) SMOKE=1; shift ;;
    *) break ;;
  esac
done
DURATION=${1:-5}
ROUNDS=${2:-3}
CONNS=${BENCH_CONNECTIONS:-64}
if [ "$SMOKE" = 1 ]; then DURATION=1; ROUNDS=1; CONNS=8; fi
BUILD=${BENCH_BUILD:-$ROOT/build-bench}
OUT=${BENCH_OUT:-$ROOT/bench/results}

command -v wrk >/dev/null || { echo "compare.sh needs wrk: apt-get install wrk" >&2; exit 1; }
[ "$INSTALL" = 1 ] && "$PEERS/install.sh"
if [ ! -x "$BUILD/gateway/bffgate" ] || [ "$SMOKE" = 0 ]; then
  [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" --buildtype=release -Dtests=false >/dev/null
  ninja -C "$BUILD" >/dev/null
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# ---- the upstream for the fan-out (CPU 1) ----
taskset -c 1 "$BUILD/bench/bench_fast_upstream" >"$WORK/upstream.port" 2>"$WORK/upstream.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/upstream.port" ] && break; sleep 0.02; done
UPORT=$(head -1 "$WORK/upstream.port")

# ---- bffgate's config: the same workloads ----
SECRET="bench-only-secret-not-for-production-0123456789"
mkdir -p "$WORK/bffgate"
printf '%s' "$SECRET" >"$WORK/bffgate/jwt.secret"
cat >"$WORK/bffgate/gateway.json" <<JSON
{ "server": { "listen": [{ "address": "127.0.0.1", "port": 0 }], "log_level": "warn", "access_log": false },
  "defaults": { "concurrency": 100000, "queue_max": 100000 },
  "functions": {
    "hello": { "lua": "hello.lua" }, "transform": { "lua": "transform.lua" }, "route": { "lua": "route.lua" },
    "whoami": { "lua": "whoami.lua" }, "hello_c": { "c": "$BUILD/functions/examples/hello.so", "symbol": "hello", "inline": true }
  },
  "upstreams": { "svc": { "url": "http://127.0.0.1:$UPORT", "max_connections": 4096, "timeout_ms": 2000 } },
  "frontends": ["jwt.json", "bench.json"] }
JSON
cat >"$WORK/bffgate/hello.lua" <<'LUA'
return { handler = function(event, ctx) return { message = "hello, world" } end }
LUA
cat >"$WORK/bffgate/transform.lua" <<'LUA'
return { handler = function(event, ctx)
  local o = event.json
  if type(o) ~= "table" or type(o.items) ~= "table" then
    return { statusCode = 400, body = { error = "send an order as JSON" } }
  end
  local total, skus = 0, json.array({})
  for i, it in ipairs(o.items) do
    total = total + it.qty * it.priceCents
    skus[i] = it.sku
  end
  return { orderId = o.id, customer = o.customer.name, itemCount = #o.items, totalCents = total, skus = skus }
end }
LUA
cat >"$WORK/bffgate/route.lua" <<'LUA'
return { handler = function(event, ctx) return { route = tonumber(event.route:match("^/r(%d+)/item$")) } end }
LUA
cat >"$WORK/bffgate/whoami.lua" <<'LUA'
return { handler = function(event, ctx) return { message = "hello, world", sub = event.claims.sub } end }
LUA
cat >"$WORK/bffgate/jwt.json" <<'JSON'
{ "name": "jwt", "match": { "path_prefix": "/jwt" },
  "auth": { "jwt": { "keys": [{ "alg": "HS256", "secret_file": "jwt.secret" }] } },
  "routes": [{ "path": "/hello", "function": "whoami" }] }
JSON
{
  printf '{ "name": "bench", "routes": [\n'
  printf '  { "path": "/hello", "function": "hello" },\n'
  printf '  { "path": "/c_hello", "function": "hello_c" },\n'
  printf '  { "method": "POST", "path": "/transform", "function": "transform" },\n'
  printf '  { "path": "/fanout", "steps": [[\n'
  printf '      { "name": "a", "upstream": "svc", "path": "/delay/10/a" },\n'
  printf '      { "name": "b", "upstream": "svc", "path": "/delay/10/b" },\n'
  printf '      { "name": "c", "upstream": "svc", "path": "/delay/10/c" } ]] }'
  for i in $(seq 0 9999); do printf ',\n  { "path": "/r%d/item", "function": "route" }' "$i"; done
  printf '\n] }\n'
} >"$WORK/bffgate/bench.json"

# ---- starting the targets (all on CPU 0; only one is loaded at a time) ----
port_of_ready() { # ready-file: "listen ADDR PORT" lines
  for _ in $(seq 200); do [ -s "$1" ] && break; sleep 0.05; done
  awk '$1 == "listen" {print $3; exit}' "$1"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { # url
  for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.05; done
  echo "compare.sh: $1 did not answer" >&2
  return 1
}

declare -A PORT ROOTPID
TARGETS=()
start_bffgate() {
  taskset -c 0 "$BUILD/gateway/bffgate" --threads 1 --ready-file "$WORK/bffgate/ready.json" \
    "$WORK/bffgate/gateway.json" 2>"$WORK/bffgate/log" &
  ROOTPID[bffgate]=$!
  PIDS+=($!)
  PORT[bffgate]=$(port_of_ready "$WORK/bffgate/ready.json")
  wait_http "http://127.0.0.1:${PORT[bffgate]}/hello"
  TARGETS+=(bffgate)
}
start_nginx() {
  command -v nginx >/dev/null && [ -x "$PEERS/nginx/run.sh" ] || { echo "compare.sh: nginx + Lua not installed (bench/compare.sh --install)" >&2; return 0; }
  PORT[nginx_lua]=$(free_port)
  mkdir -p "$WORK/nginx"
  taskset -c 0 "$PEERS/nginx/run.sh" "${PORT[nginx_lua]}" "$UPORT" "$WORK/nginx" >"$WORK/nginx/out.log" 2>&1 &
  ROOTPID[nginx_lua]=$!
  PIDS+=($!)
  wait_http "http://127.0.0.1:${PORT[nginx_lua]}/hello" && TARGETS+=(nginx_lua)
}
start_fastify() {
  [ -d "$PEERS/fastify/node_modules" ] || { echo "compare.sh: Fastify not installed (bench/compare.sh --install)" >&2; return 0; }
  PORT[fastify]=$(free_port)
  PORT="${PORT[fastify]}" UPSTREAM_PORT="$UPORT" taskset -c 0 node "$PEERS/fastify/server.js" >"$WORK/fastify.log" 2>&1 &
  ROOTPID[fastify]=$!
  PIDS+=($!)
  wait_http "http://127.0.0.1:${PORT[fastify]}/hello" && TARGETS+=(fastify)
}
start_bare() {
  PORT[bare_h2o]=$(free_port)
  taskset -c 0 "$BUILD/bench/bench_bare_h2o" "${PORT[bare_h2o]}" >"$WORK/bare.log" 2>&1 &
  ROOTPID[bare_h2o]=$!
  PIDS+=($!)
  wait_http "http://127.0.0.1:${PORT[bare_h2o]}/hello" && TARGETS+=(bare_h2o)
}
start_bffgate
start_nginx
start_fastify
start_bare

# ---- measuring ----
TOKEN=$("$PEERS/mint-token.sh" "$SECRET" bench-user 3600)
# jwt_distinct: 4,096 tokens (subjects user-0 .. user-4095) sent in turn, so none is in a cache of 1,024.
python3 - "$SECRET" "$WORK/jwt_distinct.lua" <<'PY'
import base64, hashlib, hmac, json, sys, time
secret, out = sys.argv[1].encode(), sys.argv[2]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(b'{"alg":"HS256","typ":"JWT"}')
now = int(time.time())
with open(out, "w") as f:
    f.write("local tokens = {\n")
    for i in range(4096):
        body = b64(json.dumps({"sub": "user-%d" % i, "iat": now, "exp": now + 3600}, separators=(",", ":")).encode())
        sig = b64(hmac.new(secret, (head + "." + body).encode(), hashlib.sha256).digest())
        f.write('  "%s.%s.%s",\n' % (head, body, sig))
    f.write("}\nlocal i = 0\n")
    f.write("request = function()\n  i = i % #tokens + 1\n")
    f.write('  return wrk.format(nil, nil, { Authorization = "Bearer " .. tokens[i] })\nend\n')
PY
cat >"$WORK/transform.lua" <<LUA
wrk.method = "POST"
wrk.body = [==[$(cat "$PEERS/order.json")]==]
wrk.headers["Content-Type"] = "application/json"
LUA

pids_of() { # root pid: it and its descendants
  local all=($1) frontier=($1) next
  while [ ${#frontier[@]} -gt 0 ]; do
    next=()
    for p in "${frontier[@]}"; do
      for c in $(pgrep -P "$p" 2>/dev/null); do all+=("$c"); next+=("$c"); done
    done
    frontier=("${next[@]}")
  done
  echo "${all[@]}"
}
cpu_ticks() { local t=0; for p in $(pids_of "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }
# Memory the target holds: the proportional set size (shared pages split between nginx's master and worker,
# so they are not counted twice), summed over its processes; sampled after each run, the peak kept.
pss_kb() { local t=0; for p in $(pids_of "$1"); do t=$((t + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0))); done; echo $t; }
declare -A PEAK
note_memory() { local kb; kb=$(pss_kb "${ROOTPID[$1]}"); [ "$kb" -gt "${PEAK[$1]:-0}" ] && PEAK[$1]=$kb; return 0; }
TICK=$(getconf CLK_TCK)
to_us() { awk '{ v = $1 + 0; if ($1 ~ /ms$/) v *= 1000; else if ($1 ~ /[0-9]s$/) v *= 1000000; printf "%.0f", v }'; }

path_of() { # workload
  case $1 in
    hello | hello_fixed) echo /hello ;; c_hello) echo /c_hello ;; transform) echo /transform ;;
    fanout | fanout_fixed) echo /fanout ;;
    jwt | jwt_distinct) echo /jwt/hello ;; routes) echo /r7777/item ;;
  esac
}
applies() { # target workload
  case $1/$2 in
    bare_h2o/hello | bare_h2o/c_hello | bare_h2o/hello_fixed) return 0 ;;
    bare_h2o/*) return 1 ;;
    bffgate/*) return 0 ;;
    */c_hello) return 1 ;;
    *) return 0 ;;
  esac
}
WORKLOADS=(${BENCH_WORKLOADS:-hello transform fanout jwt jwt_distinct c_hello routes hello_fixed fanout_fixed})
RATE=${BENCH_RATE:-5000}
FANOUT_RATE=${BENCH_FANOUT_RATE:-1000}
if [ "$SMOKE" = 1 ]; then RATE=500; FANOUT_RATE=100; fi
declare -A RPS P50 P99 CPU ERR
run_one() { # target workload
  local t=$1 w=$2 url args=() path conns=$CONNS
  path=$(path_of "$w")
  [ "$t" = bare_h2o ] && path=/hello
  url="http://127.0.0.1:${PORT[$t]}$path"
  [ "$w" = transform ] && args+=(-s "$WORK/transform.lua")
  [ "$w" = jwt ] && args+=(-H "Authorization: Bearer $TOKEN")
  [ "$w" = jwt_distinct ] && args+=(-s "$WORK/jwt_distinct.lua")
  [ "$w" = fanout ] && [ "$SMOKE" = 0 ] && conns=200
  local before after out reqs rps p50 p99 cpu non2xx
  before=$(cpu_ticks "${ROOTPID[$t]}")
  case $w in
    *_fixed)
      local rate=$RATE
      [ "$w" = fanout_fixed ] && rate=$FANOUT_RATE
      out=$(taskset -c 1 "$BUILD/bench/bench_loadgen" "${PORT[$t]}" "$path" "$conns" "$DURATION" "$rate" 2>&1)
      reqs=$(echo "$out" | awk -F'[ =]' '/^status=/ {n += $4} END {print n + 0}')
      rps=$(echo "$out" | awk -F'[ =]' '/^status=200 / {print $6}')
      p50=$(echo "$out" | awk -F'[ =]' '/^status=200 / {print $8}')
      p99=$(echo "$out" | awk -F'[ =]' '/^status=200 / {print $10}')
      non2xx=$(echo "$out" | awk -F'[ =]' '/^status=/ && $2 != 200 {n += $4} /^errors=/ {n += $2} END {print n + 0}')
      ;;
    *)
      out=$(taskset -c 1 wrk -t1 -c"$conns" -d"${DURATION}s" --latency "${args[@]}" "$url" 2>&1)
      reqs=$(echo "$out" | awk '/requests in/ {print $1}')
      rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
      p50=$(echo "$out" | awk '$1 == "50%" {print $2}' | to_us)
      p99=$(echo "$out" | awk '$1 == "99%" {print $2}' | to_us)
      non2xx=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
      ;;
  esac
  after=$(cpu_ticks "${ROOTPID[$t]}")
  note_memory "$t"
  cpu=$(awk -v t=$((after - before)) -v hz="$TICK" -v n="${reqs:-0}" 'BEGIN { printf "%.2f", (n > 0 ? t / hz * 1e6 / n : 0) }')
  echo "round $round  $w  $t  rps=$rps  p50=$p50  p99=$p99  cpu_us=$cpu  non2xx=${non2xx:-0}" >&2
  local k="$t/$w"
  RPS[$k]+="${rps:-0} "; P50[$k]+="${p50:-0} "; P99[$k]+="${p99:-0} "; CPU[$k]+="$cpu "
  ERR[$k]=$(( ${ERR[$k]:-0} + ${non2xx:-0} ))
}
for round in $(seq "$ROUNDS"); do
  for w in "${WORKLOADS[@]}"; do
    for t in "${TARGETS[@]}"; do
      applies "$t" "$w" && run_one "$t" "$w"
    done
  done
done

# ---- the report ----
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
mkdir -p "$OUT"
REPORT="$OUT/compare.md"
DATA="$OUT/compare.dat"
{
  echo "| workload | target | req/s | p50 (us) | p99 (us) | CPU us/req | memory (MB) | req/s vs bffgate | CPU vs bffgate | non-2xx |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
} >"$REPORT"
: >"$DATA"
for w in "${WORKLOADS[@]}"; do
  base_rps=$(echo "${RPS[bffgate/$w]:-}" | median)
  base_cpu=$(echo "${CPU[bffgate/$w]:-}" | median)
  for t in "${TARGETS[@]}"; do
    k="$t/$w"
    [ -n "${RPS[$k]:-}" ] || continue
    rps=$(echo "${RPS[$k]}" | median); p50=$(echo "${P50[$k]}" | median); p99=$(echo "${P99[$k]}" | median)
    cpu=$(echo "${CPU[$k]}" | median)
    rss=$(awk -v kb="${PEAK[$t]:-0}" 'BEGIN { printf "%.1f", kb / 1024 }')
    echo "| $w | $t | $rps | $p50 | $p99 | $cpu | $rss | $(ratio "$rps" "$base_rps") | $(ratio "$cpu" "$base_cpu") | ${ERR[$k]} |" >>"$REPORT"
    echo "$w $t $rps $p99" >>"$DATA"
  done
done
{
  echo
  echo "wrk -t1 -c$CONNS (fanout: -c200), ${DURATION}s x $ROUNDS rounds, medians; targets on CPU 0 (one worker each),"
  echo "*_fixed: bench_loadgen, $CONNS connections at a fixed $RATE requests/s (fan-out: $FANOUT_RATE/s), latency from when each was due;"
  echo "wrk and the fan-out upstream on CPU 1; $(nproc) CPUs, $(uname -r), $(date -u +%Y-%m-%d)."
  echo "Memory: the largest proportional set size (PSS, shared pages split) summed over the target's processes"
  echo "after any run (all workloads are loaded at once: bffgate and the peers hold the 10,000 routes throughout)."
} >>"$REPORT"
cat "$REPORT"
if command -v gnuplot >/dev/null && [ "$SMOKE" = 0 ]; then
  "$ROOT/bench/compare-chart.sh" "$DATA" "$OUT/compare.png" && echo "chart: $OUT/compare.png"
fi
