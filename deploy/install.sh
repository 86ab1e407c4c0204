#!/usr/bin/env bash
# Installs tsswarm on a Debian or Ubuntu host and runs `tsswarm daemon` as a
# service (systemd, or a background process with --no-systemd); optionally
# inits a cluster or joins one. Idempotent: a second run changes nothing.
# Usage: deploy/install.sh --help
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy/install.sh [OPTIONS]

Installs tsswarm on this Debian or Ubuntu host (as root) and runs it as a service:
Node.js >= 20 if missing, runc, conmon, tini, iproute2, nftables, iptables, attr; the
tsswarm package from a checkout; /etc/tsswarm/daemon.json; tsswarm.service,
enabled and started. Run it again with other settings to change them: only what
changed is redone, and the daemon is restarted only when its files changed.

Cluster:
  --init                   Make this host the first manager (skipped if it is in a cluster already)
  --join TOKEN ADDR        Join the cluster of manager ADDR (HOST:PORT) with TOKEN (skipped if in a cluster already)
  --token-dir DIR          After --init, write manager.token, worker.token and manager.addr into DIR

Daemon settings (written to daemon.json):
  --advertise-addr ADDR    Address other nodes reach this one at (default: the source address
                           of the default route, else the first global IPv4 address)
  --listen-addr HOST:PORT  Where the manager services listen (default 0.0.0.0:4242)
  --node-name NAME         Node name (default: the host name)
  --lb-backend BACKEND     auto (default), nftables, iptables or ipvs
  --log-level LEVEL        trace, debug, info (default), warn, error
  --metrics-addr HOST:PORT Serve Prometheus metrics there (default: off)
  --socket-group GROUP     Members of GROUP may use the daemon's socket, so run tsswarm without
                           sudo (as docker's group: they can do anything the daemon can);
                           the group is created when missing. Default: root only

Where things go:
  --prefix DIR             Package in DIR/lib/tsswarm, command DIR/bin/tsswarm (default /usr/local)
  --config-dir DIR         daemon.json (default /etc/tsswarm)
  --state-dir DIR          The daemon's state (default /var/lib/tsswarm)
  --run-dir DIR            The daemon's socket, and its pid file with --no-systemd (default /run/tsswarm)
  --log-file FILE          The daemon's log with --no-systemd (default /var/log/tsswarm/daemon.log)
  --unit-dir DIR           Where tsswarm.service goes (default /etc/systemd/system)
  --source DIR             The tsswarm checkout to install (default: the one holding this script)

How:
  --no-systemd             Start the daemon in the background (pid file, log file) instead of systemd
  --offline                Use no network: fail if a package is missing, and copy node_modules
                           from the source checkout (it must have been installed there) instead of npm ci
  --node-major N           Node.js major version taken from NodeSource when the distribution's
                           nodejs is older than 20 (default 22; Debian 12's own is 18)
  --uninstall              Stop the daemon and remove what this script installed (the state
                           directory stays; add --purge to remove it too)
  -h, --help               Show this help
EOF
}

say() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
  printf 'install.sh: error: %s\n' "$*" >&2
  exit 1
}

# ------------------------------------------------------------------ options

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SOURCE="$(cd "$SCRIPT_DIR/.." && pwd)"
PREFIX=/usr/local
CONFIG_DIR=/etc/tsswarm
STATE_DIR=/var/lib/tsswarm
RUN_DIR=/run/tsswarm
LOG_FILE=/var/log/tsswarm/daemon.log
UNIT_DIR=/etc/systemd/system
ADVERTISE=""
LISTEN=0.0.0.0:4242
NODE_NAME=""
LB_BACKEND=auto
LOG_LEVEL=info
METRICS=""
SOCKET_GROUP=""
DO_INIT=0
JOIN_TOKEN=""
JOIN_ADDR=""
TOKEN_DIR=""
USE_SYSTEMD=1
OFFLINE=0
NODE_MAJOR=22
UNINSTALL=0
PURGE=0

