#!/usr/bin/env bash
# `make demo`: phi-guard end to end on this machine, through a real kube-apiserver and kubectl.
#
#   hack/demo.sh             run the scenario in examples/demo/, then stop and clean up
#   DEMO_KEEP=1 hack/demo.sh leave the control plane and phi-guard running afterwards
#   hack/demo.sh stop DIR    stop what a DEMO_KEEP=1 run left in DIR
#   DEMO_CLUSTER=1 hack/demo.sh  `make demo-cluster` (root): instead of phi-guard on the host, a
#       real node (hack/node.sh) runs the Helm chart, unmodified but for the image built from
#       this commit (hack/images.sh); the same scenario, denied through the in-cluster Service
#
# Steps: build phi-guard; start etcd + kube-apiserver + kube-controller-manager on 127.0.0.1
# (hack/controlplane.sh, no nodes: Pods stay Pending); install phi-guard's CRD, baseline policy
# and webhook (hack/local-install.sh: the Helm chart) pointing at `phi-guard serve`
# running on the host; apply a PHI app that phi-guard rejects (kubectl's real error), then its
# fixed version, which is admitted; summarize.
# env: PHI_GUARD_TOOLS_BIN / KUBE_BIN  prebuilt tools (default: hack/build-tools.sh)
#      NODE_BIN  with DEMO_CLUSTER=1: the node's binaries (default: hack/build-node.sh)
#      DEMO_DIR  where state and logs go (default: a new temp dir)
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
DEMO=examples/demo

if [ -t 1 ]; then B=$'\e[1m' R=$'\e[31m' G=$'\e[32m' C=$'\e[36m' N=$'\e[0m'; else B='' R='' G='' C='' N=''; fi
say() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
cmd() { printf '%s$ %s%s\n' "$C" "$*" "$N"; }
log() { echo "demo: $*" >&2; }

stop_dir() {
  local dir=$1 pid
  if [ -f "$dir/phi-guard.pid" ]; then
    pid=$(cat "$dir/phi-guard.pid")
    if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q 'phi-guard serve'; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$dir/phi-guard.pid"
  fi
  if [ -f "$dir/node-mode" ]; then hack/node.sh stop "$dir" >/dev/null 2>&1 || true; fi
  hack/controlplane.sh stop "$dir" >/dev/null 2>&1 || true
}

if [ "${1:-}" = stop ]; then
  [ -n "${2:-}" ] && [ -d "$2" ] || { echo "usage: $0 stop DIR" >&2; exit 2; }
  stop_dir "$2"
  rm -rf "$2"
  echo "demo: stopped and removed $2"
  exit 0
fi

TOOLS_BIN=${PHI_GUARD_TOOLS_BIN:-${KUBE_BIN:-}}
[ -n "$TOOLS_BIN" ] || TOOLS_BIN=$(hack/build-tools.sh | tail -n 1)

CLUSTER=${DEMO_CLUSTER:-0}
if [ "$CLUSTER" = 1 ]; then
  [ "$(id -u)" = 0 ] || { log "ERROR: DEMO_CLUSTER=1 needs root (hack/node.sh: network, mounts, cgroups)"; exit 1; }
  NODE_BIN=${NODE_BIN:-$(hack/build-node.sh | tail -n 1)}
  export NODE_BIN
else
  say "Building phi-guard"
  cmd "cargo build --bin phi-guard"
  PHI_GUARD_BIN=$("$CARGO" build --locked --bin phi-guard --message-format=json-render-diagnostics \
    | jq -r 'select(.reason == "compiler-artifact" and .target.name == "phi-guard" and .executable != null) | .executable' | tail -n 1)
  [ -x "$PHI_GUARD_BIN" ] || { log "ERROR: no phi-guard binary after the build"; exit 1; }
fi

