//! Builders shared by the unit tests of every module: cluster state, policies and objects, so a
//! test says what is special about its case and nothing else. Test-only (`#[cfg(test)]`).

use serde_json::{json, Value};

use crate::cluster::ClusterState;
use crate::object::{Kind, Object};
use crate::policy::{hipaa_baseline, PhiPolicySpec, Policy};
use crate::rules::RuleContext;
use crate::selector::Labels;
use crate::view::{
    ClusterView, NamespaceInfo, NetworkPolicyInfo, PeerAuthInfo, PodInfo, PvInfo, PvcInfo,
    StorageClassInfo,
};

/// The default PHI label.
pub(crate) const PHI: (&str, &str) = ("phiguard.io/data-classification", "phi");

/// Labels from a JSON object (`json!({"app": "api"})`).
pub(crate) fn labels(v: Value) -> Labels {
    serde_json::from_value(v).expect("labels")
}

/// Labels from pairs.
pub(crate) fn label_pairs(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The built-in hipaa-baseline as a validated policy.
pub(crate) fn baseline() -> Policy {
    Policy::try_from(&hipaa_baseline()).expect("baseline is valid")
}

/// A policy named `test`: the baseline spec with `f` applied.
pub(crate) fn policy_with(f: impl FnOnce(&mut PhiPolicySpec)) -> Policy {
    let mut spec = PhiPolicySpec::default();
    f(&mut spec);
    Policy::from_spec("test", &spec).expect("valid policy")
}

/// An object of `kind` in `namespace`, decoded as the webhook and `check` decode it.
pub(crate) fn object(kind: Kind, namespace: Option<&str>, v: Value) -> Object {
    Object::from_value(kind, &v, namespace).expect("object decodes")
}

/// A Deployment `api` with its own labels and its pod template's labels and spec.
pub(crate) fn deployment(ns: &str, own: Value, template: Value, spec: Value) -> Object {
    object(
        Kind::Deployment,
        Some(ns),
        json!({
            "metadata": {"name": "api", "labels": own},
            "spec": {"template": {"metadata": {"labels": template}, "spec": spec}},
        }),
    )
}

/// One app container, `app:1`.
pub(crate) fn app_spec() -> Value {
    json!({"containers": [{"name": "app", "image": "app:1"}]})
}

/// Run one rule (`check`, bound to its config by the caller) with a context over `state`: the
/// object's namespace is read from the state, as the engine does.
pub(crate) fn judge<T>(
    w: &Object,
    state: &ClusterState,
    policy: &Policy,
    rule: impl FnOnce(&Object, &RuleContext) -> T,
) -> T {
    let ctx = RuleContext::new(state, policy, state.namespace(&w.namespace));
    rule(w, &ctx)
}

/// Add a Namespace with labels and annotations.
pub(crate) fn add_namespace(state: &ClusterState, name: &str, l: Value, annotations: Value) {
    state.namespaces.insert(
        name.to_string(),
        NamespaceInfo {
            name: name.to_string(),
            labels: labels(l),
            annotations: labels(annotations),
        },
    );
}

/// Add a StorageClass (created 2024-01-01; `default` marks it the default class).
pub(crate) fn add_storage_class(
    state: &ClusterState,
    name: &str,
    provisioner: &str,
    params: Value,
    default: bool,
) {
    let mut meta = json!({ "name": name, "creationTimestamp": "2024-01-01T00:00:00Z" });
    if default {
        meta["annotations"] = json!({ "storageclass.kubernetes.io/is-default-class": "true" });
    }
    let sc: k8s_openapi::api::storage::v1::StorageClass = serde_json::from_value(json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": meta, "provisioner": provisioner, "parameters": params,
    }))
    .expect("storage class");
    state
        .storage_classes
        .insert(name.into(), StorageClassInfo::from(&sc));
}

/// Add a PersistentVolumeClaim.
pub(crate) fn add_pvc(state: &ClusterState, ns: &str, name: &str, spec: Value, annotations: Value) {
    let pvc: k8s_openapi::api::core::v1::PersistentVolumeClaim = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": { "name": name, "namespace": ns, "annotations": annotations },
        "spec": spec,
    }))
    .expect("pvc");
    state
        .pvcs
        .insert(ns.into(), name.into(), PvcInfo::from(&pvc));
}

/// Add a PersistentVolume.
pub(crate) fn add_pv(state: &ClusterState, name: &str, spec: Value) {
    let pv: k8s_openapi::api::core::v1::PersistentVolume = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": { "name": name }, "spec": spec,
    }))
    .expect("pv");
    state.pvs.insert(name.into(), PvInfo::from(&pv));
}

/// A NetworkPolicy's lean view.
pub(crate) fn network_policy(ns: &str, name: &str, spec: Value) -> NetworkPolicyInfo {
    let obj: k8s_openapi::api::networking::v1::NetworkPolicy = serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }))
    .expect("valid NetworkPolicy");
    NetworkPolicyInfo::from(&obj)
}

/// Add a NetworkPolicy.
pub(crate) fn add_network_policy(state: &ClusterState, info: NetworkPolicyInfo) {
    state
        .network_policies
        .insert(info.namespace.clone(), info.name.clone(), info);
}

/// Add a running Pod with labels.
pub(crate) fn add_pod(state: &ClusterState, ns: &str, name: &str, l: &[(&str, &str)]) {
    state.pods.insert(
        ns.to_string(),
        name.to_string(),
        PodInfo {
            namespace: ns.to_string(),
            name: name.to_string(),
            labels: label_pairs(l),
            ..Default::default()
        },
    );
}

/// An Istio PeerAuthentication as the API server would send it.
pub(crate) fn peer_authentication(ns: &str, name: &str, spec: Value) -> Value {
    json!({ "apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
            "metadata": { "name": name, "namespace": ns }, "spec": spec })
}

/// Add a PeerAuthentication.
pub(crate) fn add_peer_authentication(state: &ClusterState, v: Value) {
    let pa = PeerAuthInfo::from_value(&v).expect("peer authentication");
    state
        .peer_authentications
        .insert(pa.namespace.clone(), pa.name.clone(), pa);
}
