//! The one-directional drivers over a channel: random OT ([`send_rot`], [`receive_rot`]) and
//! correlated OT over Z_2^64 ([`send_cot`], [`receive_cot`]), in chunks of [`CHUNK_WORDS`] choice
//! words (131,072 OTs: a 2 MiB message, one frame).
//!
//! * Fused: every chunk goes from message to hashed outputs superblock by superblock
//!   ([`super::tiles`], [`super::outputs`]); the chunk's rows are never stored, and the outputs
//!   are written in place into the result (moved to the worker and back, not copied).
//! * Pipelined, so that both parties compute while the bytes move and neither waits on a
//!   round trip: the sender computes chunk `k` while it sends its answer to chunk `k − 1` and
//!   receives chunk `k + 1`'s message; the receiver expands chunk `k + 1` while it sends chunk
//!   `k`'s message and receives the answer to chunk `k − 2` (which it applies with the next
//!   expansion). Sends and receives of one step go out together ([`Channel::exchange_frame`]),
//!   so neither party's send can wait on the other's. Cost: each party holds two chunks'
//!   messages and two answers at a time (about 6 MiB).
//!
//! Security: exactly the messages of [`super`]'s protocol, in a different order; nothing a party
//! sends depends on what it received for a later chunk.

use super::outputs::receiver_cot_finish_bytes;
use super::state::Extension;
use super::{msg_bytes, Receiver, Sender, OT_WORK};
use crate::compute::offload_sized;
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::offline::{recv_bytes, send_bytes, CHUNK_WORDS, FRAME_BYTES};

// Every chunk's message and answer fit one frame.
const _: () = assert!(msg_bytes(CHUNK_WORDS) <= FRAME_BYTES && 8 * 64 * CHUNK_WORDS <= FRAME_BYTES);

/// Choice words `at..at + len` of chunk `k` of `words`, if there is such a chunk.
fn chunk(words: usize, k: usize) -> Option<(usize, usize)> {
    let at = k * CHUNK_WORDS;
    (at < words).then(|| (at, CHUNK_WORDS.min(words - at)))
}

/// One step of a pipeline's transfer: sends `out` (if any) while receiving `want` bytes (none
/// when 0), in one flight when both.
async fn step<C: Channel>(ch: &mut C, out: Option<Vec<u8>>, want: usize) -> Result<Vec<u8>> {
    match out {
        Some(b) if want > 0 => {
            let f = ch.exchange_frame(b, want).await?;
            if f.len() != want {
                return Err(MpcError::Malformed {
                    reason: format!("OT frame of {} bytes, expected {want}", f.len()),
                });
            }
            Ok(f)
        }
        Some(b) => {
            send_bytes(ch, b).await?;
            ch.flush().await?;
            Ok(Vec::new())
        }
        None => recv_bytes(ch, want).await,
    }
}

/// Sender side of `64 · words` random OTs: `(m_0, m_1)` per instance.
pub async fn send_rot<C: Channel>(
    ch: &mut C,
    sender: &mut Sender<Extension>,
    words: usize,
) -> Result<Vec<[u64; 2]>> {
    let mut out = vec![[0u64; 2]; 64 * words];
    let next_len = |k| chunk(words, k).map_or(0, |(_, w)| msg_bytes(w));
    let mut u = recv_bytes(ch, next_len(0)).await?;
    for k in 0.. {
        let Some((at, w)) = chunk(words, k) else {
            break;
        };
        let job = sender.reserve(w);
        let work = offload_sized(w * 64 * OT_WORK, move || {
            let r = job.rot(&u, &mut out[64 * at..64 * (at + w)]);
            (r, out)
        });
        let ((r, o), next_u) = tokio::join!(work, recv_bytes(ch, next_len(k + 1)));
        r?;
        (out, u) = (o, next_u?);
    }
    Ok(out)
}

/// Receiver side of random OTs with `choices` (packed LSB first): `m_{r_j}` per instance.
pub async fn receive_rot<C: Channel>(
    ch: &mut C,
    receiver: &mut Receiver<Extension>,
    choices: &[u64],
) -> Result<Vec<u64>> {
    let words = choices.len();
    let out = vec![0u64; 64 * words];
    let Some(first) = chunk(words, 0) else {
        return Ok(out);
    };
    let (mut u, mut out) = expand(receiver, choices, first, out, None).await;
    for k in 1.. {
        let Some(c) = chunk(words, k) else {
            break;
        };
        let (e, sent) = tokio::join!(
            expand(receiver, choices, c, out, None),
            step(ch, Some(u), 0)
        );
        sent?;
        (u, out) = e;
    }
    step(ch, Some(u), 0).await?;
    Ok(out)
}