need_value() {
  if [ "$#" -lt 2 ] || [ -z "$2" ] || [ "${2#--}" != "$2" ]; then die "$1 needs a value (see --help)"; fi
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    --init) DO_INIT=1 ;;
    --join)
      if [ "$#" -lt 3 ] || [ -z "$2" ] || [ -z "$3" ]; then die "--join needs a token and a manager address: --join SWMTKN-1-... HOST:PORT"; fi
      JOIN_TOKEN="$2"
      JOIN_ADDR="$3"
      shift 2
      ;;
    --token-dir) need_value "$@"; TOKEN_DIR="$2"; shift ;;
    --advertise-addr) need_value "$@"; ADVERTISE="$2"; shift ;;
    --listen-addr) need_value "$@"; LISTEN="$2"; shift ;;
    --node-name) need_value "$@"; NODE_NAME="$2"; shift ;;
    --lb-backend) need_value "$@"; LB_BACKEND="$2"; shift ;;
    --log-level) need_value "$@"; LOG_LEVEL="$2"; shift ;;
    --metrics-addr) need_value "$@"; METRICS="$2"; shift ;;
    --socket-group) need_value "$@"; SOCKET_GROUP="$2"; shift ;;
    --prefix) need_value "$@"; PREFIX="$2"; shift ;;
    --config-dir) need_value "$@"; CONFIG_DIR="$2"; shift ;;
    --state-dir) need_value "$@"; STATE_DIR="$2"; shift ;;
    --run-dir) need_value "$@"; RUN_DIR="$2"; shift ;;
    --log-file) need_value "$@"; LOG_FILE="$2"; shift ;;
    --unit-dir) need_value "$@"; UNIT_DIR="$2"; shift ;;
    --source) need_value "$@"; SOURCE="$2"; shift ;;
    --no-systemd) USE_SYSTEMD=0 ;;
    --offline) OFFLINE=1 ;;
    --node-major) need_value "$@"; NODE_MAJOR="$2"; shift ;;
    --uninstall) UNINSTALL=1 ;;
    --purge) PURGE=1 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
  shift
done

