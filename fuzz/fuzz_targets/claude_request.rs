//! Fuzz target: `amq2api::claude::request::fuzz_one` (its doc says what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| amq2api::claude::request::fuzz_one(data));
