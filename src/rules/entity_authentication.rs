//! The `entity-authentication` rule (45 CFR 164.312(d)): a meshed PHI pod (Istio sidecar or
//! ambient, Linkerd; detected exactly as encryption in transit detects enrolment) is selected
//! by an authorization policy of its mesh, so only authenticated workload identities reach it.
//!
//! - Istio: a `security.istio.io` AuthorizationPolicy with action ALLOW (unset) and no empty
//!   rule (`{}` allows everyone), selecting the pod by `selector.matchLabels` in its namespace,
//!   namespace-wide (no selector), or mesh-wide (no selector, in the root namespace:
//!   `encryptionInTransit.istioRootNamespace`, `istio-system` when that rule is off). DENY,
//!   AUDIT and CUSTOM policies do not count (they do not restrict who is allowed), nor do
//!   policies bound through `targetRef(s)` to a gateway or waypoint.
//! - Linkerd: a `policy.linkerd.io` AuthorizationPolicy in the pod's namespace that requires a
//!   `MeshTLSAuthentication` and targets the Namespace or a `Server` whose podSelector selects
//!   the pod. Policies targeting an HTTPRoute are not followed to their Server.
//!
//! Unmeshed pods are not judged here: encryption in transit reports the missing mesh, and what
//! an application checks of its clients is invisible to admission.

use crate::object::Object;
use crate::policy::EntityAuthenticationConfig;
use crate::rules::encryption_in_transit::{meshes, Mesh};
use crate::rules::RuleContext;
use crate::selector::Labels;
use crate::verdict::{Finding, Reason};

/// Every entity-authentication finding for the workload.
pub(crate) fn check(
    w: &Object,
    ctx: &RuleContext,
    cfg: &EntityAuthenticationConfig,
) -> Vec<Finding> {
    let Some(pod) = w.pods() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (mesh, signal) in meshes(&w.namespace, pod, ctx.namespace.as_deref()) {
        let (held, fix) = match mesh {
            Mesh::Istio => (
                istio_authorized(ctx, &w.namespace, &pod.labels),
                "create a security.istio.io AuthorizationPolicy (action ALLOW, rules naming the allowed principals or namespaces) whose selector matches the pod's labels, or one without a selector in the namespace",
            ),
            Mesh::Linkerd => (
                linkerd_authorized(ctx, &w.namespace, &pod.labels),
                "create a policy.linkerd.io AuthorizationPolicy with requiredAuthenticationRefs naming a MeshTLSAuthentication, targeting a Server that selects the pod (or the Namespace)",
            ),
        };
        if !held {
            let name = match mesh {
                Mesh::Istio => "Istio AuthorizationPolicy",
                Mesh::Linkerd => "Linkerd AuthorizationPolicy requiring a MeshTLSAuthentication",
            };
            out.push(Finding::new(
                Reason::NoAuthorizationPolicy,
                cfg.mode,
                format!("{}.labels", pod.meta_path),
                format!("the pod is meshed ({signal}) but no {name} selects its pods, so any workload in the mesh may call it"),
                fix,
            ));
        }
    }
    out
}

fn istio_authorized(ctx: &RuleContext, namespace: &str, labels: &Labels) -> bool {
    let root = ctx
        .policy
        .encryption_in_transit
        .as_ref()
        .map_or("istio-system", |c| c.istio_root_namespace.as_str());
    let selects = |sel: &Option<Labels>| {
        sel.as_ref()
            .is_none_or(|s| s.iter().all(|(k, v)| labels.get(k) == Some(v)))
    };
    ctx.cluster
        .istio_authorization_policies(namespace)
        .iter()
        .any(|p| p.authorizes() && selects(&p.selector))
        || (root != namespace
            && ctx
                .cluster
                .istio_authorization_policies(root)
                .iter()
                .any(|p| p.authorizes() && p.selector.is_none()))
}

fn linkerd_authorized(ctx: &RuleContext, namespace: &str, labels: &Labels) -> bool {
    let servers = ctx.cluster.linkerd_servers(namespace);
    ctx.cluster
        .linkerd_authorization_policies(namespace)
        .iter()
        .filter(|p| p.requires_mesh_tls)
        .any(|p| match p.target_kind.as_str() {
            "Namespace" => p.target_name.is_empty() || p.target_name == namespace,
            "Server" => servers.iter().any(|s| {
                s.name == p.target_name
                    && s.pod_selector
                        .as_ref()
                        .is_some_and(|sel| sel.matches(labels))
            }),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;
    use crate::cluster::ClusterState;
    use crate::fixtures::*;
    use crate::verdict::RuleId;
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
        assert_eq!(f[0].reason, Reason::NoAuthorizationPolicy);
        // The kind to create is Istio's: no MeshTLSAuthentication.
        assert_names(&f[0].message, "AuthorizationPolicy");
        assert!(
            !names(&f[0].message, "MeshTLSAuthentication"),
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
        assert_eq!(f[0].reason, Reason::NoAuthorizationPolicy);
        assert_names(&f[0].message, "MeshTLSAuthentication");

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
}
