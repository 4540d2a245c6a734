#!/usr/bin/env bash
# prometheus.sh: bffgate's /metrics passes `promtool check metrics`, and a real Prometheus server scrapes
# it: its query API returns the request count of a route that was called.
# Usage (from meson): prometheus.sh BFFGATE_BINARY
set -euo pipefail
BIN=$1
command -v prometheus >/dev/null || { echo "prometheus is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
command -v promtool >/dev/null || { echo "promtool is not installed (package prometheus)" >&2; exit 1; }
DIR=$(mktemp -d /tmp/bffgate-prom-XXXXXX)
# Below the ephemeral range, so parallel tests' outgoing connections cannot take it first.
free_port() { python3 -c 'import random,socket
while True:
    p = random.randint(20000, 31999); s = socket.socket()
    try: s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()'; }
PROM=$(free_port)
cleanup() { kill "${BPID:-}" "${PPID2:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
cat >"$DIR/gateway.json" <<JSON
{"server": {"listen": [{"address": "127.0.0.1", "port": 0}], "threads": 2, "admin": {"port": 0},
            "access_log": false},
 "functions": {"ok": {"lua": "ok.lua"}, "boom": {"lua": "boom.lua"}},
 "frontends": ["api.json"]}
JSON
echo '{"name": "api", "routes": [{"path": "/ok", "function": "ok"}, {"path": "/boom", "function": "boom"}]}' >"$DIR/api.json"
echo 'return { handler = function() return { ok = true } end }' >"$DIR/ok.lua"
echo 'return { handler = function() error("boom") end }' >"$DIR/boom.lua"
"$BIN" --ready-file "$DIR/ready.txt" "$DIR/gateway.json" 2>"$DIR/bffgate.log" &
BPID=$!
for _ in $(seq 200); do [ -f "$DIR/ready.txt" ] && break; sleep 0.05; done
PORT=$(awk '$1 == "listen" { print $3; exit }' "$DIR/ready.txt")
ADMIN=$(awk '$1 == "admin" { print $3 }' "$DIR/ready.txt")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$ADMIN/readyz" >/dev/null && break; sleep 0.05; done
for _ in $(seq 7); do curl -sf "http://127.0.0.1:$PORT/ok" >/dev/null; done
curl -s "http://127.0.0.1:$PORT/boom" >/dev/null || true

# 1. The exposition format is valid.
curl -sf "http://127.0.0.1:$ADMIN/metrics" >"$DIR/metrics.txt"
promtool check metrics <"$DIR/metrics.txt"
echo "promtool: ok"

# 2. A real Prometheus scrapes it.
cat >"$DIR/prometheus.yml" <<YML
global: { scrape_interval: 1s }
scrape_configs:
  - job_name: bffgate
    static_configs: [ { targets: ["127.0.0.1:$ADMIN"] } ]
YML
prometheus --config.file="$DIR/prometheus.yml" --storage.tsdb.path="$DIR/data" \
  --web.listen-address="127.0.0.1:$PROM" >"$DIR/prometheus.log" 2>&1 &
PPID2=$!
query='bffgate_requests_total{route="/ok",code="2xx"}'
for _ in $(seq 60); do
  value=$(curl -sf -G "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode "query=$query" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null || true)
  [ "$value" = "7" ] && break
  sleep 0.5
done
if [ "$value" != "7" ]; then
  echo "Prometheus did not report 7 requests for /ok (got '$value')" >&2
  tail -20 "$DIR/prometheus.log" >&2
  exit 1
fi
errors=$(curl -sf -G "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode 'query=bffgate_function_errors_total{route="/boom"}' |
  python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")')
[ "$errors" = "1" ] || { echo "expected 1 function error for /boom, got '$errors'" >&2; exit 1; }
echo "prometheus: scraped bffgate_requests_total=$value, function errors=$errors"
