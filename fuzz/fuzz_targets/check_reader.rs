//! libFuzzer's entry for `targets/check_reader.rs` (what it checks is there).
#![no_main]

mod common;
#[path = "targets/check_reader.rs"]
mod target;

libfuzzer_sys::fuzz_target!(|data: &[u8]| target::run(data));
