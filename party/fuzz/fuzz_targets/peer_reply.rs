//! Fuzz target: `party::fuzzing::peer_reply` must return on any input, never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| party::fuzzing::peer_reply(data));
