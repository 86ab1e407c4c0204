#!/usr/bin/env bash
# The main-job command (README): installs what tsswarm needs, then brings up a
# local sandbox cluster (3 managers, 2 workers: one network namespace and one
# tsswarm daemon per host), shows it, and runs a demo service of 5 replicas. The cluster stays up to explore;
# `npx tsswarm sandbox down` removes it. A sandbox left from an earlier run is
# removed first, so the command can be run again. Extra arguments go to
# `sandbox up` (e.g. --managers 5 --workers 3).
set -euo pipefail
# shellcheck source=scripts/setup.sh
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
say "tsswarm network create -d overlay demo-net (a VXLAN overlay across the hosts)"
ts sandbox exec h1 -- tsswarm service rm demo >/dev/null 2>&1 || true
ts sandbox exec h1 -- tsswarm network rm demo-net >/dev/null 2>&1 || true
ts sandbox exec h1 -- tsswarm network create -d overlay demo-net
say "tsswarm service create --name demo --replicas 5 --network demo-net --publish 8080:80 tsswarm/busybox:latest ... (real runc containers, spread over the hosts)"
# shellcheck disable=SC2016 # $(hostname) is for the container's shell
ts sandbox exec h1 -- tsswarm service create --name demo --replicas 5 --network demo-net --publish 8080:80 tsswarm/busybox:latest \
  sh -c 'echo "hello from $(hostname)"; mkdir -p /www && echo "demo replica $(hostname)" > /www/index.html; exec httpd -f -p 80 -h /www'
say "tsswarm service ps demo"
ts sandbox exec h1 -- tsswarm service ps demo
say "tsswarm service logs demo"
ts sandbox exec h1 -- tsswarm service logs demo
say "the routing mesh: port 8080 of any host reaches a replica on any host (here from tss-h1 to tss-h2's address)"
h2addr=$(ts sandbox ls | awk '$1 ~ /h2$/ {print $3}')
for _ in 1 2 3 4; do ts sandbox exec h1 -- busybox timeout 3 busybox wget -qO- "http://$h2addr:8080/" || true; done
say "service discovery inside a container: tasks.demo lists every replica"
ts sandbox exec h1 -- tsswarm service exec demo -- nslookup tasks.demo || true
cat <<'MSG'

The cluster is running, with the service `demo`. Try:
  npx tsswarm sandbox ls
  npx tsswarm sandbox exec h1 -- tsswarm service ls
  npx tsswarm sandbox exec h1 -- tsswarm service exec demo -- wget -qO- http://demo/   # through the service VIP
  npx tsswarm sandbox exec h1 -- tsswarm network inspect demo-net --dataplane         # FDB, neighbor and VIP entries: expected and actual
  npx tsswarm sandbox exec h1 -- tsswarm service scale demo=8
  npx tsswarm sandbox exec h1 -- tsswarm service update --args "sleep 3600" demo   # a rolling update
  npx tsswarm sandbox exec h2 -- tsswarm node ls
  npx tsswarm sandbox stop h1 --kill      # kill the leader; another manager takes over in ~2 s
  npx tsswarm sandbox exec h2 -- tsswarm node ls
  npx tsswarm sandbox down                # remove everything (services, networks, namespaces)
MSG
