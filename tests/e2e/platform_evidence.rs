//! In-transit evidence from the platform through the real API server: Cilium
//! transparent encryption read from ConfigMap kube-system/cilium-config, and Calico WireGuard
//! read from FelixConfiguration `default` once its CRD is installed. A PHI Deployment with no
//! mesh and no TLS is denied, admitted once the platform encrypts and the policy accepts it, and
//! denied again when encryption is switched off.
//!
//! Both objects are cluster-wide, so each test holds the exclusive lock while it changes one.

use crate::fixtures::App;
use crate::harness::*;
use crate::policy::{scoped_policy, SCOPE_LABEL};
use crate::shows;
use phi_guard::verdict::Reason;

/// The denial is for `reason`, and the finding's message (not its fix, which names the object
/// to change in any case) names `object`: what phi-guard read, or looked for and did not see.
fn assert_finding_names(err: &str, reason: Reason, object: &str) {
    assert!(shows(err, reason), "no {} finding:\n{err}", reason.as_str());
    let tag = format!("[{}/{}]", reason.rule().as_str(), reason.as_str());
    let named = err.match_indices(&tag).any(|(at, _)| {
        let finding = &err[at..];
        let message = finding.split(" Fix: ").next().unwrap_or_default();
        message.contains(object)
    });
    assert!(named, "the finding should name {object}:\n{err}");
}

/// A policy scoped to `key` that judges only encryption in transit, accepting `evidence`.
fn transit_policy(name: &str, key: &str, evidence: &str) -> String {
    scoped_policy(name, key, "Enforce")
        + &format!(
            "  encryptionAtRest: {{enabled: false}}\n  networkSegmentation: {{enabled: false}}\n  \
             auditSidecar: {{enabled: false}}\n  encryptionInTransit:\n    \
             acceptedEvidence: [IstioSidecar, Linkerd, AppTls, {evidence}]\n"
        )
}

fn apply_policy(ctx: &Ctx, name: &str, key: &str, evidence: &str) {
    kubectl_ok(&["apply"], &transit_policy(name, key, evidence));
    ctx.cleanup("phipolicy", name);
    let wait = kubectl(
        &[
            "wait",
            "--for=condition=WebhookScope",
            &format!("phipolicy/{name}"),
            "--timeout=30s",
        ],
        None,
    );
    assert!(wait.ok, "policy {name} never covered: {}", wait.stderr);
}

/// Deletes a namespaced object when the test ends (pass or fail).
pub(crate) struct Remove(
    pub(crate) &'static str,
    pub(crate) &'static str,
    pub(crate) &'static str,
);

impl Drop for Remove {
    fn drop(&mut self) {
        let _ = kubectl(
            &["delete", self.0, self.2, "-n", self.1, "--ignore-not-found"],
            None,
        );
    }
}

pub(crate) fn cilium_config(wireguard: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: cilium-config
  namespace: kube-system
data:
  cluster-name: default
  enable-ipv4: "true"
  enable-wireguard: "{wireguard}"
"#
    )
}

#[tokio::test]
async fn cilium_wireguard_admits_unmeshed_phi_pods_only_while_on() {
    let key = unique("cilium");
    let ctx = Ctx::exclusive("cilium", &[(SCOPE_LABEL, &key)]).await;
    let _cm = Remove("configmap", "kube-system", "cilium-config");
    let _ = kubectl(
        &[
            "delete",
            "configmap",
            "cilium-config",
            "-n",
            "kube-system",
            "--ignore-not-found",
        ],
        None,
    );
    let policy = unique("e2e-cilium");
    apply_policy(&ctx, &policy, &key, "CiliumEncryption");

    // No mesh, no TLS, no Cilium: denied, and the denial says what was looked for.
    let app = App::bare(&ctx.ns, "intake-api").without_phi_label();
    let err = rejects_eventually(&["--dry-run=server"], &app.deployment(), CACHE).await;
    assert_finding_names(
        &err,
        Reason::NoTransitEvidence,
        "ConfigMap kube-system/cilium-config",
    );

    // Cilium encrypts with WireGuard: admitted.
    kubectl_ok(&["apply"], &cilium_config("true"));
    accepts_eventually(&app.deployment(), CACHE).await;

    // Switched off: a new Deployment is denied again, naming the setting.
    kubectl_ok(&["apply"], &cilium_config("false"));
    let second = App::bare(&ctx.ns, "intake-api-2").without_phi_label();
    let err = rejects_eventually(&["--dry-run=server"], &second.deployment(), CACHE).await;
    assert_finding_names(
        &err,
        Reason::NoTransitEvidence,
        "ConfigMap kube-system/cilium-config",
    );
}

