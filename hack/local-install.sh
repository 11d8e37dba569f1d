#!/usr/bin/env bash
# Install phi-guard into a local control plane (hack/controlplane.sh) so that the API server calls a
# phi-guard process running on the host (pods cannot run: the control plane has no nodes).
# Used by the e2e tests (tests/e2e/harness.rs) and `make demo`; one place for both.
#
#   hack/local-install.sh install     CRD, phi-guard namespace, hipaa-baseline PhiPolicy, webhook
#   hack/local-install.sh uninstall   remove what `install` created (the CRD stays)
#
# env (required): KUBECTL, KUBECONFIG, WEBHOOK_URL (https://127.0.0.1:PORT/validate),
#                 WEBHOOK_CA_BUNDLE (base64 PEM of the CA that signed phi-guard's serving cert)
# env (optional): HELM (needed for the chart), PHI_GUARD_NAMESPACE (default phi-guard),
#   (the chart's pre-delete hook Job needs a node, so it is turned off here)
#   PHI_GUARD_INSTALL  auto (default): the Helm chart if charts/phi-guard exists, else manifests;
#                      chart | manifests: force one
#   HELM_EXTRA_ARGS    extra `helm upgrade --install` arguments (word-split)
#
# Manifest mode writes what the chart would: the CRD from crds/, the phi-guard namespace, the
# hipaa-baseline PhiPolicy (`spec: {}`: the CRD's defaults are the baseline) and a
# ValidatingWebhookConfiguration with failurePolicy Fail whose namespaceSelector excludes
# kube-system and phi-guard's own namespace.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NS=${PHI_GUARD_NAMESPACE:-phi-guard}
RELEASE=phi-guard
VWC_NAME=phi-guard-local

log() { echo "local-install: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ $# -eq 1 ] || die "usage: $0 install|uninstall"
for v in KUBECTL KUBECONFIG; do [ -n "${!v:-}" ] || die "$v is not set"; done
export KUBECONFIG

mode=${PHI_GUARD_INSTALL:-auto}
if [ "$mode" = auto ]; then
  if [ -f "$ROOT/charts/phi-guard/Chart.yaml" ]; then mode=chart; else mode=manifests; fi
fi
case "$mode" in chart|manifests) ;; *) die "PHI_GUARD_INSTALL must be auto, chart or manifests (got '$mode')";; esac

k() { "$KUBECTL" --request-timeout=30s "$@"; }

webhook_manifest() {
  cat <<EOF
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: $VWC_NAME
  labels:
    app.kubernetes.io/name: phi-guard
    app.kubernetes.io/managed-by: phi-guard-local-install
webhooks:
  - name: validate.phiguard.io
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    matchPolicy: Equivalent
    timeoutSeconds: 5
    clientConfig:
      url: $WEBHOOK_URL
      caBundle: $WEBHOOK_CA_BUNDLE
    namespaceSelector:
      matchExpressions:
        - key: kubernetes.io/metadata.name
          operator: NotIn
          values: [kube-system, $NS]
    rules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [pods, replicationcontrollers, persistentvolumeclaims, services]
        scope: Namespaced
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [UPDATE]
        resources: [namespaces]
        scope: Cluster
      - apiGroups: [apps]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [deployments, statefulsets, daemonsets, replicasets]
        scope: Namespaced
      - apiGroups: [batch]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [jobs, cronjobs]
        scope: Namespaced
      - apiGroups: [networking.k8s.io]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [ingresses]
        scope: Namespaced
      - apiGroups: [networking.k8s.io]
        apiVersions: [v1]
        operations: [UPDATE, DELETE]
        resources: [networkpolicies]
        scope: Namespaced
EOF
}

install_manifests() {
  for v in WEBHOOK_URL WEBHOOK_CA_BUNDLE; do [ -n "${!v:-}" ] || die "$v is not set"; done
  log "installing from manifests (CRD, namespace $NS, hipaa-baseline, webhook $VWC_NAME -> $WEBHOOK_URL)"
  k apply -f "$ROOT/crds/" >&2
  k wait --for=condition=Established --timeout=60s crd/phipolicies.phiguard.io >&2
  k apply -f - >&2 <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $NS
  labels:
    app.kubernetes.io/name: phi-guard
---
# The built-in baseline as an object: the CRD's defaults fill in every field.
apiVersion: phiguard.io/v1alpha1
kind: PhiPolicy
metadata:
  name: hipaa-baseline
spec: {}
EOF
  webhook_manifest | k apply -f - >&2
}

install_chart() {
  [ -n "${HELM:-}" ] || die "HELM is not set (needed to install the chart)"
  for v in WEBHOOK_URL WEBHOOK_CA_BUNDLE; do [ -n "${!v:-}" ] || die "$v is not set"; done
  log "installing the chart charts/phi-guard (release $RELEASE in $NS, webhook -> $WEBHOOK_URL)"
  # shellcheck disable=SC2086
  "$HELM" upgrade --install "$RELEASE" "$ROOT/charts/phi-guard" \
    --namespace "$NS" --create-namespace \
    --set-string webhook.url="$WEBHOOK_URL" \
    --set-string webhook.caBundle="$WEBHOOK_CA_BUNDLE" \
    --set uninstall.removeWebhookFirst.enabled=false \
    ${HELM_EXTRA_ARGS:-} >&2
  k wait --for=condition=Established --timeout=60s crd/phipolicies.phiguard.io >&2
}

uninstall() {
  if [ "$mode" = chart ] && [ -n "${HELM:-}" ] && "$HELM" status "$RELEASE" -n "$NS" >/dev/null 2>&1; then
    "$HELM" uninstall "$RELEASE" -n "$NS" --wait >&2
  fi
  k delete validatingwebhookconfiguration "$VWC_NAME" --ignore-not-found >&2
  k delete phipolicy hipaa-baseline --ignore-not-found >&2 2>/dev/null || true
}

case "$1" in
  install) if [ "$mode" = chart ]; then install_chart; else install_manifests; fi; echo "mode=$mode" ;;
  uninstall) uninstall ;;
  *) die "usage: $0 install|uninstall" ;;
esac
