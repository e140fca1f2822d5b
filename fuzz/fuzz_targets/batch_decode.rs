//! Fuzz target `batch_decode`: see `oncelog::fuzzing::batch_decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oncelog::fuzzing::batch_decode(data));
