#!/usr/bin/env bash
# `make e2e`: the end-to-end suite (tests/e2e) against a real, throwaway control plane.
#
# Builds phi-guard and the test binary, starts etcd + kube-apiserver + kube-controller-manager
# (hack/controlplane.sh) in a temp dir, exports what the tests need, runs them, and always tears
# everything down (also on failure, Ctrl-C or timeout). The tests start `phi-guard serve` as a local
# process and install phi-guard from the Helm chart (hack/local-install.sh), its webhook pointing
# at that process.
#
#   hack/e2e.sh [libtest args: test-name filters, --nocapture, ...]
#   E2E_NODE=1 hack/e2e.sh [...]   `make e2e-node`: the in-cluster suite (tests/e2e_node) instead:
#       also builds the node (hack/build-node.sh) and phi-guard's image (hack/images.sh), starts
#       the control plane in node mode and a node (hack/node.sh, root only) with the images
#       loaded, and installs the chart in-cluster from the tests.
#
# env: E2E_TIMEOUT  seconds for the test run (default 900)   E2E_THREADS  test threads (default 2)
#      E2E_KEEP=1   leave the control plane and its dir (logs) in place after the run
#      PHI_GUARD_TOOLS_BIN / KUBE_BIN  prebuilt tool dir (default: hack/build-tools.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
t_start=$SECONDS
log() { echo "e2e: $*" >&2; }

TOOLS_BIN=${PHI_GUARD_TOOLS_BIN:-${KUBE_BIN:-}}
if [ -z "$TOOLS_BIN" ]; then
  TOOLS_BIN=$(hack/build-tools.sh | tail -n 1)
fi

# Build first, with no control plane running yet (a cold build takes minutes). The phi-guard
# binary comes from the same `cargo test` build as the tests: a separate `cargo build` would
# compile every dependency again (dev-dependencies change their feature sets).
NODE=${E2E_NODE:-0}
SUITE=e2e
if [ "$NODE" = 1 ]; then
  SUITE=e2e_node
  [ "$(id -u)" = 0 ] || { log "ERROR: E2E_NODE=1 needs root (hack/node.sh: network, mounts, cgroups)"; exit 1; }
  NODE_BIN=${NODE_BIN:-$(hack/build-node.sh | tail -n 1)}
  export NODE_BIN
fi
log "building phi-guard and the $SUITE tests"
artifacts=$("$CARGO" test --locked --features e2e --test "$SUITE" --no-run --message-format=json-render-diagnostics \
  | jq -r 'select(.reason == "compiler-artifact" and .executable != null) | "\(.target.kind[0]) \(.target.name) \(.executable)"')
PHI_GUARD_BIN=$(awk '$1 == "bin" && $2 == "phi-guard" { print $3 }' <<< "$artifacts" | tail -n 1)
[ -x "$PHI_GUARD_BIN" ] || { log "ERROR: the build produced no phi-guard binary"; exit 1; }
log "built in $((SECONDS - t_start))s"

