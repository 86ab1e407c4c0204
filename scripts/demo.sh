#!/usr/bin/env bash
# The main-job command (README): installs what tsswarm needs, then runs the
# current demo, `npm run demo` (a 3-member Raft key-value cluster on loopback).
# Extra arguments go to the demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
tsswarm_setup

say "npm run demo"
exec npm run --silent demo -- "$@"
