#![forbid(unsafe_code)]
//! phi-guard: a Kubernetes validating admission controller that keeps PHI workloads on
//! encrypted volumes, behind TLS and NetworkPolicies, with an audit sidecar.

pub mod certs;
pub mod cli;
pub mod cluster;
pub mod engine;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod labels;
pub mod object;
pub mod policy;
pub mod rules;
pub mod selector;
pub mod telemetry;
pub mod verdict;
pub mod view;
pub mod webhook;
