#!/usr/bin/env bash
# lb-demo.sh: two bffgate instances behind nginx under steady load; while the load runs, instance A reloads a
# changed config and instance B restarts (SIGTERM: drain, exit; then a new process). Prints what the clients
# saw: every answer should be 200 and no connection should fail. See docs/scaling.md.
#
# Usage: deploy/lb-demo.sh [SECONDS]        (default 12; needs nginx: apt-get install nginx)
# Loopback only: nginx on 127.0.0.1:18200, the instances on 18201 and 18202 (admin 18211, 18212).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECONDS_TOTAL=${1:-12}
BUILD="$ROOT/build"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "lb-demo.sh needs nginx: apt-get install nginx" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$BUILD/gateway/bffgate" ] && [ -x "$BUILD/bench/bench_loadgen" ] || "$ROOT/scripts/setup.sh"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Two copies of the shipped config, each on its own ports (its shop_api upstream is itself).
for i in 1 2; do
  mkdir -p "$WORK/b$i"
  cp -r "$ROOT/config/." "$WORK/b$i/"
  sed -i -e "s/\"port\": 8080/\"port\": 1820$i/" -e "s/\"port\": 9901/\"port\": 1821$i/" \
    -e "s#127.0.0.1:8080/internal#127.0.0.1:1820$i/internal#" -e 's/"log_level": "info"/"log_level": "warn"/' \
    "$WORK/b$i/gateway.json"
done

start() { # start instance $1 and wait until it is ready
  rm -f "$WORK/b$1/ready"
  "$BUILD/gateway/bffgate" --lib-path "$BUILD/functions/examples" --ready-file "$WORK/b$1/ready" \
    "$WORK/b$1/gateway.json" >>"$WORK/b$1.log" 2>&1 &
  PID[$1]=$!
  PIDS+=("$!")
  for _ in $(seq 200); do [ -s "$WORK/b$1/ready" ] && return 0; sleep 0.05; done
  echo "instance $1 did not start:" >&2; cat "$WORK/b$1.log" >&2; exit 1
}
declare -A PID
start 1
start 2

cat >"$WORK/nginx.conf" <<EOF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  upstream bffgate {
    server 127.0.0.1:18201 max_fails=0;
    server 127.0.0.1:18202 max_fails=0;
    keepalive 32;
  }
  server {
    listen 127.0.0.1:18200;
    # nginx closes a client connection after 1000 requests by default; the load generator would count the
    # request it sent as that happened as failed. Not what this demonstrates.
    keepalive_requests 1000000;
    keepalive_timeout 60s;
    location / {
      proxy_pass http://bffgate;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # A connection refused by a restarting instance, or closed by one draining, is retried on the other.
      proxy_next_upstream error timeout http_503;
      proxy_next_upstream_tries 2;
    }
  }
}
EOF
"$NGINX" -p "$WORK" -c "$WORK/nginx.conf" 2>>"$WORK/nginx-error.log"
for _ in $(seq 100); do curl -fs http://127.0.0.1:18200/web/products >/dev/null && break; sleep 0.05; done

echo "load: 16 connections for ${SECONDS_TOTAL}s through nginx to GET /web/products"
"$BUILD/bench/bench_loadgen" 18200 /web/products 16 "$SECONDS_TOTAL" >"$WORK/load.txt" &
LOAD=$!

sleep $((SECONDS_TOTAL / 4))
echo "instance 1: a function changes; POST /admin/reload"
sed -i 's/hello from Lua/hello from Lua, reloaded/' "$WORK/b1/functions/hello.lua"
curl -fs -X POST http://127.0.0.1:18211/admin/reload | head -c 200; echo

sleep $((SECONDS_TOTAL / 4))
echo "instance 2: SIGTERM (drain and exit), then a new process"
kill -TERM "${PID[2]}"
wait "${PID[2]}" && echo "instance 2 exited 0 after draining" || echo "instance 2 exited with $?"
start 2
echo "instance 2 serving again"

wait "$LOAD"
echo "what the clients saw:"
cat "$WORK/load.txt"
echo "nginx retried on the other instance: $(grep -c 'upstream' "$WORK/nginx-error.log" || true) times (refused or closed connections)"
if grep -q '^errors=' "$WORK/load.txt" || grep '^status=' "$WORK/load.txt" | grep -vq '^status=200 '; then
  echo "FAILED: some requests did not get 200" >&2
  exit 1
fi
echo "OK: every request got 200 while one instance reloaded and the other restarted"
