#!/usr/bin/env bash
# test.sh: installs what is missing, builds bffgate (warnings are errors) and runs the whole test suite; then
# builds it again with AddressSanitizer and UndefinedBehaviorSanitizer (leak checking on) and runs the suite
# there too (the benchmark smoke run aside); then builds the fuzz targets with clang and libFuzzer (also under
# the sanitizers) and runs each for BFFGATE_FUZZ_SECONDS (default 10) from its seed corpus.
# BFFGATE_NO_SANITIZE=1 skips the second and third parts, BFFGATE_FUZZ_SECONDS=0 the third.
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

if [ "${BFFGATE_NO_SANITIZE:-0}" != 1 ] && [ "${BFFGATE_FUZZ_SECONDS:-10}" != 0 ]; then
  FUZZ_BUILD="$BFFGATE_ROOT/build-fuzz"
  if [ ! -f "$FUZZ_BUILD/build.ninja" ]; then
    CC=clang meson setup "$FUZZ_BUILD" "$BFFGATE_ROOT" -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
      -Db_lundef=false >&2
  fi
  ninja -C "$FUZZ_BUILD" >&2
  FUZZ_WORK=$(mktemp -d)
  trap 'rm -rf "$FUZZ_WORK"' EXIT
  for target in "$FUZZ_BUILD"/tests/fuzz/fuzz_*; do
    [ -f "$target" ] && [ -x "$target" ] || continue
    name=$(basename "$target"); name=${name#fuzz_}
    mkdir -p "$FUZZ_WORK/$name"
    echo "fuzz/$name: ${BFFGATE_FUZZ_SECONDS:-10} s" >&2
    # A crash, a sanitizer report or a leak stops the run with the input saved in $FUZZ_WORK (printed).
    if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$target" -max_total_time="${BFFGATE_FUZZ_SECONDS:-10}" \
        -max_len=4096 -artifact_prefix="$FUZZ_WORK/$name-" "$FUZZ_WORK/$name" \
        "$BFFGATE_ROOT/tests/fuzz/corpus/$name" >"$FUZZ_WORK/$name.log" 2>&1; then
      tail -60 "$FUZZ_WORK/$name.log" >&2
      for crash in "$FUZZ_WORK/$name"-*; do [ -f "$crash" ] && { echo "input: $crash" >&2; base64 "$crash" >&2; }; done
      exit 1
    fi
    grep -E "^Done [0-9]+ runs" "$FUZZ_WORK/$name.log" >&2 || true
  done
fi
