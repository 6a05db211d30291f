# gitpulse — every entry point a developer or CI needs.
#
#   make run     the whole stack on a local control plane (see README)
#   make test    every test: lint, generated-code check, unit + integration
#   make bench   benchmarks (not part of make test)
#
# Everything downloaded or built is cached under bin/ and .cache/ (git-ignored).

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT      := $(CURDIR)
BIN       := $(ROOT)/bin
CACHE     := $(ROOT)/.cache
CP_BIN    := $(BIN)/controlplane
EV_BIN    := $(BIN)/eventing
EVGH_BIN  := $(BIN)/eventing-github
K8S_VERSION  := v1.35.4
ETCD_VERSION := v3.6.16
WEBHOOK_EXAMPLES_VERSION := 7.6.1
GRAPHQL_SCHEMA_VERSION := 15.26.1

export GITPULSE_CONTROLPLANE_BIN := $(CP_BIN)
export GITPULSE_EVENTING_BIN := $(EV_BIN)
export GITPULSE_EVENTING_GITHUB_BIN := $(EVGH_BIN)
export GITPULSE_CACHE := $(CACHE)
export CGO_ENABLED ?= 0

K8S_LDFLAGS := -s -w -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
  -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=35

# The metrics function is its own module (kn func needs a go.mod at each
# function's root); see docs/architecture.md. test/graphqlschema is one too,
# so that its GraphQL validator never enters a function's go.mod.
GO_MODULES := . functions/metrics test/graphqlschema
export GOWORK := off

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

## ---- control plane (kube-apiserver, kubectl, etcd from the Go module proxy)

.PHONY: controlplane
controlplane: $(CP_BIN)/kube-apiserver $(CP_BIN)/kubectl $(CP_BIN)/etcd ## Build the local control plane binaries (cached).

# Rebuilt only when the pinned versions (the tool modules) change.
$(CP_BIN)/kube-apiserver $(CP_BIN)/kubectl &: hack/tools/controlplane/go.mod hack/tools/controlplane/go.sum
	@mkdir -p $(CP_BIN)
	@echo ">> building kube-apiserver and kubectl $(K8S_VERSION) (first time: a few minutes)"
	cd hack/tools/controlplane && go build -trimpath -ldflags "$(K8S_LDFLAGS)" -o $(CP_BIN)/ \
	  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
	@touch $(CP_BIN)/kube-apiserver $(CP_BIN)/kubectl

$(CP_BIN)/etcd: hack/tools/etcd/go.mod hack/tools/etcd/go.sum
	@mkdir -p $(CP_BIN)
	@echo ">> building etcd $(ETCD_VERSION)"
	cd hack/tools/etcd && go build -trimpath -ldflags "-s -w" -o $(CP_BIN)/etcd go.etcd.io/etcd/server/v3
	@touch $@

## ---- Knative Eventing (the real Broker, Trigger and in-memory channel as local processes)

EVENTING_VERSION := v0.43.0
EVENTING_CMDS := controller mtchannel_broker broker/ingress broker/filter \
  in_memory/channel_controller in_memory/channel_dispatcher webhook
EVENTING_BINS := $(addprefix $(EV_BIN)/,$(notdir $(EVENTING_CMDS)))

.PHONY: eventing
eventing: $(EVENTING_BINS) ## Build the Knative Eventing processes (cached).

# Rebuilt only when the pinned version (the tool module) changes. One `go
# build` for all seven: they share most packages (first time: ~2 min on 2 cores).
$(EVENTING_BINS) &: hack/tools/eventing/go.mod hack/tools/eventing/go.sum
	@mkdir -p $(EV_BIN)
	@echo ">> building knative.dev/eventing $(EVENTING_VERSION) (first time: a few minutes)"
	cd hack/tools/eventing && go build -trimpath -ldflags "-s -w" -o $(EV_BIN)/ \
	  $(addprefix knative.dev/eventing/cmd/,$(EVENTING_CMDS))
	@# config/ of the same module version: the CRDs, config maps and webhook
	@# configurations internal/eventingstack applies.
	rm -rf $(EV_BIN)/config && mkdir -p $(EV_BIN)/config
	src=$$(cd hack/tools/eventing && go list -m -f '{{.Dir}}' knative.dev/eventing) && \
	  cp -r $$src/config/core $$src/config/channels $$src/config/brokers $(EV_BIN)/config/ && \
	  chmod -R u+w $(EV_BIN)/config
	@touch $(EVENTING_BINS)

## ---- the GitHubSource receive adapter (knative.dev/eventing-github), where a webhook enters

EVENTING_GITHUB_VERSION := v0.43.0

.PHONY: eventing-github
eventing-github: $(EVGH_BIN)/receive_adapter ## Build the real GitHubSource receive adapter and copy its CRD (cached).

# Rebuilt only when the pinned version (the tool module) changes (first
# time: ~2.5 min on 2 cores, less after `make eventing`: shared packages).
$(EVGH_BIN)/receive_adapter: hack/tools/eventing-github/go.mod hack/tools/eventing-github/go.sum
	@mkdir -p $(EVGH_BIN)
	@echo ">> building knative.dev/eventing-github $(EVENTING_GITHUB_VERSION) receive_adapter"
	cd hack/tools/eventing-github && go build -trimpath -ldflags "-s -w" -o $(EVGH_BIN)/receive_adapter \
	  knative.dev/eventing-github/cmd/receive_adapter
	@# The GitHubSource CRD of the same module version, which internal/localrun
	@# and the tests install (internal/ghadapter.CRDDir).
	rm -rf $(EVGH_BIN)/config && mkdir -p $(EVGH_BIN)/config
	src=$$(cd hack/tools/eventing-github && go list -m -f '{{.Dir}}' knative.dev/eventing-github) && \
	  cp $$src/config/core/300-githubsource.yaml $(EVGH_BIN)/config/ && chmod -R u+w $(EVGH_BIN)/config
	@touch $@

