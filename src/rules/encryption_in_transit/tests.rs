use super::*;
use crate::cluster::ClusterState;
use crate::fixtures::{
    self, add_peer_authentication, assert_names, assert_no_value, labels, names,
    peer_authentication, PHI,
};
use crate::object::Kind;
use crate::policy::{EncryptionInTransitSpec, Mode, Policy};
use crate::verdict::RuleId;
use crate::view::CertificateInfo;
use serde_json::{json, Value};

const NS: &str = "phi";

fn policy_with(f: impl FnOnce(&mut EncryptionInTransitSpec)) -> Policy {
    fixtures::policy_with(|s| f(&mut s.encryption_in_transit))
}

fn state_with_ns(ns_labels: Value, ns_annotations: Value) -> ClusterState {
    let s = ClusterState::new();
    fixtures::add_namespace(&s, NS, ns_labels, ns_annotations);
    s
}

fn mesh_strict(s: &ClusterState) {
    add_peer_authentication(
        s,
        peer_authentication(
            "istio-system",
            "default",
            json!({ "mtls": { "mode": "STRICT" } }),
        ),
    );
}

/// A PHI Pod with extra labels, annotations and spec fields merged in.
fn pod(extra_labels: Value, annotations: Value, spec: Value) -> Object {
    let mut l = json!({ "app": "api", PHI.0: PHI.1 });
    if let (Some(l), Some(e)) = (l.as_object_mut(), extra_labels.as_object()) {
        l.extend(e.clone());
    }
    let mut sp = json!({ "containers": [{ "name": "app", "image": "app:1", "ports": [{ "name": "https", "containerPort": 8080 }] }] });
    if let (Some(sp), Some(e)) = (sp.as_object_mut(), spec.as_object()) {
        sp.extend(e.clone());
    }
    let v = json!({ "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "api", "labels": l, "annotations": annotations }, "spec": sp });
    Object::from_value(Kind::Pod, &v, Some(NS)).expect("pod")
}

fn plain_pod() -> Object {
    pod(json!({}), json!({}), json!({}))
}

fn run_with(w: &Object, s: &ClusterState, p: &Policy) -> Vec<Finding> {
    let cfg = p.encryption_in_transit.as_ref().expect("enabled");
    fixtures::judge(w, s, p, |w, ctx| check(w, ctx, cfg))
}

fn run(w: &Object, s: &ClusterState) -> Vec<Finding> {
    run_with(w, s, &policy_with(|_| {}))
}

fn one(f: &[Finding]) -> &Finding {
    assert_eq!(f.len(), 1, "{f:#?}");
    &f[0]
}

#[test]
fn unmeshed_pod_gets_one_finding_listing_what_was_looked_for() {
    let s = state_with_ns(json!({}), json!({}));
    let f = run(&plain_pod(), &s);
    let f = one(&f);
    assert_eq!(f.rule, RuleId::EncryptionInTransit);
    assert_eq!(f.mode, Mode::Enforce);
    assert_eq!(f.path, "metadata");
    assert_eq!(f.reason, Reason::NoTransitEvidence);
    assert_names(&f.message, "phi/api");
}

#[test]
fn injection_without_strict_peer_authentication_is_not_enough() {
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    let f = run(&plain_pod(), &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    // The injection seen, and where a STRICT PeerAuthentication would apply.
    assert_names(&f[0].message, "istio-injection");
    assert_names(&f[0].remediation, "istio-system");
    assert_names(&f[0].remediation, NS);

    mesh_strict(&s);
    assert!(run(&plain_pod(), &s).is_empty());

    // Without the STRICT requirement the injection label alone counts.
    let s = state_with_ns(json!({ "istio.io/rev": "1-24" }), json!({}));
    let lenient = policy_with(|c| c.require_strict_peer_authentication = false);
    assert!(run_with(&plain_pod(), &s, &lenient).is_empty());
    assert_eq!(run(&plain_pod(), &s).len(), 1);
}

#[test]
fn mesh_root_namespace_is_configurable() {
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    add_peer_authentication(
        &s,
        peer_authentication(
            "istio-config",
            "default",
            json!({ "mtls": { "mode": "STRICT" } }),
        ),
    );
    assert_eq!(run(&plain_pod(), &s).len(), 1);
    let p = policy_with(|c| c.istio_root_namespace = "istio-config".into());
    assert!(run_with(&plain_pod(), &s, &p).is_empty());
}

#[test]
fn peer_authentication_scopes_namespace_overrides_mesh_and_workload_overrides_namespace() {
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    mesh_strict(&s);
    add_peer_authentication(
        &s,
        peer_authentication(NS, "ns-wide", json!({ "mtls": { "mode": "PERMISSIVE" } })),
    );
    let f = run(&plain_pod(), &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "phi/ns-wide");
    assert_names(&f[0].message, "PERMISSIVE");

    // A workload policy for other pods changes nothing.
    add_peer_authentication(
        &s,
        peer_authentication(
            NS,
            "other",
            json!({ "selector": { "matchLabels": { "app": "other" } }, "mtls": { "mode": "STRICT" } }),
        ),
    );
    assert_eq!(run(&plain_pod(), &s).len(), 1);

    add_peer_authentication(
        &s,
        peer_authentication(
            NS,
            "api",
            json!({ "selector": { "matchLabels": { "app": "api" } }, "mtls": { "mode": "STRICT" } }),
        ),
    );
    assert!(run(&plain_pod(), &s).is_empty());

    // ...and a workload DISABLE beats a STRICT namespace.
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    add_peer_authentication(
        &s,
        peer_authentication(NS, "ns-wide", json!({ "mtls": { "mode": "STRICT" } })),
    );
    add_peer_authentication(
        &s,
        peer_authentication(
            NS,
            "api",
            json!({ "selector": { "matchLabels": { "app": "api" } }, "mtls": { "mode": "DISABLE" } }),
        ),
    );
    let f = run(&plain_pod(), &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "DISABLE");
    assert!(!names(&f[0].message, "phi/ns-wide"), "{}", f[0].message);
}

#[test]
fn unset_inherits_from_the_next_level() {
    // Workload UNSET -> namespace STRICT.
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    add_peer_authentication(
        &s,
        peer_authentication(NS, "ns-wide", json!({ "mtls": { "mode": "STRICT" } })),
    );
    add_peer_authentication(
        &s,
        peer_authentication(
            NS,
            "api",
            json!({ "selector": { "matchLabels": { "app": "api" } }, "mtls": { "mode": "UNSET" } }),
        ),
    );
    assert!(run(&plain_pod(), &s).is_empty());

    // Namespace UNSET (no mtls at all) -> mesh PERMISSIVE.
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    add_peer_authentication(
        &s,
        peer_authentication(
            "istio-system",
            "default",
            json!({ "mtls": { "mode": "PERMISSIVE" } }),
        ),
    );
    add_peer_authentication(&s, peer_authentication(NS, "ns-wide", json!({})));
    let f = run(&plain_pod(), &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    for named in ["PERMISSIVE", "istio-system/default", "phi/ns-wide", "UNSET"] {
        assert_names(&f[0].message, named);
    }

    // Namespace UNSET -> mesh STRICT.
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    mesh_strict(&s);
    add_peer_authentication(
        &s,
        peer_authentication(NS, "ns-wide", json!({ "mtls": { "mode": "UNSET" } })),
    );
    assert!(run(&plain_pod(), &s).is_empty());

    // Mesh UNSET -> PERMISSIVE.
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    add_peer_authentication(
        &s,
        peer_authentication(
            "istio-system",
            "default",
            json!({ "mtls": { "mode": "UNSET" } }),
        ),
    );
    assert_eq!(run(&plain_pod(), &s).len(), 1);
}

#[test]
fn port_level_override_on_a_pod_port_breaks_strict() {
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    add_peer_authentication(
        &s,
        peer_authentication(
            NS,
            "api",
            json!({
                "selector": { "matchLabels": { "app": "api" } },
                "mtls": { "mode": "STRICT" },
                "portLevelMtls": { "8080": { "mode": "PERMISSIVE" }, "9443": { "mode": "STRICT" } },
            }),
        ),
    );
    let f = run(&plain_pod(), &s);
    let f = one(&f);
    assert_eq!(f.reason, Reason::NoTransitEvidence);
    for named in ["portLevelMtls", "PERMISSIVE", "8080"] {
        assert_names(&f.message, named);
    }
    assert_names(&f.remediation, "8080");
    assert_names(&f.remediation, "phi/api");

    // Same policy, pod listening elsewhere: fine.
    let other_port = pod(
        json!({}),
        json!({}),
        json!({ "containers": [{ "name": "app", "ports": [{ "containerPort": 9443 }] }] }),
    );
    assert!(run(&other_port, &s).is_empty());

    // Port-level settings of a namespace-wide policy are ignored, as in Istio.
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    add_peer_authentication(
        &s,
        peer_authentication(
            NS,
            "ns-wide",
            json!({ "mtls": { "mode": "STRICT" }, "portLevelMtls": { "8080": { "mode": "DISABLE" } } }),
        ),
    );
    assert!(run(&plain_pod(), &s).is_empty());
}

#[test]
fn sidecar_opt_outs_and_injected_containers() {
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    mesh_strict(&s);
    let opted_out = pod(
        json!({ "sidecar.istio.io/inject": "false" }),
        json!({}),
        json!({}),
    );
    let f = run(&opted_out, &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "sidecar.istio.io/inject");

    let s = state_with_ns(json!({ "istio-injection": "disabled" }), json!({}));
    mesh_strict(&s);
    let asks = pod(
        json!({ "sidecar.istio.io/inject": "true" }),
        json!({}),
        json!({}),
    );
    assert_eq!(run(&asks, &s).len(), 1, "a disabled namespace wins");

    let s = state_with_ns(json!({}), json!({}));
    mesh_strict(&s);
    assert!(run(&asks, &s).is_empty(), "pod label enables injection");
    let injected = pod(
        json!({}),
        json!({}),
        json!({ "containers": [{ "name": "app" }, { "name": "istio-proxy" }] }),
    );
    assert!(run(&injected, &s).is_empty());
    let native = pod(
        json!({}),
        json!({}),
        json!({ "initContainers": [{ "name": "istio-proxy", "restartPolicy": "Always" }] }),
    );
    assert!(run(&native, &s).is_empty());
    let plain_init = pod(
        json!({}),
        json!({}),
        json!({ "initContainers": [{ "name": "istio-proxy" }] }),
    );
    assert_eq!(
        run(&plain_init, &s).len(),
        1,
        "an init container that exits is no sidecar"
    );
}

#[test]
fn ambient_mode_and_its_opt_out() {
    let s = state_with_ns(json!({ "istio.io/dataplane-mode": "ambient" }), json!({}));
    mesh_strict(&s);
    assert!(run(&plain_pod(), &s).is_empty());
    let out = pod(
        json!({ "istio.io/dataplane-mode": "none" }),
        json!({}),
        json!({}),
    );
    let f = run(&out, &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "istio.io/dataplane-mode");

    let s = state_with_ns(json!({}), json!({}));
    let pod_ambient = pod(
        json!({ "istio.io/dataplane-mode": "ambient" }),
        json!({}),
        json!({}),
    );
    let f = run(&pod_ambient, &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "istio.io/dataplane-mode");
    mesh_strict(&s);
    assert!(run(&pod_ambient, &s).is_empty());

    let only_sidecar = policy_with(|c| c.accepted_evidence = vec![TransitEvidence::IstioSidecar]);
    assert_eq!(run_with(&pod_ambient, &s, &only_sidecar).len(), 1);
}

#[test]
fn linkerd_inbound_policy_precedence() {
    // Namespace injection, Linkerd's own default (all-unauthenticated): not accepted.
    let s = state_with_ns(json!({}), json!({ "linkerd.io/inject": "enabled" }));
    let f = run(&plain_pod(), &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "linkerd.io/inject");
    assert_names(&f[0].message, "all-unauthenticated");

    let cluster_auth =
        policy_with(|c| c.linkerd_cluster_default_inbound_policy = "cluster-authenticated".into());
    assert!(run_with(&plain_pod(), &s, &cluster_auth).is_empty());

    // Namespace annotation beats the cluster default.
    let s = state_with_ns(
        json!({}),
        json!({ "linkerd.io/inject": "enabled", LINKERD_INBOUND_POLICY: "all-authenticated" }),
    );
    assert!(run(&plain_pod(), &s).is_empty());

    // Pod annotation beats the namespace.
    let weak = pod(
        json!({}),
        json!({ LINKERD_INBOUND_POLICY: "all-unauthenticated" }),
        json!({}),
    );
    let f = run(&weak, &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "all-unauthenticated");
    let strong = pod(
        json!({}),
        json!({ "linkerd.io/inject": "enabled", LINKERD_INBOUND_POLICY: "deny" }),
        json!({}),
    );
    let s2 = state_with_ns(
        json!({}),
        json!({ LINKERD_INBOUND_POLICY: "all-unauthenticated" }),
    );
    assert!(run(&strong, &s2).is_empty());

    // An injected proxy container counts as injection; odd values are not echoed.
    let odd = pod(
        json!({}),
        json!({ LINKERD_INBOUND_POLICY: "patient-42" }),
        json!({ "containers": [{ "name": "app" }, { "name": "linkerd-proxy" }] }),
    );
    let f = run(&odd, &s2);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "linkerd-proxy");
    assert_no_value(&f[0].message, "patient-42");

    // Pod opt-out.
    let s = state_with_ns(
        json!({}),
        json!({ "linkerd.io/inject": "enabled", LINKERD_INBOUND_POLICY: "all-authenticated" }),
    );
    let off = pod(
        json!({}),
        json!({ "linkerd.io/inject": "disabled" }),
        json!({}),
    );
    let f = run(&off, &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "linkerd.io/inject");
}

#[test]
fn cert_manager_tls_material_is_app_level_evidence() {
    let s = state_with_ns(json!({}), json!({}));
    s.certificates.insert(
        NS.into(),
        "api-cert".into(),
        CertificateInfo {
            namespace: NS.into(),
            name: "api-cert".into(),
            secret_name: "api-tls".into(),
        },
    );
    let mounts =
        json!([{ "name": "app", "volumeMounts": [{ "name": "tls", "mountPath": "/tls" }] }]);
    let csi = pod(
        json!({}),
        json!({}),
        json!({ "containers": mounts, "volumes": [{ "name": "tls", "csi": { "driver": "csi.cert-manager.io" } }] }),
    );
    assert!(run(&csi, &s).is_empty());
    let issued = pod(
        json!({}),
        json!({}),
        json!({ "containers": mounts, "volumes": [{ "name": "tls", "secret": { "secretName": "api-tls" } }] }),
    );
    assert!(run(&issued, &s).is_empty());
    let projected = pod(
        json!({}),
        json!({}),
        json!({ "containers": mounts, "volumes": [{ "name": "tls", "projected": { "sources": [{ "secret": { "name": "api-tls" } }] } }] }),
    );
    assert!(run(&projected, &s).is_empty());

    let hand_made = pod(
        json!({}),
        json!({}),
        json!({ "containers": mounts, "volumes": [{ "name": "tls", "secret": { "secretName": "db-password" } }] }),
    );
    let f = run(&hand_made, &s);
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "db-password");

    let unmounted = pod(
        json!({}),
        json!({}),
        json!({ "volumes": [{ "name": "tls", "secret": { "secretName": "api-tls" } }] }),
    );
    assert_eq!(run(&unmounted, &s).len(), 1, "declared but not mounted");

    let mesh_only = policy_with(|c| {
        c.accepted_evidence = vec![TransitEvidence::IstioSidecar, TransitEvidence::Linkerd]
    });
    // The cert-manager volume that satisfies AppTls above is no evidence when AppTls is not
    // accepted.
    let f = run_with(&csi, &s, &mesh_only);
    assert_eq!(
        one(&f).reason,
        Reason::NoTransitEvidence,
        "AppTls not looked for"
    );
}

#[test]
fn mesh_bypass_annotations_are_findings_without_values() {
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    mesh_strict(&s);
    let v = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "api" },
        "spec": { "template": {
            "metadata": { "labels": { PHI.0: PHI.1 }, "annotations": {
                "traffic.sidecar.istio.io/excludeOutboundIPRanges": "10.99.0.0/16",
                "config.linkerd.io/skip-inbound-ports": "5432",
                "traffic.sidecar.istio.io/excludeInboundPorts": " ",
                "prometheus.io/port": "9090",
            } },
            "spec": { "containers": [{ "name": "app" }] },
        } },
    });
    let w = Object::from_value(Kind::Deployment, &v, Some(NS)).expect("deployment");
    let f = run(&w, &s);
    let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, [
        "spec.template.metadata.annotations[\"traffic.sidecar.istio.io/excludeOutboundIPRanges\"]",
        "spec.template.metadata.annotations[\"config.linkerd.io/skip-inbound-ports\"]",
    ]);
    for x in &f {
        assert_eq!(x.reason, Reason::MeshBypassAnnotation);
        for text in [&x.message, &x.remediation] {
            assert_no_value(text, "10.99");
            assert_no_value(text, "5432");
        }
    }
    let allowed = policy_with(|c| c.forbid_mesh_bypass = false);
    assert!(run_with(&w, &s, &allowed).is_empty());
}

