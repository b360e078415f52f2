#!/usr/bin/env bash
# Makes sure podman can run the product's image for `make test-image`: Debian's podman and runc
# (the only place these machines may download from) are installed when missing, and a
# containers.conf for the test is written to bin/podman/containers.conf, so that nothing on the
# host is changed: podman reads it through CONTAINERS_CONF. Prints that path on the last line of
# stdout.
#
# What the file sets, and why (seen on these machines, Debian 12, podman 4.3, cgroup v1):
#   runtime = "runc"     crun cannot run containers here; runc can. Only runc is installed, but a crun
#                        installed later would otherwise be podman's first choice.
#   default_ulimits = [] podman (as root) raises RLIMIT_NOFILE to 1048576 in every container, above
#                        this machine's hard limit, and runc fails with "error setting rlimits for
#                        ready process: error setting rlimit type 7: operation not permitted";
#                        without defaults the container keeps the caller's limits.
# Storage needs nothing: the overlay driver works here, in podman's default /var/lib/containers.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if ! command -v podman >/dev/null 2>&1 || ! command -v runc >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-podman: podman or runc is not installed and installing them needs root: apt-get install podman runc" >&2
    exit 1
  fi
  echo "ensure-podman: installing Debian's podman and runc packages" >&2
  # Wait for a concurrent apt/dpkg run instead of failing on its lock. No recommends: they would
  # bring crun, and podman would pick it.
  apt-get -o DPkg::Lock::Timeout=600 update
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends podman runc
fi
conf="${root}/bin/podman/containers.conf"
mkdir -p "$(dirname "$conf")"
cat >"${conf}.tmp" <<'EOF'
# Written by hack/ensure-podman.sh for `make test-image`; read through CONTAINERS_CONF.
[containers]
default_ulimits = []

[engine]
runtime = "runc"
EOF
mv "${conf}.tmp" "$conf"
info=$(CONTAINERS_CONF="$conf" podman info --format '{{.Version.Version}} runtime={{.Host.OCIRuntime.Name}} storage={{.Store.GraphDriverName}} cgroups={{.Host.CgroupsVersion}}/{{.Host.CgroupManager}}')
echo "ensure-podman: podman ${info}" >&2
echo "$conf"
