//! (c) The PhiPolicy parser on arbitrary JSON: a whole PhiPolicy object or its spec, into a
//! `Policy` (and a `PolicySet` with the built-in baseline) or a `PolicyError` that names the
//! policy and the field; never a panic.
//!
//! The target's body: `fuzz_targets/policy_spec.rs` hands it libFuzzer's inputs, and the main
//! crate's `tests/fuzz_replay.rs` replays the committed corpus and regressions through it on
//! stable Rust (`make unit`).

use phi_guard::policy::{hipaa_baseline, PhiPolicy, PhiPolicySpec, Policy, PolicySet};

fn accepted_or_named(r: Result<Policy, phi_guard::policy::PolicyError>, name: &str) {
    match r {
        Ok(p) => assert_eq!(p.name, name),
        Err(e) => {
            assert_eq!(e.policy, name, "the error names the policy");
            assert!(!e.field.is_empty(), "the error names no field: {e}");
            assert!(!e.message.is_empty(), "the error says nothing: {e}");
        }
    }
}

/// One input: what libFuzzer hands the target.
pub fn run(data: &[u8]) {
    if let Ok(p) = serde_json::from_slice::<PhiPolicy>(data) {
        let name = p.metadata.name.clone().unwrap_or_default();
        accepted_or_named(Policy::try_from(&p), &name);
        let set = PolicySet::build(&[hipaa_baseline(), p]);
        assert!(set.policies.len() + set.rejected.len() >= 1);
    }
    if let Ok(spec) = serde_json::from_slice::<PhiPolicySpec>(data) {
        accepted_or_named(Policy::from_spec("fuzz", &spec), "fuzz");
    }
}