#[test]
fn cronjob_finding_points_at_the_job_template_metadata() {
    let s = state_with_ns(json!({}), json!({}));
    let v = json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "export" },
        "spec": { "jobTemplate": { "spec": { "template": {
            "metadata": { "labels": { PHI.0: PHI.1, "sidecar.istio.io/inject": "true" } },
            "spec": { "containers": [{ "name": "job" }] },
        } } } },
    });
    let w = Object::from_value(Kind::CronJob, &v, Some(NS)).expect("cronjob");
    let f = run(&w, &s);
    assert_eq!(one(&f).path, "spec.jobTemplate.spec.template.metadata");
    assert_eq!(f[0].reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "phi/export");
    mesh_strict(&s);
    assert!(run(&w, &s).is_empty());
}

fn ingress(spec: Value) -> Object {
    let v = json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": { "name": "web" }, "spec": spec });
    Object::from_value(Kind::Ingress, &v, Some(NS)).expect("ingress")
}

fn rule(host: Option<&str>) -> Value {
    let mut r = json!({ "http": { "paths": [{ "path": "/", "pathType": "Prefix",
        "backend": { "service": { "name": "api", "port": { "number": 443 } } } }] } });
    if let Some(h) = host {
        r["host"] = json!(h);
    }
    r
}

