#!/usr/bin/env bash
# Prepares this checkout on Debian 12 (run as root): the apt packages the tests
# and the daemon need, Node.js ≥ 20 check, `npm ci` when the lock file changed,
# and the generated proto code. Idempotent; a second run installs nothing and
# needs no network. scripts/test.sh and scripts/demo.sh source it.
set -euo pipefail

TSSWARM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# ca-certificates, git: npm over https, a clean clone. iproute2, nftables,
# iptables: networking (namespaces, vxlan, service load balancing). runc,
# busybox-static: running containers and a tiny image for tests. conmon:
# the per-container monitor (exit codes, logs, containers outliving the agent).
# tini: its static build is the init of containers run with --init.
# attr: setfattr for overlay opaque directories when unpacking image layers.
# docker-registry: a local OCI registry, for the image-pull test.
# apache2-utils: htpasswd -B (bcrypt), the private registry test's users.
# The deploy lint test needs three linters: the shellcheck package (every
# script), vagrant (`vagrant validate` on the Vagrantfile) and cloud-init
# (`cloud-init schema` on the multipass cloud-config). iperf3: throughput in
# the overlay benchmark. ipvsadm: the IPVS load-balancer backend's tool (the
# IPVS kernel tests then skip for the kernel's reason, not the tool's).
TSSWARM_APT_PACKAGES=(ca-certificates git iproute2 nftables iptables runc conmon tini attr busybox-static docker-registry apache2-utils shellcheck vagrant cloud-init iperf3 conntrack ipvsadm)
# Packages that ship a service the tests run themselves, never as the system's:
# prometheus (the Engine API e2e test runs its binary against a sandbox with
# dockerswarm_sd_configs). Debian's package would start and enable
# prometheus.service, listening on 0.0.0.0:9090; apt_install_held installs it
# with every service start refused and leaves the unit disabled and stopped.
TSSWARM_APT_HELD_PACKAGES=(prometheus)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[1;33mWARNING: %s\033[0m\n' "$*" >&2; }

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

node_major() {
  command -v node >/dev/null 2>&1 || { echo 0; return; }
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

apt_install() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    warn "no apt-get here: install these packages yourself: ${missing[*]}"
    return 0
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "error: installing ${missing[*]} needs root: rerun as root" >&2; exit 1; }
    sudo=(sudo)
  fi
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Runs "$@" (as root) with a /usr/sbin/policy-rc.d that answers 101 ("action
# forbidden") to every request: invoke-rc.d and deb-systemd-invoke, through
# which maintainer scripts start services, both honour it on Debian 12. A
# policy-rc.d already there is put back afterwards, whatever "$@" did.
with_service_starts_refused() {
  local policy=/usr/sbin/policy-rc.d saved="" rc=0
  if [ -e "$policy" ]; then
    saved=$(mktemp /usr/sbin/.tss-policy-rc.d.XXXXXX)
    cp -p "$policy" "$saved"
  fi
  # shellcheck disable=SC2317 # called through the trap and below
  restore_policy() { if [ -n "$saved" ]; then mv -f "$saved" "$policy"; else rm -f "$policy"; fi; }
  trap 'restore_policy; exit 130' INT TERM
  printf '#!/bin/sh\n# scripts/setup.sh: no service starts while tsswarm installs its test tools\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  "$@" || rc=$?
  restore_policy
  trap - INT TERM
  return "$rc"
}

# Installs TSSWARM_APT_HELD_PACKAGES that dpkg lacks without starting their
# services (--no-install-recommends also keeps prometheus-node-exporter out),
# then disables the units the packages enabled, and stops them if systemd runs.
apt_install_held() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    warn "no apt-get here: install these packages yourself (and keep their services stopped): ${missing[*]}"
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    warn "not root: not installing ${missing[*]} (its services must be held while it installs; rerun as root); the tests that need it skip"
    return 0
  fi
  say "apt-get install ${missing[*]} (their services neither started nor enabled)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  with_service_starts_refused apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for p in "${missing[@]}"; do
    if command -v deb-systemd-helper >/dev/null 2>&1; then deb-systemd-helper disable "$p.service" >/dev/null 2>&1 || true; fi
    if [ -x "/etc/init.d/$p" ] && command -v update-rc.d >/dev/null 2>&1; then update-rc.d "$p" disable >/dev/null 2>&1 || true; fi
    if [ -d /run/systemd/system ]; then systemctl disable --now "$p.service" >/dev/null 2>&1 || true; fi
  done
}

tsswarm_setup() {
  cd "$TSSWARM_ROOT"
  local pkgs=("${TSSWARM_APT_PACKAGES[@]}")
  if [ "$(node_major)" -lt 20 ]; then
    warn "Node.js >= 20 is required (found: $(node --version 2>/dev/null || echo none)); trying Debian's nodejs and npm"
    pkgs+=(nodejs npm)
  fi
  apt_install "${pkgs[@]}"
  apt_install_held "${TSSWARM_APT_HELD_PACKAGES[@]}"
  if [ "$(node_major)" -lt 20 ]; then
    warn "tsswarm requires Node.js >= 20 but this machine has $(node --version 2>/dev/null || echo none)" \
      "(Debian 12's own nodejs is 18). Install Node.js 20 or newer (nodejs.org or NodeSource) and rerun;" \
      "going on, but expect failures."
  fi
  command -v node >/dev/null 2>&1 || { echo "error: no node command even after installing nodejs: install Node.js >= 20 and rerun" >&2; exit 1; }
  command -v npm >/dev/null 2>&1 || apt_install npm

  # npm ci only when node_modules is missing or the dependency set changed.
  local stamp=node_modules/.tsswarm-install-stamp want
  want="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1) node-$(node --version)"
  if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    say "npm ci"
    npm ci --no-audit --no-fund
    echo "$want" >"$stamp"
  fi

  say "generating proto code"
  ./node_modules/.bin/tsx proto/gen.ts
  # The bundle bin/tsswarm.mjs runs (about 0.3 s; the sandbox's daemons and every tsswarm command use it).
  say "building dist/ (npm run build)"
  node scripts/build.mjs
}

# Run directly (`bash scripts/setup.sh`), it only prepares.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  tsswarm_setup
fi
