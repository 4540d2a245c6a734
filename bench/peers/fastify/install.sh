#!/usr/bin/env bash
# install.sh: installs the Fastify peer's dependencies (the versions in package-lock.json) into
# bench/peers/fastify/node_modules. Needs Node.js >= 20.18.1 and npm. Idempotent: a tree that already
# matches package.json is left alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
command -v node >/dev/null && command -v npm >/dev/null ||
  { echo "fastify/install.sh: needs Node.js >= 20.18.1 and npm" >&2; exit 1; }
node -e 'const [a, b, c] = process.versions.node.split(".").map(Number);
  process.exit(a > 20 || (a === 20 && (b > 18 || (b === 18 && c >= 1))) ? 0 : 1)' ||
  { echo "fastify/install.sh: Node.js $(node --version) is too old, Fastify 5 and undici 7 need >= 20.18.1" >&2; exit 1; }
if [ -d node_modules ] && npm ls --omit=dev >/dev/null 2>&1; then
  echo "fastify peer: dependencies already installed"
  exit 0
fi
if [ -f package-lock.json ]; then
  npm ci --no-audit --no-fund --omit=dev
else
  npm install --no-audit --no-fund --omit=dev
fi
