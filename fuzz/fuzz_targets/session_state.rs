#![no_main]
//! Fuzz target: see `rampart::fuzzing::session_state`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart::fuzzing::session_state(data));
