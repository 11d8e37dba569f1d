#!/usr/bin/env bash
# Container images without a Docker daemon or a registry: OCI image archives written by hand
# (one uncompressed layer, an OCI config, manifest and index; tar + sha256sum + jq), for
# `ctr images import` on the e2e node (hack/node.sh), `kind load image-archive`, `k3d image
# import`, or `skopeo copy oci-archive:FILE docker://REGISTRY/...` into a registry.
#
#   hack/images.sh OUTDIR      build every image below into OUTDIR/*.oci.tar; write OUTDIR/images.env
#   hack/images.sh --phi-guard-binary
#                              only build phi-guard's static binary; stdout: its path (hack/test.sh
#                              builds it while the e2e suite runs, then passes PHI_GUARD_MUSL_BIN)
#
# Images (references are local names; nothing is pulled or pushed):
#   phi-guard  the Dockerfile's runtime contract without its base image: the static musl binary of
#              `cargo build --release --locked --target x86_64-unknown-linux-musl --bin phi-guard`
#              (what the Dockerfile's builder stage runs, .cargo/config.toml included) at /phi-guard,
#              ENTRYPOINT ["/phi-guard"], CMD ["serve"], USER 65532:65532, MIMALLOC_PURGE_DELAY=0,
#              the Debian CA bundle at /etc/ssl/certs/ca-certificates.crt, /etc/passwd and
#              /etc/group with nonroot (65532) as in distroless, no shell. tests/image.rs checks
#              this against the Dockerfile.
#   pause      the pod sandbox program (hack/node/pause.c, built by hack/build-node.sh)
#   kubectl    the static kubectl of hack/build-tools.sh (the chart's pre-delete hook runs it)
#   curl       Debian's /usr/bin/curl with the shared libraries it links (the chart's `helm test`
#              pod runs it)
#
# OUTDIR/images.env (KEY=VALUE): PHI_GUARD_IMAGE_REPOSITORY PHI_GUARD_IMAGE_TAG PHI_GUARD_IMAGE
#   PAUSE_IMAGE KUBECTL_IMAGE CURL_IMAGE, and PHI_GUARD_IMAGE_ID (the config digest, which
#   `crictl images` / the pod status' imageID show).
# env: PHI_GUARD_MUSL_BIN  use this prebuilt static phi-guard instead of building it
#      KUBE_BIN / PHI_GUARD_TOOLS_BIN, NODE_BIN   tool dirs (default: hack/build-tools.sh,
#                                                   hack/build-node.sh)
#      CARGO  (default cargo); CARGO_TARGET_DIR is honoured
#
# MEASURED (2 cores): `cargo build --release --locked --target x86_64-unknown-linux-musl --bin
# phi-guard` cold 12 min 27 s wall (/usr/bin/time; Go builds of hack/build-node.sh competing for
# the cores; peak RSS 1.5 GB), after a change to src/ only 5 min 32 s (the crate itself, thin LTO);
# packing all four images: ~3 s. The binary runs in the image (mimalloc on musl included): the
# e2e-node suite serves reviews from it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=x86_64-unknown-linux-musl
log() { echo "images: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# build_phi_guard: the static binary, as the Dockerfile's builder stage builds it; sets BIN.
build_phi_guard() {
  command -v musl-gcc >/dev/null 2>&1 || die "musl-gcc missing (Debian: musl-tools): ring's C code needs it for $TARGET"
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$TARGET"; then
    rustup target add "$TARGET" >&2
  fi
  local t0=$SECONDS
  log "cargo build --release --locked --target $TARGET --bin phi-guard"
  (cd "$ROOT" && "${CARGO:-cargo}" build --release --locked --target "$TARGET" --bin phi-guard >&2)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/$TARGET/release/phi-guard"
  log "phi-guard built in $((SECONDS - t0)) s"
}

[ $# -eq 1 ] || die "usage: $0 OUTDIR | --phi-guard-binary"
if [ "$1" = --phi-guard-binary ]; then
  build_phi_guard
  [ -x "$BIN" ] || die "no phi-guard binary at $BIN"
  echo "$BIN"
  exit 0
fi
mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)

KUBE_BIN=${KUBE_BIN:-${PHI_GUARD_TOOLS_BIN:-}}
[ -n "$KUBE_BIN" ] || KUBE_BIN=$("$ROOT/hack/build-tools.sh" | tail -n 1)
[ -n "${NODE_BIN:-}" ] || NODE_BIN=$("$ROOT/hack/build-node.sh" | tail -n 1)

# oci_archive OUT.tar REF ROOTFS CONFIG_JSON: a one-layer image; CONFIG_JSON is the image
# config's "config" object (User, Entrypoint, Cmd, Env, ...).
oci_archive() {
  local out=$1 ref=$2 rootfs=$3 cfg=$4 w
  w=$(mktemp -d "${TMPDIR:-/tmp}/phi-guard-oci.XXXXXX")
  mkdir -p "$w/blobs/sha256"
  # Reproducible layer: sorted names, numeric owners as set in ROOTFS, fixed mtimes.
  tar --sort=name --numeric-owner --mtime=@0 --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$rootfs" -cf "$w/layer.tar" .
  local layer_digest layer_size
  layer_digest=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$w/layer.tar")
  mv "$w/layer.tar" "$w/blobs/sha256/$layer_digest"
  jq -cn --argjson cfg "$cfg" --arg diff "sha256:$layer_digest" \
    '{architecture: "amd64", os: "linux", created: "1970-01-01T00:00:00Z", config: $cfg,
      rootfs: {type: "layers", diff_ids: [$diff]},
      history: [{created: "1970-01-01T00:00:00Z", created_by: "hack/images.sh"}]}' > "$w/config.json"
  local cfg_digest cfg_size
  cfg_digest=$(sha256sum "$w/config.json" | cut -d' ' -f1)
  cfg_size=$(stat -c %s "$w/config.json")
  mv "$w/config.json" "$w/blobs/sha256/$cfg_digest"
  jq -cn --arg cd "sha256:$cfg_digest" --argjson cs "$cfg_size" \
    --arg ld "sha256:$layer_digest" --argjson ls "$layer_size" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $cd, size: $cs},
      layers: [{mediaType: "application/vnd.oci.image.layer.v1.tar", digest: $ld, size: $ls}]}' > "$w/manifest.json"
  local man_digest man_size
  man_digest=$(sha256sum "$w/manifest.json" | cut -d' ' -f1)
  man_size=$(stat -c %s "$w/manifest.json")
  mv "$w/manifest.json" "$w/blobs/sha256/$man_digest"
  jq -cn --arg md "sha256:$man_digest" --argjson ms "$man_size" --arg ref "$ref" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [{mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $md, size: $ms,
        platform: {architecture: "amd64", os: "linux"},
        annotations: {"io.containerd.image.name": $ref, "org.opencontainers.image.ref.name": ($ref | sub(".*:"; ""))}}]}' > "$w/index.json"
  echo '{"imageLayoutVersion":"1.0.0"}' > "$w/oci-layout"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$w" -cf "$out.tmp" oci-layout index.json blobs
  mv -f "$out.tmp" "$out"
  rm -rf "$w"
  echo "sha256:$cfg_digest"
}

