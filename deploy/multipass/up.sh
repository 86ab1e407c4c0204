#!/usr/bin/env bash
# Launches a tsswarm cluster of multipass VMs: MANAGERS managers and WORKERS
# workers (default 3 and 2), each prepared by cloud-init.yaml and set up by
# deploy/install.sh as a systemd service; the first manager inits, the others
# join with the tokens read from it. Idempotent: VMs that exist are kept, and
# install.sh changes only what differs. down.sh removes the VMs.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: deploy/multipass/up.sh [OPTIONS]

  --managers N   Managers (default 3; odd numbers keep a quorum best)
  --workers N    Workers (default 2)
  --image IMAGE  multipass image (default 24.04)
  --cpus N       CPUs per VM (default 2)
  --memory SIZE  Memory per VM (default 2G)
  --disk SIZE    Disk per VM (default 10G)
  --name-prefix P  VM names P-manager1, P-worker1, ... (default tss)

Then: multipass exec tss-manager1 -- sudo tsswarm node ls
EOF
}

MANAGERS=3
WORKERS=2
IMAGE=24.04
CPUS=2
MEMORY=2G
DISK=10G
NAME_PREFIX=tss

while [ "$#" -gt 0 ]; do
  case "$1" in
    --managers | --workers | --image | --cpus | --memory | --disk | --name-prefix)
      [ "$#" -ge 2 ] || { echo "up.sh: $1 needs a value" >&2; exit 1; }
      case "$1" in
        --managers) MANAGERS="$2" ;;
        --workers) WORKERS="$2" ;;
        --image) IMAGE="$2" ;;
        --cpus) CPUS="$2" ;;
        --memory) MEMORY="$2" ;;
        --disk) DISK="$2" ;;
        --name-prefix) NAME_PREFIX="$2" ;;
      esac
      shift 2
      ;;
    -h | --help) usage; exit 0 ;;
    *) echo "up.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
done
case "$MANAGERS" in '' | *[!0-9]* | 0) echo "up.sh: --managers must be a number >= 1 (got \"$MANAGERS\")" >&2; exit 1 ;; esac
case "$WORKERS" in '' | *[!0-9]*) echo "up.sh: --workers must be a number >= 0 (got \"$WORKERS\")" >&2; exit 1 ;; esac

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
say() { printf '==> %s\n' "$*" >&2; }
die() { echo "up.sh: $*" >&2; exit 1; }
command -v multipass >/dev/null 2>&1 || { echo "up.sh: multipass is not installed (https://multipass.run/install)" >&2; exit 1; }

names=()
for i in $(seq 1 "$MANAGERS"); do names+=("$NAME_PREFIX-manager$i"); done
for i in $(seq 1 "$WORKERS"); do names+=("$NAME_PREFIX-worker$i"); done
first="${names[0]}"

# The VMs install the build (dist/): make it here, where the development dependencies are.
if [ -x "$REPO/node_modules/.bin/esbuild" ]; then
  (cd "$REPO" && npm run --silent build >/dev/null) || die "npm run build failed in $REPO (output above)"
elif [ ! -f "$REPO/dist/tsswarm.mjs" ]; then
  die "$REPO has no build (dist/): run \`npm ci && npm run build\` there first"
fi

# The checkout, without what install.sh would not copy anyway, as one tarball to send to each VM.
tarball="$(mktemp "${TMPDIR:-/tmp}/tsswarm-src.XXXXXX")"
trap 'rm -f "$tarball"' EXIT
tar -C "$REPO" --exclude=./node_modules --exclude=./.git --exclude=./test --exclude=./bench \
  --exclude=./deploy/vagrant/.vagrant --exclude=./deploy/vagrant/.cluster -czf "$tarball" .

exists() { multipass info "$1" >/dev/null 2>&1; }

# Launched together: multipass boots them in parallel, and each waits for its cloud-init.
pids=()
for n in "${names[@]}"; do
  if exists "$n"; then
    say "$n exists; starting it if stopped"
    multipass start "$n"
  else
    say "launching $n ($IMAGE, $CPUS CPUs, $MEMORY, $DISK)"
    multipass launch --name "$n" --cpus "$CPUS" --memory "$MEMORY" --disk "$DISK" --cloud-init "$HERE/cloud-init.yaml" "$IMAGE" &
    pids+=("$!")
  fi
done
for p in "${pids[@]}"; do wait "$p"; done

ip_of() { multipass info "$1" --format csv | awk -F, 'NR == 2 { split($3, a, ";"); print a[1] }'; }

install_on() {
  local n="$1"
  shift
  say "$n: deploy/install.sh $*"
  multipass exec "$n" -- cloud-init status --wait >/dev/null
  multipass transfer "$tarball" "$n:/tmp/tsswarm-src.tar.gz"
  multipass exec "$n" -- sudo bash -c 'rm -rf /opt/tsswarm-src && mkdir -p /opt/tsswarm-src && tar -C /opt/tsswarm-src -xzf /tmp/tsswarm-src.tar.gz'
  multipass exec "$n" -- sudo bash /opt/tsswarm-src/deploy/install.sh --node-name "${n#"$NAME_PREFIX"-}" --advertise-addr "$(ip_of "$n")" \
    --socket-group tsswarm "$@"
  # The VM's default user may then run tsswarm without sudo.
  # shellcheck disable=SC2016 # SUDO_USER is expanded inside the VM
  multipass exec "$n" -- sudo bash -c 'usermod -aG tsswarm "${SUDO_USER:-ubuntu}"'
}

install_on "$first" --init
addr="$(ip_of "$first"):4242"
manager_token="$(multipass exec "$first" -- sudo tsswarm join-token -q manager)"
worker_token="$(multipass exec "$first" -- sudo tsswarm join-token -q worker)"
for n in "${names[@]:1}"; do
  case "$n" in
    *-manager*) install_on "$n" --join "$manager_token" "$addr" ;;
    *) install_on "$n" --join "$worker_token" "$addr" ;;
  esac
done

multipass exec "$first" -- sudo tsswarm node ls
cat <<EOF

The cluster is up. Try:
  multipass exec $first -- sudo tsswarm node ls
  multipass shell $first
  bash $HERE/down.sh --name-prefix $NAME_PREFIX      # delete the VMs
EOF
