#!/usr/bin/env bash
# hook_cost.sh: the instructions the Lua limits cost on the hello route (callgrind counts instructions,
# so the result does not depend on machine noise). Prints the share of the counting allocator
# (warm_alloc, the whole function) and of the deadline/time-slice hook in all user-space instructions.
# Usage: bench/hook_cost.sh [SECONDS]   (default 5)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$ROOT/build-bench"
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" "$ROOT" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" >/dev/null
OUT=$(mktemp -d)
valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.out" "$BUILD/gateway/bffgate" --threads 1 \
  --lib-path "$BUILD/functions/examples" "$ROOT/bench/config/gateway.json" 2>/dev/null &
PID=$!
for _ in $(seq 200); do curl -sf http://127.0.0.1:18080/hello/lua >/dev/null && break; sleep 0.1; done
"$BUILD/bench/bench_loadgen" 18080 /hello/lua 1 "${1:-5}"
kill -TERM $PID; wait $PID || true
callgrind_annotate "$OUT/cg.out" 2>/dev/null | awk '
  /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1 }
  /:warm_alloc / { gsub(",", "", $1); alloc = $1 }
  /:deadline_hook / { gsub(",", "", $1); hook += $1 }
  /:lua_sethook / { gsub(",", "", $1); hook += $1 }
  /:fn_now_ns / { gsub(",", "", $1); hook += $1 }
  END { printf "user-space instructions: %d\ncounting allocator (warm_alloc, self): %.2f%%\nhook (deadline_hook + lua_sethook + clock reads): %.2f%%\n", total, 100 * alloc / total, 100 * hook / total }'
rm -rf "$OUT"
