#!/usr/bin/env bash
# `make test`, the whole check (.ci/run calls it): `make lint`, `make unit`, `make e2e`,
# `make e2e-helm4` and `make e2e-node`, in that order, each failing the run; with phi-guard's
# static (musl) release binary for e2e-node's image built alongside at the lowest CPU priority.
#
# Why alongside: the release build is the longest single step of a cold run (463 s of a
# 3344 s cold CI run, DEVELOPMENT.md "CI timings"), and the e2e suite leaves the two cores
# idle most of its time (it waits on the API server and on timeouts: 15 % busy on average over
# its 433 s, `vmstat 5`). At nice 19 the build takes the cycles the steps before it leave and
# none they want (the CFS weight of nice 19 is 15 against 1024); `make e2e-node` then packs the
# finished binary (PHI_GUARD_MUSL_BIN, hack/images.sh) instead of building it after the suite.
#
#   hack/test.sh
# env: MAKE (default make); PHI_GUARD_MUSL_BIN  a prebuilt static binary: nothing built alongside
#      (hack/images.sh checks it is static); the build's own log: target/musl-build.log
set -euo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
log() { echo "test: $*" >&2; }

step() {
  local t0=$SECONDS
  log "make $1"
  "$MAKE" --no-print-directory "$1"
  log "make $1 passed in $((SECONDS - t0)) s"
}

musl_pid=
# shellcheck disable=SC2329 # invoked by the trap below
stop_build() {
  # setsid made the build its own process group: cargo and every rustc it started stop together.
  if [ -n "$musl_pid" ] && kill -0 "$musl_pid" 2>/dev/null; then
    kill -TERM -- "-$musl_pid" 2>/dev/null || true
    wait "$musl_pid" 2>/dev/null || true
  fi
}
trap stop_build EXIT

if [ -z "${PHI_GUARD_MUSL_BIN:-}" ]; then
  mkdir -p "${CARGO_TARGET_DIR:-target}"
  musl_log="${CARGO_TARGET_DIR:-target}/musl-build.log"
  musl_out="${CARGO_TARGET_DIR:-target}/musl-build.out"
  rm -f "$musl_out"
  log "building phi-guard's static binary alongside (nice 19; log: $musl_log)"
  # Not a job-control shell, so the background child is no group leader and setsid execs in it:
  # $! is the new group's id. A new session is also a new scheduling autogroup where the kernel
  # has them (/proc/sys/kernel/sched_autogroup_enabled): CPU is first shared between autogroups
  # as equals, and nice only orders the tasks inside one, so the build's own autogroup is set to
  # nice 19 as well (from inside the new session, so never the caller's). Measured with two busy
  # loops against two: with nice alone the foreground got 50 % of the CPU, with both 97 %.
  setsid bash -c 'echo 19 2>/dev/null > /proc/self/autogroup || true
    exec nice -n 19 hack/images.sh --phi-guard-binary' > "$musl_out" 2> "$musl_log" &
  musl_pid=$!
fi

step lint
step unit
step e2e
step e2e-helm4

if [ -n "$musl_pid" ]; then
  t0=$SECONDS
  log "waiting for phi-guard's static binary"
  if ! wait "$musl_pid"; then
    musl_pid=
    log "ERROR: the static build failed; the last lines of $musl_log:"
    tail -n 40 "$musl_log" >&2
    exit 1
  fi
  musl_pid=
  PHI_GUARD_MUSL_BIN=$(tail -n 1 "$musl_out")
  export PHI_GUARD_MUSL_BIN
  log "static binary ready $((SECONDS - t0)) s after the e2e suite: $PHI_GUARD_MUSL_BIN"
fi

step e2e-node