[ "$DO_INIT" = 1 ] && [ -n "$JOIN_TOKEN" ] && die "--init and --join exclude each other: the first manager inits, every other host joins"
[ -n "$TOKEN_DIR" ] && [ "$DO_INIT" != 1 ] && die "--token-dir goes with --init (the first manager publishes the join tokens)"
case "$LB_BACKEND" in auto | nftables | iptables | ipvs) ;; *) die "--lb-backend must be auto, nftables, iptables or ipvs (got \"$LB_BACKEND\")" ;; esac
case "$LOG_LEVEL" in trace | debug | info | warn | error | fatal | silent) ;; *) die "--log-level must be trace, debug, info, warn, error, fatal or silent (got \"$LOG_LEVEL\")" ;; esac
case "$SOCKET_GROUP" in *[!A-Za-z0-9_.-]*) die "--socket-group must be a group name such as tsswarm (got \"$SOCKET_GROUP\")" ;; esac
case "$NODE_MAJOR" in '' | *[!0-9]*) die "--node-major must be a number such as 22 (got \"$NODE_MAJOR\")" ;; esac
[ "$NODE_MAJOR" -ge 20 ] || die "--node-major must be 20 or more: tsswarm needs Node.js >= 20 (got $NODE_MAJOR)"
for d in PREFIX CONFIG_DIR STATE_DIR RUN_DIR LOG_FILE UNIT_DIR SOURCE; do
  case "${!d}" in /*) ;; *) die "--$(echo "$d" | tr '[:upper:]_' '[:lower:]-') must be an absolute path (got \"${!d}\")" ;; esac
done
[ "$(id -u)" -eq 0 ] || die "run me as root (sudo $0 ...): I install packages and a system service"

APP="$PREFIX/lib/tsswarm"
BIN="$PREFIX/bin/tsswarm"
CONFIG="$CONFIG_DIR/daemon.json"
SOCKET="$RUN_DIR/tsswarm.sock"
PIDFILE="$RUN_DIR/tsswarm.pid"
UNIT="$UNIT_DIR/tsswarm.service"
PORT="${LISTEN##*:}"

# Whether systemd runs this machine (the test for it that systemd documents).
systemd_running() { [ -d /run/systemd/system ]; }

# ------------------------------------------------------------------ packages

PACKAGES=(ca-certificates iproute2 nftables iptables runc conmon tini attr conntrack ipvsadm)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

APT_UPDATED=0
apt_install() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  [ "$OFFLINE" = 1 ] && die "--offline, but these packages are missing: ${missing[*]} (install them, or drop --offline)"
  command -v apt-get >/dev/null 2>&1 || die "no apt-get: this script is for Debian and Ubuntu; install ${missing[*]} yourself"
  say "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update -qq || die "apt-get update failed (no network?): install ${missing[*]} yourself, then rerun"
    APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed (output above)"
}

check_os() {
  command -v dpkg-query >/dev/null 2>&1 || die "no dpkg: this script is for Debian and Ubuntu hosts"
  local id="" like=""
  if [ -r /etc/os-release ]; then
    # shellcheck source=/dev/null
    id="$(. /etc/os-release && echo "${ID:-}")"
    # shellcheck source=/dev/null
    like="$(. /etc/os-release && echo "${ID_LIKE:-}")"
  fi
  case " $id $like " in
    *" debian "* | *" ubuntu "*) ;;
    *) warn "this does not look like Debian or Ubuntu (ID=$id); going on, as apt and dpkg are here" ;;
  esac
}

# ------------------------------------------------------------------ Node.js

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# The major version of the distribution's nodejs package, 0 when there is none.
distro_node_major() {
  local v
  v="$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ { print $2 }')"
  v="${v#*:}"
  case "$v" in '' | '(none)') echo 0 ;; *) echo "${v%%.*}" ;; esac
}

NODE=""
ensure_node() {
  local have=0
  if command -v node >/dev/null 2>&1; then
    NODE="$(command -v node)"
    have="$(node_major "$NODE")"
    [ "$have" -ge 20 ] && return 0
    warn "Node.js $("$NODE" --version) at $NODE is too old: tsswarm needs >= 20"
  fi
  [ "$OFFLINE" = 1 ] && die "--offline, and no Node.js >= 20 here: install Node.js >= 20 (https://nodejs.org), then rerun"
  if [ "$APT_UPDATED" = 0 ]; then
    apt-get update -qq || die "apt-get update failed (no network?): install Node.js >= 20 yourself (https://nodejs.org), then rerun"
    APT_UPDATED=1
  fi
  local distro
  distro="$(distro_node_major)"
  if [ "$distro" -ge 20 ]; then
    say "installing this distribution's Node.js $distro"
    apt_install nodejs npm
  else
    say "this distribution's nodejs is ${distro/#0/missing} (Debian 12's is 18): too old for tsswarm, which needs >= 20; trying NodeSource's Node.js $NODE_MAJOR"
    apt_install ca-certificates curl gnupg
    local key
    key="$(mktemp)"
    if ! curl -fsSL --max-time 20 https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key -o "$key"; then
      rm -f "$key"
      die "NodeSource (https://deb.nodesource.com) cannot be reached from this host, and this distribution has no Node.js >= 20. Install Node.js >= 20 yourself (https://nodejs.org/en/download), make sure \`node\` is on PATH, and rerun"
    fi
    mkdir -p /etc/apt/keyrings
    gpg --dearmor --yes -o /etc/apt/keyrings/nodesource.gpg "$key"
    rm -f "$key"
    echo "deb [signed-by=/etc/apt/keyrings/nodesource.gpg] https://deb.nodesource.com/node_${NODE_MAJOR}.x nodistro main" >/etc/apt/sources.list.d/nodesource.list
    apt-get update -qq || die "apt-get update failed after adding NodeSource's repository (/etc/apt/sources.list.d/nodesource.list)"
    # NodeSource's nodejs carries npm.
    apt-get install -y -qq nodejs >/dev/null || die "installing NodeSource's nodejs failed (output above)"
  fi
  NODE="$(command -v node)" || die "still no node command after installing Node.js"
  have="$(node_major "$NODE")"
  [ "$have" -ge 20 ] || die "Node.js at $NODE is $("$NODE" --version), still older than 20: install Node.js >= 20 (https://nodejs.org), then rerun"
}

# ------------------------------------------------------------------ the package

# The checkout's files that make up the package (NUL-separated, relative to
# SOURCE): no tests, benchmarks, node_modules, generated code or VM state.
source_files() {
  local items=() e
  for e in "$SOURCE"/*; do
    case "${e##*/}" in node_modules | test | bench | scripts | *.log) ;; *) items+=("${e##*/}") ;; esac
  done
  (cd "$SOURCE" && find "${items[@]}" \( -path proto/gen -o -name node_modules -o -name .vagrant -o -name .cluster -o -name '.tmp*' \) -prune \
    -o \( -type f -o -type l \) -print0 | sort -z)
}

