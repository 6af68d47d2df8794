//! Fuzz target: `party::fuzzing::client_hello` must return on any input, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| party::fuzzing::client_hello(data));
