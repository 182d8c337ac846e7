#![no_main]
//! Fuzz target: see `rampart::fuzzing::tokens`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart::fuzzing::tokens(data));
