//! From rows to OT outputs: the correlation-robust hash ([`tccr_batch`], tweak = global instance
//! index) applied to a run of rows, as random OT or ALSZ correlated OT over Z_2^64. Shared by the
//! block-level API ([`super::SenderBlocks`], [`super::ReceiverBlocks`]) and the fused chunk drivers,
//! so both compute exactly the same values.

use crate::offline::hash::{tccr_batch, Block128};
use crate::offline::transpose::best_simd;

/// Sender rows `q` (instances `first, first + 1, …`) → both random-OT messages, truncated to 64
/// bits: `(H(q_j), H(q_j ⊕ Δ))`. Hashes `q` in place.
pub(crate) fn sender_rot(first: u64, q: &mut [Block128], delta: Block128, out: &mut [[u64; 2]]) {
    hash_both(first, q, delta, |j, a, b| out[j] = [a as u64, b as u64]);
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
    hash_both(first, q, delta, |j, a, b| {
        x[j] = a as u64;
        let dj = x[j].wrapping_add(corr[j]).wrapping_sub(b as u64);
        d[8 * j..8 * j + 8].copy_from_slice(&dj.to_le_bytes());
    });
}

/// Rows hashed per batch (a stack buffer, filled from the rows, never cleared).
const HASH_BATCH: usize = 64;

/// Calls `emit(j, H(q_j), H(q_j ⊕ Δ))` for every row, [`HASH_BATCH`] rows at a time; `q` is
/// hashed in place.
fn hash_both(
    first: u64,
    q: &mut [Block128],
    delta: Block128,
    mut emit: impl FnMut(usize, Block128, Block128),
) {
    for (c, qc) in q.chunks_mut(HASH_BATCH).enumerate() {
        let n = qc.len();
        let mut h1: [Block128; HASH_BATCH] =
            core::array::from_fn(|k| qc.get(k).map_or(0, |x| x ^ delta));
        let tweak = first + (c * HASH_BATCH) as u64;
        tccr_batch(tweak, qc);
        tccr_batch(tweak, &mut h1[..n]);
        for (k, (a, b)) in qc.iter().zip(h1.iter()).enumerate() {
            emit(c * HASH_BATCH + k, *a, *b);
        }
    }
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

/// [`receiver_cot_finish`] with the message as little-endian bytes, a choice word (64
/// instances) at a time: no bounds checks or divisions in the inner loop.
/// Compiled for AVX-512 / AVX2 where present ([`best_simd`]: per-lane shifts of the choice word).
pub(crate) fn receiver_cot_finish_bytes(out: &mut [u64], d: &[u8], choices: &[u64]) {
    assert_eq!(d.len(), 8 * out.len(), "COT message length");
    best_simd(
        #[inline(always)]
        || {
            for ((o, d), c) in out.chunks_mut(64).zip(d.chunks(512)).zip(choices) {
                for (k, (o, d)) in o.iter_mut().zip(d.chunks_exact(8)).enumerate() {
                    let r = ((c >> k) & 1).wrapping_neg();
                    let d = u64::from_le_bytes(d.try_into().expect("8-byte word"));
                    *o = o.wrapping_add(d & r);
                }
            }
        },
    )
}

/// The little-endian words of `bytes` (whose length is a multiple of 8).
pub(crate) fn le_words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().expect("8-byte word")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The word-at-a-time byte version agrees with the reference, partial last word included.
        #[test]
        fn finish_bytes_matches_reference(
            n in 1usize..300,
            seed in any::<u64>(),
        ) {
            let mut x = seed | 1;
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let out: Vec<u64> = (0..n).map(|_| next()).collect();
            let d: Vec<u64> = (0..n).map(|_| next()).collect();
            let choices: Vec<u64> = (0..n.div_ceil(64)).map(|_| next()).collect();
            let bytes: Vec<u8> = d.iter().flat_map(|w| w.to_le_bytes()).collect();
            let mut a = out.clone();
            receiver_cot_finish(&mut a, d.iter().copied(), &choices);
            let mut b = out;
            receiver_cot_finish_bytes(&mut b, &bytes, &choices);
            prop_assert_eq!(a, b);
        }
    }
}