#[test]
fn ingress_hosts_must_be_covered_by_tls_with_a_secret() {
    let s = state_with_ns(json!({}), json!({}));
    let f = run(
        &ingress(json!({ "rules": [rule(Some("a.example.com"))] })),
        &s,
    );
    let f0 = one(&f);
    assert_eq!(f0.path, "spec.tls");
    assert_eq!(f0.reason, Reason::IngressWithoutTls);
    assert_names(&f0.message, "a.example.com");

    let ok = ingress(json!({
        "rules": [rule(Some("a.example.com")), rule(Some("B.example.org"))],
        "tls": [{ "hosts": ["*.example.com"], "secretName": "wild" }, { "hosts": ["b.example.org"], "secretName": "b" }],
    }));
    assert!(run(&ok, &s).is_empty());

    let bad = ingress(json!({
        "rules": [rule(Some("a.b.example.com")), rule(Some("example.com")), rule(Some("c.example.net")), rule(None), rule(Some("d.example.io"))],
        "tls": [{ "hosts": ["*.example.com"], "secretName": "wild" }, { "hosts": ["c.example.net"] }],
    }));
    let f = run(&bad, &s);
    let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.rules[0].host",
            "spec.rules[1].host",
            "spec.rules[2].host",
            "spec.rules[3]",
            "spec.rules[4].host"
        ],
        "{f:#?}"
    );
    // A wildcard covers one label only.
    assert_eq!(
        f[0].reason,
        Reason::IngressHostNotCovered,
        "{}",
        f[0].message
    );
    assert_names(&f[0].message, "a.b.example.com");
    assert_eq!(
        f[1].reason,
        crate::verdict::Reason::IngressHostNotCovered,
        "{}",
        f[1].message
    );
    assert_eq!(
        f[2].reason,
        Reason::IngressTlsWithoutSecret,
        "{}",
        f[2].message
    );
    assert_names(&f[2].message, "spec.tls[1]");
    assert_names(&f[2].remediation, "spec.tls[1].secretName");
    assert_eq!(
        f[3].reason,
        crate::verdict::Reason::IngressRuleWithoutHost,
        "{}",
        f[3].message
    );

    let off = policy_with(|c| c.require_ingress_tls = false);
    assert!(run_with(&bad, &s, &off).is_empty());
}

