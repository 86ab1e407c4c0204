#!/usr/bin/env bash
# The main-job command (README): installs what tsswarm needs, then brings up a
# local sandbox cluster (3 managers, 2 workers: one network namespace and one
# tsswarm daemon per host) and shows it. The cluster stays up to explore;
# `npx tsswarm sandbox down` removes it. A sandbox left from an earlier run is
# removed first, so the command can be run again. Extra arguments go to
# `sandbox up` (e.g. --managers 5 --workers 3).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
tsswarm_setup

ts() { node bin/tsswarm.mjs "$@"; }
if [ -e "${TSSWARM_SANDBOX_DIR:-/tmp/tss-sandbox}/state.json" ]; then
  say "removing the sandbox left from an earlier run"
  ts sandbox down
fi
say "tsswarm sandbox up $*"
ts sandbox up "$@"
say "tsswarm node ls (on tss-h1)"
ts sandbox exec h1 -- tsswarm node ls
say "tsswarm info (on tss-h2, a manager that forwards to the leader)"
ts sandbox exec h2 -- tsswarm info
cat <<'MSG'

The cluster is running. Try:
  npx tsswarm sandbox ls
  npx tsswarm sandbox exec h2 -- tsswarm node ls
  npx tsswarm sandbox stop h1 --kill      # kill the leader; another manager takes over in ~2 s
  npx tsswarm sandbox exec h2 -- tsswarm node ls
  npx tsswarm sandbox down                # remove everything
MSG
