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
/// A rule reads the policy's scope only through [`RuleContext::scope`], which notes the read:
/// findings computed without it hold for every policy with the same rule settings, and the
/// engine shares them (a test below keeps `policy.scope` out of the rules' source).
pub(crate) struct RuleContext<'a> {
    pub cluster: &'a dyn ClusterView,
    pub policy: &'a Policy,
    pub namespace: Option<Arc<NamespaceInfo>>,
    scope_read: std::cell::Cell<bool>,
}

impl<'a> RuleContext<'a> {
    pub(crate) fn new(
        cluster: &'a dyn ClusterView,
        policy: &'a Policy,
        namespace: Option<Arc<NamespaceInfo>>,
    ) -> RuleContext<'a> {
        RuleContext {
            cluster,
            policy,
            namespace,
            scope_read: std::cell::Cell::new(false),
        }
    }

    /// The policy, for a check that reads its scope (which PHI objects it selects): the
    /// findings then hold only for policies with this scope.
    pub(crate) fn scoped_policy(&self) -> &'a Policy {
        self.scope_read.set(true);
        self.policy
    }

    /// The policy's scope (see [`RuleContext::scoped_policy`]).
    pub(crate) fn scope(&self) -> &'a crate::policy::Scope {
        &self.scoped_policy().scope
    }

    /// Did a rule read the scope since the context was made?
    pub(crate) fn read_scope(&self) -> bool {
        self.scope_read.get()
    }

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

#[cfg(test)]
mod tests {
    /// The engine shares findings between policies that differ only in scope unless a rule
    /// read the scope through `RuleContext`; a rule reading `policy.scope` directly, or handing
    /// the policy to a scope-reading helper, would get findings shared wrongly.
    #[test]
    fn rules_read_the_scope_only_through_the_context() {
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src/rules"
        ))];
        let mut files = 0;
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("rules dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("source");
                files += 1;
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for forbidden in [
                    "policy.scope",
                    "ctx.policy,",
                    "ctx.policy;",
                    "ctx.policy)",
                    "&ctx.policy",
                    "policy: ctx.policy",
                ] {
                    assert!(
                        !code.contains(forbidden) || path.ends_with("rules/mod.rs"),
                        "{} uses `{forbidden}`: read the scope through RuleContext::scope or scoped_policy",
                        path.display()
                    );
                }
            }
        }
        assert!(files > 10, "the rules were not found");
    }
}
