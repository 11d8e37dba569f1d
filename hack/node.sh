#!/usr/bin/env bash
# A real node for the throwaway control plane of hack/controlplane.sh: kube-scheduler,
# containerd + runc + kubelet, a bridge pod network reachable from the host, kube-proxy (iptables) so that the API
# server reaches a webhook Service and pods reach the API server, and a host CoreDNS as the
# pods' cluster DNS. Root only (network, mounts, cgroups).
#
#   NODE_IP=10.88.0.1 hack/controlplane.sh start DIR    # the control plane, in node mode
#   hack/node.sh start DIR [IMAGES_DIR]                  # the node; imports IMAGES_DIR/*.oci.tar
#   hack/node.sh stop DIR                                # kill, unmount, remove what start made
#
# start prints KEY=VALUE lines (also appended to DIR/env): NODE_NAME, NODE_IP, POD_CIDR,
#   CONTAINERD_ADDRESS, CTR (ctr binary). Logs: DIR/{scheduler,containerd,kubelet,kube-proxy,coredns}.log.
#
# Layout: everything lives under DIR/node (containerd root and state, kubelet root dir, CNI
# config and IPAM, certificates) except what the kernel keeps globally, which `stop` removes
# again: the bridge phig0 (NODE_IP/24, the pods' gateway; the Service range 10.0.0.0/24 is routed
# onto it too, so a ClusterIP without a Service never leaves the machine), the
# iptables chain PHI-GUARD-NODE (pods may talk to pods and to this host only: forwarded traffic
# from the pod range to anywhere else is dropped), kube-proxy's chains (`kube-proxy --cleanup`),
# the kubepods cgroups, and net.ipv4.ip_forward (restored).
#
# Requirements (checked; start fails naming what is missing): root; Debian packages runc,
# containernetworking-plugins (bridge, host-local, loopback), iptables, conntrack, iproute2;
# overlayfs, veth, bridge and br_netfilter in the kernel; cgroups v1 or v2 (on v1 the kubelet
# runs with failCgroupV1: false and the cgroupfs driver). Binaries from hack/build-node.sh
# (NODE_BIN overrides) and the control plane's KUBE_BIN (DIR/env). One node per machine: the
# bridge name, the pod range and the kubelet ports are fixed.
#
# env: NODE_BIN  dir from hack/build-node.sh (default: run it)
#      NODE_READY_TIMEOUT  seconds to wait for the node to be Ready (default 120)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
NODE_NAME=phi-guard-node
BRIDGE=phig0
CHAIN=PHI-GUARD-NODE
# Which DIR's node holds the host-wide pieces (bridge, iptables), for the message when another
# start finds them.
OWNER_FILE=/run/phi-guard-node.dir
SVC_CIDR=10.0.0.0/24
CNI_BIN_DIR=${CNI_BIN_DIR:-/usr/lib/cni}
RUNC=${RUNC:-$(command -v runc || echo /usr/sbin/runc)}

