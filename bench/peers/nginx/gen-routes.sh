#!/usr/bin/env bash
# gen-routes.sh: writes the nginx peer's 10,000 routes, `location = /rN/item` for N in 0..9999, each setting
# $route_id and answering through lua/route.lua with {"route": N}.
# Usage: gen-routes.sh OUT_FILE [COUNT]      (COUNT defaults to 10000)
set -euo pipefail
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 OUT_FILE [COUNT]" >&2; exit 2; }
OUT=$1
COUNT=${2:-10000}
PEERS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
awk -v count="$COUNT" -v lua="$PEERS/nginx/lua/route.lua" 'BEGIN {
    for (n = 0; n < count; n++)
        printf "location = /r%d/item { set $route_id %d; content_by_lua_file %s; }\n", n, n, lua
}' >"$OUT"
