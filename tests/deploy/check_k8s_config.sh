#!/usr/bin/env bash
# check_k8s_config.sh: deploy/k8s/configmap.yaml is what deploy/k8s/configmap.sh makes of config/ today, and the
# flattened config it holds loads (bffgate --check). Args: BFFGATE_BINARY EXAMPLES_DIR
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=$1
LIB=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
"$ROOT/deploy/k8s/configmap.sh" "$ROOT/config" >"$WORK/configmap.yaml"
if ! diff -u "$ROOT/deploy/k8s/configmap.yaml" "$WORK/configmap.yaml"; then
  echo "deploy/k8s/configmap.yaml is stale: run deploy/k8s/configmap.sh config/ > deploy/k8s/configmap.yaml" >&2
  exit 1
fi
"$ROOT/deploy/k8s/configmap.sh" --dir "$WORK/flat" "$ROOT/config"
"$BIN" --check --lib-path "$LIB" "$WORK/flat/gateway.json"
grep -q '"address": "0.0.0.0"' "$WORK/flat/gateway.json" || { echo "the listeners still bind loopback" >&2; exit 1; }
