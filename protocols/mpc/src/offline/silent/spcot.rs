//! Regular-noise multi-point COT from `t` single-point COTs, one GGM tree of `2^h` leaves per
//! block of outputs (Ferret, CCS 2020, §3–4), semi-honest; sans-I/O.
//!
//! Tree `j` uses the `h` seed COTs `g = j·h + i` (`i = 0 … h−1`, top level first): the sender
//! holds `q_g` and Δ, the receiver `t_g = q_g ⊕ r_g·Δ` with a random choice `r_g`. The receiver's
//! path goes to the side `α_i = ¬r_g` at level `i + 1`, so its punctured point `α_j` is fixed by
//! its seed choices and it sends nothing. The sender sends, per level, the two level sums masked
//! as an OT from the COT (`K_i^0 ⊕ H(q_g)`, `K_i^1 ⊕ H(q_g ⊕ Δ)`, [`tccr`] with the seed's
//! instance index as tweak), and finally `c_j = Δ ⊕ ⊕_l v_l` over all its leaves. The receiver
//! unmasks `K_i^{r_g}` (the side off its path), rebuilds every leaf but `α_j`
//! ([`super::ggm::puncture`]) and sets `w_{α_j} = c_j ⊕ ⊕_{l≠α_j} v_l = v_{α_j} ⊕ Δ`.
//!
//! Result, in the convention of [`crate::offline::iknp`] (`q = t ⊕ b·Δ`): the sender's
//! outputs `v` and the receiver's `w` agree everywhere except at one point per block, where they
//! differ by Δ; the receiver's choice vector `e` is 1 exactly there.
//!
//! Security (semi-honest): the receiver's view is the masked sums and `c_j`; `K_i^{¬r_g}` is
//! hidden by `H(q_g ⊕ ¬r_g·Δ)`, pseudorandom given `t_g` (circular correlation robustness of
//! [`tccr`]), so the leaf `v_{α_j}` is pseudorandom to it and `c_j` hides Δ. The sender receives
//! nothing. Message: `t · (2h + 1)` blocks.

use super::ggm::{expand, puncture};
use super::params::LpnParams;
use crate::offline::hash::{tccr, Block128};
use rayon::prelude::*;

/// Blocks of the sender's message per tree.
pub const fn tree_blocks(p: &LpnParams) -> usize {
    2 * p.h + 1
}

/// Blocks of the sender's message for all trees.
pub const fn msg_blocks(p: &LpnParams) -> usize {
    p.t * tree_blocks(p)
}

/// Sender: expands the `t` trees from `roots` into `out` (`n` blocks, tree `j` in block `j`) and
/// returns the message. `base_q` holds the `t·h` seed COTs of the trees, the first with instance
/// index (tweak) `base_first`.
pub fn send(
    p: &LpnParams,
    delta: Block128,
    roots: &[Block128],
    base_q: &[Block128],
    base_first: u64,
    out: &mut [Block128],
) -> Vec<Block128> {
    assert_eq!(
        (roots.len(), base_q.len(), out.len()),
        (p.t, p.t * p.h, p.n)
    );
    let mut msg = vec![0u128; msg_blocks(p)];
    out.par_chunks_mut(p.leaves())
        .zip(msg.par_chunks_mut(tree_blocks(p)))
        .zip(roots.par_iter().zip(base_q.par_chunks(p.h)))
        .enumerate()
        .for_each(|(j, ((leaves, m), (root, q)))| {
            let mut sums = vec![[0u128; 2]; p.h];
            expand(*root, leaves, &mut sums);
            for (i, (s, q)) in sums.iter().zip(q).enumerate() {
                let tweak = base_first + (j * p.h + i) as u64;
                m[2 * i] = s[0] ^ tccr(tweak, *q);
                m[2 * i + 1] = s[1] ^ tccr(tweak, *q ^ delta);
            }
            m[2 * p.h] = leaves.iter().fold(delta, |a, v| a ^ v);
        });
    msg
}

