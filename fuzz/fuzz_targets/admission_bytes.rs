//! (a) The webhook's `POST /validate` on arbitrary bytes: the AdmissionReview decoder, `judge`
//! and the answer, through the real router, with the invariants of `common::check_review`.
#![no_main]

use libfuzzer_sys::fuzz_target;

mod common;

fuzz_target!(|data: &[u8]| {
    common::check_review(data);
});