DIR=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/phi-guard-demo.XXXXXX")}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
ok=0
finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [ "${DEMO_KEEP:-0}" = 1 ] && [ "$ok" = 1 ]; then
    say "Left running (DEMO_KEEP=1)"
    echo "  export KUBECONFIG=$DIR/admin.kubeconfig"
    echo "  alias kubectl=$KUBECTL"
    echo "  kubectl apply -f examples/demo/rejected/     # try your own manifests too"
    if [ "${CLUSTER:-0}" = 1 ]; then
      echo "  phi-guard: kubectl -n phi-guard get pods; kubectl -n phi-guard logs deploy/phi-guard"
    else
      echo "  phi-guard log: $DIR/phi-guard.log  (metrics: curl -s http://127.0.0.1:${ADMIN_PORT:-}/metrics)"
    fi
    echo "  stop: hack/demo.sh stop $DIR"
    exit 0
  fi
  if [ "$rc" -ne 0 ] && [ -d "$DIR" ]; then
    for f in phi-guard.log apiserver.log; do
      [ -s "$DIR/$f" ] || continue
      echo "---- last 25 lines of $DIR/$f" >&2
      tail -n 25 "$DIR/$f" | cut -c1-400 >&2
    done
  fi
  stop_dir "$DIR"
  [ -n "${DEMO_DIR:-}" ] || rm -rf "$DIR"
  [ "$rc" -eq 0 ] || log "FAILED (exit $rc)"
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$CLUSTER" = 1 ]; then
  say "Building phi-guard's image from this commit (hack/images.sh: the Dockerfile's musl build, no Docker)"
  KUBE_BIN=$TOOLS_BIN hack/images.sh "$DIR/images" > "$DIR/images.out"
  while IFS='=' read -r key value; do
    case "$key" in PHI_GUARD_IMAGE_REPOSITORY|PHI_GUARD_IMAGE_TAG|CURL_IMAGE|KUBECTL_IMAGE) export "$key=$value" ;; esac
  done < "$DIR/images/images.env"
  echo "  $PHI_GUARD_IMAGE_REPOSITORY:$PHI_GUARD_IMAGE_TAG"
  say "Starting a control plane and a real node (containerd, kubelet, kube-proxy, CoreDNS) in $DIR"
  touch "$DIR/node-mode"
  NODE_IP=10.88.0.1 KUBE_BIN=$TOOLS_BIN hack/controlplane.sh start "$DIR" > "$DIR/start.out"
  hack/node.sh start "$DIR" "$DIR/images" > "$DIR/node-start.out"
else
  say "Starting a local control plane (etcd, kube-apiserver, kube-controller-manager) in $DIR"
  KUBE_BIN=$TOOLS_BIN hack/controlplane.sh start "$DIR" > "$DIR/start.out"
fi
while IFS='=' read -r key value; do
  case "$key" in KUBECONFIG|KUBECTL|HELM|WEBHOOK_CERT|WEBHOOK_KEY|WEBHOOK_CA_BUNDLE) export "$key=$value" ;; esac
done < "$DIR/env"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
k() { "$KUBECTL" --request-timeout=30s "$@"; }
k version 2>/dev/null | sed 's/^/  /'

if [ "$CLUSTER" = 1 ]; then
  say "Installing the chart as a platform team does (its defaults; this commit's image, already on the node)"
  cmd "helm install phi-guard charts/phi-guard -n phi-guard --create-namespace --wait --set image.repository=... --set image.tag=..."
  "$HELM" upgrade --install phi-guard charts/phi-guard --namespace phi-guard --create-namespace \
    --wait --timeout 240s \
    --set "image.repository=$PHI_GUARD_IMAGE_REPOSITORY" --set "image.tag=$PHI_GUARD_IMAGE_TAG" \
    --set image.pullPolicy=Never --set "helmTest.image=$CURL_IMAGE" \
    --set "uninstall.removeWebhookFirst.image=$KUBECTL_IMAGE" > "$DIR/helm.out" 2>&1 \
    || { cat "$DIR/helm.out" >&2; k -n phi-guard get pods -o wide >&2 || true; exit 1; }
  cmd "kubectl -n phi-guard get pods -o wide"
  k -n phi-guard get pods -o wide
  running=$(k -n phi-guard get pods -l app.kubernetes.io/name=phi-guard --field-selector=status.phase=Running --no-headers 2>/dev/null | wc -l)
  [ "$running" -ge 1 ] || { log "ERROR: no phi-guard pod Running"; exit 1; }
  cmd "kubectl get validatingwebhookconfiguration phi-guard -o jsonpath='{.webhooks[0].clientConfig.service}'"
  k get validatingwebhookconfiguration phi-guard -o jsonpath='{.webhooks[0].clientConfig.service}' && echo
else
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
PORT=$(free_port)
ADMIN_PORT=$(free_port)
export WEBHOOK_URL="https://127.0.0.1:$PORT/validate"

