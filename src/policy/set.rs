//! The policies in force: every PhiPolicy validated by the one parser, the rejected ones kept
//! with their reasons, and the built-in baseline when none is valid.

use std::sync::Arc;

use super::{hipaa_baseline, PhiPolicy, PhiPolicySpec, Policy, ScopeSpec};

/// The keys under which policies share work (`Policy::rules_key`, `Policy::scope_key`): the
/// spec without its scope, and the scope, each as canonical JSON. Equal specs parse to equal
/// policies, so equal keys mean equal rule settings (or equal scopes); two specs that differ
/// only in spelling get different keys and simply do not share.
pub(super) fn sharing_keys(spec: &PhiPolicySpec) -> (Arc<str>, Arc<str>) {
    let scope = serde_json::to_string(&spec.scope).unwrap_or_default();
    let mut rest = spec.clone();
    rest.scope = ScopeSpec::default();
    let rules = serde_json::to_string(&rest).unwrap_or_default();
    (rules.into(), scope.into())
}

/// One shared allocation per distinct key, so the engine can compare keys by pointer.
#[derive(Default)]
struct Interner(std::collections::HashSet<Arc<str>>);

impl Interner {
    fn intern(&mut self, key: &mut Arc<str>) {
        match self.0.get(key) {
            Some(k) => *key = Arc::clone(k),
            None => {
                self.0.insert(Arc::clone(key));
            }
        }
    }
}

/// A PhiPolicy that phi-guard could not accept, kept for status and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedPolicy {
    pub name: String,
    pub error: String,
}

/// The policies in force: valid ones in name order, and rejected ones with their reasons.
#[derive(Debug, Default, Clone)]
pub struct PolicySet {
    pub policies: Vec<Arc<Policy>>,
    pub rejected: Vec<RejectedPolicy>,
}

impl PolicySet {
    /// Validate policies with the one parser; invalid ones are kept aside with their reason.
    pub fn build(policies: &[PhiPolicy]) -> PolicySet {
        let mut set = PolicySet::default();
        let mut interner = Interner::default();
        let mut sorted: Vec<&PhiPolicy> = policies.iter().collect();
        sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for p in sorted {
            match Policy::try_from(p) {
                Ok(mut valid) => {
                    interner.intern(&mut valid.rules_key);
                    interner.intern(&mut valid.scope_key);
                    set.policies.push(Arc::new(valid));
                }
                Err(e) => set.rejected.push(RejectedPolicy {
                    name: p.metadata.name.clone().unwrap_or_default(),
                    error: e.to_string(),
                }),
            }
        }
        set
    }
}

/// The policies in force for a set of PhiPolicies: every valid one; when none is valid (none
/// exists, or all are malformed), the built-in hipaa-baseline, so the cluster is never left
/// unprotected by an empty or broken configuration. Rejected ones are kept for status and metrics.
pub fn effective_policies(policies: &[PhiPolicy]) -> PolicySet {
    let mut set = PolicySet::build(policies);
    if set.policies.is_empty() {
        let baseline = PolicySet::build(&[hipaa_baseline()]);
        set.policies = baseline.policies;
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baseline_applies_without_valid_policies() {
        let set = effective_policies(&[]);
        assert_eq!(set.policies.len(), 1);
        assert_eq!(set.policies[0].name, crate::policy::BASELINE_NAME);
        let mut custom = hipaa_baseline();
        custom.metadata.name = Some("custom".into());
        let set = effective_policies(&[custom]);
        assert_eq!(set.policies.len(), 1);
        assert_eq!(set.policies[0].name, "custom");
    }
}