#[test]
fn ingress_default_backend_to_phi_pods_is_a_catch_all() {
    let s = state_with_ns(json!({}), json!({}));
    s.services.insert(
        NS.into(),
        "api".into(),
        ServiceInfo {
            namespace: NS.into(),
            name: "api".into(),
            selector: Some(labels(json!({ "app": "api" }))),
            ports: vec![],
            ..ServiceInfo::default()
        },
    );
    s.services.insert(
        NS.into(),
        "404".into(),
        ServiceInfo {
            namespace: NS.into(),
            name: "404".into(),
            selector: Some(labels(json!({ "app": "404" }))),
            ports: vec![],
            ..ServiceInfo::default()
        },
    );
    s.pods.insert(
        NS.into(),
        "api".into(),
        PodInfo {
            namespace: NS.into(),
            name: "api".into(),
            labels: labels(json!({ "app": "api", PHI.0: PHI.1 })),
            ..Default::default()
        },
    );
    s.pods.insert(
        NS.into(),
        "404".into(),
        PodInfo {
            namespace: NS.into(),
            name: "404".into(),
            labels: labels(json!({ "app": "404" })),
            ..Default::default()
        },
    );
    let tls = json!([{ "hosts": ["a.example.com"], "secretName": "a" }]);
    let to_phi = ingress(
        json!({ "defaultBackend": { "service": { "name": "api", "port": { "number": 80 } } }, "rules": [rule(Some("a.example.com"))], "tls": tls }),
    );
    assert_eq!(one(&run(&to_phi, &s)).path, "spec.defaultBackend");
    let to_404 = ingress(
        json!({ "defaultBackend": { "service": { "name": "404", "port": { "number": 80 } } }, "rules": [rule(Some("a.example.com"))], "tls": tls }),
    );
    assert!(run(&to_404, &s).is_empty());
}

fn service(svc_labels: Value, ports: Value) -> Object {
    let v = json!({ "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "api", "labels": svc_labels },
        "spec": { "selector": { "app": "api" }, "ports": ports } });
    Object::from_value(Kind::Service, &v, Some(NS)).expect("service")
}

fn add_pod(
    s: &ClusterState,
    name: &str,
    pod_labels: Value,
    annotations: Value,
    containers: &[&str],
) {
    s.pods.insert(
        NS.into(),
        name.into(),
        PodInfo {
            namespace: NS.into(),
            name: name.into(),
            labels: labels(pod_labels),
            annotations: labels(annotations),
            container_names: containers.iter().map(|c| c.to_string()).collect(),
            ..Default::default()
        },
    );
}

fn ports() -> Value {
    json!([
        { "name": "http", "port": 80 },
        { "name": "web", "port": 8443, "appProtocol": "HTTPS" },
        { "name": "tls-db", "port": 5432 },
        { "port": 9000 },
        { "name": "grpcs", "port": 9443 },
        { "name": "metrics", "port": 9090, "appProtocol": "http" },
    ])
}

#[test]
fn service_plaintext_ports_to_unmeshed_phi_pods() {
    let s = state_with_ns(json!({}), json!({}));
    add_pod(
        &s,
        "deployment/api",
        json!({ "app": "api", PHI.0: PHI.1 }),
        json!({}),
        &["app"],
    );
    let f = run(&service(json!({}), ports()), &s);
    let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["spec.ports[0]", "spec.ports[3]", "spec.ports[5]"],
        "{f:#?}"
    );
    assert!(
        f.iter().all(|f| f.reason == Reason::PlaintextServicePort),
        "{f:#?}"
    );
    for named in ["api", "http", "80", "deployment/api"] {
        assert_names(&f[0].message, named);
    }
    assert_names(&f[1].message, "9000");
    assert_eq!(
        f[2].reason,
        crate::verdict::Reason::PlaintextServicePort,
        "{}",
        f[2].message
    );
    assert_names(&f[0].remediation, "appProtocol");
    assert_names(&f[0].remediation, "80");

    let off = policy_with(|c| c.forbid_plaintext_service_ports = false);
    assert!(run_with(&service(json!({}), ports()), &s, &off).is_empty());
}