sha_of() { sha256sum | cut -d' ' -f1; }

# The package runs the bundle in dist/: built in the checkout (esbuild is a
# development dependency there) when it is missing or older than the sources.
build_source() {
  local stale=missing
  if [ -f "$SOURCE/dist/tsswarm.mjs" ]; then
    stale="$(cd "$SOURCE" && find agent ca cli deploy lib manager native node proto spec package.json \( -name node_modules -o -path proto/gen \) -prune -o -type f -newer dist/tsswarm.mjs -print -quit 2>/dev/null)" || stale=unknown
  fi
  if [ -z "$stale" ]; then return 0; fi
  [ -x "$SOURCE/node_modules/.bin/esbuild" ] || die "$SOURCE has no build (dist/) and cannot make one: run \`npm ci && npm run build\` there first"
  say "building dist/ in $SOURCE"
  (cd "$SOURCE" && PATH="$(dirname "$NODE"):$PATH" node_modules/.bin/tsx proto/gen.ts >/dev/null && "$NODE" scripts/build.mjs) ||
    die "building tsswarm in $SOURCE failed (output above)"
}

APP_CHANGED=0
install_app() {
  if [ ! -f "$SOURCE/package.json" ] || [ ! -f "$SOURCE/bin/tsswarm.mjs" ]; then
    die "$SOURCE is not a tsswarm checkout (no package.json and bin/tsswarm.mjs): give one with --source DIR"
  fi
  build_source
  local src_stamp deps_stamp
  src_stamp="$( (source_files | (cd "$SOURCE" && xargs -0 sha256sum)) | sha_of)"
  deps_stamp="$(cat "$SOURCE/package.json" "$SOURCE/package-lock.json" | sha_of) node-$("$NODE" --version) $(uname -m)"
  if [ "$(cat "$APP/.tsswarm-source" 2>/dev/null || true)" = "$src_stamp" ] &&
    [ "$(cat "$APP/node_modules/.tsswarm-deps" 2>/dev/null || true)" = "$deps_stamp" ]; then
    say "tsswarm in $APP is up to date"
    return 0
  fi
  say "installing tsswarm from $SOURCE into $APP"
  local stage="$APP.new.$$"
  rm -rf "$stage"
  mkdir -p "$stage"
  # Removed on failure, so that the installed package stays as it was.
  trap 'rm -rf "$stage"' EXIT
  source_files | tar -C "$SOURCE" --null -T - -cf - | tar -C "$stage" -xf -

  if [ "$(cat "$APP/node_modules/.tsswarm-deps" 2>/dev/null || true)" = "$deps_stamp" ]; then
    # Same dependencies as the installed package: hard links, nothing downloaded.
    cp -al "$APP/node_modules" "$stage/node_modules" 2>/dev/null || cp -a "$APP/node_modules" "$stage/node_modules"
  elif [ "$OFFLINE" = 1 ]; then
    [ -d "$SOURCE/node_modules/tsx" ] || die "--offline needs node_modules in $SOURCE (run npm ci there first), or drop --offline"
    say "copying node_modules from $SOURCE (--offline), without development packages"
    mkdir "$stage/node_modules"
    # Through "node_modules/." so that a symlinked node_modules is copied, not the link.
    tar -C "$SOURCE/node_modules/." -cf - . | tar -C "$stage/node_modules" -xf -
    (cd "$stage" && PATH="$(dirname "$NODE"):$PATH" npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null) ||
      die "npm prune --omit=dev --offline failed in $stage (output above)"
  else
    command -v npm >/dev/null 2>&1 || apt_install npm
    say "npm ci --omit=dev"
    (cd "$stage" && PATH="$(dirname "$NODE"):$PATH" npm ci --omit=dev --no-audit --no-fund --loglevel=error >/dev/null) ||
      die "npm ci --omit=dev failed in $stage (output above; is the npm registry reachable? --offline copies node_modules from the checkout instead)"
  fi
  echo "$deps_stamp" >"$stage/node_modules/.tsswarm-deps"

  "$NODE" "$stage/bin/tsswarm.mjs" version >/dev/null || die "the staged package does not run: $NODE $stage/bin/tsswarm.mjs version failed (output above)"
  echo "$src_stamp" >"$stage/.tsswarm-source"

  mkdir -p "$PREFIX/lib"
  if [ -d "$APP" ]; then mv "$APP" "$APP.old.$$"; fi
  mv "$stage" "$APP"
  rm -rf "$APP.old.$$"
  trap - EXIT
  APP_CHANGED=1
}

