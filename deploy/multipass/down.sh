#!/usr/bin/env bash
# Deletes the multipass VMs that up.sh launched (named PREFIX-managerN and
# PREFIX-workerN, default prefix tss) and purges them. Other VMs are left alone.
set -euo pipefail

NAME_PREFIX=tss
while [ "$#" -gt 0 ]; do
  case "$1" in
    --name-prefix)
      [ "$#" -ge 2 ] || { echo "down.sh: --name-prefix needs a value" >&2; exit 1; }
      NAME_PREFIX="$2"
      shift 2
      ;;
    -h | --help)
      echo "Usage: deploy/multipass/down.sh [--name-prefix P]   (deletes P-manager*, P-worker*; default P=tss)"
      exit 0
      ;;
    *) echo "down.sh: unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
done
command -v multipass >/dev/null 2>&1 || { echo "down.sh: multipass is not installed" >&2; exit 1; }

mapfile -t names < <(multipass list --format csv | awk -F, -v p="$NAME_PREFIX" 'NR > 1 && $1 ~ ("^" p "-(manager|worker)[0-9]+$") { print $1 }')
if [ "${#names[@]}" -eq 0 ]; then
  echo "no VMs named $NAME_PREFIX-manager* or $NAME_PREFIX-worker*: nothing to delete" >&2
  exit 0
fi
echo "==> deleting ${names[*]}" >&2
multipass delete --purge "${names[@]}"
