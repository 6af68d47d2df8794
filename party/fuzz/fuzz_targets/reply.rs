//! Fuzz target: `party::fuzzing::reply` must return on any input, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| party::fuzzing::reply(data));
