#!/usr/bin/env bash
# Fails when a generated file (code, config/, the chart's copies and values table, docs/API.md), the
# staging replace lines or formatting is stale, or `make lint` (gofmt, golangci-lint) finds something.
# Regenerates in place and compares checksums, so a stale tree is also left regenerated.
set -euo pipefail
cd "$(dirname "$0")/.."
generated=(go.mod go.sum api config charts docs/API.md)
sums() { find "${generated[@]}" -type f | LC_ALL=C sort | xargs sha256sum; }
before=$(sums)
./hack/gen-k8s-replace.sh >/dev/null
make -s generate manifests >/dev/null
after=$(sums)
if [ "$before" != "$after" ]; then
  echo "verify: generated files were stale and have been regenerated; commit these:" >&2
  diff <(echo "$before") <(echo "$after") | sed -n 's/^> [0-9a-f]*  /  /p' >&2
  exit 1
fi
unformatted=$(git ls-files --cached --others --exclude-standard '*.go' | while read -r f; do [ -f "$f" ] && echo "$f"; done | xargs gofmt -l)
if [ -n "$unformatted" ]; then
  echo "verify: gofmt needed on: $unformatted" >&2
  exit 1
fi
# golangci-lint runs govet among its linters (.golangci.yml), so go vet is not run separately.
make -s lint
echo "verify: generated files fresh, gofmt clean, golangci-lint clean"
