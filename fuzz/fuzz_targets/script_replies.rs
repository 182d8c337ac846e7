#![no_main]
//! Fuzz target: see `rampart::fuzzing::script_replies`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart::fuzzing::script_replies(data));
