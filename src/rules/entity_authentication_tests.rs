use serde_json::{json, Value};

use super::*;
use crate::cluster::ClusterState;
use crate::fixtures::*;
use crate::view::{IstioAuthzInfo, LinkerdAuthzInfo, LinkerdServerInfo};

fn run_in(state: &ClusterState, w: &Object) -> Vec<Finding> {
    let p = policy_with(|s| s.entity_authentication.enabled = true);
    let cfg = p.safeguards.entity_authentication.clone().expect("on");
    judge(w, state, &p, |w, ctx| check(w, ctx, &cfg))
}

fn istio(state: &ClusterState, ns: &str, name: &str, spec: Value) {
    let p = IstioAuthzInfo::from_value(&json!({"apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy", "metadata": {"name": name, "namespace": ns}, "spec": spec}))
    .expect("authz");
    state
        .safeguards
        .istio_authorization_policies
        .insert(ns.into(), name.into(), p);
}

fn meshed_istio() -> Object {
    deployment(
        "phi",
        json!({}),
        json!({"app": "api", "sidecar.istio.io/inject": "true"}),
        app_spec(),
    )
}

#[test]
fn unmeshed_pods_are_not_judged() {
    let w = deployment("phi", json!({}), json!({"app": "api"}), app_spec());
    assert_eq!(run_in(&ClusterState::new(), &w), Vec::new());
}

#[test]
fn istio_pods_need_an_allow_policy_that_selects_them() {
    let state = ClusterState::new();
    let f = run_in(&state, &meshed_istio());
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, RuleId::EntityAuthentication);
    assert_eq!(f[0].citation, "45 CFR 164.312(d)");
    assert!(
        f[0].message.contains("Istio AuthorizationPolicy"),
        "{}",
        f[0].message
    );

    let from = json!([{"from": [{"source": {"principals": ["cluster.local/ns/phi/sa/web"]}}]}]);
    istio(
        &state,
        "phi",
        "other",
        json!({"selector": {"matchLabels": {"app": "web"}}, "rules": from}),
    );
    istio(&state, "phi", "allow-all", json!({"rules": [{}]}));
    istio(
        &state,
        "phi",
        "deny",
        json!({"action": "DENY", "rules": from}),
    );
    assert_eq!(run_in(&state, &meshed_istio()).len(), 1);

    istio(
        &state,
        "phi",
        "api",
        json!({"selector": {"matchLabels": {"app": "api"}}, "rules": from}),
    );
    assert_eq!(run_in(&state, &meshed_istio()), Vec::new());
}

#[test]
fn istio_namespace_and_mesh_wide_policies_count() {
    let state = ClusterState::new();
    istio(
        &state,
        "phi",
        "ns-wide",
        json!({"rules": [{"from": [{"source": {"namespaces": ["phi"]}}]}]}),
    );
    assert_eq!(run_in(&state, &meshed_istio()), Vec::new());

    let state = ClusterState::new();
    istio(
        &state,
        "istio-system",
        "selecting",
        json!({"selector": {"matchLabels": {"app": "api"}}}),
    );
    assert_eq!(
        run_in(&state, &meshed_istio()).len(),
        1,
        "a root-namespace policy with a selector selects root-namespace pods only"
    );
    istio(&state, "istio-system", "mesh-wide", json!({}));
    assert_eq!(run_in(&state, &meshed_istio()), Vec::new());
}

#[test]
fn linkerd_pods_need_an_authorization_requiring_mesh_tls_on_their_server() {
    let state = ClusterState::new();
    add_namespace(
        &state,
        "phi",
        json!({}),
        json!({"linkerd.io/inject": "enabled"}),
    );
    let w = deployment("phi", json!({}), json!({"app": "api"}), app_spec());
    let f = run_in(&state, &w);
    assert_eq!(f.len(), 1);
    assert!(
        f[0].message.contains("MeshTLSAuthentication"),
        "{}",
        f[0].message
    );

    let server = LinkerdServerInfo::from_value(
        &json!({"metadata": {"name": "api-http", "namespace": "phi"},
        "spec": {"podSelector": {"matchLabels": {"app": "api"}}, "port": "http"}}),
    )
    .expect("server");
    state
        .safeguards
        .linkerd_servers
        .insert("phi".into(), "api-http".into(), server);
    let authz = |name: &str, target: Value, auth: &str| {
        let a = LinkerdAuthzInfo::from_value(&json!({"metadata": {"name": name, "namespace": "phi"},
            "spec": {"targetRef": target,
                     "requiredAuthenticationRefs": [{"group": "policy.linkerd.io", "kind": auth, "name": "web"}]}}))
        .expect("authz");
        state
            .safeguards
            .linkerd_authorization_policies
            .insert("phi".into(), name.into(), a);
    };
    authz(
        "net",
        json!({"group": "policy.linkerd.io", "kind": "Server", "name": "api-http"}),
        "NetworkAuthentication",
    );
    authz(
        "other",
        json!({"group": "policy.linkerd.io", "kind": "Server", "name": "web-http"}),
        "MeshTLSAuthentication",
    );
    assert_eq!(run_in(&state, &w).len(), 1);
    authz(
        "api",
        json!({"group": "policy.linkerd.io", "kind": "Server", "name": "api-http"}),
        "MeshTLSAuthentication",
    );
    assert_eq!(run_in(&state, &w), Vec::new());
}

#[test]
fn host_network_pods_are_in_no_mesh() {
    let w = deployment(
        "phi",
        json!({}),
        json!({"app": "api", "sidecar.istio.io/inject": "true"}),
        json!({"hostNetwork": true, "containers": [{"name": "app", "image": "app:1"}]}),
    );
    assert_eq!(run_in(&ClusterState::new(), &w), Vec::new());
}