# Writes $2 to file $1 when its content differs (atomically); returns 0 when it wrote.
write_if_changed() {
  local file="$1" content="$2"
  if [ -f "$file" ] && [ "$(cat "$file")" = "$content" ]; then return 1; fi
  mkdir -p "$(dirname "$file")"
  printf '%s\n' "$content" >"$file.tmp.$$"
  mv "$file.tmp.$$" "$file"
  return 0
}

WRAPPER_CHANGED=0
install_wrapper() {
  local content
  content="$(
    cat <<EOF
#!/bin/sh
# Installed by tsswarm's deploy/install.sh: the tsswarm command, talking to
# this host's daemon unless --host or TSSWARM_HOST says otherwise.
: "\${TSSWARM_HOST:=unix://$SOCKET}"
export TSSWARM_HOST
exec "$NODE" "$APP/bin/tsswarm.mjs" "\$@"
EOF
  )"
  if write_if_changed "$BIN" "$content"; then WRAPPER_CHANGED=1; fi
  chmod 755 "$BIN"
}

default_advertise() {
  local a
  a="$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }')"
  [ -n "$a" ] || a="$(ip -4 -o addr show scope global 2>/dev/null | awk '{ split($4, p, "/"); print p[1]; exit }')"
  echo "$a"
}

CONFIG_CHANGED=0
install_config() {
  if [ -n "$SOCKET_GROUP" ] && ! getent group "$SOCKET_GROUP" >/dev/null; then
    say "creating the group $SOCKET_GROUP (--socket-group)"
    groupadd --system "$SOCKET_GROUP"
  fi
  if [ -z "$ADVERTISE" ]; then
    ADVERTISE="$(default_advertise)"
    [ -n "$ADVERTISE" ] || die "no IPv4 address found to advertise: give one with --advertise-addr"
    say "advertising $ADVERTISE (the address of the default route; --advertise-addr picks another)"
  fi
  local content
  # JSON from node, so that any value is quoted right; null means "the daemon's default".
  content="$(
    TSS_ADVERTISE="$ADVERTISE" TSS_LISTEN="$LISTEN" TSS_STATE="$STATE_DIR" TSS_SOCKET="$SOCKET" TSS_NAME="$NODE_NAME" \
      TSS_METRICS="$METRICS" TSS_LOG="$LOG_LEVEL" TSS_LB="$LB_BACKEND" TSS_GROUP="$SOCKET_GROUP" "$NODE" -e '
      const e = process.env;
      console.log(JSON.stringify({
        advertiseAddr: e.TSS_ADVERTISE,
        listenAddr: e.TSS_LISTEN,
        stateDir: e.TSS_STATE,
        socket: e.TSS_SOCKET,
        socketGroup: e.TSS_GROUP || null,
        nodeName: e.TSS_NAME || null,
        metricsAddr: e.TSS_METRICS || null,
        logLevel: e.TSS_LOG,
        lbBackend: e.TSS_LB,
      }, null, 2));'
  )"
  if write_if_changed "$CONFIG" "$content"; then
    CONFIG_CHANGED=1
    say "wrote $CONFIG"
  fi
  mkdir -p "$STATE_DIR"
  chmod 700 "$STATE_DIR"
}

# ------------------------------------------------------------------ the service

