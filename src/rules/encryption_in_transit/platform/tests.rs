//! In-transit evidence beyond Istio and Linkerd: CNI encryption, Consul, Istio ambient's enrolment annotation and
//! Kubernetes Pod Certificates, from manifests as the projects ship them.

use super::*;
use crate::cluster::ClusterState;
use crate::fixtures::{self, assert_names, names, PHI};
use crate::object::Kind;
use crate::policy::{EncryptionInTransitSpec, Policy};
use crate::view::platform::{from_config_map, from_felix_configuration};
use crate::view::{PlatformEncryption, PlatformSource};
use serde_json::{json, Value};

const NS: &str = "phi";

fn policy_accepting(extra: &[TransitEvidence]) -> Policy {
    fixtures::policy_with(|s| {
        let t: &mut EncryptionInTransitSpec = &mut s.encryption_in_transit;
        t.accepted_evidence.extend_from_slice(extra);
    })
}

fn state() -> ClusterState {
    let s = ClusterState::new();
    fixtures::add_namespace(&s, NS, json!({}), json!({}));
    s
}

fn pod(annotations: Value, spec: Value) -> Object {
    let mut sp = json!({ "containers": [{ "name": "app", "image": "app:1" }] });
    if let (Some(sp), Some(e)) = (sp.as_object_mut(), spec.as_object()) {
        sp.extend(e.clone());
    }
    let v = json!({ "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "api", "labels": { "app": "api", PHI.0: PHI.1 }, "annotations": annotations },
        "spec": sp });
    Object::from_value(Kind::Pod, &v, Some(NS)).expect("pod")
}

fn run(w: &Object, s: &ClusterState, p: &Policy) -> Vec<Finding> {
    let cfg = p.encryption_in_transit.as_ref().expect("enabled");
    fixtures::judge(w, s, p, |w, ctx| check(w, ctx, cfg))
}

fn set(s: &ClusterState, info: PlatformEncryption) {
    s.platform.insert(info.source.key().to_string(), info);
}

fn cilium(value: &str) -> PlatformEncryption {
    let data = [
        ("enable-wireguard".to_string(), value.to_string()),
        ("enable-ipv4".to_string(), "true".to_string()),
    ]
    .into_iter()
    .collect();
    from_config_map(PlatformSource::Cilium, &data).expect("cilium")
}

#[test]
fn cilium_wireguard_counts_only_when_listed_and_on() {
    let s = state();
    let w = pod(json!({}), json!({}));
    let listed = policy_accepting(&[TransitEvidence::CiliumEncryption]);

    // Not listed: the default policy ignores the CNI even when it encrypts.
    set(&s, cilium("true"));
    let f = run(&w, &s, &fixtures::baseline());
    assert_eq!(f.len(), 1, "{f:#?}");
    assert!(
        !names(&f[0].message, "kube-system/cilium-config"),
        "not looked for: {}",
        f[0].message
    );
    assert!(run(&w, &s, &listed).is_empty());

    // Listed, but off: names the object it read and the setting to change.
    set(&s, cilium("false"));
    let f = run(&w, &s, &listed);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "kube-system/cilium-config");
    assert_names(&f[0].remediation, "enable-wireguard");

    // Listed, never seen: names the object it would read.
    s.platform.remove("cilium");
    let f = run(&w, &s, &listed);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "kube-system/cilium-config");
}

#[test]
fn calico_antrea_and_flannel_are_read_from_their_objects() {
    let s = state();
    let w = pod(json!({}), json!({}));
    let all = policy_accepting(&[
        TransitEvidence::CalicoWireGuard,
        TransitEvidence::AntreaEncryption,
        TransitEvidence::FlannelEncryption,
    ]);
    let f = run(&w, &s, &all);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].reason, Reason::NoTransitEvidence);
    for object in [
        "FelixConfiguration",
        "kube-system/antrea-config",
        "kube-flannel/kube-flannel-cfg",
    ] {
        assert_names(&f[0].message, object);
    }

    let felix = |on: bool| {
        from_felix_configuration(&json!({
            "apiVersion": "crd.projectcalico.org/v1", "kind": "FelixConfiguration",
            "metadata": { "name": "default" },
            "spec": { "wireguardEnabled": on, "bpfLogLevel": "" }
        }))
        .expect("felix")
    };
    set(&s, felix(false));
    let f = run(&w, &s, &all);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_names(&f[0].message, "FelixConfiguration");
    set(&s, felix(true));
    assert!(run(&w, &s, &all).is_empty());
    s.platform.remove("calico");

    let antrea = [(
        "antrea-agent.conf".to_string(),
        "trafficEncapMode: encap\ntrafficEncryptionMode: wireGuard\n".to_string(),
    )]
    .into_iter()
    .collect();
    set(
        &s,
        from_config_map(PlatformSource::Antrea, &antrea).expect("antrea"),
    );
    assert!(run(&w, &s, &all).is_empty());
    s.platform.remove("antrea");

    let flannel = [(
        "net-conf.json".to_string(),
        r#"{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}"#.to_string(),
    )]
    .into_iter()
    .collect();
    set(
        &s,
        from_config_map(PlatformSource::Flannel, &flannel).expect("flannel"),
    );
    assert!(run(&w, &s, &all).is_empty());
}

