//! The `encryption-at-rest` rule (TODO).

use crate::engine::{Finding, RuleContext};
use crate::policy::AtRestConfig;
use crate::workload::Workload;

/// Every encryption-at-rest finding for the workload.
pub fn check(_w: &Workload, _ctx: &RuleContext, _cfg: &AtRestConfig) -> Vec<Finding> {
    Vec::new()
}
