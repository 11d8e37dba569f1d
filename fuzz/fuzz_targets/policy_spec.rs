//! libFuzzer's entry for `targets/policy_spec.rs` (what it checks is there).
#![no_main]

mod common;
#[path = "targets/policy_spec.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
