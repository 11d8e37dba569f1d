//! The policies in force: every PhiPolicy validated by the one parser, the rejected ones kept
//! with their reasons, and the built-in baseline when none is valid.

use std::sync::Arc;

use super::{hipaa_baseline, PhiPolicy, Policy};

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
        let mut sorted: Vec<&PhiPolicy> = policies.iter().collect();
        sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for p in sorted {
            match Policy::try_from(p) {
                Ok(valid) => set.policies.push(Arc::new(valid)),
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
