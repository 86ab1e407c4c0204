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

# Formatting and lint (biome.json): a file not formatted, or a lint error, fails the run.
say "biome ci"
./node_modules/.bin/biome ci --colors=off . || { status=1; warn "lint or formatting failed (above; \`npm run format\` formats every file)"; }

say "vitest run $*"
./node_modules/.bin/vitest run "$@" || status=1
exit "$status"
