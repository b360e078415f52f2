#!/usr/bin/env bash
# Builds the control-plane binaries the tests and the local cluster need from the Go module graph
# (no release downloads: the machines have no internet). Output goes to bin/controlplane/<key>/, where
# <key> names the pinned versions, so a rebuild happens only when a version changes. Prints the
# directory on the last line of stdout; envtest reads it through KUBEBUILDER_ASSETS.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

modver() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }
k8s=$(modver . k8s.io/kubernetes)
etcd=$(modver . go.etcd.io/etcd/server/v3)
kwok=$(modver hack/tools/kwok sigs.k8s.io/kwok)
gover=$(go env GOVERSION)
key="k8s-${k8s}_etcd-${etcd}_kwok-${kwok}_${gover}"
out="${root}/bin/controlplane/${key}"
mkdir -p "$out"

log() { echo "[controlplane] $*" >&2; }

# -s -w: no symbol tables, which halves link time and size; -X: report the real version, since
# kubectl and kwok read it for skew checks.
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s} -X k8s.io/client-go/pkg/version.gitVersion=${k8s}"
k8s_ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$k8s" | cut -d. -f2)"

build() { # name dir pkg ldflags
  local name=$1 dir=$2 pkg=$3 ldflags=$4
  if [ -x "${out}/${name}" ]; then
    log "${name}: cached"
    return
  fi
  local start=$SECONDS
  local hint=""
  [ "$name" != kube-apiserver ] || hint=" (cold, this one takes 4-6 minutes on 2 cores)"
  log "${name}: building ${pkg}${hint}"
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "${out}/${name}.tmp" "$pkg")
  mv "${out}/${name}.tmp" "${out}/${name}"
  log "${name}: built in $((SECONDS - start))s"
}

build etcd . go.etcd.io/etcd/server/v3 "-s -w"
build kube-apiserver . k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kube-controller-manager . k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build kube-scheduler . k8s.io/kubernetes/cmd/kube-scheduler "$k8s_ldflags"
build kubectl . k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build kwok hack/tools/kwok sigs.k8s.io/kwok/cmd/kwok "-s -w"

# kwok's stages (node initialize/heartbeat, pod ready/complete/delete) ship in its module. The node
# heartbeat is the one kwok pairs with node leases: a status patch every 10-20 minutes. The plain one
# patches every node every 20-45 s, about 150 writes a second at 5,000 nodes, which a two-core
# machine cannot keep up with (nodes turned unreachable before the fleet was Ready). The file is
# made again when the list changes.
stages="node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml"
if [ ! -f "${out}/kwok-stages.yaml" ] || [ "$(cat "${out}/kwok-stages.list" 2>/dev/null)" != "$stages" ]; then
  stagedir=$(cd hack/tools/kwok && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
  { for f in $stages; do
      [ -f "${stagedir}/${f}" ] || { echo "missing kwok stage ${f}" >&2; exit 1; }
      echo "---"; cat "${stagedir}/${f}"
    done; } > "${out}/kwok-stages.yaml.tmp"
  mv "${out}/kwok-stages.yaml.tmp" "${out}/kwok-stages.yaml"
  echo "$stages" > "${out}/kwok-stages.list"
fi
ln -sfn "$key" "${root}/bin/controlplane/current"
echo "$out"