## ---- test tools and data (Debian's prometheus for promtool, npm's webhook examples)

PROM_DIR := $(CACHE)/prometheus
.PHONY: prometheus
prometheus: $(PROM_DIR)/usr/bin/promtool ## Unpack Debian's prometheus + promtool (cached).
$(PROM_DIR)/usr/bin/promtool:
	@mkdir -p $(PROM_DIR)/deb
	@echo ">> fetching Debian package prometheus"
	cd $(PROM_DIR)/deb && (apt-get download prometheus 2>/dev/null || { apt-get update -qq && apt-get download prometheus; })
	dpkg-deb -x $(PROM_DIR)/deb/prometheus_*.deb $(PROM_DIR)
	@test -x $@
export GITPULSE_PROMETHEUS_BIN := $(PROM_DIR)/usr/bin

EXAMPLES_DIR := $(CACHE)/npm
.PHONY: webhook-examples
webhook-examples: $(EXAMPLES_DIR)/node_modules/@octokit/webhooks-examples/package.json ## Install @octokit/webhooks-examples (cached).
$(EXAMPLES_DIR)/node_modules/@octokit/webhooks-examples/package.json:
	@mkdir -p $(EXAMPLES_DIR)
	@echo ">> installing @octokit/webhooks-examples@$(WEBHOOK_EXAMPLES_VERSION)"
	npm install --silent --no-audit --no-fund --prefix $(EXAMPLES_DIR) \
	  @octokit/webhooks-examples@$(WEBHOOK_EXAMPLES_VERSION) @octokit/webhooks-methods@5
export GITPULSE_WEBHOOK_EXAMPLES := $(EXAMPLES_DIR)/node_modules/@octokit/webhooks-examples

# GitHub's GraphQL schema, which test/graphqlschema validates gitpulse's
# GraphQL and the fake GitHub's answers against.
GRAPHQL_SCHEMA := $(EXAMPLES_DIR)/node_modules/@octokit/graphql-schema/schema.graphql
.PHONY: graphql-schema
graphql-schema: $(GRAPHQL_SCHEMA) ## Install @octokit/graphql-schema, GitHub's GraphQL schema (cached).
$(GRAPHQL_SCHEMA):
	@mkdir -p $(EXAMPLES_DIR)
	@echo ">> installing @octokit/graphql-schema@$(GRAPHQL_SCHEMA_VERSION)"
	npm install --silent --no-audit --no-fund --prefix $(EXAMPLES_DIR) \
	  @octokit/graphql-schema@$(GRAPHQL_SCHEMA_VERSION)
	@test -f $@
export GITPULSE_GRAPHQL_SCHEMA := $(GRAPHQL_SCHEMA)

.PHONY: test-deps
test-deps: controlplane eventing eventing-github prometheus webhook-examples graphql-schema ## Everything the tests need.

## ---- code generation

.PHONY: generate
generate: ## Regenerate deepcopy, CRDs, the clientset and the metrics copy.
	./hack/update-codegen.sh

.PHONY: verify-generate
verify-generate: ## Fail when generated code or CRDs are stale.
	./hack/verify-codegen.sh

## ---- checks

.PHONY: lint
lint: ## go vet and gofmt (fails on any output).
	for m in $(GO_MODULES); do (cd $$m && go vet ./...); done
	@out=$$(gofmt -l $$(git ls-files '*.go' ; git ls-files --others --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

GO_TEST_FLAGS ?= -count=1 -timeout 20m
FUZZTIME ?= 10s

.PHONY: test
test: test-deps lint verify-generate ## Every test: unit, integration (real control plane), brief fuzzing.
	for m in $(GO_MODULES); do (cd $$m && go test $(GO_TEST_FLAGS) ./...); done
	$(MAKE) --no-print-directory fuzz

.PHONY: fuzz
fuzz: ## Run each fuzz target briefly (FUZZTIME, default 10s).
	@./hack/fuzz.sh $(FUZZTIME)

.PHONY: bench
bench: test-deps ## Benchmarks on the local control plane; prints a table.
	go test -run '^$$' -bench . -benchtime 1x -timeout 60m ./test/bench/...

## ---- running it

.PHONY: build
build: ## Build the local binaries (bin/gitpulse-local, -demo; the functions as kn func builds them).
	go build -o $(BIN)/ ./cmd/gitpulse-local ./cmd/gitpulse-demo
	go run ./cmd/gitpulse-build -o $(BIN)

.PHONY: run
run: controlplane eventing eventing-github build ## Start the whole stack locally (control plane, recorder, metrics, Knative Broker, GitHubSource adapter).
	exec $(BIN)/gitpulse-local

.PHONY: demo
demo: build ## Replay a realistic story into a running `make run` and show the result.
	$(BIN)/gitpulse-demo

.PHONY: clean
clean: ## Remove built binaries and caches.
	rm -rf $(BIN) $(CACHE)
