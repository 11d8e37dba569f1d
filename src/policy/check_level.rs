//! The level of an optional sub-check, shared by the PhiPolicy's rule sections (`crd.rs`) and the
//! optional safeguards' sections (`safeguards.rs`), so neither file imports the other for it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The level of an optional sub-check. It never exceeds the mode of the rule it belongs to.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum CheckLevel {
    /// Do not check.
    Ignore,
    /// Check and record as an audit annotation.
    Audit,
    /// Check and warn.
    Warn,
    /// Check with the rule's full mode (deny when the rule enforces).
    Enforce,
}
