#!/usr/bin/env bash
# Makes sure a Prometheus server is installed for the telemetry integration test, which starts a real
# one on loopback, and promtool for the alert-rule, dashboard and /metrics checks (test/monitoring,
# test/integration). It comes from Debian's `prometheus` package (the only place this machine may download
# from); a server already on PATH is kept as it is.
set -euo pipefail
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-prometheus: prometheus is not installed and installing it needs root: apt-get install prometheus" >&2
    exit 1
  fi
  echo "ensure-prometheus: installing Debian's prometheus package" >&2
  # Wait for a concurrent apt/dpkg run instead of failing on its lock.
  apt-get -o DPkg::Lock::Timeout=600 update
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends prometheus
fi
prometheus --version 2>&1 | head -n 1