/// CNI encryption never covers host-network pods (their traffic is the node's own).
#[test]
fn cni_evidence_does_not_cover_host_network_pods() {
    let s = state();
    set(&s, cilium("true"));
    let w = pod(json!({}), json!({ "hostNetwork": true }));
    let f = run(
        &w,
        &s,
        &policy_accepting(&[TransitEvidence::CiliumEncryption]),
    );
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "spec.hostNetwork");
}

#[test]
fn consul_injection_counts_when_listed() {
    let s = state();
    let listed = policy_accepting(&[TransitEvidence::Consul]);
    let injected = pod(
        json!({ "consul.hashicorp.com/connect-inject-status": "injected", "consul.hashicorp.com/connect-service": "api" }),
        json!({}),
    );
    assert!(run(&injected, &s, &listed).is_empty());
    assert_eq!(run(&injected, &s, &fixtures::baseline()).len(), 1);
    let requested = pod(
        json!({ "consul.hashicorp.com/connect-inject": "true" }),
        json!({}),
    );
    assert!(run(&requested, &s, &listed).is_empty());
    let off = pod(
        json!({ "consul.hashicorp.com/connect-inject": "false" }),
        json!({}),
    );
    let f = run(&off, &s, &listed);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, CONSUL_INJECT);
    let none = run(&pod(json!({}), json!({})), &s, &listed);
    assert_eq!(none.len(), 1, "{none:#?}");
    assert_names(&none[0].message, CONSUL_INJECT);
}

/// The Istio CNI's enrolment annotation is ambient evidence (with STRICT mTLS, as ever).
#[test]
fn istio_ambient_redirection_annotation_is_ambient_evidence() {
    let s = state();
    fixtures::add_peer_authentication(
        &s,
        fixtures::peer_authentication(
            "istio-system",
            "default",
            json!({ "mtls": { "mode": "STRICT" } }),
        ),
    );
    let enrolled = pod(
        json!({ "ambient.istio.io/redirection": "enabled" }),
        json!({}),
    );
    assert!(run(&enrolled, &s, &fixtures::baseline()).is_empty());
    let disabled = pod(
        json!({ "ambient.istio.io/redirection": "disabled" }),
        json!({}),
    );
    assert_eq!(run(&disabled, &s, &fixtures::baseline()).len(), 1);
}

/// A projected `podCertificate` mounted by the container is app-level TLS material; one that no
/// container mounts is not.
#[test]
fn pod_certificate_projection_is_app_tls_material() {
    let s = state();
    let volumes = json!([{ "name": "identity", "projected": { "sources": [
        { "podCertificate": { "signerName": "example.com/spiffe", "keyType": "ED25519",
                               "credentialBundlePath": "credentialbundle.pem" } }
    ] } }]);
    let mounted = pod(
        json!({}),
        json!({
            "containers": [{ "name": "app", "image": "app:1",
                "volumeMounts": [{ "name": "identity", "mountPath": "/var/run/identity" }] }],
            "volumes": volumes,
        }),
    );
    assert!(run(&mounted, &s, &fixtures::baseline()).is_empty());
    let unmounted = pod(json!({}), json!({ "volumes": volumes }));
    let f = run(&unmounted, &s, &fixtures::baseline());
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].reason, Reason::NoTransitEvidence);
}

