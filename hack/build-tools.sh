#!/usr/bin/env bash
# Build (once per version) the control-plane tools that the e2e suite, `make demo` and the
# benchmark use -- kube-apiserver, kube-controller-manager, kubectl (all from the Go module
# k8s.io/kubernetes), etcd (go.etcd.io/etcd/server/v3) and helm v3 -- from the Go module proxy
# only (no Docker, no release downloads). Binaries are cached by version OUTSIDE the work tree,
# so a fresh clone on the same machine (CI) reuses them; a cold machine just builds them.
#
#   hack/build-tools.sh                      # defaults below
#   K8S_VERSION=v1.36.3 hack/build-tools.sh  # any other version (go.mod regenerated + tidied)
#   BIN=$(hack/build-tools.sh | tail -1)
#
# stdout: exactly one line, the bin directory (contains etcd, kube-apiserver,
#         kube-controller-manager, kubectl, helm). Everything else goes to stderr.
# env:    K8S_VERSION ETCD_VERSION HELM_VERSION   versions (defaults below)
#         PHI_GUARD_TOOLS_CACHE   cache root (default ${XDG_CACHE_HOME:-~/.cache}/phi-guard/tools)
#         PHI_GUARD_UPDATE_TEMPLATES=1  write the tidied go.mod/go.sum back into
#                                 hack/controlplane/{k8s-bins,etcd-bin} (use when bumping defaults)
#
# Pinned modules: hack/controlplane/k8s-bins and hack/controlplane/etcd-bin hold the tidied
# go.mod + go.sum for the default versions, so a default build is verified against the committed
# go.sum and needs no checksum-database lookups. For other versions the go.mod is regenerated
# from the published k8s.io/kubernetes go.mod (its "=> ./staging/src/..." replaces become
# "=> k8s.io/X v0.MINOR.PATCH") and tidied; if the checksum database has no entry for some
# (older) module, the tidy is retried once with GOSUMDB=off (proxy contents then trusted as is).
#
# MEASURED cold build (2 cores / 24 GiB, go1.26.8, empty GOMODCACHE + GOCACHE, `-p 2`, defaults
# k8s v1.37.2 + etcd v3.5.24 + helm v3.22.0; a cargo build was competing for the cores):
#   wall 14 min 33 s (kubernetes 742 s, etcd 48 s, helm 83 s), peak RSS 2.55 GB (largest single
#   process, /usr/bin/time -v); adds ~1.2 GB to GOMODCACHE and ~4.4 GB to GOCACHE; the five
#   binaries are ~310 MB. Warm (all cached): < 1 s.
# Versions: k8s v1.37.2 is the newest k8s.io/kubernetes whose staging modules (v0.37.2) are all
# served with checksum-database entries. etcd v3.5.24 is kubeadm's MinExternalEtcdVersion for
# 1.37 (upstream default 3.7.0; ETCD_VERSION=v3.7.3 was also tested: regenerated go.mod, 44 s).
# helm v3.21.4: the module proxy serves v3.22.0 too, but as a release not approved for use (the
# machine's package notes); the MEASURED line above was taken with v3.22.0.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.5.24}
HELM_VERSION=${HELM_VERSION:-v3.21.4}
CACHE=${PHI_GUARD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/phi-guard/tools}
OUT="$CACHE/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-${HELM_VERSION}"
HERE=$(cd "$(dirname "$0")" && pwd)

command -v go >/dev/null 2>&1 || PATH="/usr/local/go/bin:$PATH"
export GOWORK=off CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
export NO_PROXY=${NO_PROXY:-127.0.0.1,localhost}

log() { echo "build-tools: $*" >&2; }
have() { [ -x "$OUT/$1" ]; }
die() { log "ERROR: $*"; exit 1; }

