#![no_main]
//! Fuzz target: see `rampart::fuzzing::lock_state`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart::fuzzing::lock_state(data));
