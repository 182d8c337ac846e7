#![no_main]
//! Fuzz target: see `rampart::fuzzing::keys`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart::fuzzing::keys(data));