UNIT_CHANGED=0
install_unit() {
  local template="$SOURCE/deploy/systemd/tsswarm.service" content
  [ -f "$template" ] || die "the unit template $template is missing from the checkout"
  content="$(sed -e "s|@TSSWARM_BIN@|$BIN|g" -e "s|@TSSWARM_CONFIG@|$CONFIG|g" -e "s|@TSSWARM_APP@|$APP|g" "$template")"
  if write_if_changed "$UNIT" "$content"; then
    UNIT_CHANGED=1
    say "wrote $UNIT"
  fi
}

start_systemd() {
  systemctl daemon-reload
  systemctl enable --quiet tsswarm.service
  if systemctl is-active --quiet tsswarm.service; then
    if [ $((APP_CHANGED + WRAPPER_CHANGED + CONFIG_CHANGED + UNIT_CHANGED)) -gt 0 ]; then
      say "restarting tsswarm.service (its files changed)"
      systemctl restart tsswarm.service
    else
      say "tsswarm.service is running and up to date"
    fi
  else
    say "starting tsswarm.service"
    rm -f "$SOCKET"
    systemctl start tsswarm.service
  fi
}

# The pid in the pid file, when it is a live tsswarm daemon using our config.
running_pid() {
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "daemon --config $CONFIG" || return 1
  echo "$pid"
}

# Whether a process is alive (not gone, not a zombie), whatever it runs.
alive() {
  local st
  st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
  [ -n "$st" ] && [ "$st" != Z ]
}

stop_background() {
  local pid i
  pid="$(running_pid)" || return 0
  say "stopping the daemon (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 150); do
    alive "$pid" || break
    [ "$i" = 150 ] && kill -KILL "$pid" 2>/dev/null
    sleep 0.2
  done
  rm -f "$PIDFILE"
}

start_background() {
  if running_pid >/dev/null; then
    if [ $((APP_CHANGED + WRAPPER_CHANGED + CONFIG_CHANGED)) -eq 0 ]; then
      say "the daemon is running (pid $(running_pid)) and up to date"
      return 0
    fi
    say "restarting the daemon (its files changed)"
    stop_background
  fi
  mkdir -p "$RUN_DIR" "$(dirname "$LOG_FILE")"
  rm -f "$SOCKET"
  say "starting the daemon in the background (log $LOG_FILE, pid file $PIDFILE)"
  printf -- '--- tsswarm daemon started by install.sh at %s\n' "$(date -Is)" >>"$LOG_FILE"
  # Its own session, no terminal, and no descriptor of ours kept open; exec all the way,
  # so that $! is the daemon's pid.
  (cd / && exec setsid env -u TSSWARM_HOST "$BIN" daemon --config "$CONFIG" </dev/null >>"$LOG_FILE" 2>&1) &
  echo "$!" >"$PIDFILE"
}

wait_for_socket() {
  local i
  for i in $(seq 1 300); do
    [ -S "$SOCKET" ] && return 0
    # By pid, not by command line: the child may not have exec'd the daemon yet.
    if [ "$USE_SYSTEMD" = 0 ] && ! alive "$(cat "$PIDFILE" 2>/dev/null || echo 0)"; then
      die "the daemon exited before creating its socket $SOCKET; last lines of $LOG_FILE:
$(tail -n 20 "$LOG_FILE" 2>/dev/null)"
    fi
    [ "$i" = 1 ] || sleep 0.2
  done
  if [ "$USE_SYSTEMD" = 1 ]; then
    die "the daemon did not create its socket $SOCKET within 60 s: see systemctl status tsswarm and journalctl -u tsswarm"
  fi
  die "the daemon did not create its socket $SOCKET within 60 s; last lines of $LOG_FILE:
$(tail -n 20 "$LOG_FILE" 2>/dev/null)"
}

# ------------------------------------------------------------------ the cluster

ts() { TSSWARM_HOST="unix://$SOCKET" "$BIN" "$@"; }

swarm_state() {
  ts info --format json 2>/dev/null | "$NODE" -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).state || ""))' 2>/dev/null || true
}

# node.json in the state directory is the daemon's membership; asking the daemon covers the rest.
in_cluster() { [ -s "$STATE_DIR/node.json" ] || [ "$(swarm_state)" = active ]; }