DIR=$(mktemp -d "${TMPDIR:-/tmp}/phi-guard-e2e.XXXXXX")
# Run a private copy: a later build in the same target dir (another checkout sharing it) must not
# swap the binary under a running suite.
cp "$PHI_GUARD_BIN" "$DIR/phi-guard" && PHI_GUARD_BIN="$DIR/phi-guard"
rc=0
tests_pid=
# shellcheck disable=SC2329 # invoked by the traps below (shellcheck does not see into their strings)
cleanup() {
  trap - EXIT INT TERM
  # `timeout` leads its own process group and passes a TERM on to all of it (cargo, the tests).
  if [ -n "$tests_pid" ] && kill -0 "$tests_pid" 2>/dev/null; then
    log "stopping the tests"
    kill -TERM "$tests_pid" 2>/dev/null || true
    wait "$tests_pid" 2>/dev/null || true
  fi
  # phi-guard processes the tests started (they also die with the test binary via a watchdog).
  if [ -f "$DIR/phi-guard.pid" ]; then
    pid=$(cat "$DIR/phi-guard.pid")
    if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'phi-guard serve'; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  fi
  if [ "$rc" -ne 0 ]; then
    for f in phi-guard.log:40 apiserver.log:25 kcm.log:15 etcd.log:5 kubelet.log:25 containerd.log:15 \
        kube-proxy.log:10 scheduler.log:5 coredns.log:5; do
      [ -s "$DIR/${f%:*}" ] || continue
      echo "---- last ${f#*:} lines of $DIR/${f%:*} (long lines cut)" >&2
      tail -n "${f#*:}" "$DIR/${f%:*}" | cut -c1-400 >&2 || true
    done
  fi
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    log "E2E_KEEP=1: control plane left running; env in $DIR/env; stop with:" \
      "$([ "$NODE" = 1 ] && echo "hack/node.sh stop $DIR;") hack/controlplane.sh stop $DIR"
  else
    if [ "$NODE" = 1 ]; then hack/node.sh stop "$DIR" 2>&1 | grep -E 'WARNING|ERROR' >&2 || true; fi
    hack/controlplane.sh stop "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR" 2>/dev/null || log "WARNING: could not remove all of $DIR"
  fi
  log "$( [ "$rc" -eq 0 ] && echo PASSED || echo "FAILED (exit $rc)" ) in $((SECONDS - t_start))s"
  exit "$rc"
}
trap 'rc=$?; cleanup' EXIT
trap 'rc=130; cleanup' INT
trap 'rc=143; cleanup' TERM

if [ "$NODE" = 1 ]; then
  t=$SECONDS
  log "building the images (hack/images.sh)"
  KUBE_BIN=$TOOLS_BIN hack/images.sh "$DIR/images" > "$DIR/images.out"
  log "images built in $((SECONDS - t))s"
  log "starting the control plane (node mode) and the node in $DIR"
  NODE_IP=10.88.0.1 KUBE_BIN=$TOOLS_BIN hack/controlplane.sh start "$DIR" > "$DIR/start.out"
  hack/node.sh start "$DIR" "$DIR/images" > "$DIR/node-start.out"
else
  log "starting the control plane in $DIR"
  KUBE_BIN=$TOOLS_BIN hack/controlplane.sh start "$DIR" > "$DIR/start.out"
fi
while IFS='=' read -r key value; do
  case "$key" in
    KUBECONFIG|APISERVER_URL|KUBECTL|HELM|WEBHOOK_CERT|WEBHOOK_KEY|WEBHOOK_CA|WEBHOOK_CA_BUNDLE|KUBE_BIN|NODE_NAME) export "$key=$value" ;;
  esac
done < "$DIR/env"
if [ "$NODE" = 1 ]; then
  while IFS='=' read -r key value; do
    case "$key" in
      PHI_GUARD_IMAGE_REPOSITORY|PHI_GUARD_IMAGE_TAG|PHI_GUARD_IMAGE_ID|CURL_IMAGE|KUBECTL_IMAGE) export "$key=$value" ;;
    esac
  done < "$DIR/images/images.env"
  export IMAGES_DIR="$DIR/images"
fi
export PHI_GUARD_BIN E2E_STATE_DIR=$DIR PHI_GUARD_TOOLS_BIN=$TOOLS_BIN
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

log "running the e2e tests (timeout ${E2E_TIMEOUT:-900}s)"
# In the background so that Ctrl-C/TERM reach our trap at once (timeout runs in its own group).
# The node suite shares one release: one test at a time, and its output (the pods it saw) in the log.
extra=()
[ "$NODE" != 1 ] || extra=(--nocapture)
timeout --signal=TERM --kill-after=30 "${E2E_TIMEOUT:-900}" \
  "$CARGO" test --locked --features e2e --test "$SUITE" -- --test-threads="${E2E_THREADS:-2}" "${extra[@]}" "$@" &
tests_pid=$!
set +e
wait "$tests_pid"
rc=$?
set -e
tests_pid=
[ "$rc" -ne 124 ] || log "ERROR: the e2e tests timed out after ${E2E_TIMEOUT:-900}s"
exit "$rc"
