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
log "building phi-guard and the e2e tests"
artifacts=$("$CARGO" test --locked --features e2e --test e2e --no-run --message-format=json-render-diagnostics \
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
    for f in phi-guard.log:40 apiserver.log:25 kcm.log:15 etcd.log:5; do
      [ -s "$DIR/${f%:*}" ] || continue
      echo "---- last ${f#*:} lines of $DIR/${f%:*} (long lines cut)" >&2
      tail -n "${f#*:}" "$DIR/${f%:*}" | cut -c1-400 >&2 || true
    done
  fi
  if [ "${E2E_KEEP:-0}" = 1 ]; then
    log "E2E_KEEP=1: control plane left running; env in $DIR/env; stop with: hack/controlplane.sh stop $DIR"
  else
    hack/controlplane.sh stop "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
  fi
  log "$( [ "$rc" -eq 0 ] && echo PASSED || echo "FAILED (exit $rc)" ) in $((SECONDS - t_start))s"
  exit "$rc"
}
trap 'rc=$?; cleanup' EXIT
trap 'rc=130; cleanup' INT
trap 'rc=143; cleanup' TERM

log "starting the control plane in $DIR"
KUBE_BIN=$TOOLS_BIN hack/controlplane.sh start "$DIR" > "$DIR/start.out"
while IFS='=' read -r key value; do
  case "$key" in
    KUBECONFIG|APISERVER_URL|KUBECTL|HELM|WEBHOOK_CERT|WEBHOOK_KEY|WEBHOOK_CA|WEBHOOK_CA_BUNDLE|KUBE_BIN) export "$key=$value" ;;
  esac
done < "$DIR/env"
export PHI_GUARD_BIN E2E_STATE_DIR=$DIR PHI_GUARD_TOOLS_BIN=$TOOLS_BIN
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

log "running the e2e tests (timeout ${E2E_TIMEOUT:-900}s)"
# In the background so that Ctrl-C/TERM reach our trap at once (timeout runs in its own group).
timeout --signal=TERM --kill-after=30 "${E2E_TIMEOUT:-900}" \
  "$CARGO" test --locked --features e2e --test e2e -- --test-threads="${E2E_THREADS:-2}" "$@" &
tests_pid=$!
set +e
wait "$tests_pid"
rc=$?
set -e
tests_pid=
[ "$rc" -ne 124 ] || log "ERROR: the e2e tests timed out after ${E2E_TIMEOUT:-900}s"
exit "$rc"
