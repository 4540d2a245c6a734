#!/usr/bin/env bash
# test.sh: installs what is missing, builds bffgate (warnings are errors) and runs the whole test suite.
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/setup.sh"

meson test -C "$BFFGATE_BUILD" --print-errorlogs "$@"
