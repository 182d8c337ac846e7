#![no_main]
//! Fuzz target: see `rampart::fuzzing::small_codecs`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart::fuzzing::small_codecs(data));
