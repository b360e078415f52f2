#!/usr/bin/env bash
# Builds golangci-lint from its own module graph (hack/tools/golangci-lint, so that its analyzers'
# dependencies stay out of the product's go.mod) into bin/golangci-lint/<version>_<go version>/,
# once per version: a second run only prints the path. No release download: the machines have no
# internet. Prints the binary's path on the last line of stdout; `make lint` and hack/verify.sh use it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mod=github.com/golangci/golangci-lint/v2
ver=$(cd hack/tools/golangci-lint && go list -m -f '{{.Version}}' "$mod")
# The Go version is in the key: golangci-lint must be built by the toolchain whose code it checks.
key="${ver}_$(go env GOVERSION)"
out="${root}/bin/golangci-lint/${key}"
if [ ! -x "${out}/golangci-lint" ]; then
  mkdir -p "$out"
  echo "[golangci-lint] building golangci-lint ${ver} from the module graph (a few minutes cold on 2 cores)" >&2
  start=$SECONDS
  # -X, as golangci-lint's own release does: `golangci-lint version` reports the real version.
  (cd hack/tools/golangci-lint && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X main.version=${ver#v} -X main.commit=module -X main.date=unknown" \
    -o "${out}/golangci-lint.tmp" "${mod}/cmd/golangci-lint")
  mv "${out}/golangci-lint.tmp" "${out}/golangci-lint"
  echo "[golangci-lint] built in $((SECONDS - start))s" >&2
fi
ln -sfn "$key" "${root}/bin/golangci-lint/current"
echo "${out}/golangci-lint"
