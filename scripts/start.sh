#!/usr/bin/env bash
# start.sh: installs what is missing, builds bffgate and serves the default deployment (config/) at 127.0.0.1:8080.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/setup.sh"

cat <<URLS
bffgate is starting on http://127.0.0.1:8080 with the example shop (config/). Try:
  curl http://127.0.0.1:8080/web/products             # web: full product records
  curl http://127.0.0.1:8080/mobile/products          # mobile: the same catalog, compact
  curl http://127.0.0.1:8080/web/products/2           # path parameter (Lua)
  curl http://127.0.0.1:8080/web/products/99          # a JSON error (404)
  curl http://127.0.0.1:8080/mobile/quote/2?qty=3     # a C function
  curl -X POST -H 'content-type: application/json' -d '{"items":[{"id":"1","qty":2}]}' http://127.0.0.1:8080/web/cart
  curl http://127.0.0.1:8080/web/home/u1              # composed: user, then recommendations + cart in parallel
  curl -i http://127.0.0.1:8080/mobile/home/u3         # mobile's shape; the cart call fails: a marked partial answer
  curl --http2-prior-knowledge http://127.0.0.1:8080/web/hello
  curl http://127.0.0.1:9901/admin/status             # admin: config version, functions, last reload
Edit any file under config/ and it is live within ~50 ms (or: kill -HUP, curl -X POST :9901/admin/reload).
Stop with Ctrl-C (in-flight requests finish first).
URLS
exec "$BFFGATE_BUILD/gateway/bffgate" --lib-path "$BFFGATE_BUILD/functions/examples" "$BFFGATE_ROOT/config/gateway.json" "$@"