const FELIX_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: felixconfigurations.crd.projectcalico.org
spec:
  group: crd.projectcalico.org
  names:
    kind: FelixConfiguration
    listKind: FelixConfigurationList
    plural: felixconfigurations
    singular: felixconfiguration
  scope: Cluster
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              x-kubernetes-preserve-unknown-fields: true
"#;

fn felix(wireguard: bool) -> String {
    format!(
        r#"apiVersion: crd.projectcalico.org/v1
kind: FelixConfiguration
metadata:
  name: default
spec:
  bpfEnabled: false
  logSeverityScreen: Info
  wireguardEnabled: {wireguard}
"#
    )
}

#[tokio::test]
async fn calico_wireguard_is_read_from_felix_configuration_once_its_crd_exists() {
    let key = unique("calico");
    let ctx = Ctx::exclusive("calico", &[(SCOPE_LABEL, &key)]).await;
    ctx.cleanup("crd", "felixconfigurations.crd.projectcalico.org");
    let policy = unique("e2e-calico");
    apply_policy(&ctx, &policy, &key, "CalicoWireGuard");

    // Without Calico's CRD: denied (phi-guard stays ready: the CRD is optional).
    let app = App::bare(&ctx.ns, "claims-api").without_phi_label();
    let err = rejects_eventually(&["--dry-run=server"], &app.deployment(), CACHE).await;
    assert_finding_names(
        &err,
        Reason::NoTransitEvidence,
        "FelixConfiguration default",
    );

    kubectl_ok(&["apply"], FELIX_CRD);
    let established = kubectl(
        &[
            "wait",
            "--for=condition=Established",
            "crd/felixconfigurations.crd.projectcalico.org",
            "--timeout=30s",
        ],
        None,
    );
    assert!(established.ok, "{}", established.stderr);
    kubectl_ok(&["apply"], &felix(true));
    accepts_eventually(&app.deployment(), CACHE).await;

    kubectl_ok(&["apply"], &felix(false));
    let second = App::bare(&ctx.ns, "claims-api-2").without_phi_label();
    let err = rejects_eventually(&["--dry-run=server"], &second.deployment(), CACHE).await;
    assert_finding_names(
        &err,
        Reason::NoTransitEvidence,
        "FelixConfiguration default",
    );
}

fn nginx_config(ssl_redirect: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: ingress-nginx-controller
  namespace: ingress-nginx
data:
  allow-snippet-annotations: "false"
  ssl-redirect: "{ssl_redirect}"
"#
    )
}

fn tls_ingress(ns: &str, name: &str, annotations: &str) -> String {
    format!(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  namespace: {ns}
  annotations: {{{annotations}}}
spec:
  ingressClassName: nginx
  tls:
    - hosts: [records.hospital.example]
      secretName: records-tls
  rules:
    - host: records.hospital.example
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: records
                port:
                  number: 443
"#
    )
}

/// ingress-nginx's global redirect, read from ConfigMap ingress-nginx/ingress-nginx-controller:
/// a PHI Ingress with TLS and no annotation of its own is admitted on the controller's
/// defaults, refused once the ConfigMap turns the redirect off, and admitted again when it
/// forces its own redirect.
#[tokio::test]
async fn ingress_nginx_global_ssl_redirect_is_read_from_its_config_map() {
    let key = unique("nginx");
    let ctx = Ctx::exclusive("nginx", &[(SCOPE_LABEL, &key)]).await;
    let _ = kubectl(&["create", "namespace", "ingress-nginx"], None);
    let _cm = Remove("configmap", "ingress-nginx", "ingress-nginx-controller");
    let _ = kubectl(
        &[
            "delete",
            "configmap",
            "ingress-nginx-controller",
            "-n",
            "ingress-nginx",
            "--ignore-not-found",
        ],
        None,
    );
    let policy = unique("e2e-nginx");
    apply_policy(&ctx, &policy, &key, "IstioAmbient");

    // No ConfigMap: ingress-nginx's defaults (redirect on).
    accepts_eventually(&tls_ingress(&ctx.ns, "records", ""), CACHE).await;

    kubectl_ok(&["apply"], &nginx_config("false"));
    let err = rejects_eventually(
        &["--dry-run=server"],
        &tls_ingress(&ctx.ns, "records-2", ""),
        CACHE,
    )
    .await;
    assert_finding_names(
        &err,
        Reason::IngressSslRedirectOff,
        "ConfigMap ingress-nginx/ingress-nginx-controller",
    );

    // The Ingress's own annotation wins over the ConfigMap.
    accepts_eventually(
        &tls_ingress(
            &ctx.ns,
            "records-3",
            r#""nginx.ingress.kubernetes.io/force-ssl-redirect": "true""#,
        ),
        CACHE,
    )
    .await;
}