#[test]
fn service_ports_are_fine_when_the_phi_pods_are_meshed_or_not_phi() {
    // Not PHI pods, Service not labeled: nothing to protect.
    let s = state_with_ns(json!({}), json!({}));
    add_pod(
        &s,
        "deployment/api",
        json!({ "app": "api" }),
        json!({}),
        &["app"],
    );
    assert!(run(&service(json!({}), ports()), &s).is_empty());
    // The Service itself labeled PHI makes its pods' traffic PHI.
    assert_eq!(run(&service(json!({ PHI.0: PHI.1 }), ports()), &s).len(), 3);

    // Istio-injected PHI pods with a STRICT mesh.
    let s = state_with_ns(json!({}), json!({}));
    add_pod(
        &s,
        "api-1",
        json!({ "app": "api", PHI.0: PHI.1 }),
        json!({}),
        &["app", "istio-proxy"],
    );
    assert_eq!(
        run(&service(json!({}), ports()), &s).len(),
        3,
        "sidecar without STRICT"
    );
    mesh_strict(&s);
    assert!(run(&service(json!({}), ports()), &s).is_empty());

    // Linkerd-annotated PHI pods with an authenticated inbound policy.
    let s = state_with_ns(json!({ PHI.0: PHI.1 }), json!({}));
    add_pod(
        &s,
        "api-1",
        json!({ "app": "api" }),
        json!({ "linkerd.io/inject": "enabled", LINKERD_INBOUND_POLICY: "all-authenticated" }),
        &["app"],
    );
    assert!(run(&service(json!({}), ports()), &s).is_empty());
    // One unmeshed pod among meshed ones is enough.
    add_pod(&s, "api-2", json!({ "app": "api" }), json!({}), &["app"]);
    let f = run(&service(json!({}), ports()), &s);
    assert_eq!(f.len(), 3);
    assert_names(&f[0].message, "api-2");
    assert!(!names(&f[0].message, "api-1"), "{}", f[0].message);
}

/// One truth about port names (module docs): a TLS-named port satisfies the Service check, and
/// it never proves anything for the pods behind it, which are judged on their own evidence.
#[test]
fn a_tls_port_name_declares_the_port_but_never_proves_the_pods() {
    let s = state_with_ns(json!({}), json!({}));
    add_pod(
        &s,
        "deployment/api",
        json!({ "app": "api", PHI.0: PHI.1 }),
        json!({}),
        &["app"],
    );
    let https_named = json!([{ "name": "https-api", "port": 443 }]);
    assert!(run(&service(json!({}), https_named), &s).is_empty());
    // The pod behind it (no mesh, no mounted TLS material) is still a finding, whatever the
    // Service's port names say.
    let f = run(&plain_pod(), &s);
    assert!(!f.is_empty(), "the unmeshed pod was accepted");
    assert!(f.iter().all(|f| f.rule == RuleId::EncryptionInTransit));
}

/// Meshes do not inject or capture host-network pods, so mesh labels and a
/// STRICT PeerAuthentication are not evidence for them; their own TLS still is.
#[test]
fn host_network_pods_get_no_mesh_credit() {
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    mesh_strict(&s);
    assert!(run(&plain_pod(), &s).is_empty());
    let host = pod(json!({}), json!({}), json!({ "hostNetwork": true }));
    let f = run(&host, &s);
    let f = one(&f);
    assert_eq!(f.rule, RuleId::EncryptionInTransit);
    assert_eq!(f.path, "metadata");
    assert_eq!(f.reason, Reason::NoTransitEvidence);
    assert_names(&f.message, "spec.hostNetwork");
    assert_names(&f.remediation, "hostNetwork");
    // App TLS still counts.
    let mounts =
        json!([{ "name": "app", "volumeMounts": [{ "name": "tls", "mountPath": "/tls" }] }]);
    let tls = pod(
        json!({}),
        json!({}),
        json!({ "hostNetwork": true, "containers": mounts,
                "volumes": [{ "name": "tls", "csi": { "driver": "csi.cert-manager.io" } }] }),
    );
    assert!(run(&tls, &s).is_empty());
    // A Service in front of running host-network PHI pods is judged as in front of unmeshed pods.
    s.pods.insert(
        NS.into(),
        "agent-1".into(),
        PodInfo {
            namespace: NS.into(),
            name: "agent-1".into(),
            labels: labels(json!({ "app": "agent", PHI.0: PHI.1 })),
            host_network: true,
            ..Default::default()
        },
    );
    let svc = fixtures::object(
        Kind::Service,
        Some(NS),
        json!({ "metadata": { "name": "agent" },
                "spec": { "selector": { "app": "agent" }, "ports": [{ "name": "http", "port": 80 }] } }),
    );
    let f = run(&svc, &s);
    assert_eq!(one(&f).path, "spec.ports[0]");
}

fn annotated_ingress(annotations: Value, spec: Value) -> Object {
    let v = json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": { "name": "web", "annotations": annotations }, "spec": spec });
    Object::from_value(Kind::Ingress, &v, Some(NS)).expect("ingress")
}

/// TLS configured but ingress-nginx told not to redirect plain HTTP: plain HTTP is still served.
#[test]
fn ingress_nginx_ssl_redirect_off_serves_plain_http() {
    let s = state_with_ns(json!({}), json!({}));
    let spec = json!({ "rules": [rule(Some("a.example.com"))],
                       "tls": [{ "hosts": ["a.example.com"], "secretName": "a" }] });
    let key = "nginx.ingress.kubernetes.io/ssl-redirect";
    let force = "nginx.ingress.kubernetes.io/force-ssl-redirect";
    for off in ["false", "False", "0", "f"] {
        let f = run(&annotated_ingress(json!({ key: off }), spec.clone()), &s);
        let f = one(&f);
        assert_eq!(f.rule, RuleId::EncryptionInTransit);
        assert_eq!(
            f.path,
            "metadata.annotations[\"nginx.ingress.kubernetes.io/ssl-redirect\"]"
        );
        assert_eq!(f.reason, Reason::IngressSslRedirectOff);
        assert_names(&f.remediation, force);
    }
    // Redirect on (explicitly, by default, or by an invalid value ingress-nginx ignores), or
    // forced: nothing.
    for annotations in [
        json!({}),
        json!({ key: "true" }),
        json!({ key: "no" }),
        json!({ key: "false", force: "true" }),
    ] {
        assert!(
            run(&annotated_ingress(annotations.clone(), spec.clone()), &s).is_empty(),
            "{annotations}"
        );
    }
    // Without TLS the missing spec.tls is the one finding.
    let f = run(
        &annotated_ingress(
            json!({ key: "false" }),
            json!({ "rules": [rule(Some("a.example.com"))] }),
        ),
        &s,
    );
    assert_eq!(one(&f).path, "spec.tls");
}

