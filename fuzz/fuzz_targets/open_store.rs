//! Fuzz target `open_store`: see `oncelog::fuzzing::open_store`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| oncelog::fuzzing::open_store(data));