# new_rootfs: sets R to an empty rootfs dir with the distroless basics (passwd/group with root
# and nonroot 65532, /tmp 1777, the CA bundle).
RTMPS=()
cleanup() { for d in "${RTMPS[@]+"${RTMPS[@]}"}"; do rm -rf "$d"; done; }
trap cleanup EXIT
new_rootfs() {
  R=$(mktemp -d "${TMPDIR:-/tmp}/phi-guard-rootfs.XXXXXX"); RTMPS+=("$R")
  chmod 0755 "$R"
  mkdir -p "$R/etc/ssl/certs" "$R/tmp" "$R/home/nonroot"
  chmod 1777 "$R/tmp"
  chown 65532:65532 "$R/home/nonroot"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' > "$R/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' > "$R/etc/group"
  [ -f /etc/ssl/certs/ca-certificates.crt ] || die "/etc/ssl/certs/ca-certificates.crt missing (Debian: ca-certificates)"
  install -m 0644 /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
}

# static_or_die BIN: an image without libc needs a binary without shared libraries.
static_or_die() {
  command -v readelf >/dev/null 2>&1 || die "readelf missing (Debian: binutils)"
  if readelf -d "$1" | grep -q '(NEEDED)'; then die "$1 is not static: $(readelf -d "$1" | grep '(NEEDED)' | tr -s ' ')"; fi
}

PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# --- phi-guard ---------------------------------------------------------------------------------
BIN=${PHI_GUARD_MUSL_BIN:-}
[ -n "$BIN" ] || build_phi_guard
[ -x "$BIN" ] || die "no phi-guard binary at $BIN"
static_or_die "$BIN"
new_rootfs
install -m 0755 "$BIN" "$R/phi-guard"
VERSION=$("$BIN" --version | awk '{print $NF}')
REV=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no -- src Cargo.toml Cargo.lock .cargo crds 2>/dev/null)" ] || REV="$REV-dirty"
REPO=phi-guard.local/phi-guard
TAG="$VERSION-$REV"
PG_CFG=$(jq -cn --arg path "$PATH_ENV" --arg rev "$REV" --arg v "$VERSION" '{
  User: "65532:65532", Entrypoint: ["/phi-guard"], Cmd: ["serve"], WorkingDir: "/",
  Env: [$path, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "MIMALLOC_PURGE_DELAY=0"],
  ExposedPorts: {"8443/tcp": {}, "8080/tcp": {}},
  Labels: {"org.opencontainers.image.title": "phi-guard",
    "org.opencontainers.image.description": "Validating admission webhook that keeps PHI workloads HIPAA-safe",
    "org.opencontainers.image.licenses": "Apache-2.0",
    "org.opencontainers.image.source": "https://github.com/phi-guard/phi-guard",
    "org.opencontainers.image.version": $v, "org.opencontainers.image.revision": $rev}}')
PG_ID=$(oci_archive "$OUTDIR/phi-guard.oci.tar" "$REPO:$TAG" "$R" "$PG_CFG")

# --- pause -------------------------------------------------------------------------------------
[ -x "$NODE_BIN/pause" ] || die "$NODE_BIN/pause missing (hack/build-node.sh)"
R=$(mktemp -d "${TMPDIR:-/tmp}/phi-guard-rootfs.XXXXXX"); RTMPS+=("$R"); chmod 0755 "$R"
install -m 0755 "$NODE_BIN/pause" "$R/pause"
PAUSE=phi-guard.local/pause:1.0
oci_archive "$OUTDIR/pause.oci.tar" "$PAUSE" "$R" \
  '{"User":"65535:65535","Entrypoint":["/pause"],"WorkingDir":"/"}' >/dev/null

# --- kubectl -----------------------------------------------------------------------------------
[ -x "$KUBE_BIN/kubectl" ] || die "$KUBE_BIN/kubectl missing (hack/build-tools.sh)"
static_or_die "$KUBE_BIN/kubectl"
new_rootfs
mkdir -p "$R/bin"; install -m 0755 "$KUBE_BIN/kubectl" "$R/bin/kubectl"
KVER=$("$KUBE_BIN/kubectl" version --client -o json | jq -r .clientVersion.gitVersion)
KUBECTL_IMAGE="phi-guard.local/kubectl:$KVER"
oci_archive "$OUTDIR/kubectl.oci.tar" "$KUBECTL_IMAGE" "$R" \
  "$(jq -cn --arg path "$PATH_ENV" '{User: "65532:65532", Entrypoint: ["/bin/kubectl"], Env: [$path, "HOME=/home/nonroot"], WorkingDir: "/"}')" >/dev/null

# --- curl (dynamically linked: the binary, its loader and libraries at their paths) ------------
CURL=$(command -v curl) || die "curl missing (Debian: curl)"
new_rootfs
mkdir -p "$R/usr/bin"; install -m 0755 "$CURL" "$R/usr/bin/curl"
while read -r lib; do
  [ -f "$lib" ] || continue
  real=$(readlink -f "$lib")
  mkdir -p "$R$(dirname "$lib")"
  install -m 0755 "$real" "$R$lib"
done < <(ldd "$CURL" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }')
CVER=$("$CURL" --version | awk 'NR == 1 { print $2 }')
CURL_IMAGE="phi-guard.local/curl:$CVER"
oci_archive "$OUTDIR/curl.oci.tar" "$CURL_IMAGE" "$R" \
  "$(jq -cn --arg path "$PATH_ENV" '{User: "65532:65532", Entrypoint: ["/usr/bin/curl"], Env: [$path], WorkingDir: "/"}')" >/dev/null

{
  echo "PHI_GUARD_IMAGE_REPOSITORY=$REPO"
  echo "PHI_GUARD_IMAGE_TAG=$TAG"
  echo "PHI_GUARD_IMAGE=$REPO:$TAG"
  echo "PHI_GUARD_IMAGE_ID=$PG_ID"
  echo "PAUSE_IMAGE=$PAUSE"
  echo "KUBECTL_IMAGE=$KUBECTL_IMAGE"
  echo "CURL_IMAGE=$CURL_IMAGE"
} > "$OUTDIR/images.env"
log "built $(cd "$OUTDIR" && echo ./*.oci.tar) in $OUTDIR"
cat "$OUTDIR/images.env"
