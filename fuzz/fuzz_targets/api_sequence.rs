//! Fuzz target `api_sequence`: see `oncelog::fuzzing::api_sequence`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oncelog::fuzzing::api_sequence(data));
