#!/usr/bin/env bash
# A long run of the CA's DER/PEM fuzzer (the one test/ca/fuzz.test.ts
# runs briefly in CI), with a random seed unless --seed is given; it prints
# the seed first so any finding replays: scripts/fuzz-der.sh --seed S --case I.
# Usage: scripts/fuzz-der.sh [--count N] [--seed S] [--case I]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node_modules/.bin/tsx test/ca/der-fuzzer.ts "$@"
