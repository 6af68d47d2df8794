//! From rows to OT outputs: the correlation-robust hash ([`tccr_batch`], tweak = global instance
//! index) applied to a run of rows, as random OT or ALSZ correlated OT over Z_2^64. Shared by the
//! block-level API ([`super::SenderBlocks`], [`super::ReceiverBlocks`]) and the fused chunk drivers,
//! so both compute exactly the same values. Runs are at most [`SUPER_OTS`] rows (stack buffers).

use super::tiles::SUPER_OTS;
use crate::offline::hash::{tccr_batch, Block128};

/// Sender rows `q` (instances `first, first + 1, …`) → both random-OT messages, truncated to 64
/// bits: `(H(q_j), H(q_j ⊕ Δ))`. Hashes `q` in place.
pub(crate) fn sender_rot(first: u64, q: &mut [Block128], delta: Block128, out: &mut [[u64; 2]]) {
    let mut h1 = [0u128; SUPER_OTS];
    let h1 = hash_both(first, q, delta, &mut h1);
    for ((o, a), b) in out.iter_mut().zip(q.iter()).zip(h1.iter()) {
        *o = [*a as u64, *b as u64];
    }
}

/// Sender rows `q` → ALSZ correlated OT with correlations `corr`: this party's outputs
/// `x_j = H(q_j)` and the message `d_j = x_j + c_j − H(q_j ⊕ Δ)` as little-endian bytes. Hashes
/// `q` in place.
pub(crate) fn sender_cot(
    first: u64,
    q: &mut [Block128],
    delta: Block128,
    corr: &[u64],
    x: &mut [u64],
    d: &mut [u8],
) {
    let mut h1 = [0u128; SUPER_OTS];
    let h1 = hash_both(first, q, delta, &mut h1);
    for (((x, d), (a, b)), c) in x
        .iter_mut()
        .zip(d.chunks_exact_mut(8))
        .zip(q.iter().zip(h1.iter()))
        .zip(corr)
    {
        *x = *a as u64;
        d.copy_from_slice(&(*x).wrapping_add(*c).wrapping_sub(*b as u64).to_le_bytes());
    }
}

/// `q_j ← H(q_j)` in place, and `H(q_j ⊕ Δ)` in `h1` (returned, cut to `q`'s length).
fn hash_both<'a>(
    first: u64,
    q: &mut [Block128],
    delta: Block128,
    h1: &'a mut [Block128; SUPER_OTS],
) -> &'a [Block128] {
    let h1 = &mut h1[..q.len()];
    for (b, q) in h1.iter_mut().zip(q.iter()) {
        *b = *q ^ delta;
    }
    tccr_batch(first, q);
    tccr_batch(first, h1);
    h1
}

/// Receiver rows `t` → `H(t_j)` truncated to 64 bits (random OT: the chosen message; correlated
/// OT: the output before the sender's message is added). Hashes `t` in place.
pub(crate) fn receiver_rot(first: u64, t: &mut [Block128], out: &mut [u64]) {
    tccr_batch(first, t);
    for (o, h) in out.iter_mut().zip(t.iter()) {
        *o = *h as u64;
    }
}

/// Correlated OT, receiver's last step: `out_j += r_j·d_j` with `d` the sender's message and
/// `choices` the packed choice bits of these instances.
pub(crate) fn receiver_cot_finish(
    out: &mut [u64],
    d: impl IntoIterator<Item = u64>,
    choices: &[u64],
) {
    for (j, (o, d)) in out.iter_mut().zip(d).enumerate() {
        let r = ((choices[j / 64] >> (j % 64)) & 1).wrapping_neg();
        *o = o.wrapping_add(d & r);
    }
}

/// The little-endian words of `bytes` (whose length is a multiple of 8).
pub(crate) fn le_words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().expect("8-byte word")))
}
