#!/usr/bin/env bash
# `make bench`: build phi-guard in release mode and run the benchmarks; prints Markdown tables
# (BENCHMARKS.md holds a run).
#   1. benches/admission.rs  phi-guard vs the floor webhook over TLS, server pinned to CPU 0,
#                            load generator on CPU 1 (BENCH_SECONDS per point, default 3)
#   2. benches/apiserver.rs  Pod creates through a real kube-apiserver (hack/controlplane.sh):
#                            no admission vs a ValidatingAdmissionPolicy vs phi-guard
#                            (BENCH_E2E_PODS creates per phase and round, default 150)
#   3. benches/soak.rs       `make soak` (BENCH_ONLY=soak; never part of `all`): SOAK_MINUTES
#                            (default 30) of steady reviews and churn through a real control plane
# BENCH_ONLY=admission|scaling|handler|apiserver|soak runs one of them (scaling: only the scaling
# table of part 1; handler: only part 1's in-process table of the two handlers); BENCH_ONLY=audit
# runs only the last sections of 2 (the watch path and the background audit at
# BENCH_WATCH_OBJECTS, ~6 min).
# Every figure is reported beside the floor measured in the same run, with the load average; on a
# busy machine (1-minute load above half the cores) the run is refused unless BENCH_IGNORE_LOAD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
only=${BENCH_ONLY:-all}
cores=$(nproc)
load=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load" -v c="$cores" 'BEGIN { exit !(l > c / 2) }'; then
  if [ "${BENCH_IGNORE_LOAD:-0}" = 1 ]; then
    echo "bench: WARNING: load average $load on $cores cores (above $cores/2): every figure is noisier; read the ratios to the floor" >&2
  else
    echo "bench: load average $load on $cores cores is above $cores/2: other work would be measured too." >&2
    echo "bench: wait for a quiet machine, or set BENCH_IGNORE_LOAD=1 to run anyway (ratios to the floor stay comparable)." >&2
    exit 1
  fi
fi
cargo build --release --locked --bin phi-guard
export PHI_GUARD_BIN="$PWD/target/release/phi-guard"
# Run phi-guard as the container image runs it (Dockerfile: ENV MIMALLOC_PURGE_DELAY=0).
export MIMALLOC_PURGE_DELAY=${MIMALLOC_PURGE_DELAY:-0}
bench_exe() {
  cargo bench --locked --bench "$1" --no-run >&2
  cargo bench --locked --bench "$1" --no-run --message-format=json 2>/dev/null \
    | jq -r --arg n "$1" 'select(.profile.test == true and .target.name == $n) | .executable' | tail -1
}

if [ "$only" = all ] || [ "$only" = admission ] || [ "$only" = scaling ]; then
  exe=$(bench_exe admission)
  [ "$only" != scaling ] || export BENCH_SECTION=scaling
  taskset -c 1 "$exe"
  echo
fi

if [ "$only" = all ] || [ "$only" = admission ] || [ "$only" = handler ]; then
  # Both handlers in process, one thread: what phi-guard's handler adds to the floor's. Its log
  # lines go to a pipe another process reads, as a container runtime's shim reads a pod's.
  exe=$(bench_exe admission)
  taskset -c 1 "$exe" --in-process "${BENCH_SECONDS:-3}" 2> >(cat >/dev/null)
  echo
fi

if [ "$only" = audit ]; then
  only=apiserver
  export BENCH_AUDIT_ONLY=1
fi

if [ "$only" = all ] || [ "$only" = apiserver ] || [ "$only" = soak ]; then
  # The soak deletes namespaces: it needs kube-controller-manager's namespace controller.
  name=apiserver kcm=0
  [ "$only" != soak ] || { name=soak; kcm=1; }
  exe=$(bench_exe "$name")
  TOOLS_BIN=${PHI_GUARD_TOOLS_BIN:-$(hack/build-tools.sh | tail -n 1)}
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/phi-guard-bench.XXXXXX")
  trap 'hack/controlplane.sh stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
  WITH_KCM=$kcm KUBE_BIN=$TOOLS_BIN hack/controlplane.sh start "$DIR" > "$DIR/start.out"
  while IFS='=' read -r key value; do
    case "$key" in
      KUBECONFIG|KUBECTL|HELM|WEBHOOK_CERT|WEBHOOK_KEY|WEBHOOK_CA|WEBHOOK_CA_BUNDLE) export "$key=$value" ;;
    esac
  done < "$DIR/env"
  export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
  # The bench reads the API server's and etcd's CPU from their pid files.
  export BENCH_CONTROLPLANE_DIR=$DIR
  "$exe"
fi