/// ingress-nginx's controller ConfigMap sets the redirect for every Ingress without its own
/// annotation; an annotation wins over it, for either key, and an Ingress of another class is
/// not served by it.
#[test]
fn ingress_nginx_global_ssl_redirect_off_serves_plain_http() {
    let s = state_with_ns(json!({}), json!({}));
    let global = |pairs: &[(&str, &str)]| {
        let data = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let info = crate::view::platform::from_config_map(
            crate::view::PlatformSource::IngressNginx,
            &data,
        )
        .expect("config map");
        s.platform.insert("ingress-nginx".to_string(), info);
    };
    let spec = |class: Option<&str>| {
        let mut v = json!({ "rules": [rule(Some("a.example.com"))],
                            "tls": [{ "hosts": ["a.example.com"], "secretName": "a" }] });
        if let Some(c) = class {
            v["ingressClassName"] = json!(c);
        }
        v
    };
    let key = "nginx.ingress.kubernetes.io/ssl-redirect";
    let force = "nginx.ingress.kubernetes.io/force-ssl-redirect";
    // Unknown ConfigMap: the controller's defaults, redirect on.
    assert!(run(&annotated_ingress(json!({}), spec(None)), &s).is_empty());
    global(&[("ssl-redirect", "false")]);
    for (annotations, class) in [
        (json!({}), None),
        (json!({}), Some("nginx")),
        (json!({ key: "no" }), None), // not a boolean: the global decides
        (json!({ force: "false" }), None),
    ] {
        let f = run(&annotated_ingress(annotations.clone(), spec(class)), &s);
        let f = one(&f);
        assert_eq!(
            f.path, "metadata.annotations[\"nginx.ingress.kubernetes.io/force-ssl-redirect\"]",
            "{annotations}"
        );
        assert_eq!(f.reason, Reason::IngressSslRedirectOff, "{annotations}");
        assert_names(&f.message, "ingress-nginx/ingress-nginx-controller");
    }
    // The Ingress's own annotation wins; another controller's class is not ingress-nginx's.
    for (annotations, class) in [
        (json!({ key: "true" }), None),
        (json!({ force: "true" }), None),
        (json!({ "kubernetes.io/ingress.class": "traefik" }), None),
        (json!({}), Some("alb")),
    ] {
        assert!(
            run(&annotated_ingress(annotations.clone(), spec(class)), &s).is_empty(),
            "{annotations} {class:?}"
        );
    }
    // A forced global covers an Ingress that turns its own ssl-redirect off.
    global(&[("ssl-redirect", "false"), ("force-ssl-redirect", "true")]);
    assert!(run(&annotated_ingress(json!({ key: "false" }), spec(None)), &s).is_empty());
    // A global redirect does not undo the Ingress's own false annotation.
    global(&[("ssl-redirect", "true")]);
    let f = run(&annotated_ingress(json!({ key: "false" }), spec(None)), &s);
    assert_eq!(
        one(&f).path,
        "metadata.annotations[\"nginx.ingress.kubernetes.io/ssl-redirect\"]"
    );
}

/// A catch-all default backend behind an unknown Service fails closed, like a
/// host-less rule.
#[test]
fn ingress_default_backend_to_an_unknown_service_is_a_catch_all() {
    let s = state_with_ns(json!({}), json!({}));
    let w = ingress(json!({
        "defaultBackend": { "service": { "name": "records", "port": { "number": 80 } } },
        "rules": [rule(Some("a.example.com"))],
        "tls": [{ "hosts": ["a.example.com"], "secretName": "a" }],
    }));
    let f = run(&w, &s);
    let f = one(&f);
    assert_eq!(f.path, "spec.defaultBackend");
    assert_eq!(f.reason, Reason::IngressDefaultBackend);
    assert_names(&f.message, "records");
    assert_eq!(f.rule.citation(), "45 CFR 164.312(e)(1), (e)(2)(ii)");
}

fn annotated_service(annotations: Value, ports: Value) -> Object {
    let v = json!({ "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "db", "annotations": annotations },
        "spec": { "selector": { "app": "db" }, "ports": ports } });
    Object::from_value(Kind::Service, &v, Some(NS)).expect("service")
}

/// PostgreSQL negotiates TLS in-band; its port is accepted only with
/// `appProtocol: postgresql`, cert-manager TLS material in every pod, and the Service's
/// `phiguard.io/tls-required` attestation, on which phi-guard says it relies.
#[test]
fn in_band_tls_protocols_need_tls_material_and_the_attestation() {
    let s = state_with_ns(json!({}), json!({}));
    s.certificates.insert(
        NS.into(),
        "db-cert".into(),
        CertificateInfo {
            namespace: NS.into(),
            name: "db-cert".into(),
            secret_name: "db-tls".into(),
        },
    );
    let db_pod = |name: &str, secrets: &[&str]| {
        s.pods.insert(
            NS.into(),
            name.into(),
            PodInfo {
                namespace: NS.into(),
                name: name.into(),
                labels: labels(json!({ "app": "db", PHI.0: PHI.1 })),
                mounted_secrets: secrets.iter().map(|x| x.to_string()).collect(),
                ..Default::default()
            },
        )
    };
    db_pod("db-0", &["db-tls"]);
    let pg = json!([{ "name": "tcp-postgresql", "port": 5432, "appProtocol": "postgresql" }]);
    let attest = json!({ "phiguard.io/tls-required": "tcp-postgresql" });

    // All three: accepted.
    assert!(run(&annotated_service(attest.clone(), pg.clone()), &s).is_empty());
    // By port number, kubernetes.io/-prefixed protocol name, in a list.
    let ok = annotated_service(
        json!({ "phiguard.io/tls-required": "metrics, 3306" }),
        json!([{ "name": "mysql", "port": 3306, "appProtocol": "kubernetes.io/mysql" }]),
    );
    assert!(run(&ok, &s).is_empty());

    // No attestation.
    let f = run(&annotated_service(json!({}), pg.clone()), &s);
    let f = one(&f);
    assert_eq!(f.path, "spec.ports[0]");
    assert_eq!(f.rule.citation(), "45 CFR 164.312(e)(1), (e)(2)(ii)");
    assert_eq!(f.reason, Reason::PlaintextServicePort);
    // The in-band protocol and the missing attestation, which the fix spells out for this port.
    assert_names(&f.message, "postgresql");
    assert_names(&f.message, TLS_REQUIRED_ANNOTATION);
    assert_names(&f.remediation, TLS_REQUIRED_ANNOTATION);
    assert_names(&f.remediation, "tcp-postgresql");

    // Port name only (no appProtocol): the name proves nothing, attestation or not.
    let f = run(
        &annotated_service(
            attest.clone(),
            json!([{ "name": "tcp-postgresql", "port": 5432 }]),
        ),
        &s,
    );
    assert_eq!(one(&f).reason, Reason::PlaintextServicePort);
    assert_names(&f[0].message, "tcp");

    // A pod without issued TLS material.
    db_pod("db-1", &["db-password"]);
    let f = run(&annotated_service(attest.clone(), pg.clone()), &s);
    assert_eq!(one(&f).reason, Reason::PlaintextServicePort);
    assert_names(&f[0].message, "db-1");
    // Attestation values are never echoed beyond the port names of the spec.
    let f = run(
        &annotated_service(json!({ "phiguard.io/tls-required": "patient-4711" }), pg),
        &s,
    );
    assert_no_value(&one(&f).message, "4711");
}

