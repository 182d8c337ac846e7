#![no_main]
//! Fuzz target: see `rampart::fuzzing::cache_envelope`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart::fuzzing::cache_envelope(data));
