// Test code: a failed unwrap is a failed test, which is what it should be.
#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub, dead_code)]
//! The chart as a platform team runs it: phi-guard's image (built by hack/images.sh from this
//! commit) running in-cluster on a real node (hack/node.sh: containerd, kubelet, kube-proxy), the
//! API server calling the webhook through its Service.
//!
//! Run with `make e2e-node` (hack/e2e.sh with E2E_NODE=1): it builds the images and the node,
//! starts both, and exports KUBECONFIG, KUBECTL, HELM, NODE_NAME and the image references
//! (hack/images.sh's images.env). Without them every test fails with a message saying so: these
//! tests never skip.

#[path = "../e2e/findings.rs"]
mod findings;
#[path = "../e2e/fixtures.rs"]
mod fixtures;

#[path = "../support/mod.rs"]
mod support;

mod chart;
mod harness;
mod image;
mod traffic;

pub use findings::{
    assert_findings, denial, finding_text, rules_named, shown_with, shows, shows_rule, CORE_RULES,
};
