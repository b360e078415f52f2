#!/usr/bin/env bash
# Pins every staging module of k8s.io/kubernetes to the matching published k8s.io/* version.
# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging paths that
# do not exist outside its own repository, so a consumer must replace each one; the list is read from
# the module's own go.mod so it never drifts from the version we pin.
set -euo pipefail
cd "$(dirname "$0")/.."
K8S_VERSION="${K8S_VERSION:-v1.37.2}"
STAGING_VERSION="v0${K8S_VERSION#v1}"
gomod=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[ -f "$gomod" ] || { echo "cannot find go.mod of k8s.io/kubernetes@${K8S_VERSION}" >&2; exit 1; }
mods=$(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$gomod")
count=0
for m in $mods; do
  go mod edit -replace "${m}=${m}@${STAGING_VERSION}"
  count=$((count + 1))
done
echo "pinned ${count} staging modules of k8s.io/kubernetes@${K8S_VERSION} to ${STAGING_VERSION}"
