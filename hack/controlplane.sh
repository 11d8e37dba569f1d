#!/usr/bin/env bash
# A throwaway local Kubernetes control plane for e2e tests, `make demo` and benchmarks:
# etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, no nodes (Pods stay Pending),
# a fresh PKI made with openssl, and a serving cert for a webhook running on the host.
#
#   hack/controlplane.sh start DIR   start; prints KEY=VALUE lines (also written to DIR/env)
#   hack/controlplane.sh stop DIR    kill everything `start DIR` started (pid files); idempotent
#   hack/controlplane.sh env DIR     print DIR/env again
#   hack/controlplane.sh status DIR  exit 0 if all started processes are alive and /readyz is ok
#
# e.g.  eval "$(hack/controlplane.sh start /tmp/kcp)"; kubectl --kubeconfig "$KUBECONFIG" get ns
#       ...; hack/controlplane.sh stop /tmp/kcp
#
# stdout of `start` (KEY=VALUE, no quoting; DIR must not contain whitespace):
#   KUBECONFIG=DIR/admin.kubeconfig  APISERVER_URL=https://127.0.0.1:PORT  KUBE_BIN=BIN
#   KUBECTL=BIN/kubectl  HELM=BIN/helm  ETCD_URL=http://127.0.0.1:PORT
#   WEBHOOK_CERT=DIR/webhook.crt  WEBHOOK_KEY=DIR/webhook.key  WEBHOOK_CA=DIR/ca.crt
#   WEBHOOK_CA_BUNDLE=<base64 of ca.crt, for clientConfig.caBundle>
# Diagnostics go to stderr. Logs: DIR/{etcd,apiserver,kcm}.log. Pid files: DIR/{etcd,apiserver,kcm}.pid.
#
# env (all optional):
#   KUBE_BIN          dir with etcd, kube-apiserver, kube-controller-manager, kubectl
#                     (PHI_GUARD_TOOLS_BIN is accepted as an alias)
#                     (default: last line of hack/build-tools.sh, which builds them if not cached)
#   APISERVER_PORT    default 6443       } a value that is set is used as is (start fails if busy);
#   ETCD_CLIENT_PORT  default 2379       } unset: the default if free, else a random free port,
#   ETCD_PEER_PORT    default 2380       } so several control planes can run side by side
#   WITH_KCM          1 (default) run kube-controller-manager; 0 = apiserver + etcd only
#   SA_ADMISSION      0 (default): ServiceAccount admission plugin disabled, so Pods can be created
#                     in a brand-new namespace at once; 1 = keep it (Pods get token volumes)
#   READY_TIMEOUT     seconds to wait for /readyz (default 120)
#   NODE_IP           set when hack/node.sh will add a node (it uses 10.88.0.1): the API server
#                     binds 0.0.0.0 and advertises NODE_IP (the `kubernetes` Service's endpoint
#                     that pods reach; also in its cert), authorizes kubelets (Node,RBAC +
#                     NodeRestriction), keeps ServiceAccount admission (pods get tokens: SA_ADMISSION
#                     is ignored) and calls kubelets (logs, exec) with the admin client cert
#   APISERVER_EXTRA_ARGS, KCM_EXTRA_ARGS, ETCD_EXTRA_ARGS   extra flags (word-split)
#
# Files in DIR: ca.{crt,key} (one CA for everything: apiserver serving, client certs, webhook),
#   apiserver.{crt,key}, admin.{crt,key} (O=system:masters), webhook.{crt,key}
#   (SAN IP:127.0.0.1, DNS:localhost), sa.{key,pub}, admin.kubeconfig, env, etcd-data/, *.log, *.pid.
#   Certificates are reused if DIR already has them (ca.crt stays valid across restarts).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
COMPONENTS_STOP_ORDER="kcm apiserver etcd"

