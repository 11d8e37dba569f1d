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
//! Unmeshed pods are not judged here: encryption in transit reports the missing mesh, and what
//! an application checks of its clients is invisible to admission.

use crate::object::Object;
use crate::policy::EntityAuthenticationConfig;
use crate::rules::encryption_in_transit::{meshes, Mesh};
use crate::rules::RuleContext;
use crate::selector::Labels;
use crate::verdict::{Finding, RuleId};

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
                RuleId::EntityAuthentication,
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
#[path = "entity_authentication_tests.rs"]
mod tests;
