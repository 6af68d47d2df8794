//! Fuzz target: `party::fuzzing::he_keys` must return on any input, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| party::fuzzing::he_keys(data));
