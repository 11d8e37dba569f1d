//! The `network-segmentation` rule (TODO).

use crate::engine::{Finding, RuleContext};
use crate::policy::SegmentationConfig;
use crate::workload::Workload;

/// Every network-segmentation finding for the workload.
pub fn check(_w: &Workload, _ctx: &RuleContext, _cfg: &SegmentationConfig) -> Vec<Finding> {
    Vec::new()
}
