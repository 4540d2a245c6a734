#!/usr/bin/env bash
# test.sh: installs what is missing, builds bffgate (warnings are errors) and runs the whole test suite; then
# builds it again with AddressSanitizer and UndefinedBehaviorSanitizer (leak checking on) and runs the suite
# there too (the benchmark smoke run aside). BFFGATE_NO_SANITIZE=1 skips that second run.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/setup.sh"

meson test -C "$BFFGATE_BUILD" --print-errorlogs "$@"

if [ "${BFFGATE_NO_SANITIZE:-0}" != 1 ]; then
  ASAN_BUILD="$BFFGATE_ROOT/build-asan"
  if [ ! -f "$ASAN_BUILD/build.ninja" ]; then
    meson setup "$ASAN_BUILD" "$BFFGATE_ROOT" -Db_sanitize=address,undefined -Db_lundef=false -Dwerror=true >&2
  fi
  ninja -C "$ASAN_BUILD" >&2
  # Any undefined behaviour fails the test that met it (UBSan only reports by default).
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 meson test -C "$ASAN_BUILD" --no-suite bench --print-errorlogs "$@"
fi
