//! (a) The webhook's `POST /validate` on arbitrary bytes: the AdmissionReview decoder, `judge`
//! and the answer, through the real router, with the invariants of `common::check_review`.
//!
//! The target's body: `fuzz_targets/admission_bytes.rs` hands it libFuzzer's inputs, and the main
//! crate's `tests/fuzz_replay.rs` replays the committed corpus and regressions through it on
//! stable Rust (`make unit`).

/// One input: what libFuzzer hands the target.
pub fn run(data: &[u8]) {
    crate::common::check_review(data);
}
