#!/usr/bin/env bash
# Builds the product's image (the Dockerfile's layout: both static binaries at /, nonroot 65532,
# ENTRYPOINT /kcloud-operator) without a container daemon or a registry: the binaries with Go, then
# hack/tools/image (go-containerregistry, its own module graph; built into
# bin/kcloud-image/<version>_<go version>_<source hash>/ once) puts them on a base layer it makes.
# Writes an OCI archive, bin/image/kcloud-optimizer-oci.tar (`podman load -i`, `skopeo copy
# oci-archive:...`), and a docker-archive beside it (`docker load -i`), both tagged
# <chart image.repository>:<chart appVersion>, the chart's default image; KCLOUD_IMAGE overrides the
# reference. The layers are deterministic: the same sources give the same digest. Prints the OCI
# archive's path on the last line of stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

chart=charts/kcloud-operator
app_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "${chart}/Chart.yaml")
repository=$(sed -n '/^image:/,/^[^ #]/s/^  repository: *//p' "${chart}/values.yaml")
if [ -z "$app_version" ] || [ -z "$repository" ]; then
  echo "[image] cannot read appVersion from ${chart}/Chart.yaml or image.repository from ${chart}/values.yaml" >&2
  exit 1
fi
image=${KCLOUD_IMAGE:-${repository}:${app_version}}
goarch=${GOARCH:-$(go env GOARCH)}

# The image tool: keyed by go-containerregistry's version, the Go version and its own sources.
mod=github.com/google/go-containerregistry
ver=$(cd hack/tools/image && go list -m -f '{{.Version}}' "$mod")
src=$(cat hack/tools/image/go.mod hack/tools/image/go.sum hack/tools/image/*.go | sha256sum | cut -c1-12)
key="${ver}_$(go env GOVERSION)_${src}"
tool="${root}/bin/kcloud-image/${key}/kcloud-image"
if [ ! -x "$tool" ]; then
  mkdir -p "$(dirname "$tool")"
  echo "[image] building the image tool (go-containerregistry ${ver})" >&2
  (cd hack/tools/image && CGO_ENABLED=0 go build -trimpath -o "${tool}.tmp" .)
  mv "${tool}.tmp" "$tool"
fi
ln -sfn "$key" "${root}/bin/kcloud-image/current"

# The binaries, as the Dockerfile's build stage builds them; Go's build cache makes a rebuild quick.
out="${root}/bin/image"
mkdir -p "${out}/binaries"
echo "[image] building kcloud-operator and kcloud-scheduler (static, linux/${goarch}; a few minutes cold on 2 cores)" >&2
start=$SECONDS
# kcloud-scheduler is kube-scheduler of the module graph's Kubernetes: its --version, build-info
# metric and logs say which (the skew policy is read against it), as upstream's release builds do.
k8s_version=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
CGO_ENABLED=0 GOOS=linux GOARCH="$goarch" go build -trimpath \
  -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${k8s_version}" \
  -o "${out}/binaries/" ./cmd/kcloud-operator ./cmd/kcloud-scheduler
echo "[image] binaries built in $((SECONDS - start))s" >&2

"$tool" --binary-dir "${out}/binaries" --tag "$image" --arch "$goarch" \
  --output "${out}/kcloud-optimizer-oci.tar" --docker-archive "${out}/kcloud-optimizer-docker.tar" >&2
echo "${out}/kcloud-optimizer-oci.tar"
