#![no_main]
//! Fuzz target: see `rampart_redis::fuzzing::redis_config_url`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rampart_redis::fuzzing::redis_config_url(data));
