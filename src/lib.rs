#![forbid(unsafe_code)]
//! phi-guard: a Kubernetes validating admission controller that keeps PHI workloads on
//! encrypted volumes, behind TLS and NetworkPolicies, with an audit sidecar.

pub(crate) mod audit;
pub mod certs;
pub mod cli;
pub(crate) mod cluster;
pub(crate) mod engine;
pub(crate) mod fix;
#[cfg(test)]
pub(crate) mod fixtures;
/// For the fuzz targets in `fuzz/` only; not a stable API.
#[doc(hidden)]
pub mod fuzz_api;
pub mod kinds;
pub(crate) mod labels;
pub(crate) mod object;
pub mod policy;
pub(crate) mod report;
pub(crate) mod rules;
pub(crate) mod selector;
pub mod telemetry;
pub mod verdict;
pub(crate) mod view;
pub mod webhook;