init_cluster() {
  if in_cluster; then
    say "this node is in a cluster already: not initializing"
  else
    say "tsswarm init --advertise-addr $ADVERTISE"
    local out
    # "already part of a cluster": a daemon just started answers before it has read its state.
    if ! out="$(ts init --advertise-addr "$ADVERTISE" 2>&1)"; then
      case "$out" in
        *"already part of a cluster"*) say "this node is in a cluster already: not initializing" ;;
        *) die "tsswarm init failed: $out" ;;
      esac
    fi
  fi
  if [ -n "$TOKEN_DIR" ]; then
    mkdir -p "$TOKEN_DIR"
    local mgr wrk
    mgr="$(ts join-token -q manager)" || die "reading the manager join token failed"
    wrk="$(ts join-token -q worker)" || die "reading the worker join token failed"
    (
      umask 077
      printf '%s\n' "$mgr" >"$TOKEN_DIR/manager.token.tmp" && mv "$TOKEN_DIR/manager.token.tmp" "$TOKEN_DIR/manager.token"
      printf '%s\n' "$wrk" >"$TOKEN_DIR/worker.token.tmp" && mv "$TOKEN_DIR/worker.token.tmp" "$TOKEN_DIR/worker.token"
    )
    printf '%s:%s\n' "$ADVERTISE" "$PORT" >"$TOKEN_DIR/manager.addr"
    say "wrote the join tokens and the manager address into $TOKEN_DIR"
  fi
}

join_cluster() {
  if in_cluster; then
    say "this node is in a cluster already: not joining"
    return 0
  fi
  say "tsswarm join --token ... $JOIN_ADDR"
  local out i
  # The manager may still be starting (VMs come up together): retry for a minute,
  # but not a token the manager refused.
  for i in $(seq 1 20); do
    if out="$(ts join --token "$JOIN_TOKEN" --advertise-addr "$ADVERTISE" "$JOIN_ADDR" 2>&1)"; then
      printf '%s\n' "$out"
      return 0
    fi
    case "$out" in
      *"already part of a cluster"*)
        say "this node is in a cluster already: not joining"
        return 0
        ;;
      *oken* | *ertificate*) die "tsswarm join failed: $out" ;;
    esac
    [ "$i" = 20 ] && break
    warn "join failed, retrying in 3 s: $out"
    sleep 3
  done
  die "tsswarm join $JOIN_ADDR failed for a minute: $out"
}

# ------------------------------------------------------------------ uninstall

uninstall() {
  if [ -f "$UNIT" ] && systemd_running; then
    say "stopping and disabling tsswarm.service"
    systemctl disable --now --quiet tsswarm.service || true
  fi
  stop_background
  rm -f "$UNIT" "$BIN" "$CONFIG" "$PIDFILE" "$SOCKET"
  if systemd_running; then systemctl daemon-reload 2>/dev/null || true; fi
  rmdir "$CONFIG_DIR" 2>/dev/null || true
  rm -rf "$APP"
  if [ "$PURGE" = 1 ]; then
    say "removing the state directory $STATE_DIR and the log $LOG_FILE (--purge)"
    rm -rf "$STATE_DIR" "$LOG_FILE"
  else
    say "kept the state directory $STATE_DIR (--purge removes it)"
  fi
  say "tsswarm is uninstalled (containers of tasks, if any, were left running: runc list --root $STATE_DIR/runtime/runc)"
}

# ------------------------------------------------------------------ main

main() {
  if [ "$UNINSTALL" = 1 ]; then
    uninstall
    return 0
  fi
  if [ "$USE_SYSTEMD" = 1 ] && ! systemd_running; then
    die "systemd is not running on this host (no /run/systemd/system): rerun with --no-systemd to run the daemon in the background"
  fi
  check_os
  apt_install "${PACKAGES[@]}"
  ensure_node
  install_app
  install_wrapper
  install_config
  if [ "$USE_SYSTEMD" = 1 ]; then
    install_unit
    start_systemd
  else
    start_background
  fi
  wait_for_socket
  if [ "$DO_INIT" = 1 ]; then init_cluster; fi
  if [ -n "$JOIN_TOKEN" ]; then join_cluster; fi
  say "done: tsswarm $(TSS_APP="$APP" "$NODE" -p 'require(process.env.TSS_APP + "/package.json").version') on $ADVERTISE; try: $BIN node ls"
}

main