mkdir -p "$OUT"
# Another helm version beside the same kubernetes and etcd: take their binaries from that
# directory instead of building them again (a hard link; a copy across file systems).
for sibling in "$CACHE/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_helm-"*; do
  [ "$sibling" != "$OUT" ] && [ -d "$sibling" ] || continue
  for b in kube-apiserver kube-controller-manager kubectl etcd; do
    if ! have "$b" && [ -x "$sibling/$b" ]; then
      ln -f "$sibling/$b" "$OUT/$b" 2>/dev/null || cp -f "$sibling/$b" "$OUT/$b"
      log "$b taken from $sibling"
    fi
  done
done
TMPS=()
cleanup() { for d in "${TMPS[@]+"${TMPS[@]}"}"; do rm -rf "$d"; done; }
trap cleanup EXIT
# new_workdir: sets W to a fresh temp dir (no $(...): TMPS must be appended to in this shell)
new_workdir() { W=$(mktemp -d "${TMPDIR:-/tmp}/phi-guard-tools.XXXXXX"); TMPS+=("$W"); }

# tidy with the checksum database; retry once without it (older k8s staging tags are missing there).
tidy() {
  if ! go mod tidy; then
    log "go mod tidy failed; retrying once with GOSUMDB=off (trusting the module proxy)"
    GOSUMDB=off GOFLAGS="$GOFLAGS -mod=mod" go mod tidy
  fi
}

# module_version FILE MODULE -> version required in FILE's go.mod (empty if absent)
module_version() { [ -f "$1" ] && go mod edit -json "$1" | jq -r --arg m "$2" '.Require[]? | select(.Path==$m) | .Version' || true; }

