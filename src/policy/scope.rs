//! Scope matching: which objects a policy considers PHI. Pods and pod controllers by their own
//! labels or their namespace's; Services and Ingresses also when they route to PHI pods.

use super::Policy;
use crate::object::{Body, Object};
use crate::selector::Labels;
use crate::view::{ClusterView, NamespaceInfo};

/// Does `policy` consider the workload PHI? Services and Ingresses are also PHI when they route
/// to PHI pods.
pub fn in_scope(
    w: &Object,
    policy: &Policy,
    cluster: &dyn ClusterView,
    ns: Option<&NamespaceInfo>,
) -> bool {
    let ns_labels = ns.map(|n| &n.labels);
    if policy
        .scope
        .covers(&w.namespace, ns_labels, &w.label_sets())
    {
        return true;
    }
    if policy.scope.excludes_namespace(&w.namespace) {
        return false;
    }
    match &w.body {
        Body::Service(svc) => svc
            .selector
            .as_ref()
            .is_some_and(|sel| selects_phi_pods(sel, &w.namespace, policy, cluster)),
        Body::Ingress(ing) => ing
            .rules
            .iter()
            .flat_map(|r| r.services.iter())
            .chain(ing.default_backend.iter())
            .any(|svc| service_routes_to_phi(svc, &w.namespace, policy, cluster)),
        _ => false,
    }
}

/// Does a Service selector in `namespace` select pods the policy considers PHI?
pub fn selects_phi_pods(
    selector: &Labels,
    namespace: &str,
    policy: &Policy,
    cluster: &dyn ClusterView,
) -> bool {
    let ns = cluster.namespace(namespace);
    let ns_labels = ns.as_deref().map(|n| &n.labels);
    cluster
        .pods_with_labels(namespace, selector)
        .iter()
        .any(|p| policy.scope.covers(namespace, ns_labels, &[&p.labels]))
}

/// Does the named Service in `namespace` route to PHI pods?
pub fn service_routes_to_phi(
    service: &str,
    namespace: &str,
    policy: &Policy,
    cluster: &dyn ClusterView,
) -> bool {
    cluster
        .services(namespace)
        .iter()
        .filter(|s| s.name == service)
        .any(|s| {
            s.selector
                .as_ref()
                .is_some_and(|sel| selects_phi_pods(sel, namespace, policy, cluster))
        })
}
