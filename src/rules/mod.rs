//! The PHI requirements, one module each. Every rule returns all of its findings.

pub mod audit_sidecar;
pub mod encryption_at_rest;
pub mod encryption_in_transit;
pub mod network_segmentation;

use crate::cluster::ClusterView;
use crate::engine::{Finding, RuleContext};
use crate::policy::Policy;
use crate::selector::Labels;
use crate::workload::Workload;

/// Run every enabled rule of the context's policy.
pub fn run_all(w: &Workload, ctx: &RuleContext, out: &mut Vec<Finding>) {
    if let Some(cfg) = &ctx.policy.encryption_at_rest {
        out.extend(encryption_at_rest::check(w, ctx, cfg));
    }
    if let Some(cfg) = &ctx.policy.encryption_in_transit {
        out.extend(encryption_in_transit::check(w, ctx, cfg));
    }
    if let Some(cfg) = &ctx.policy.network_segmentation {
        out.extend(network_segmentation::check(w, ctx, cfg));
    }
    if let Some(cfg) = &ctx.policy.audit_sidecar {
        out.extend(audit_sidecar::check(w, ctx, cfg));
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
    cluster.pods(namespace).iter().any(|p| {
        selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
            && policy.scope.covers(namespace, ns_labels, &[&p.labels])
    })
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
