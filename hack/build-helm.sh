#!/usr/bin/env bash
# Builds the helm CLI from its own module graph (hack/tools/helm, so that its k8s.io/* versions stay
# out of the product's go.mod) into bin/helm/<version>_<go version>/helm, once per version. No
# release download: the machines have no internet. Prints the binary's path on the last line of
# stdout; the chart e2e test and `helm install` in the docs use it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
ver=$(cd hack/tools/helm && go list -m -f '{{.Version}}' helm.sh/helm/v3)
key="${ver}_$(go env GOVERSION)_2"  # _2: built with the Kubernetes version ldflags
out="${root}/bin/helm/${key}"
if [ ! -x "${out}/helm" ]; then
  mkdir -p "$out"
  echo "[helm] building helm ${ver} from the module graph (about 2 minutes cold on 2 cores)" >&2
  start=$SECONDS
  # -X, as helm's own Makefile does: `helm version` reports the real version, and `helm template`
  # and `helm lint` assume the Kubernetes version of helm's client-go (1.<minor>), not 1.20.
  minor=$(cd hack/tools/helm && go list -m -f '{{.Version}}' k8s.io/client-go | cut -d. -f2)
  ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${ver}"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ldflags+=" -X ${p}.k8sVersionMajor=1 -X ${p}.k8sVersionMinor=${minor}"
  done
  (cd hack/tools/helm && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" \
    -o "${out}/helm.tmp" helm.sh/helm/v3/cmd/helm)
  mv "${out}/helm.tmp" "${out}/helm"
  echo "[helm] built in $((SECONDS - start))s" >&2
fi
ln -sfn "$key" "${root}/bin/helm/current"
echo "${out}/helm"
