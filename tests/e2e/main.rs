// Test and benchmark code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]
//! End-to-end tests against a real kube-apiserver, driven by the real kubectl (and Helm) and by
//! kube-rs, with `phi-guard serve` running as a local process that the API server calls.
//!
//! Run with `make e2e` (hack/e2e.sh): it starts the control plane, builds phi-guard and exports
//! KUBECONFIG, KUBECTL, HELM, WEBHOOK_* and PHI_GUARD_BIN. Without them every test fails with a
//! message saying so: these tests never skip.

mod findings;
mod fixtures;
mod harness;
#[path = "../support/mod.rs"]
mod support;

mod admission;
mod audit;
mod cluster_state;
mod consistency;
mod controllers;
mod default_deny;
mod evidence;
mod exceptions;
mod fail_closed;
mod faults;
mod fix;
mod helm;
mod namespace_labeling;
mod operators;
mod owners;
mod platform_evidence;
mod policy;
mod report_agreement;
mod reports;
mod safeguards;
mod updates;
mod webhook_restore;
mod what_if;

pub use findings::{
    assert_findings, denial, finding_text, rules_named, shown_with, shows, shows_rule, CORE_RULES,
};
