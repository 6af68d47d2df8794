//! Every message decoder of the party protocol on arbitrary bytes: must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use party::proto::{decode, ClientHello, ClientRequest, PeerReply, PeerRequest, Reply, MAX_CONTROL_FRAME};

fuzz_target!(|data: &[u8]| {
    let _ = decode::<ClientHello>(data, MAX_CONTROL_FRAME);
    let _ = decode::<ClientRequest>(data, MAX_CONTROL_FRAME);
    let _ = decode::<Reply>(data, MAX_CONTROL_FRAME);
    let _ = decode::<PeerRequest>(data, MAX_CONTROL_FRAME);
    let _ = decode::<PeerReply>(data, MAX_CONTROL_FRAME);
});