say "Installing phi-guard (CRD, hipaa-baseline policy, ValidatingWebhookConfiguration -> $WEBHOOK_URL)"
mode=$(hack/local-install.sh install 2>"$DIR/install.log" | sed -n 's/^mode=//p') \
  || { cat "$DIR/install.log" >&2; exit 1; }
echo "  installed with: $mode"

say "Starting phi-guard serve on 127.0.0.1:$PORT (admin 127.0.0.1:$ADMIN_PORT)"
cmd "phi-guard serve --listen 127.0.0.1:$PORT --admin-listen 127.0.0.1:$ADMIN_PORT --tls-cert-file ... --tls-key-file ... --webhook-scope-config phi-guard"
setsid "$PHI_GUARD_BIN" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" \
  --tls-cert-file "$WEBHOOK_CERT" --tls-key-file "$WEBHOOK_KEY" --webhook-scope-config phi-guard \
  </dev/null >>"$DIR/phi-guard.log" 2>&1 &
echo $! > "$DIR/phi-guard.pid"
for i in $(seq 1 300); do
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$(cat "$DIR/phi-guard.pid")" 2>/dev/null || { log "phi-guard exited"; exit 1; }
  [ "$i" -lt 300 ] || { log "phi-guard not ready after 60s"; exit 1; }
  sleep 0.2
done
echo "  ready"

fi

say "The clinic: a PHI namespace and two StorageClasses"
cmd "kubectl apply -f $DEMO/cluster/"
k apply -f "$DEMO/cluster/"

say "A developer deploys the patient-records API as first written"
cmd "kubectl apply -f $DEMO/rejected/"
set +e
k apply -f "$DEMO/rejected/" 2>&1 | tee "$DIR/rejected.out"
set -e
rejected=$(grep -c 'denied the request' "$DIR/rejected.out" || true)
if [ "$rejected" -eq 0 ]; then
  printf '%sphi-guard did not reject the non-compliant app%s\n' "$R" "$N"
  exit 1
fi
printf '\n%s%s object(s) rejected by phi-guard, every finding listed with its citation and fix.%s\n' "$R" "$rejected" "$N"

say "The fixed version: NetworkPolicies, encrypted claim, HTTPS, audit sidecar"
cmd "kubectl apply -f $DEMO/fixed/"
# One apply, no retry: phi-guard confirms with the API server what its caches have not seen yet
# (the claim and NetworkPolicies created a moment before the Deployment).
if ! k apply -f "$DEMO/fixed/"; then
  printf '%sthe fixed app was not admitted%s\n' "$R" "$N"
  exit 1
fi
printf '%sadmitted%s\n' "$G" "$N"

if [ "$CLUSTER" = 1 ]; then
  say "The Deployment's Pods are judged too (scheduled on the node; their app images are not on it)"
else
  say "The Deployment's Pods are judged too (Pending: this control plane has no nodes)"
fi
for _ in $(seq 1 40); do
  [ "$(k -n clinic get pods -l app=records-api --no-headers 2>/dev/null | wc -l)" -ge 2 ] && break
  sleep 0.5
done
cmd "kubectl -n clinic get deploy,rs,pods,pvc,networkpolicies"
k -n clinic get deploy,rs,pods,pvc,networkpolicies
failed=$(k -n clinic get events --field-selector reason=FailedCreate -o jsonpath='{range .items[*]}{.message}{"\n"}{end}' | head -3)
[ -z "$failed" ] || { echo "FailedCreate events:"; echo "$failed"; }

say "phi-guard's decision log (one line per review, no object contents)"
if [ "$CLUSTER" = 1 ]; then
  k -n phi-guard logs -l app.kubernetes.io/name=phi-guard --tail=-1 --prefix=false > "$DIR/phi-guard.log" 2>/dev/null || true
fi
if command -v jq >/dev/null; then
  grep '"review"' "$DIR/phi-guard.log" | grep -v '"dry_run":true' \
    | jq -r 'select(.namespace == "clinic") | "  \(.operation) \(.kind) \(.namespace)/\(.name): \(.decision)  \(.rules // "")"' 2>/dev/null | tail -n 12 || true
fi

say "Summary"
echo "  rejected: $rejected object(s) of the first version, with HIPAA citations and fixes"
echo "  admitted: the fixed version ($(k -n clinic get pods -l app=records-api --no-headers 2>/dev/null | wc -l) Pods created)"
ok=1
