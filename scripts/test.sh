#!/usr/bin/env bash
# The test command (README): installs what the tests need, typechecks, and runs
# every test with vitest. Extra arguments go to vitest
# (`bash scripts/test.sh test/cli`, `bash scripts/test.sh -t "leader"`).
set -euo pipefail
# shellcheck source=scripts/setup.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
tsswarm_setup

# A type error fails the run, but the tests still run so one report shows all.
status=0
say "tsc --noEmit"
./node_modules/.bin/tsc --noEmit -p . || { status=1; warn "typecheck failed (errors above)"; }

say "vitest run $*"
./node_modules/.bin/vitest run "$@" || status=1
exit "$status"
