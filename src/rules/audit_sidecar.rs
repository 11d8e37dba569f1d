//! The `audit-sidecar` rule (TODO).

use crate::engine::{Finding, RuleContext};
use crate::policy::AuditSidecarConfig;
use crate::workload::Workload;

/// Every audit-sidecar finding for the workload.
pub fn check(_w: &Workload, _ctx: &RuleContext, _cfg: &AuditSidecarConfig) -> Vec<Finding> {
    Vec::new()
}