#[test]
fn kuma_needs_injection_and_a_strict_mtls_mesh() {
    use crate::view::KumaMeshInfo;
    let s = ClusterState::new();
    fixtures::add_namespace(
        &s,
        NS,
        json!({ "kuma.io/sidecar-injection": "enabled" }),
        json!({}),
    );
    let listed = policy_accepting(&[TransitEvidence::Kuma]);
    let w = pod(json!({}), json!({}));
    let f = run(&w, &s, &listed);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "default");
    let mesh = |spec: Value| {
        KumaMeshInfo::from_value(&json!({ "metadata": { "name": "default" }, "spec": spec }))
            .expect("mesh")
    };
    s.kuma_meshes.insert("default".into(), mesh(json!({})));
    assert_names(&run(&w, &s, &listed)[0].message, "spec.mtls.enabledBackend");
    s.kuma_meshes.insert(
        "default".into(),
        mesh(json!({ "mtls": { "enabledBackend": "ca-1", "backends": [{ "name": "ca-1", "type": "builtin", "mode": "PERMISSIVE" }] } })),
    );
    assert_names(&run(&w, &s, &listed)[0].message, "PERMISSIVE");
    s.kuma_meshes.insert(
        "default".into(),
        mesh(json!({ "mtls": { "enabledBackend": "ca-1", "backends": [{ "name": "ca-1", "type": "builtin" }] } })),
    );
    assert!(run(&w, &s, &listed).is_empty());
    // Not listed: the default policy does not accept Kuma.
    assert_eq!(run(&w, &s, &fixtures::baseline()).len(), 1);
    // A pod in another Mesh is judged on that Mesh; a pod opting out is not meshed.
    let other = pod(json!({ "kuma.io/mesh": "payments" }), json!({}));
    assert_names(&run(&other, &s, &listed)[0].message, "payments");
    let v = json!({ "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "api", "labels": { PHI.0: PHI.1, "kuma.io/sidecar-injection": "disabled" } },
        "spec": { "containers": [{ "name": "app", "image": "app:1" }] } });
    let opted_out = Object::from_value(Kind::Pod, &v, Some(NS)).expect("pod");
    // The Mesh is ready (above), so only the opt-out fails the pod.
    let f = run(&opted_out, &s, &listed);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_names(&f[0].message, "kuma.io/sidecar-injection");
}

/// A MeshTLS policy of the pod's Mesh with `mode: Permissive` breaks Kuma evidence; one of
/// another Mesh, or a Strict one, does not.
#[test]
fn kuma_permissive_mesh_tls_fails() {
    use crate::view::{KumaMeshInfo, KumaMeshTlsInfo};
    let s = ClusterState::new();
    fixtures::add_namespace(
        &s,
        NS,
        json!({ "kuma.io/sidecar-injection": "enabled" }),
        json!({}),
    );
    s.kuma_meshes.insert(
        "default".into(),
        KumaMeshInfo::from_value(&json!({ "metadata": { "name": "default" },
            "spec": { "mtls": { "enabledBackend": "ca-1", "backends": [{ "name": "ca-1", "type": "builtin" }] } } }))
        .expect("mesh"),
    );
    let tls = |name: &str, mesh: &str, mode: &str| {
        KumaMeshTlsInfo::from_value(&json!({
            "metadata": { "name": name, "namespace": "kuma-system", "labels": { "kuma.io/mesh": mesh } },
            "spec": { "targetRef": { "kind": "Mesh" }, "rules": [{ "default": { "mode": mode } }] }
        }))
        .expect("meshtls")
    };
    s.kuma_mesh_tls.insert(
        "kuma-system/strict".into(),
        tls("strict", "default", "Strict"),
    );
    s.kuma_mesh_tls.insert(
        "kuma-system/other".into(),
        tls("other", "payments", "Permissive"),
    );
    let listed = policy_accepting(&[TransitEvidence::Kuma]);
    let w = pod(json!({}), json!({}));
    assert!(run(&w, &s, &listed).is_empty());
    s.kuma_mesh_tls.insert(
        "kuma-system/migration".into(),
        tls("migration", "default", "Permissive"),
    );
    let f = run(&w, &s, &listed);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].reason, Reason::NoTransitEvidence);
    assert_names(&f[0].message, "kuma-system/migration");
    assert_names(&f[0].message, "Permissive");
    for fine in ["kuma-system/strict", "kuma-system/other"] {
        assert!(!names(&f[0].message, fine), "{fine}: {}", f[0].message);
    }
}
