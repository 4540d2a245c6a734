#!/usr/bin/env bash
# run.sh: renders nginx.conf.in and the 10,000 routes into WORKDIR, then execs nginx in the foreground (one
# worker). Stop it with SIGTERM (or SIGQUIT for a graceful stop) to the pid this script had.
# Usage: run.sh PORT UPSTREAM_PORT WORKDIR
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 PORT UPSTREAM_PORT WORKDIR" >&2; exit 2; }
PORT=$1
UPSTREAM_PORT=$2
for p in "$PORT" "$UPSTREAM_PORT"; do
  case $p in '' | *[!0-9]*) echo "run.sh: ports must be numbers, got '$p'" >&2; exit 2 ;; esac
done
mkdir -p "$3"
WORKDIR=$(cd "$3" && pwd)
PEERS=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
[ -x "$NGINX" ] || { echo "run.sh: nginx not found: bench/peers/install.sh installs it" >&2; exit 1; }
[ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] ||
  { echo "run.sh: lua-nginx-module not found: bench/peers/install.sh installs it" >&2; exit 1; }

# Paths go into sed replacements and nginx directives: refuse the characters that would break either.
case "$WORKDIR$PEERS" in *[\|\;\ \"\'\\{}]*) echo "run.sh: paths with | ; space quotes or braces are not supported" >&2; exit 2 ;; esac

USER_LINE=
[ "$(id -u)" = 0 ] && USER_LINE="user root;"
"$PEERS/nginx/gen-routes.sh" "$WORKDIR/routes.conf"
sed -e "s|@PORT@|$PORT|g" -e "s|@UPSTREAM_PORT@|$UPSTREAM_PORT|g" -e "s|@PREFIX@|$WORKDIR|g" \
  -e "s|@PEERS@|$PEERS|g" -e "s|@USER@|$USER_LINE|g" "$PEERS/nginx/nginx.conf.in" >"$WORKDIR/nginx.conf"
exec "$NGINX" -p "$WORKDIR" -e "$WORKDIR/error.log" -c "$WORKDIR/nginx.conf"
