//! The `encryption-in-transit` rule (TODO).

use crate::engine::{Finding, RuleContext};
use crate::policy::InTransitConfig;
use crate::workload::Workload;

/// Every encryption-in-transit finding for the workload.
pub fn check(_w: &Workload, _ctx: &RuleContext, _cfg: &InTransitConfig) -> Vec<Finding> {
    Vec::new()
}