/// Sender side of correlated OTs over Z_2^64 (`correlations.len()` a multiple of 64): returns the
/// sender's outputs `x_j`; the receiver gets `x_j + r_j·c_j`.
pub async fn send_cot<C: Channel>(
    ch: &mut C,
    sender: &mut Sender<Extension>,
    correlations: &[u64],
) -> Result<Vec<u64>> {
    if !correlations.len().is_multiple_of(64) {
        return Err(MpcError::ShapeMismatch {
            op: "send_cot: instances must be a multiple of 64",
            left: (correlations.len(), 1),
            right: (64, 1),
        });
    }
    let words = correlations.len() / 64;
    let mut out = vec![0u64; correlations.len()];
    let next_len = |k| chunk(words, k).map_or(0, |(_, w)| msg_bytes(w));
    let mut u = recv_bytes(ch, next_len(0)).await?;
    // This chunk's correlations, copied into a buffer that travels to the worker and back.
    let mut corr = Vec::with_capacity(64 * CHUNK_WORDS.min(words));
    let mut answer = None;
    for k in 0.. {
        let Some((at, w)) = chunk(words, k) else {
            break;
        };
        let job = sender.reserve(w);
        corr.clear();
        corr.extend_from_slice(&correlations[64 * at..64 * (at + w)]);
        let work = offload_sized(w * 64 * OT_WORK, move || {
            let d = job.cot(&u, &corr, &mut out[64 * at..64 * (at + w)]);
            (d, out, corr)
        });
        let ((d, o, c), next_u) = tokio::join!(work, step(ch, answer, next_len(k + 1)));
        (out, corr, u, answer) = (o, c, next_u?, Some(d?));
    }
    if let Some(d) = answer {
        step(ch, Some(d), 0).await?;
    }
    Ok(out)
}

/// Receiver side of correlated OTs over Z_2^64.
pub async fn receive_cot<C: Channel>(
    ch: &mut C,
    receiver: &mut Receiver<Extension>,
    choices: &[u64],
) -> Result<Vec<u64>> {
    let words = choices.len();
    let out = vec![0u64; 64 * words];
    let Some(first) = chunk(words, 0) else {
        return Ok(out);
    };
    let (u, mut out) = expand(receiver, choices, first, out, None).await;
    let (mut msg, mut pending) = (Some(u), None);
    // Step j sends chunk j's message, expands chunk j + 1 (applying the answer received in step
    // j − 1) and receives the answer to chunk j − 2.
    for j in 0..words.div_ceil(CHUNK_WORDS) + 2 {
        let want = j.checked_sub(2).and_then(|a| chunk(words, a));
        let apply = pending.take();
        let work = async {
            match chunk(words, j + 1) {
                Some(c) => {
                    let (u, o) = expand(receiver, choices, c, out, apply).await;
                    (Some(u), o)
                }
                None => (None, finish(choices, out, apply).await),
            }
        };
        let want_len = want.map_or(0, |(_, w)| 8 * 64 * w);
        let ((next, o), d) = tokio::join!(work, step(ch, msg, want_len));
        let d = d?;
        (out, msg) = (o, next);
        pending = want.map(|(at, len)| Answer { d, at, len });
    }
    Ok(finish(choices, out, pending).await)
}

/// The sender's correlated-OT answer `d` (little-endian words) to the chunk of choice words
/// `at..at + len`.
struct Answer {
    d: Vec<u8>,
    at: usize,
    len: usize,
}

impl Answer {
    /// `out_j += r_j·d_j` over this chunk; `choices` are the chunk's choice words.
    fn apply(&self, choices: &[u64], out: &mut [u64]) {
        let r = 64 * self.at..64 * (self.at + self.len);
        receiver_cot_finish_bytes(&mut out[r], &self.d, choices);
    }

    fn choices(&self, all: &[u64]) -> Vec<u64> {
        all[self.at..self.at + self.len].to_vec()
    }
}

/// Applies `answer` (if any) on the rayon pool.
async fn finish(choices: &[u64], mut out: Vec<u64>, answer: Option<Answer>) -> Vec<u64> {
    let Some(a) = answer else {
        return out;
    };
    let c = a.choices(choices);
    offload_sized(2 * 64 * a.len, move || {
        a.apply(&c, &mut out);
        out
    })
    .await
}

/// Expands one chunk (choice words `at..at + len`) as receiver on the rayon pool: its message,
/// and `H(t_j)` of its instances written into their place in `out`; applies `answer` (an earlier
/// chunk's correlated-OT answer) in the same hop.
async fn expand(
    receiver: &mut Receiver<Extension>,
    choices: &[u64],
    (at, len): (usize, usize),
    mut out: Vec<u64>,
    answer: Option<Answer>,
) -> (Vec<u8>, Vec<u64>) {
    let job = receiver.reserve(len);
    let c = choices[at..at + len].to_vec();
    let prev = answer.map(|a| (a.choices(choices), a));
    offload_sized(len * 64 * OT_WORK, move || {
        let msg = job.run_hashed(&c, &mut out[64 * at..64 * (at + len)]);
        if let Some((p, a)) = prev {
            a.apply(&p, &mut out);
        }
        (msg.u, out)
    })
    .await
}
