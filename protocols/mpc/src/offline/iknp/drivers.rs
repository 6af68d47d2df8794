//! The one-directional drivers over a channel: random OT ([`send_rot`], [`receive_rot`]) and
//! correlated OT over Z_2^64 ([`send_cot`], [`receive_cot`]), in chunks of [`CHUNK_WORDS`] choice
//! words (131,072 OTs: a 2 MiB message, one frame).
//!
//! * Fused: every chunk goes from message to hashed outputs superblock by superblock
//!   ([`super::tiles`], [`super::outputs`]); the chunk's rows are never stored, and the outputs
//!   are written in place into the result (moved to the worker and back, not copied).
//! * Pipelined: the sender receives chunk `k + 1`'s message while it processes chunk `k`; the
//!   receiver expands chunk `k + 1` while the sender processes chunk `k`, and sends it while it
//!   receives the sender's answer to chunk `k` ([`Channel::exchange_frame`], so neither party's
//!   send can wait on the other's). A random-OT receiver never waits.
//!
//! Security: exactly the messages of [`super`]'s protocol, in a different order; nothing a party
//! sends depends on what it received for a later chunk.

use super::outputs::{le_words, receiver_cot_finish};
use super::state::Extension;
use super::{msg_bytes, Receiver, Sender, OT_WORK};
use crate::compute::offload_sized;
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::offline::{recv_bytes, send_bytes, CHUNK_WORDS, FRAME_BYTES};
use std::sync::Arc;

// Every chunk's message and answer fit one frame.
const _: () = assert!(msg_bytes(CHUNK_WORDS) <= FRAME_BYTES && 8 * 64 * CHUNK_WORDS <= FRAME_BYTES);

/// Sender side of `64 · words` random OTs: `(m_0, m_1)` per instance.
pub async fn send_rot<C: Channel>(
    ch: &mut C,
    sender: &mut Sender<Extension>,
    words: usize,
) -> Result<Vec<[u64; 2]>> {
    let mut out = vec![[0u64; 2]; 64 * words];
    let mut at = 0;
    let mut u = recv_bytes(ch, msg_bytes(CHUNK_WORDS.min(words))).await?;
    while at < words {
        let w = CHUNK_WORDS.min(words - at);
        let job = sender.reserve(w);
        let work = offload_sized(w * 64 * OT_WORK, move || {
            let r = job.rot(&u, &mut out[64 * at..64 * (at + w)]);
            (r, out)
        });
        let next = CHUNK_WORDS.min(words - at - w);
        let ((r, o), next_u) = tokio::join!(work, recv_bytes(ch, msg_bytes(next)));
        r?;
        (out, u, at) = (o, next_u?, at + w);
    }
    Ok(out)
}

/// Receiver side of random OTs with `choices` (packed LSB first): `m_{r_j}` per instance.
pub async fn receive_rot<C: Channel>(
    ch: &mut C,
    receiver: &mut Receiver<Extension>,
    choices: &[u64],
) -> Result<Vec<u64>> {
    let mut out = vec![0u64; 64 * choices.len()];
    for (k, chunk) in choices.chunks(CHUNK_WORDS).enumerate() {
        let u;
        (u, out) = expand(receiver, chunk, k * CHUNK_WORDS, out).await;
        send_bytes(ch, u).await?;
        ch.flush().await?;
    }
    Ok(out)
}

/// Sender side of correlated OTs over Z_2^64 (`correlations.len()` a multiple of 64): returns the
/// sender's outputs `x_j`; the receiver gets `x_j + r_j·c_j`.
pub async fn send_cot<C: Channel>(
    ch: &mut C,
    sender: &mut Sender<Extension>,
    correlations: &[u64],
) -> Result<Vec<u64>> {
    if correlations.len() % 64 != 0 {
        return Err(MpcError::ShapeMismatch {
            op: "send_cot: instances must be a multiple of 64",
            left: (correlations.len(), 1),
            right: (64, 1),
        });
    }
    let words = correlations.len() / 64;
    let corr: Arc<[u64]> = correlations.into();
    let mut out = vec![0u64; correlations.len()];
    let mut at = 0;
    let mut u = recv_bytes(ch, msg_bytes(CHUNK_WORDS.min(words))).await?;
    while at < words {
        let w = CHUNK_WORDS.min(words - at);
        let job = sender.reserve(w);
        let c = corr.clone();
        let work = offload_sized(w * 64 * OT_WORK, move || {
            let (r, x) = (64 * at..64 * (at + w), &mut out);
            let d = job.cot(&u, &c[r.clone()], &mut x[r]);
            (d, out)
        });
        let next = CHUNK_WORDS.min(words - at - w);
        let ((d, o), next_u) = tokio::join!(work, recv_bytes(ch, msg_bytes(next)));
        send_bytes(ch, d?).await?;
        ch.flush().await?;
        (out, u, at) = (o, next_u?, at + w);
    }
    Ok(out)
}

/// Receiver side of correlated OTs over Z_2^64.
pub async fn receive_cot<C: Channel>(
    ch: &mut C,
    receiver: &mut Receiver<Extension>,
    choices: &[u64],
) -> Result<Vec<u64>> {
    let mut out = vec![0u64; 64 * choices.len()];
    let mut chunks = choices.chunks(CHUNK_WORDS);
    let Some(first) = chunks.next() else {
        return Ok(out);
    };
    let u;
    (u, out) = expand(receiver, first, 0, out).await;
    send_bytes(ch, u).await?;
    ch.flush().await?;
    // The chunk awaiting the sender's answer: its first choice word and its length.
    let (mut at, mut len) = (0, first.len());
    loop {
        let n = 64 * len;
        let (d, next) = match chunks.next() {
            Some(c) => {
                let u;
                (u, out) = expand(receiver, c, at + len, out).await;
                (ch.exchange_frame(u, 8 * n).await?, Some(c.len()))
            }
            None => (recv_bytes(ch, 8 * n).await?, None),
        };
        if d.len() != 8 * n {
            return Err(MpcError::Malformed {
                reason: format!("COT message of {} bytes, expected {}", d.len(), 8 * n),
            });
        }
        let c = choices[at..at + len].to_vec();
        out = offload_sized(2 * n, move || {
            receiver_cot_finish(&mut out[64 * at..64 * at + n], le_words(&d), &c);
            out
        })
        .await;
        match next {
            Some(l) => (at, len) = (at + len, l),
            None => return Ok(out),
        }
    }
}

/// Expands one chunk (choice words `at..`) as receiver: its message, and `H(t_j)` of its
/// instances written into their place in `out`.
async fn expand(
    receiver: &mut Receiver<Extension>,
    chunk: &[u64],
    at: usize,
    mut out: Vec<u64>,
) -> (Vec<u8>, Vec<u64>) {
    let job = receiver.reserve(chunk.len());
    let c = chunk.to_vec();
    offload_sized(chunk.len() * 64 * OT_WORK, move || {
        let msg = job.run_hashed(&c, &mut out[64 * at..64 * (at + c.len())]);
        (msg.u, out)
    })
    .await
}
