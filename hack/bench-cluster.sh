#!/usr/bin/env bash
# Brings up the local cluster with the 1,523-node openb fleet until every node is Ready, after the
# 20-node default fleet as the baseline, and tears both down. Last line: openb_fleet_ready_s=X.
set -euo pipefail
cd "$(dirname "$0")/.."
assets=$(./hack/build-controlplane.sh)
go build -o bin/kcloud ./cmd/kcloud
state=$(mktemp -d)
trap 'bin/kcloud dev down --state-dir "$state/c" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
now() { date +%s.%N; }
up() { # profile -> seconds from start to every node Ready
  local t0 t1
  t0=$(now)
  bin/kcloud dev up --state-dir "$state/c" --bin-dir "$assets" --profile "$1" | grep -E 'nodes|Ready' >&2
  t1=$(now)
  bin/kcloud dev down --state-dir "$state/c" >&2
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }'
}
default_s=$(up default)
openb_s=$(up openb)
echo "default_fleet_ready_s=${default_s} (20 nodes) openb_fleet_ready_s=${openb_s} (1523 nodes) ratio=$(awk -v a="$openb_s" -v b="$default_s" 'BEGIN { printf "%.1f", a / b }')"
echo "openb_fleet_ready_s=${openb_s}"