/// Receiver: rebuilds the trees from the sender's `msg` into `out` (`n` blocks) and returns the
/// punctured point `α_j` of every tree. `base_t` and `base_choice(g)` are the `t·h` seed COTs and
/// their choice bits, the first with instance index `base_first`.
pub fn receive(
    p: &LpnParams,
    base_t: &[Block128],
    base_choice: impl Fn(usize) -> bool + Sync,
    base_first: u64,
    msg: &[Block128],
    out: &mut [Block128],
) -> Vec<usize> {
    assert_eq!(
        (base_t.len(), msg.len(), out.len()),
        (p.t * p.h, msg_blocks(p), p.n)
    );
    let mut alphas = vec![0usize; p.t];
    out.par_chunks_mut(p.leaves())
        .zip(msg.par_chunks(tree_blocks(p)))
        .zip(alphas.par_iter_mut())
        .enumerate()
        .for_each(|(j, ((leaves, m), a))| {
            let mut known = vec![0u128; p.h];
            let mut alpha = 0;
            for (i, k) in known.iter_mut().enumerate() {
                let g = j * p.h + i;
                let r = base_choice(g) as usize;
                *k = m[2 * i + r] ^ tccr(base_first + g as u64, base_t[g]);
                alpha = (alpha << 1) | (1 - r);
            }
            puncture(alpha, &known, leaves);
            leaves[alpha] = leaves.iter().fold(m[2 * p.h], |a, v| a ^ v);
            *a = alpha;
        });
    alphas
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// Seed COTs made in the clear: `q = t ⊕ r·Δ`.
    fn seeds(rng: &mut ChaCha20Rng, n: usize, delta: u128) -> (Vec<u128>, Vec<u128>, Vec<bool>) {
        let t: Vec<u128> = (0..n).map(|_| rng.gen()).collect();
        let r: Vec<bool> = (0..n).map(|_| rng.gen()).collect();
        let q = t
            .iter()
            .zip(&r)
            .map(|(t, &r)| t ^ (r as u128 * delta))
            .collect();
        (q, t, r)
    }

    /// Single-point (t = 1) and multi-point: every output agrees except the punctured point of
    /// each block, where sender and receiver differ by exactly Δ; the points follow the choices.
    #[test]
    fn outputs_differ_by_delta_exactly_at_the_points() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for p in [
            LpnParams {
                n: 1 << 7,
                k: 0,
                t: 1,
                h: 7,
            },
            LpnParams {
                n: 37 << 5,
                k: 0,
                t: 37,
                h: 5,
            },
        ] {
            let delta: u128 = rng.gen();
            let (q, t, r) = seeds(&mut rng, p.t * p.h, delta);
            let roots: Vec<u128> = (0..p.t).map(|_| rng.gen()).collect();
            let (mut v, mut w) = (vec![0u128; p.n], vec![7u128; p.n]);
            let msg = send(&p, delta, &roots, &q, 100, &mut v);
            assert_eq!(msg.len(), msg_blocks(&p));
            let alphas = receive(&p, &t, |g| r[g], 100, &msg, &mut w);
            for (j, &a) in alphas.iter().enumerate() {
                let want: usize = (0..p.h).fold(0, |acc, i| (acc << 1) | !r[j * p.h + i] as usize);
                assert_eq!(a, want, "tree {j}");
                for l in 0..p.leaves() {
                    let x = j * p.leaves() + l;
                    let d = if l == a { delta } else { 0 };
                    assert_eq!(v[x] ^ w[x], d, "tree {j} leaf {l}");
                }
            }
            // A wrong tweak (a receiver out of step) breaks the point, not silently agreeing.
            let mut w2 = vec![0u128; p.n];
            receive(&p, &t, |g| r[g], 101, &msg, &mut w2);
            assert_ne!(w, w2);
        }
    }
}
