#!/usr/bin/env bash
# install.sh: installs the peers of bench/compare.sh: nginx with lua-nginx-module and lua-cjson from
# Debian's archive (as root; otherwise prints the apt-get line), then the Fastify peer's npm packages.
# The bare h2o peer is built with the project (bench_bare_h2o). Idempotent.
set -euo pipefail
PEERS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PACKAGES=(nginx libnginx-mod-http-lua lua-cjson)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "nginx peer: ${PACKAGES[*]} already installed"
elif [ "$(id -u)" = 0 ]; then
  # Installing nginx may start the packaged service where systemd runs; the peer never uses it.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
else
  echo "nginx peer: not root, run: sudo apt-get install -y ${missing[*]}" >&2
fi

"$PEERS/fastify/install.sh"
