#!/usr/bin/env bash
# reload.sh: how fast a changed function goes live (file write -> new version answering, 50 ms debounce
# included), and what a cold start costs a small Lua function.
# Usage: bench/reload.sh [ROUNDS]   (default 50)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build-bench"
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" >/dev/null
DIR=$(mktemp -d)
mkdir -p "$DIR/frontends" "$DIR/fn"
cat >"$DIR/gateway.json" <<JSON
{"server": {"listen": [{"address": "127.0.0.1", "port": 18082}], "threads": 1, "log_level": "warn"},
 "functions": {"app": {"lua": "fn/app.lua"}, "other": {"lua": "fn/other.lua"}},
 "frontends": ["frontends/app.json"]}
JSON
echo '{"name": "app", "routes": [{"path": "/app", "function": "app"}, {"path": "/other", "function": "other"}]}' >"$DIR/frontends/app.json"
echo "return { handler = function() return { release = 'initial' } end }" >"$DIR/fn/app.lua"
echo "return { handler = function() return { other = true } end }" >"$DIR/fn/other.lua"
"$BUILD/gateway/bffgate" "$DIR/gateway.json" 2>"$DIR/log" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true; rm -rf "$DIR"' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:18082/app >/dev/null && break; sleep 0.05; done
"$BUILD/bench/bench_reload_latency" 18082 /app "$DIR/fn/app.lua" "${1:-50}"
"$BUILD/bench/bench_cold_start"
