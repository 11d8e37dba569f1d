//! libFuzzer's entry for `targets/admission_structured.rs` (what it checks is there).
#![no_main]

mod common;
#[path = "targets/admission_structured.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