/// Istio's injector reads `sidecar.istio.io/inject` from the label, else the annotation; only
/// y/yes/true/on inject; an opt-out by annotation in an injection namespace earns no mesh credit.
#[test]
fn istio_injection_is_read_as_the_injector_reads_it() {
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    mesh_strict(&s);
    assert!(
        run(&plain_pod(), &s).is_empty(),
        "injected by the namespace"
    );
    let switched_off = |labels: Value, annotations: Value| {
        let f = run(&pod(labels, annotations, json!({})), &s);
        f.len() == 1
            && f[0].reason == Reason::NoTransitEvidence
            && names(&f[0].message, ISTIO_INJECT)
    };
    // The annotation alone opts out (a PHI Job got mesh credit this way).
    assert!(switched_off(
        json!({}),
        json!({ "sidecar.istio.io/inject": "false" })
    ));
    // Any value the injector does not read as yes.
    assert!(switched_off(
        json!({ "sidecar.istio.io/inject": "no" }),
        json!({})
    ));
    assert!(switched_off(
        json!({}),
        json!({ "sidecar.istio.io/inject": "disabled" })
    ));
    // The label wins over the annotation, both ways.
    assert!(switched_off(
        json!({ "sidecar.istio.io/inject": "false" }),
        json!({ "sidecar.istio.io/inject": "true" })
    ));
    assert!(run(
        &pod(
            json!({ "sidecar.istio.io/inject": "true" }),
            json!({ "sidecar.istio.io/inject": "false" }),
            json!({})
        ),
        &s
    )
    .is_empty());
    assert!(run(
        &pod(
            json!({}),
            json!({ "sidecar.istio.io/inject": "YES" }),
            json!({})
        ),
        &s
    )
    .is_empty());
    // An opt-out value is not echoed unless it is one of the usual switches.
    let f = run(
        &pod(
            json!({}),
            json!({ "sidecar.istio.io/inject": "Zq7VALUE" }),
            json!({}),
        ),
        &s,
    );
    assert_no_value(&one(&f).message, "Zq7VALUE");
    // Host-network pods are never injected.
    let host = pod(json!({}), json!({}), json!({ "hostNetwork": true }));
    assert!(run(&host, &s)
        .iter()
        .any(|f| f.reason == Reason::NoTransitEvidence && names(&f.message, "spec.hostNetwork")));

    // Outside an injection namespace, the label calls the injector, the annotation does not.
    let plain = state_with_ns(json!({}), json!({}));
    mesh_strict(&plain);
    assert!(run(
        &pod(
            json!({ "sidecar.istio.io/inject": "true" }),
            json!({}),
            json!({})
        ),
        &plain
    )
    .is_empty());
    let f = run(
        &pod(
            json!({}),
            json!({ "sidecar.istio.io/inject": "true" }),
            json!({}),
        ),
        &plain,
    );
    // Seen and named, but not counted.
    assert_eq!(one(&f).reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, ISTIO_INJECT);
}

/// Traffic the sidecar or proxy does not capture stays plaintext.
#[test]
fn narrowed_inbound_capture_leaves_plaintext() {
    let s = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    mesh_strict(&s);
    let with = |annotations: Value| run(&pod(json!({}), annotations, json!({})), &s);
    // What is left plaintext names the annotation and, where it is about ports, the port.
    for (annotations, says) in [
        (
            json!({ "sidecar.istio.io/interceptionMode": "NONE" }),
            &["sidecar.istio.io/interceptionMode"][..],
        ),
        (
            json!({ "traffic.sidecar.istio.io/includeInboundPorts": "" }),
            &["traffic.sidecar.istio.io/includeInboundPorts"][..],
        ),
        (
            json!({ "traffic.sidecar.istio.io/includeInboundPorts": "9090,9443" }),
            &["traffic.sidecar.istio.io/includeInboundPorts", "8080"][..],
        ),
        (
            json!({ "traffic.sidecar.istio.io/excludeInboundPorts": "8000-8100" }),
            &["traffic.sidecar.istio.io/excludeInboundPorts", "8080"][..],
        ),
    ] {
        let f = with(annotations.clone());
        assert!(
            f.iter().any(|f| f.reason == Reason::NoTransitEvidence
                && says.iter().all(|id| names(&f.message, id))),
            "{annotations}: {f:#?}"
        );
    }
    for annotations in [
        json!({ "traffic.sidecar.istio.io/includeInboundPorts": "*" }),
        json!({ "traffic.sidecar.istio.io/includeInboundPorts": "8080" }),
        json!({ "sidecar.istio.io/interceptionMode": "REDIRECT" }),
    ] {
        assert!(with(annotations.clone()).is_empty(), "{annotations}");
    }
    // Excluding a port the app does not listen on leaves nothing plaintext (the bypass
    // annotation itself is its own finding unless the policy allows it).
    let allowed = policy_with(|c| c.forbid_mesh_bypass = false);
    let excluded = pod(
        json!({}),
        json!({ "traffic.sidecar.istio.io/excludeInboundPorts": "15020" }),
        json!({}),
    );
    assert!(run_with(&excluded, &s, &allowed).is_empty());
    // Linkerd: skipped inbound ports bypass the proxy.
    let linkerd = state_with_ns(
        json!({}),
        json!({ "linkerd.io/inject": "enabled", "config.linkerd.io/default-inbound-policy": "all-authenticated" }),
    );
    let skipped = pod(
        json!({}),
        json!({ "config.linkerd.io/skip-inbound-ports": "8080" }),
        json!({}),
    );
    let f = run_with(&skipped, &linkerd, &allowed);
    assert!(
        f.iter().any(|f| f.reason == Reason::NoTransitEvidence
            && names(&f.message, "config.linkerd.io/skip-inbound-ports")
            && names(&f.message, "8080")),
        "{f:#?}"
    );
}

