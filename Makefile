# KCloud Workload Optimizer. `make help` lists the targets.
SHELL := /usr/bin/env bash -o pipefail
.DEFAULT_GOAL := help

GO ?= go
CONTROLLER_GEN := $(GO) tool controller-gen
FUZZTIME ?= 60s
CHAOS_DURATION ?= 20m
# Control-plane binaries are built from the module graph; the script prints their directory.
WITH_ASSETS = assets=$$(./hack/build-controlplane.sh) && KUBEBUILDER_ASSETS="$$assets"
KUBECTL = bin/controlplane/current/kubectl
GO_TEST_FLAGS ?= -count=1 -timeout=40m
# test-unit keeps Go's test cache (the inner loop); GO_TEST_UNIT_FLAGS=-count=1 reruns everything.
GO_TEST_UNIT_FLAGS ?= -timeout=10m
# The suites under test/ (except the doc parser's tests) need the control plane, kwok or Prometheus.
UNIT_PACKAGES = $$($(GO) list ./... | grep -v '^kcloud.io/optimizer/test/')
GOLANGCI_LINT_FLAGS ?=

##@ General
.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

.PHONY: all
all: generate manifests build ## Generate code and manifests, then build.

##@ Development
.PHONY: deps
deps: ## Download Go modules (product and tools).
	$(GO) mod download
	cd hack/tools/kwok && $(GO) mod download
	cd hack/tools/helm && $(GO) mod download
	cd hack/tools/golangci-lint && $(GO) mod download
	cd hack/tools/image && $(GO) mod download

.PHONY: generate
generate: ## Generate deepcopy code from the API markers.
	$(CONTROLLER_GEN) object paths=./api/...

.PHONY: manifests
manifests: ## Generate CRDs, RBAC and webhook configurations under config/ from the markers; copy them into the chart; its values table; docs/API.md from the CRDs.
	$(CONTROLLER_GEN) crd:allowDangerousTypes=true paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=kcloud-operator paths=./internal/... output:rbac:artifacts:config=config/rbac
	$(CONTROLLER_GEN) webhook paths=./internal/webhook/... output:webhook:artifacts:config=config/webhook
	./hack/sync-chart.sh
	$(GO) run ./hack/gen-chart-readme charts/kcloud-operator
	$(GO) run ./hack/gen-api-docs -crds config/crd/bases -api api/v1alpha1 -out docs/API.md

.PHONY: replace
replace: ## Regenerate the k8s.io staging replace lines in go.mod from k8s.io/kubernetes' own go.mod.
	./hack/gen-k8s-replace.sh

.PHONY: verify
verify: ## Fail when generated files, replace lines or formatting are stale, or make lint finds something.
	./hack/verify.sh

.PHONY: lint
lint: ## gofmt, then golangci-lint (.golangci.yml; built from hack/tools/golangci-lint into bin/ on first use).
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@lint=$$(./hack/build-golangci-lint.sh) && echo "$$lint run $(GOLANGCI_LINT_FLAGS) ./..." && "$$lint" run $(GOLANGCI_LINT_FLAGS) ./...

.PHONY: golangci-lint
golangci-lint: ## Build golangci-lint from its module (hack/tools/golangci-lint) into bin/golangci-lint/current/; prints its path.
	@./hack/build-golangci-lint.sh

.PHONY: controlplane
controlplane: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl and kwok into bin/.
	@./hack/build-controlplane.sh

.PHONY: helm
helm: ## Build the helm CLI from its module (hack/tools/helm) into bin/helm/current/helm; prints its path.
	@./hack/build-helm.sh

