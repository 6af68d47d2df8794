//! Fuzz target: `party::fuzzing::rlwe_messages` must return on any input, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| party::fuzzing::rlwe_messages(data));
