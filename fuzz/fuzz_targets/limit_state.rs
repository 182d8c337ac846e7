#![no_main]
//! Fuzz target: see `rampart::fuzzing::limit_state`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart::fuzzing::limit_state(data));