##@ Build
.PHONY: build
build: ## Compile every package and the commands under cmd/ into bin/ (kubectl-kcloud is the plugin name).
	$(GO) build ./...
	@for d in cmd/*/; do [ -d "$$d" ] || continue; echo "building bin/$$(basename $$d)"; $(GO) build -o bin/ ./$$d || exit 1; done
	@ln -sf kcloud bin/kubectl-kcloud

.PHONY: image
image: ## Build the image (both binaries, nonroot) without a container daemon or registry: bin/image/kcloud-optimizer-oci.tar (OCI archive, docker-archive beside it), tagged as the chart's default image.
	@./hack/build-image.sh

.PHONY: run
run: ## Run the product on a local cluster (kcloud dev up, or the one $$KUBECONFIG names if dev up started it); CRDs, examples, report.
	@./hack/build-controlplane.sh >/dev/null
	$(GO) build -o bin/kcloud ./cmd/kcloud
	$(GO) build -o bin/kcloud-scheduler ./cmd/kcloud-scheduler
	$(GO) build -o bin/kcloud-operator ./cmd/kcloud-operator
	bin/kcloud run

.PHONY: dev-down
dev-down: ## Stop the local cluster that `make run` started.
	bin/kcloud dev down

##@ Test
.PHONY: test-unit
test-unit: ## Unit tests only, the inner loop: every package outside test/, and test/docs' parser tests; no control plane, no network.
	$(GO) test $(GO_TEST_UNIT_FLAGS) $(UNIT_PACKAGES)
	$(GO) test $(GO_TEST_UNIT_FLAGS) -short ./test/docs/

.PHONY: test
test: verify prometheus helm ## Everything: unit, integration (envtest) and e2e (local cluster) tests, then the image's (make test-image) (the README's test command).
	$(WITH_ASSETS) KCLOUD_BIN_DIR="$$assets" KCLOUD_HELM="$$(./hack/build-helm.sh)" $(GO) test $(GO_TEST_FLAGS) ./...
	@$(MAKE) --no-print-directory test-image

.PHONY: prometheus
prometheus: ## Install Prometheus (Debian package) for the telemetry integration test when it is missing.
	@./hack/ensure-prometheus.sh

.PHONY: test-integration
test-integration: prometheus ## Integration tests only (envtest with binaries built from modules).
	$(WITH_ASSETS) $(GO) test $(GO_TEST_FLAGS) ./test/integration/...

.PHONY: test-e2e
test-e2e: helm ## End-to-end tests on the local cluster (kcloud dev up, kwok fleet), torn down after; the chart and `make deploy` included.
	$(WITH_ASSETS) KCLOUD_BIN_DIR="$$assets" KCLOUD_HELM="$$(./hack/build-helm.sh)" $(GO) test $(GO_TEST_FLAGS) -v ./test/e2e/...

.PHONY: test-image
test-image: ## Load the image (make image) into podman (Debian's, installed when missing) and run it as the chart does on the local cluster: uid 65532, read-only root, webhooks, status.
	@conf=$$(./hack/ensure-podman.sh) && archive=$$(./hack/build-image.sh) && \
		$(WITH_ASSETS) KCLOUD_BIN_DIR="$$assets" KCLOUD_HELM="$$(./hack/build-helm.sh)" CONTAINERS_CONF="$$conf" KCLOUD_IMAGE_ARCHIVE="$$archive" \
		$(GO) test $(GO_TEST_FLAGS) -v ./test/e2e/image/

.PHONY: chaos
chaos: ## Money under chaos: covered pods streamed for CHAOS_DURATION (default 20m) while operator replicas are killed, the apiserver restarts and a node goes; last line spend_error_pct=X energy_error_pct=Y kills=N leader_changes=M overshoot_usd=Z (make test-e2e runs 150s of it).
	$(WITH_ASSETS) KCLOUD_BIN_DIR="$$assets" KCLOUD_HELM="$$(./hack/build-helm.sh)" KCLOUD_CHAOS_DURATION=$(CHAOS_DURATION) \
		$(GO) test -timeout 90m -count=1 -v -run '^TestChaosAccounting$$' ./test/e2e/

.PHONY: fuzz
fuzz: ## Fuzz admission, trace readers, the catalog ConfigMap and node reservations, FUZZTIME (default 60s) per target; not part of make test.
	@for pair in internal/webhook/v1alpha1:FuzzPodAdmission internal/webhook/v1alpha1:FuzzPolicyValidation \
		pkg/traces:FuzzReadPods pkg/catalog:FuzzCatalogConfigMap pkg/kube:FuzzNodeReservations; do \
		pkg=$${pair%%:*}; target=$${pair#*:}; \
		echo "fuzzing $$target in ./$$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) ./$$pkg/ || exit 1; \
	done

##@ Benchmarks
.PHONY: bench-simulator
bench-simulator: ## Time the simulator (one run, full table) against FGD; last line inflate_run_s=X full_table_s=Y.
	@./hack/bench-simulator.sh

.PHONY: bench-webhook
bench-webhook: ## Webhook latency: in-process at 500 req/s vs a no-op webhook, and through the local apiserver; last line webhook_p99_ms=X apiserver_p99_ms=Y.
	@assets=$$(./hack/build-controlplane.sh) && $(GO) build -o bin/kcloud-operator ./cmd/kcloud-operator && \
		$(GO) run ./hack/bench-webhook --bin-dir "$$assets" --operator bin/kcloud-operator

.PHONY: bench-scheduler
bench-scheduler: ## kcloud-scheduler vs upstream kube-scheduler, four ways, on the production-like fleet at 1,000 and 5,000 kwok nodes; last line throughput_ratio=X plugin_p99_ms=Y ratio_plugins_only=Z nodes=N.
	@assets=$$(./hack/build-controlplane.sh) && $(GO) build -o bin/kcloud-scheduler ./cmd/kcloud-scheduler && \
		$(GO) run ./hack/bench-scheduler --bin-dir "$$assets" --kcloud-scheduler bin/kcloud-scheduler $(BENCH_SCHEDULER_FLAGS)

.PHONY: bench-operator
bench-operator: ## kcloud-operator at scale: 5,000 WorkloadOptimizers, 20,000 pods, 1,000 kwok nodes, vs a bare cache; last line memory_mib=X reconcile_p99_ms=Y.
	@assets=$$(./hack/build-controlplane.sh) && $(GO) build -o bin/kcloud-operator ./cmd/kcloud-operator && \
		$(GO) run ./hack/bench-operator --bin-dir "$$assets" --operator bin/kcloud-operator $(BENCH_OPERATOR_FLAGS)

.PHONY: fidelity-scheduler
fidelity-scheduler: ## kcloud-scheduler and upstream kube-scheduler vs kcloud simulate on the openb fleet, the default trace until 90% GPU allocation, pod by pod; last line alloc_pct=A ... same_node_pct=E upstream_same_node_pct=F.
	@assets=$$(./hack/build-controlplane.sh) && $(GO) build -o bin/kcloud-scheduler ./cmd/kcloud-scheduler && \
		$(GO) run ./hack/fidelity-scheduler --bin-dir "$$assets" --kcloud-scheduler bin/kcloud-scheduler

.PHONY: bench-cluster
bench-cluster: ## Bring up the 1,523-node openb fleet until Ready; last line openb_fleet_ready_s=X.
	@./hack/bench-cluster.sh

##@ Deployment
.PHONY: install
install: controlplane ## Install the CRDs into the cluster of the current kubeconfig.
	$(KUBECTL) apply --server-side -k config/crd

.PHONY: uninstall
uninstall: controlplane ## Remove the CRDs (and every custom resource) from the cluster of the current kubeconfig.
	$(KUBECTL) delete --ignore-not-found -f config/crd/bases

.PHONY: deploy
deploy: controlplane ## Deploy CRDs, operator (webhooks, self-managed certificates) and scheduler: config/default (kustomize) into kcloud-operator-system.
	$(KUBECTL) apply --server-side -k config/default

.PHONY: undeploy
undeploy: controlplane ## Remove what `make deploy` created, CRDs (and every custom resource) included.
	$(KUBECTL) delete --ignore-not-found -k config/default