log() { echo "controlplane: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

[ $# -eq 2 ] || usage
CMD=$1
case "$2" in *[[:space:]]*) die "DIR must not contain whitespace: '$2'";; esac
mkdir -p "$2"
DIR=$(cd "$2" && pwd)

export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

# pid_of NAME -> pid if DIR/NAME.pid names a live process that was started for this DIR
pid_of() {
  local f="$DIR/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  # guard against pid reuse: every process we start has DIR in its command line
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/" || return 1
  echo "$pid"
}

stop_all() {
  local name pid
  for name in $COMPONENTS_STOP_ORDER; do
    if pid=$(pid_of "$name"); then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then log "$name did not exit after 10 s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$DIR/$name.pid"
  done
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# pick_port VAR DEFAULT [TAKEN...]: explicit value as is, else DEFAULT if free, else a random free port
pick_port() {
  local var=$1 def=$2 p tries=0; shift 2
  if [ -n "${!var:-}" ]; then
    port_busy "${!var}" && die "$var=${!var} is already in use"
    echo "${!var}"; return
  fi
  p=$def
  while port_busy "$p" || [[ " $* " == *" $p "* ]]; do
    tries=$((tries + 1)); [ $tries -lt 200 ] || die "no free port found for $var"
    p=$((20000 + RANDOM % 30000))
  done
  echo "$p"
}

# sign NAME SUBJECT SAN EKU: key + cert signed by DIR/ca
sign() {
  local name=$1 subj=$2 san=$3 eku=$4
  [ -f "$DIR/$name.crt" ] && [ -f "$DIR/$name.key" ] && return 0
  openssl req -new -newkey rsa:2048 -nodes -keyout "$DIR/$name.key" -out "$DIR/$name.csr" -subj "$subj" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } > "$DIR/$name.ext"
  openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$DIR/$name.ext" -out "$DIR/$name.crt" 2>/dev/null
  rm -f "$DIR/$name.csr" "$DIR/$name.ext"
}

make_pki() {
  if [ ! -f "$DIR/ca.crt" ] || [ ! -f "$DIR/ca.key" ]; then
    rm -f "$DIR"/{apiserver,admin,webhook}.{crt,key}
    openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$DIR/ca.key" -out "$DIR/ca.crt" -days 365 -sha256 \
      -subj "/CN=phi-guard-local-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
  fi
  sign apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:10.0.0.1${NODE_IP:+,IP:$NODE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" \
    serverAuth
  sign admin "/O=system:masters/CN=phi-guard-admin" "" clientAuth
  sign webhook "/CN=phi-guard-webhook" "IP:127.0.0.1,DNS:localhost" serverAuth
  if [ ! -f "$DIR/sa.key" ] || [ ! -f "$DIR/sa.pub" ]; then
    openssl genrsa -out "$DIR/sa.key" 2048 2>/dev/null
    openssl rsa -in "$DIR/sa.key" -pubout -out "$DIR/sa.pub" 2>/dev/null
  fi
  chmod 600 "$DIR"/*.key
}

# launch NAME CMD...: start detached (own session, survives the caller's terminal), record pid
launch() {
  local name=$1; shift
  local pid
  setsid "$@" </dev/null >"$DIR/$name.log" 2>&1 &
  pid=$!
  echo "$pid" > "$DIR/$name.pid"
  # until the forked shell has exec'd the binary, its cmdline is this script's (no "$DIR/")
  for _ in $(seq 1 100); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$1")" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 0   # died already: reported by alive_or_fail
    sleep 0.05
  done
}

fail_start() {
  local name
  log "ERROR: $*"
  for name in etcd apiserver kcm; do
    [ -f "$DIR/$name.log" ] || continue
    log "---- last lines of $DIR/$name.log"; tail -n 15 "$DIR/$name.log" >&2 || true
  done
  stop_all
  exit 1
}

alive_or_fail() { local n; for n in "$@"; do pid_of "$n" >/dev/null || fail_start "$n exited during startup"; done; }

start() {
  local n
  for n in etcd apiserver kcm; do pid_of "$n" >/dev/null && die "$n already running for $DIR (run: $0 stop $DIR)"; done
  for n in etcd apiserver kcm; do rm -f "$DIR/$n.pid"; done

  KUBE_BIN=${KUBE_BIN:-${PHI_GUARD_TOOLS_BIN:-}}
  if [ -z "${KUBE_BIN:-}" ]; then
    log "KUBE_BIN not set; running hack/build-tools.sh (builds the tools if not cached)"
    KUBE_BIN=$("$HERE/build-tools.sh" | tail -n 1)
  fi
  KUBE_BIN=$(cd "$KUBE_BIN" && pwd)
  for n in etcd kube-apiserver kube-controller-manager kubectl; do
    [ -x "$KUBE_BIN/$n" ] || die "$KUBE_BIN/$n missing (run hack/build-tools.sh)"
  done
  local KUBECTL="$KUBE_BIN/kubectl"

  local api_port etcd_port peer_port
  api_port=$(pick_port APISERVER_PORT 6443)
  etcd_port=$(pick_port ETCD_CLIENT_PORT 2379 "$api_port")
  peer_port=$(pick_port ETCD_PEER_PORT 2380 "$api_port" "$etcd_port")
  local api_url="https://127.0.0.1:$api_port" etcd_url="http://127.0.0.1:$etcd_port"

  make_pki

  # ---- admin kubeconfig ------------------------------------------------------------------
  local kc="$DIR/admin.kubeconfig"
  rm -f "$kc"
  "$KUBECTL" --kubeconfig="$kc" config set-cluster local --server="$api_url" \
    --certificate-authority="$DIR/ca.crt" --embed-certs=true >/dev/null
  "$KUBECTL" --kubeconfig="$kc" config set-credentials admin \
    --client-certificate="$DIR/admin.crt" --client-key="$DIR/admin.key" --embed-certs=true >/dev/null
  "$KUBECTL" --kubeconfig="$kc" config set-context local --cluster=local --user=admin >/dev/null
  "$KUBECTL" --kubeconfig="$kc" config use-context local >/dev/null
  chmod 600 "$kc"

  # ---- etcd ------------------------------------------------------------------------------
  rm -rf "$DIR/etcd-data"
  # shellcheck disable=SC2086
  launch etcd "$KUBE_BIN/etcd" --name=phi-guard --data-dir="$DIR/etcd-data" \
    --listen-client-urls="$etcd_url" --advertise-client-urls="$etcd_url" \
    --listen-peer-urls="http://127.0.0.1:$peer_port" --initial-advertise-peer-urls="http://127.0.0.1:$peer_port" \
    --initial-cluster="phi-guard=http://127.0.0.1:$peer_port" --initial-cluster-state=new \
    --unsafe-no-fsync --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) ${ETCD_EXTRA_ARGS:-}

  # ---- kube-apiserver --------------------------------------------------------------------
  # shellcheck disable=SC2054 # the commas are part of flag values
  local disable_adm="" node_args=(--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none
    --authorization-mode=RBAC --enable-admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy)
  [ "${SA_ADMISSION:-0}" = 1 ] || disable_adm="--disable-admission-plugins=ServiceAccount"
  if [ -n "${NODE_IP:-}" ]; then
    disable_adm=""
    # shellcheck disable=SC2054
    node_args=(--bind-address=0.0.0.0 --advertise-address="$NODE_IP"
      --authorization-mode=Node,RBAC
      --enable-admission-plugins=NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ValidatingAdmissionPolicy
      --kubelet-client-certificate="$DIR/admin.crt" --kubelet-client-key="$DIR/admin.key"
      --kubelet-preferred-address-types=InternalIP)
  fi
  # shellcheck disable=SC2086
  launch apiserver "$KUBE_BIN/kube-apiserver" \
    --etcd-servers="$etcd_url" \
    --secure-port="$api_port" "${node_args[@]}" \
    --tls-cert-file="$DIR/apiserver.crt" --tls-private-key-file="$DIR/apiserver.key" \
    --client-ca-file="$DIR/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$DIR/sa.pub" --service-account-signing-key-file="$DIR/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 \
    $disable_adm \
    --allow-privileged=true \
    ${APISERVER_EXTRA_ARGS:-}

  local timeout=${READY_TIMEOUT:-120} t0=$SECONDS
  log "waiting up to ${timeout}s for $api_url/readyz"
  until "$KUBECTL" --kubeconfig="$kc" --request-timeout=5s get --raw=/readyz >/dev/null 2>&1; do
    alive_or_fail etcd apiserver
    [ $((SECONDS - t0)) -lt "$timeout" ] || fail_start "kube-apiserver not ready after ${timeout}s"
    sleep 1
  done
  log "kube-apiserver ready after $((SECONDS - t0))s"

  # ---- kube-controller-manager (Deployments -> ReplicaSets -> Pods, namespaces, SAs, GC) ----
  if [ "${WITH_KCM:-1}" = 1 ]; then
    # --secure-port=0: no serving endpoint, so several control planes never clash on 10257.
    # shellcheck disable=SC2086
    launch kcm "$KUBE_BIN/kube-controller-manager" \
      --kubeconfig="$kc" --leader-elect=false --secure-port=0 --controllers='*' \
      --service-account-private-key-file="$DIR/sa.key" --root-ca-file="$DIR/ca.crt" \
      --cluster-name=phi-guard --use-service-account-credentials=false \
      ${KCM_EXTRA_ARGS:-}
    # Ready once its serviceaccount controller has created default/default.
    t0=$SECONDS
    until "$KUBECTL" --kubeconfig="$kc" --request-timeout=5s -n default get serviceaccount default >/dev/null 2>&1; do
      alive_or_fail etcd apiserver kcm
      [ $((SECONDS - t0)) -lt "$timeout" ] || fail_start "kube-controller-manager not working after ${timeout}s"
      sleep 1
    done
    log "kube-controller-manager working after $((SECONDS - t0))s"
  fi

  {
    echo "KUBECONFIG=$kc"
    echo "APISERVER_URL=$api_url"
    echo "ETCD_URL=$etcd_url"
    echo "KUBE_BIN=$KUBE_BIN"
    echo "KUBECTL=$KUBECTL"
    echo "HELM=$KUBE_BIN/helm"
    echo "WEBHOOK_CERT=$DIR/webhook.crt"
    echo "WEBHOOK_KEY=$DIR/webhook.key"
    echo "WEBHOOK_CA=$DIR/ca.crt"
    echo "WEBHOOK_CA_BUNDLE=$(base64 -w0 < "$DIR/ca.crt")"
    [ -z "${NODE_IP:-}" ] || echo "NODE_IP=$NODE_IP"
  } > "$DIR/env"
  cat "$DIR/env"
}

status() {
  local n names="etcd apiserver"
  [ -f "$DIR/kcm.pid" ] && names="$names kcm"
  for n in $names; do pid_of "$n" >/dev/null || { log "$n not running"; return 1; }; done
  local kubectl
  kubectl=$(sed -n 's/^KUBECTL=//p' "$DIR/env" 2>/dev/null)
  [ -n "$kubectl" ] || { log "no $DIR/env"; return 1; }
  "$kubectl" --kubeconfig="$DIR/admin.kubeconfig" --request-timeout=5s get --raw=/readyz >/dev/null || { log "/readyz failed"; return 1; }
  log "running"
}

case "$CMD" in
  start) start ;;
  stop) stop_all; log "stopped ($DIR)" ;;
  env) cat "$DIR/env" ;;
  status) status ;;
  *) usage ;;
esac