# Everything but the final line goes to stderr.
{
# Serialise concurrent builds of the same cache (two CI jobs, or a dev + CI).
exec 9>"$OUT/.lock"
flock -n 9 || { log "waiting for another build-tools.sh holding $OUT/.lock"; flock 9; }

# --- kube-apiserver / kube-controller-manager / kubectl -------------------------------------
if ! have kube-apiserver || ! have kube-controller-manager || ! have kubectl; then
  T0=$SECONDS
  log "building kubernetes ${K8S_VERSION} (cold: see MEASURED at the top of this script)"
  new_workdir; TPL="$HERE/controlplane/k8s-bins"
  cd "$W"
  if [ "$(module_version "$TPL/go.mod" k8s.io/kubernetes)" = "$K8S_VERSION" ]; then
    log "using pinned $TPL/go.mod + go.sum"
    cp "$TPL/go.mod" "$TPL/go.sum" .
  else
    STAGING_V="v0.${K8S_VERSION#v1.}"            # v1.37.2 -> v0.37.2
    KGOMOD=$(go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" | jq -r '.GoMod // empty')
    [ -n "$KGOMOD" ] && [ -f "$KGOMOD" ] || die "k8s.io/kubernetes@${K8S_VERSION} not available from the module proxy"
    {
      echo "// Generated by hack/build-tools.sh: builds kube-apiserver, kube-controller-manager and kubectl"
      echo "// from the published k8s.io/kubernetes module; each staging module it requires at v0.0.0 is"
      echo "// replaced by its published ${STAGING_V} tag."
      echo "module local/k8s-bins"
      echo
      grep -E '^(go|godebug) ' "$KGOMOD"
    } > go.mod
    go mod edit -require="k8s.io/kubernetes@${K8S_VERSION}"
    for t in kube-apiserver kube-controller-manager kubectl; do go mod edit -tool="k8s.io/kubernetes/cmd/$t"; done
    while read -r m; do
      go mod edit -replace="${m}=${m}@${STAGING_V}"
    done < <(sed -n 's#^[[:space:]]*\(k8s.io/[^ ]*\) => ./staging/src/.*#\1#p' "$KGOMOD")
    tidy
    if [ "${PHI_GUARD_UPDATE_TEMPLATES:-0}" = 1 ]; then cp go.mod go.sum "$TPL/"; log "updated $TPL"; fi
  fi
  MINOR=$(echo "$K8S_VERSION" | cut -d. -f2)
  LD="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LD+=" -X $pkg.gitVersion=${K8S_VERSION} -X $pkg.gitMajor=1 -X $pkg.gitMinor=${MINOR}"
    LD+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=2000-01-01T00:00:00Z"
  done
  # -p 2 keeps peak RSS modest on a 2-core box; tags as in upstream hack/lib/golang.sh
  go build -p 2 -tags selinux,notest,grpcnotrace -ldflags "$LD" -o "$W/bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
  mv -f "$W/bin/kube-apiserver" "$W/bin/kube-controller-manager" "$W/bin/kubectl" "$OUT/"
  cd "$HERE"
  log "kubernetes ${K8S_VERSION} built in $((SECONDS - T0)) s"
fi

# --- etcd ------------------------------------------------------------------------------------
# The etcd main package is the root of module go.etcd.io/etcd/server/v3. Its own go.mod has
# "=> ../api" style replaces, so `go install ...@version` is refused; as a plain dependency of
# a local module it needs none (it requires the published api/client/pkg versions).
if ! have etcd; then
  T0=$SECONDS
  log "building etcd ${ETCD_VERSION}"
  new_workdir; TPL="$HERE/controlplane/etcd-bin"
  cd "$W"
  if [ "$(module_version "$TPL/go.mod" go.etcd.io/etcd/server/v3)" = "$ETCD_VERSION" ]; then
    log "using pinned $TPL/go.mod + go.sum"
    cp "$TPL/go.mod" "$TPL/go.sum" .
  else
    printf '%s\n' "// Generated by hack/build-tools.sh: builds etcd from go.etcd.io/etcd/server/v3." \
      "module local/etcd-bin" "" "go 1.24.0" > go.mod
    go mod edit -require="go.etcd.io/etcd/server/v3@${ETCD_VERSION}" -tool=go.etcd.io/etcd/server/v3
    tidy
    if [ "${PHI_GUARD_UPDATE_TEMPLATES:-0}" = 1 ]; then cp go.mod go.sum "$TPL/"; log "updated $TPL"; fi
  fi
  go build -p 2 -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}" \
    -o "$W/etcd" go.etcd.io/etcd/server/v3
  mv -f "$W/etcd" "$OUT/etcd"
  cd "$HERE"
  log "etcd ${ETCD_VERSION} built in $((SECONDS - T0)) s"
fi

# --- helm (v3 or v4; neither go.mod has replace/exclude, so plain go install works) -------------
if ! have helm; then
  T0=$SECONDS
  log "building helm ${HELM_VERSION}"
  new_workdir
  HMAJOR=${HELM_VERSION%%.*}                                # v3 or v4
  HMOD="helm.sh/helm/${HMAJOR}"
  HLD="-s -w -X ${HMOD}/internal/version.version=${HELM_VERSION} -X ${HMOD}/internal/version.gitTreeState=clean"
  if [ "$HMAJOR" = v3 ]; then
    # Default .Capabilities.KubeVersion for `helm template`/lint, as helm v3's Makefile sets it
    # (from the client-go version helm was built against; v4 reads it from its build info).
    HGOMOD=$(go mod download -json "${HMOD}@${HELM_VERSION}" | jq -r '.GoMod // empty')
    CGV=$(module_version "$HGOMOD" k8s.io/client-go)        # e.g. v0.34.1
    if [ -n "$CGV" ]; then
      HMINOR=$(echo "$CGV" | cut -d. -f2)
      for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
        HLD+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=${HMINOR}"
      done
    fi
  fi
  GOBIN="$W" go install -p 2 -ldflags "$HLD" "${HMOD}/cmd/helm@${HELM_VERSION}"
  mv -f "$W/helm" "$OUT/helm"
  log "helm ${HELM_VERSION} built in $((SECONDS - T0)) s"
fi

"$OUT/kube-apiserver" --version
"$OUT/kubectl" version --client 2>/dev/null | sed -n 1p   # sed, not head: no SIGPIPE under pipefail
"$OUT/etcd" --version | sed -n 1p
"$OUT/helm" version --short
} >&2

echo "$OUT"