/// TLS evidence means a private key and a certificate reach a serving container: a Secret
/// mounted with items that leave out tls.key (a CA bundle), a projection that drops the key, a
/// mount into an init container that runs to completion are not the server's TLS material.
#[test]
fn tls_material_needs_the_private_key_in_a_serving_container() {
    let s = state_with_ns(json!({}), json!({}));
    s.certificates.insert(
        NS.into(),
        "api-cert".into(),
        CertificateInfo {
            namespace: NS.into(),
            name: "api-cert".into(),
            secret_name: "api-tls".into(),
        },
    );
    let app_mount = json!([{ "name": "app", "image": "app:1", "volumeMounts": [{ "name": "tls", "mountPath": "/tls" }] }]);
    let with = |containers: Value, init: Value, volume: Value| {
        run(
            &pod(
                json!({}),
                json!({}),
                json!({ "containers": containers, "initContainers": init, "volumes": [volume] }),
            ),
            &s,
        )
    };
    let ca_only = json!({ "name": "tls", "secret": { "secretName": "api-tls", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } });
    assert_eq!(
        with(app_mount.clone(), json!([]), ca_only).len(),
        1,
        "a CA bundle alone"
    );
    let key_renamed = json!({ "name": "tls", "secret": { "secretName": "api-tls",
        "items": [{ "key": "tls.crt", "path": "server.crt" }, { "key": "tls.key", "path": "server.key" }] } });
    assert!(
        with(app_mount.clone(), json!([]), key_renamed).is_empty(),
        "the key, renamed"
    );
    let projected_ca = json!({ "name": "tls", "projected": { "sources": [
        { "secret": { "name": "api-tls", "items": [{ "key": "ca.crt", "path": "ca.crt" }] } }] } });
    assert_eq!(
        with(app_mount.clone(), json!([]), projected_ca).len(),
        1,
        "a projection without the key"
    );
    let whole = json!({ "name": "tls", "secret": { "secretName": "api-tls" } });
    let plain_app = json!([{ "name": "app", "image": "app:1" }]);
    let init_only = json!([{ "name": "copy-certs", "image": "busybox:1", "volumeMounts": [{ "name": "tls", "mountPath": "/tls" }] }]);
    assert_eq!(
        with(plain_app.clone(), init_only, whole.clone()).len(),
        1,
        "an init container only"
    );
    let native_sidecar = json!([{ "name": "tls-proxy", "image": "envoy:1", "restartPolicy": "Always",
        "volumeMounts": [{ "name": "tls", "mountPath": "/tls" }] }]);
    assert!(
        with(plain_app, native_sidecar, whole).is_empty(),
        "a native sidecar serves"
    );
}

/// TLS switched off by configuration: a violation without a mesh, a warning inside one, never
/// echoing a value; an http:// call is judged only when the Service selects PHI pods.
#[test]
fn tls_switched_off_by_configuration() {
    let s = state_with_ns(json!({}), json!({}));
    s.certificates.insert(
        NS.into(),
        "api-cert".into(),
        CertificateInfo {
            namespace: NS.into(),
            name: "api-cert".into(),
            secret_name: "api-tls".into(),
        },
    );
    let tls = json!([{ "name": "tls", "secret": { "secretName": "api-tls" } }]);
    let containers = json!([{ "name": "app", "image": "app:1",
        "volumeMounts": [{ "name": "tls", "mountPath": "/tls" }],
        "env": [{ "name": "DATABASE_URL", "value": "postgres://svc:Zq7VALUE@db:5432/ehr?sslmode=disable" },
                { "name": "AUDIT_URL", "value": "http://audit-log:8080/ingest" }],
        "args": ["--tls-port", "0"] }]);
    let w = pod(
        json!({}),
        json!({}),
        json!({ "containers": containers, "volumes": tls }),
    );
    let f = run(&w, &s);
    let config: Vec<&Finding> = f
        .iter()
        .filter(|f| f.reason == Reason::TlsSwitchedOff)
        .collect();
    assert_eq!(
        config.len(),
        2,
        "the http:// call selects no PHI pods: {f:#?}"
    );
    assert!(config.iter().all(|f| f.mode == Mode::Enforce));
    assert_eq!(config[0].path, "spec.containers[0].env[0]");
    assert_names(&config[0].message, "DATABASE_URL");
    assert_eq!(config[1].path, "spec.containers[0].args[0]");
    for f in &f {
        for text in [&f.message, &f.remediation] {
            assert_no_value(text, "Zq7VALUE");
            assert_no_value(text, "ehr");
        }
    }

    // The called Service selects PHI pods: the plaintext call is a finding too.
    s.services.insert(
        NS.into(),
        "audit-log".into(),
        ServiceInfo {
            namespace: NS.into(),
            name: "audit-log".into(),
            selector: Some(labels(json!({"app": "audit"}))),
            ports: Vec::new(),
            ..ServiceInfo::default()
        },
    );
    crate::fixtures::add_pod(&s, NS, "audit-0", &[("app", "audit"), PHI]);
    let f = run(&w, &s);
    assert!(
        f.iter().any(|f| f.reason == Reason::TlsSwitchedOff
            && names(&f.message, "AUDIT_URL")
            && names(&f.message, "audit-log")),
        "{f:#?}"
    );

    // Inside a mesh with STRICT mTLS: the database setting is a warning, the call is carried.
    let meshed = state_with_ns(json!({ "istio-injection": "enabled" }), json!({}));
    mesh_strict(&meshed);
    let f = run(&w, &meshed);
    assert_eq!(f.len(), 2, "the two settings, not the call: {f:#?}");
    assert!(
        f.iter()
            .all(|f| f.mode == Mode::Warn && f.reason == Reason::TlsSwitchedOff),
        "{f:#?}"
    );
}
