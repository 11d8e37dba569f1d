//! The PHI requirements, one module each. Every rule returns all of its findings.

pub(crate) mod audit_sidecar;
pub(crate) mod contingency;
pub(crate) mod encryption_at_rest;
pub(crate) mod encryption_in_transit;
pub(crate) mod entity_authentication;
pub(crate) mod integrity;
pub(crate) mod least_privilege;
pub(crate) mod network_segmentation;
pub(crate) mod operated;

use std::sync::Arc;

use crate::object::Object;
use crate::policy::Policy;
use crate::selector::Labels;
use crate::verdict::Finding;
use crate::view::{ClusterView, NamespaceInfo};

/// What a rule may read besides the object: cluster state, the policy, the object's namespace.
pub(crate) struct RuleContext<'a> {
    pub cluster: &'a dyn ClusterView,
    pub policy: &'a Policy,
    pub namespace: Option<Arc<NamespaceInfo>>,
}

impl RuleContext<'_> {
    /// Labels of the object's namespace (empty when unknown).
    pub(crate) fn namespace_labels(&self) -> Option<&Labels> {
        self.namespace.as_deref().map(|n| &n.labels)
    }
}

/// Run every enabled rule of the context's policy.
pub(crate) fn run_all(w: &Object, ctx: &RuleContext, out: &mut Vec<Finding>) {
    out.extend(operated::label_reaches_pods(w, ctx));
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
    let s = &ctx.policy.safeguards;
    if let Some(cfg) = &s.least_privilege {
        out.extend(least_privilege::check(w, ctx, cfg));
    }
    if let Some(cfg) = &s.integrity {
        out.extend(integrity::check(w, ctx, cfg));
    }
    if let Some(cfg) = &s.entity_authentication {
        out.extend(entity_authentication::check(w, ctx, cfg));
    }
    if let Some(cfg) = &s.contingency {
        out.extend(contingency::check(w, ctx, cfg));
    }
}
