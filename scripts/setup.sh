#!/usr/bin/env bash
# setup.sh: installs the Debian 12 packages bffgate needs (when missing), then configures and builds it in build/.
# Sourced by start.sh and test.sh; safe to run any number of times, from any directory.
set -euo pipefail

BFFGATE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BFFGATE_BUILD="$BFFGATE_ROOT/build"

BFFGATE_PACKAGES=(
  gcc pkg-config meson ninja-build
  libh2o-evloop-dev libssl-dev liblua5.4-dev libjansson-dev libjwt-dev
  libcmocka-dev libcurl4-openssl-dev
  chromium # e2e/status_page renders the admin status page in headless Chromium
  openssl curl python3
  prometheus
  wrk # bench/compare_smoke runs the benchmark command briefly
  clang libclang-rt-14-dev # tests/fuzz: the libFuzzer build (scripts/test.sh runs each target briefly)
)

bffgate_install_missing() {
  local missing=() p
  for p in "${BFFGATE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "bffgate needs these Debian packages; install them, then run this again:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "Installing: ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
}

bffgate_build() {
  if [ ! -f "$BFFGATE_BUILD/build.ninja" ]; then
    meson setup "$BFFGATE_BUILD" "$BFFGATE_ROOT" -Dwerror=true >&2
  fi
  ninja -C "$BFFGATE_BUILD" >&2
}

bffgate_install_missing
bffgate_build
