#!/usr/bin/env bash
# Install phi-guard into a local control plane (hack/controlplane.sh) so that the API server calls a
# phi-guard process running on the host (pods cannot run: the control plane has no nodes).
# Used by the e2e tests (tests/e2e/harness.rs), `make demo` and benches/apiserver.rs; one place
# for all of them, and one source of manifests: the Helm chart (charts/phi-guard), so what is
# tested is what ships.
#
#   hack/local-install.sh install     the chart: CRD, hipaa-baseline PhiPolicy, webhook -> WEBHOOK_URL
#   hack/local-install.sh uninstall   `helm uninstall` (the CRD stays)
#
# env (required): KUBECTL, KUBECONFIG, HELM, WEBHOOK_URL (https://127.0.0.1:PORT/validate),
#                 WEBHOOK_CA_BUNDLE (base64 PEM of the CA that signed phi-guard's serving cert)
# env (optional): PHI_GUARD_NAMESPACE (default phi-guard),
#   HELM_EXTRA_ARGS    extra `helm upgrade --install` arguments (word-split)
# The release is `phi-guard`, so the ValidatingWebhookConfiguration is named `phi-guard`. The
# chart's pre-delete hook Job needs a node, so it is turned off here. `install` prints `mode=chart`
# on stdout (hack/demo.sh shows it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NS=${PHI_GUARD_NAMESPACE:-phi-guard}
RELEASE=phi-guard

log() { echo "local-install: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ $# -eq 1 ] || die "usage: $0 install|uninstall"
for v in KUBECTL KUBECONFIG HELM; do [ -n "${!v:-}" ] || die "$v is not set"; done
export KUBECONFIG
case "${PHI_GUARD_INSTALL:-chart}" in
  chart|auto) ;;
  *) die "PHI_GUARD_INSTALL=${PHI_GUARD_INSTALL} is gone: the chart is the only install source" ;;
esac

k() { "$KUBECTL" --request-timeout=30s "$@"; }

install_chart() {
  for v in WEBHOOK_URL WEBHOOK_CA_BUNDLE; do [ -n "${!v:-}" ] || die "$v is not set"; done
  log "installing the chart charts/phi-guard (release $RELEASE in $NS, webhook -> $WEBHOOK_URL)"
  local extra=()
  # HELM_EXTRA_ARGS is word-split on purpose (several arguments in one variable).
  read -r -a extra <<<"${HELM_EXTRA_ARGS:-}"
  "$HELM" upgrade --install "$RELEASE" "$ROOT/charts/phi-guard" \
    --namespace "$NS" --create-namespace \
    --set-string webhook.url="$WEBHOOK_URL" \
    --set-string webhook.caBundle="$WEBHOOK_CA_BUNDLE" \
    --set uninstall.removeWebhookFirst.enabled=false \
    "${extra[@]}" >&2
  k wait --for=condition=Established --timeout=60s crd/phipolicies.phiguard.io >&2
}

uninstall() {
  if "$HELM" status "$RELEASE" -n "$NS" >/dev/null 2>&1; then
    "$HELM" uninstall "$RELEASE" -n "$NS" --wait >&2
  fi
}

case "$1" in
  install) install_chart; echo "mode=chart" ;;
  uninstall) uninstall ;;
  *) die "usage: $0 install|uninstall" ;;
esac