log() { echo "node: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

[ $# -ge 2 ] || usage
CMD=$1
[ -d "$2" ] || { [ "$CMD" = stop ] && { log "no $2: nothing to stop"; exit 0; }; die "$2 is not a directory (start the control plane there first)"; }
DIR=$(cd "$2" && pwd)
N="$DIR/node"
IMAGES_DIR=${3:-}
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

envval() { sed -n "s/^$1=//p" "$DIR/env" | tail -n 1; }

pid_of() {
  local f="$DIR/$1.pid" pid
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$DIR/" || return 1
  echo "$pid"
}

launch() {
  local name=$1; shift
  local pid
  setsid "$@" </dev/null >"$DIR/$name.log" 2>&1 &
  pid=$!
  echo "$pid" > "$DIR/$name.pid"
  for _ in $(seq 1 100); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$1")" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
}

stop_pid() {
  local name=$1 pid
  if pid=$(pid_of "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "$name did not exit after 10 s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$DIR/$name.pid"
}

# sign NAME SUBJECT: a client certificate signed by the control plane's CA.
sign_client() {
  local name=$1 subj=$2
  [ -f "$N/$name.crt" ] && return 0
  openssl req -new -newkey rsa:2048 -nodes -keyout "$N/$name.key" -out "$N/$name.csr" -subj "$subj" 2>/dev/null
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=clientAuth" > "$N/$name.ext"
  openssl x509 -req -in "$N/$name.csr" -CA "$DIR/ca.crt" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$N/$name.ext" -out "$N/$name.crt" 2>/dev/null
  rm -f "$N/$name.csr" "$N/$name.ext"
  chmod 600 "$N/$name.key"
}

# kubeconfig NAME: DIR/node/NAME.kubeconfig with NAME's client certificate.
kubeconfig() {
  local kc="$N/$1.kubeconfig"
  "$KUBECTL" --kubeconfig="$kc" config set-cluster local --server="$API_URL" \
    --certificate-authority="$DIR/ca.crt" --embed-certs=true >/dev/null
  "$KUBECTL" --kubeconfig="$kc" config set-credentials "$1" \
    --client-certificate="$N/$1.crt" --client-key="$N/$1.key" --embed-certs=true >/dev/null
  "$KUBECTL" --kubeconfig="$kc" config set-context local --cluster=local --user="$1" >/dev/null
  "$KUBECTL" --kubeconfig="$kc" config use-context local >/dev/null
  chmod 600 "$kc"
}

fail_start() {
  local name
  log "ERROR: $*"
  for name in scheduler containerd kubelet kube-proxy coredns; do
    [ -f "$DIR/$name.log" ] || continue
    log "---- last lines of $DIR/$name.log"; tail -n 20 "$DIR/$name.log" | cut -c1-400 >&2 || true
  done
  stop_node
  exit 1
}

alive_or_fail() { local n; for n in "$@"; do pid_of "$n" >/dev/null || fail_start "$n exited during startup"; done; }

check_requirements() {
  [ "$(id -u)" = 0 ] || die "the node needs root (network, mounts, cgroups)"
  local missing=() t
  for t in iptables conntrack ip openssl jq; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [ -x "$RUNC" ] || missing+=("runc (Debian: runc)")
  for t in bridge host-local loopback; do
    [ -x "$CNI_BIN_DIR/$t" ] || missing+=("$CNI_BIN_DIR/$t (Debian: containernetworking-plugins)")
  done
  for t in kubelet kube-proxy kube-scheduler containerd ctr containerd-shim-runc-v2 coredns; do
    [ -x "$NODE_BIN/$t" ] || missing+=("$NODE_BIN/$t (hack/build-node.sh)")
  done
  grep -qw overlay /proc/filesystems || missing+=("overlayfs in the kernel")
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || missing+=("br_netfilter in the kernel")
  [ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]}"
}

start() {
  local n
  for n in scheduler containerd kubelet kube-proxy coredns; do pid_of "$n" >/dev/null && die "$n already running for $DIR (run: $0 stop $DIR)"; done
  [ -f "$DIR/env" ] || die "no $DIR/env: start the control plane first (NODE_IP=10.88.0.1 hack/controlplane.sh start $DIR)"
  NODE_IP=$(envval NODE_IP)
  [ -n "$NODE_IP" ] || die "the control plane in $DIR was not started for a node (NODE_IP=10.88.0.1 hack/controlplane.sh start DIR)"
  KUBECTL=$(envval KUBECTL); API_URL=$(envval APISERVER_URL)
  local admin="$DIR/admin.kubeconfig"
  if [ -z "${NODE_BIN:-}" ]; then NODE_BIN=$("$HERE/build-node.sh" | tail -n 1); fi
  NODE_BIN=$(cd "$NODE_BIN" && pwd)
  check_requirements
  if ip link show "$BRIDGE" >/dev/null 2>&1; then
    die "$BRIDGE exists: a node of $(cat "$OWNER_FILE" 2>/dev/null || echo "another DIR") runs on this machine or was not stopped (hack/node.sh stop THAT_DIR)"
  fi

  local prefix=${NODE_IP%.*}
  local pod_cidr="$prefix.0/24"
  mkdir -p "$N"/{cni-conf,cni-ipam,kubelet,pod-logs,containerd-root,run,certs,volume-plugins,registries/_default}
  printf '%s\n' 'server = "http://127.0.0.1:9"' '[host."http://127.0.0.1:9"]' '  capabilities = ["pull", "resolve"]' \
    > "$N/registries/_default/hosts.toml"
  echo "$pod_cidr" > "$N/pod-cidr"

  # ---- kernel settings and host network ------------------------------------------------------
  touch "$N/net.owner"
  echo "$DIR" > "$OWNER_FILE"
  cat /proc/sys/net/ipv4/ip_forward > "$N/ip_forward.saved"
  echo 1 > /proc/sys/net/ipv4/ip_forward
  echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The Service range onto the bridge: kube-proxy DNATs ClusterIPs of Services to pods; any other
  # address in it stays on this bridge instead of following the default route off the machine.
  ip route add "$SVC_CIDR" dev "$BRIDGE" src "$NODE_IP"
  iptables -w -N "$CHAIN"
  iptables -w -A "$CHAIN" -s "$pod_cidr" -d "$pod_cidr" -j RETURN
  iptables -w -A "$CHAIN" -s "$pod_cidr" -j DROP
  iptables -w -I FORWARD 1 -j "$CHAIN"

  # ---- CNI: one bridge network, no masquerade (pods reach only pods and this host) -------------
  jq -n --arg br "$BRIDGE" --arg subnet "$pod_cidr" --arg gw "$NODE_IP" --arg ipam "$N/cni-ipam" '{
    cniVersion: "1.0.0", name: "phi-guard-e2e",
    plugins: [{type: "bridge", bridge: $br, isGateway: true, ipMasq: false, hairpinMode: true,
      ipam: {type: "host-local", dataDir: $ipam, ranges: [[{subnet: $subnet, gateway: $gw}]],
        routes: [{dst: "0.0.0.0/0"}]}}]}' > "$N/cni-conf/10-phi-guard.conflist"

  # ---- containerd ----------------------------------------------------------------------------
  local sock="$N/run/containerd.sock"
  cat > "$N/containerd.toml" <<EOF
version = 3
root = '$N/containerd-root'
state = '$N/run/containerd'
[grpc]
  address = '$sock'
[ttrpc]
  address = '$sock.ttrpc'
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
[plugins.'io.containerd.cri.v1.images'.registry]
  # Every registry resolves to a closed port on loopback: images come from IMAGES_DIR only, and a
  # pod naming any other image fails to pull at once instead of reaching out of the machine.
  config_path = '$N/registries'
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = '${PAUSE_IMAGE:-phi-guard.local/pause:1.0}'
[plugins.'io.containerd.cri.v1.runtime']
  netns_mounts_under_state_dir = true
  enable_selinux = false
  # No negative oom_score_adj for pods (the sandbox asks for -998): where root lacks
  # CAP_SYS_RESOURCE (a sandboxed VM, this machine) runc would fail to start any container.
  restrict_oom_score_adj = true
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
  runtime_type = 'io.containerd.runc.v2'
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = '$RUNC'
  Root = '$N/run/runc'
  SystemdCgroup = false
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ['$CNI_BIN_DIR']
  conf_dir = '$N/cni-conf'
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
EOF
  PATH="$NODE_BIN:$PATH" launch containerd "$NODE_BIN/containerd" --config "$N/containerd.toml"
  local ctr=("$NODE_BIN/ctr" --address "$sock" --namespace k8s.io) t0=$SECONDS
  until "${ctr[@]}" version >/dev/null 2>&1; do
    alive_or_fail containerd
    [ $((SECONDS - t0)) -lt 60 ] || fail_start "containerd not answering after 60 s"
    sleep 0.3
  done
  log "containerd ready after $((SECONDS - t0))s"
  if [ -n "$IMAGES_DIR" ]; then
    local f
    for f in "$IMAGES_DIR"/*.oci.tar; do
      [ -f "$f" ] || fail_start "no *.oci.tar in $IMAGES_DIR"
      "${ctr[@]}" images import --platform linux/amd64 "$f" > "$N/import.log" 2>&1 \
        || { cat "$N/import.log" >&2; fail_start "ctr images import $f failed"; }
    done
    log "images imported: $("${ctr[@]}" images ls -q 2>/dev/null | grep -v '^sha256:' | tr '\n' ' ')"
  fi

  # ---- certificates and kubeconfigs ----------------------------------------------------------
  sign_client kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  sign_client kube-proxy "/CN=system:kube-proxy"
  sign_client scheduler "/CN=system:kube-scheduler"
  kubeconfig kubelet
  kubeconfig kube-proxy
  kubeconfig scheduler

  # ---- kube-scheduler (the node-less control plane has none) ----------------------------------
  launch scheduler "$NODE_BIN/kube-scheduler" --kubeconfig="$N/scheduler.kubeconfig" \
    --authentication-kubeconfig="$N/scheduler.kubeconfig" --authorization-kubeconfig="$N/scheduler.kubeconfig" \
    --leader-elect=false --secure-port=0

  # ---- CoreDNS on the bridge address: cluster.local only, nothing forwarded ------------------
  cat > "$N/Corefile" <<EOF
.:53 {
    bind $NODE_IP
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $admin local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
}
EOF
  launch coredns "$NODE_BIN/coredns" -conf "$N/Corefile"
  printf 'nameserver %s\n' "$NODE_IP" > "$N/resolv.conf"

  # ---- kubelet ---------------------------------------------------------------------------------
  cat > "$N/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroups v1 (this machine's hybrid layout) is refused since 1.35 unless allowed explicitly.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $DIR/ca.crt}
authorization: {mode: AlwaysAllow}
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: $N/resolv.conf
podLogsDir: $N/pod-logs
volumePluginDir: $N/volume-plugins
address: $NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
failSwapOn: false
rotateCertificates: false
serializeImagePulls: false
# A test node on a shared disk: never evict or garbage-collect the imported images.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
maxPods: 50
# Its own OOM score stays as started (lowering it needs CAP_SYS_RESOURCE).
oomScoreAdj: 0
EOF
  launch kubelet "$NODE_BIN/kubelet" --config="$N/kubelet.yaml" --kubeconfig="$N/kubelet.kubeconfig" \
    --root-dir="$N/kubelet" --cert-dir="$N/certs" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP"

  # ---- kube-proxy (iptables) -------------------------------------------------------------------
  cat > "$N/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $N/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $pod_cidr
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0}
iptables: {localhostNodePorts: false}
oomScoreAdj: 0
nodePortAddresses: [$NODE_IP/32]
EOF
  launch kube-proxy "$NODE_BIN/kube-proxy" --config="$N/kube-proxy.yaml"

  local timeout=${NODE_READY_TIMEOUT:-120}
  t0=$SECONDS
  until "$KUBECTL" --kubeconfig="$admin" --request-timeout=5s get node "$NODE_NAME" \
      -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -qx True; do
    alive_or_fail scheduler containerd kubelet kube-proxy coredns
    [ $((SECONDS - t0)) -lt "$timeout" ] || fail_start "node $NODE_NAME not Ready after ${timeout}s"
    sleep 1
  done
  log "node $NODE_NAME Ready after $((SECONDS - t0))s"
  # kube-proxy has programmed the kubernetes Service once its chain for it exists.
  t0=$SECONDS
  until iptables -w -t nat -S KUBE-SERVICES 2>/dev/null | grep -q 'default/kubernetes:https'; do
    alive_or_fail kube-proxy
    [ $((SECONDS - t0)) -lt 60 ] || fail_start "kube-proxy did not program the kubernetes Service within 60s"
    sleep 0.5
  done
  log "kube-proxy ready after $((SECONDS - t0))s"

  {
    echo "NODE_NAME=$NODE_NAME"
    echo "POD_CIDR=$pod_cidr"
    echo "CONTAINERD_ADDRESS=$sock"
    echo "CTR=$NODE_BIN/ctr"
  } | tee -a "$DIR/env"
}

# Kill every process in the kubepods cgroups and remove them (all hierarchies, v1 and v2).
kill_pods() {
  local d pids
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods /sys/fs/cgroup/*/kubepods.slice; do
    [ -d "$d" ] || continue
    pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    # shellcheck disable=SC2086
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  done
  sleep 0.5
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$d" ] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
}

# What kube-proxy --cleanup leaves: the kubelet's KUBE-FIREWALL (localnet guard) and canary
# chains, in every table, IPv4 and IPv6 (one node per machine: every KUBE-* chain is ours).
remove_kube_chains() {
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null 2>&1 || continue
    for table in filter nat mangle; do
      "$ipt" -w -t "$table" -S >/dev/null 2>&1 || continue
      while read -r rule; do
        # a rule as -S prints it: words, comments in double quotes
        eval "\"\$ipt\" -w -t \"\$table\" ${rule/-A/-D}" 2>/dev/null || true
      done < <("$ipt" -w -t "$table" -S | grep -E '^-A (INPUT|OUTPUT|FORWARD|PREROUTING|POSTROUTING) .*-j KUBE-' || true)
      for chain in $("$ipt" -w -t "$table" -S | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p'); do
        "$ipt" -w -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$ipt" -w -t "$table" -S | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p'); do
        "$ipt" -w -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# Best effort, every step: one that fails (a cgroup vanishing mid-walk, a busy mount) must not
# leave the rest (mounts, the bridge, iptables) behind. Host-wide state (the bridge, the
# iptables chains, ip_forward) is removed only by the DIR that made it (DIR/node/net.owner).
stop_node() {
  set +e
  local name sock="$N/run/containerd.sock" nb owner=0
  [ -f "$N/net.owner" ] && owner=1
  nb=${NODE_BIN:-$( (envval CTR 2>/dev/null || true) | xargs -r dirname)}
  for name in scheduler kube-proxy coredns kubelet; do stop_pid "$name"; done
  # Containers and their shims first, then containerd.
  if pid_of containerd >/dev/null && [ -n "$nb" ] && [ -x "$nb/ctr" ]; then
    local ctr=("$nb/ctr" --address "$sock" --namespace k8s.io) id
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" tasks kill -a -s KILL "$id" >/dev/null 2>&1 || true
    done
  fi
  kill_pods
  stop_pid containerd
  # Shims of this containerd (their command line names its socket).
  local p
  for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $sock" 2>/dev/null || true); do kill -KILL "$p" 2>/dev/null || true; done
  kill_pods
  # Mounts under DIR/node (overlay rootfs, tmpfs volumes, netns bind mounts), deepest first.
  if [ -d "$N" ]; then
    local m
    while read -r m; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done < <(awk -v p="$N/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | sort -r)
  fi
  local left
  left=$(awk -v p="$N/" 'index($2, p) == 1 { print $2 }' /proc/self/mounts | wc -l)
  [ "$left" -eq 0 ] || log "WARNING: $left mounts under $N could not be removed"
  if [ "$owner" = 1 ]; then
    if [ -n "$nb" ] && [ -x "$nb/kube-proxy" ]; then "$nb/kube-proxy" --cleanup >/dev/null 2>&1; fi
    remove_kube_chains
    if iptables -w -S "$CHAIN" >/dev/null 2>&1; then
      iptables -w -D FORWARD -j "$CHAIN" 2>/dev/null
      iptables -w -F "$CHAIN"; iptables -w -X "$CHAIN"
    fi
    # veths of killed pods go with their network namespaces; the bridge last.
    ip link del "$BRIDGE" 2>/dev/null
    if [ -f "$N/ip_forward.saved" ]; then cat "$N/ip_forward.saved" > /proc/sys/net/ipv4/ip_forward; rm -f "$N/ip_forward.saved"; fi
    rm -f "$N/net.owner"
    [ "$(cat "$OWNER_FILE" 2>/dev/null)" != "$DIR" ] || rm -f "$OWNER_FILE"
  fi
  set -e
}

status() {
  local n
  for n in scheduler containerd kubelet kube-proxy coredns; do pid_of "$n" >/dev/null || { log "$n not running"; return 1; }; done
  log "running"
}

case "$CMD" in
  start) start ;;
  stop) stop_node; log "stopped ($DIR)" ;;
  status) status ;;
  *) usage ;;
esac
