# One image with both binaries, /kcloud-operator and /kcloud-scheduler (the chart picks one per
# Deployment with `command`). Static (CGO_ENABLED=0) so the final stage needs no libc, and the final
# stage is distroless "static" running as its numeric nonroot user 65532, which the chart's
# runAsUser matches.
#
#   docker build -t ghcr.io/kcloud/kcloud-optimizer:0.1.0 .
#
# Go 1.26 as in go.mod; the module cache and build cache are mounts, so rebuilds are incremental.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)" \
      -o /out/ ./cmd/kcloud-operator ./cmd/kcloud-scheduler

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="kcloud-optimizer" \
      org.opencontainers.image.description="KCloud Workload Optimizer: kcloud-operator and kcloud-scheduler"
COPY --from=build /out/kcloud-operator /out/kcloud-scheduler /
USER 65532:65532
ENTRYPOINT ["/kcloud-operator"]
