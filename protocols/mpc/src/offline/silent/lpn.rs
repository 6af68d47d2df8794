//! The primal-LPN expansion with a local linear code (Ferret, CCS 2020, §5): output `i` adds the
//! seed COTs at the [`CODE_WEIGHT`] row indices `A_i ⊂ [0, k)` to the multi-point COT's output
//! `i`. The sender's `q_i ⊕= ⊕_{l ∈ A_i} q_l`; the receiver's `t_i ⊕= ⊕ t_l` and
//! `b_i = e_i ⊕ ⊕ u_l`; so `q_i = t_i ⊕ b_i·Δ` on every output, and `b = e + A·u` is
//! pseudorandom under primal LPN with regular noise `e` and secret `u` (the seed choices).
//!
//! The code is public and fixed per parameter set: the indices of row `i` come from AES-128 in
//! counter mode (blocks `5i … 5i + 4`, two 64-bit draws each, mapped to `[0, k)` by a
//! multiply-shift with bias below `k / 2^64`) under the key BLAKE3("Dyad silent OT LPN code" ‖ n
//! ‖ k). Indices may repeat within a row (then they cancel), as in emp-ot's code.

use super::params::{LpnParams, CODE_WEIGHT};
use crate::offline::hash::{aes_batch, Block128};
use aes::cipher::KeyInit;
use aes::Aes128;
use rayon::prelude::*;

/// AES blocks per row (two indices per block).
const ROW_BLOCKS: usize = CODE_WEIGHT / 2;
/// Rows per task, a multiple of 64 so receiver tasks own whole choice words.
const ROWS: usize = 64 * 16;

/// The public code of one parameter set.
pub struct Code {
    key: Aes128,
    k: usize,
}

impl std::fmt::Debug for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "lpn::Code(k = {})", self.k)
    }
}

impl Code {
    /// The code of `p`.
    pub fn new(p: &LpnParams) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(b"Dyad silent OT LPN code");
        h.update(&(p.n as u64).to_le_bytes());
        h.update(&(p.k as u64).to_le_bytes());
        let k: [u8; 16] = h.finalize().as_bytes()[..16].try_into().expect("16 bytes");
        Self {
            key: Aes128::new(&k.into()),
            k: p.k,
        }
    }

    /// Row indices of rows `first, first + 1, …` into `idx` ([`CODE_WEIGHT`] per row).
    fn rows(&self, first: usize, idx: &mut [u32], buf: &mut Vec<Block128>) {
        let rows = idx.len() / CODE_WEIGHT;
        buf.clear();
        buf.extend((0..rows * ROW_BLOCKS).map(|c| (first * ROW_BLOCKS + c) as u128));
        aes_batch(&self.key, buf);
        let k = self.k as u128;
        for (pair, b) in idx.chunks_exact_mut(2).zip(buf.iter()) {
            pair[0] = (((*b as u64) as u128 * k) >> 64) as u32;
            pair[1] = ((((*b >> 64) as u64) as u128 * k) >> 64) as u32;
        }
    }

    /// Runs `f(first row, rows, indices)` over the rows of `out` in parallel tasks of [`ROWS`].
    fn for_rows<T: Send>(&self, out: &mut [T], f: impl Fn(usize, &mut [T], &[u32]) + Sync + Send) {
        out.par_chunks_mut(ROWS).enumerate().for_each_init(
            || (vec![0u32; ROWS * CODE_WEIGHT], Vec::new()),
            |(idx, buf), (c, o)| {
                let idx = &mut idx[..o.len() * CODE_WEIGHT];
                self.rows(c * ROWS, idx, buf);
                f(c * ROWS, o, idx);
            },
        );
    }

    /// Sender: `out_i ⊕= ⊕_{l ∈ A_i} seeds_l`.
    pub fn expand_sender(&self, seeds: &[Block128], out: &mut [Block128]) {
        assert_eq!(seeds.len(), self.k, "LPN seed COTs");
        self.for_rows(out, |_, o, idx| {
            for (x, row) in o.iter_mut().zip(idx.chunks_exact(CODE_WEIGHT)) {
                *x = row.iter().fold(*x, |a, &l| a ^ seeds[l as usize]);
            }
        });
    }

    /// Receiver: `out_i ⊕= ⊕ seeds_l` and `choices_i ⊕= ⊕ u_l` (`u` packed LSB first, `k` bits;
    /// `choices` packed, one bit per output).
    pub fn expand_receiver(
        &self,
        seeds: &[Block128],
        u: &[u64],
        out: &mut [Block128],
        choices: &mut [u64],
    ) {
        assert_eq!(seeds.len(), self.k, "LPN seed COTs");
        assert!(u.len() * 64 >= self.k && choices.len() * 64 == out.len());
        let bit = |l: u32| (u[l as usize / 64] >> (l % 64)) & 1;
        let mut zipped: Vec<(&mut [Block128], &mut u64)> =
            out.chunks_mut(64).zip(choices.iter_mut()).collect();
        let words_per_task = ROWS / 64;
        zipped
            .par_chunks_mut(words_per_task)
            .enumerate()
            .for_each_init(
                || (vec![0u32; ROWS * CODE_WEIGHT], Vec::new()),
                |(idx, buf), (c, words)| {
                    let rows: usize = words.iter().map(|(o, _)| o.len()).sum();
                    let idx = &mut idx[..rows * CODE_WEIGHT];
                    self.rows(c * ROWS, idx, buf);
                    let mut rows = idx.chunks_exact(CODE_WEIGHT);
                    for (o, w) in words.iter_mut() {
                        for (b, x) in o.iter_mut().enumerate() {
                            let row = rows.next().expect("a row per output");
                            *x = row.iter().fold(*x, |a, &l| a ^ seeds[l as usize]);
                            let p = row.iter().fold(0, |a, &l| a ^ bit(l));
                            **w ^= p << b;
                        }
                    }
                },
            );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// The expansion keeps `q = t ⊕ b·Δ` on every output and matches a plain row-by-row
    /// computation; indices cover `[0, k)` and both parties' codes agree.
    #[test]
    fn expansion_keeps_the_correlation() {
        let p = LpnParams {
            n: 64 * 50 + 64,
            k: 300,
            t: 1,
            h: 0,
        };
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let delta: u128 = rng.gen();
        let u: Vec<u64> = (0..p.k.div_ceil(64)).map(|_| rng.gen()).collect();
        let ts: Vec<u128> = (0..p.k).map(|_| rng.gen()).collect();
        let qs: Vec<u128> = (0..p.k)
            .map(|l| ts[l] ^ (((u[l / 64] >> (l % 64)) & 1) as u128 * delta))
            .collect();
        let e: Vec<u64> = (0..p.n / 64).map(|_| rng.gen()).collect();
        let w: Vec<u128> = (0..p.n).map(|_| rng.gen()).collect();
        let v: Vec<u128> = (0..p.n)
            .map(|i| w[i] ^ (((e[i / 64] >> (i % 64)) & 1) as u128 * delta))
            .collect();
        let (mut q, mut t, mut b) = (v.clone(), w.clone(), e.clone());
        Code::new(&p).expand_sender(&qs, &mut q);
        Code::new(&p).expand_receiver(&ts, &u, &mut t, &mut b);
        let code = Code::new(&p);
        let mut idx = vec![0u32; p.n * CODE_WEIGHT];
        code.rows(0, &mut idx, &mut Vec::new());
        let mut seen = vec![false; p.k];
        for i in 0..p.n {
            let bi = (b[i / 64] >> (i % 64)) & 1;
            assert_eq!(q[i], t[i] ^ (bi as u128 * delta), "output {i}");
            let row = &idx[i * CODE_WEIGHT..(i + 1) * CODE_WEIGHT];
            let want_t = row.iter().fold(w[i], |a, &l| a ^ ts[l as usize]);
            assert_eq!(t[i], want_t, "output {i}");
            row.iter().for_each(|&l| seen[l as usize] = true);
        }
        assert!(seen.iter().all(|&s| s), "every seed is used");
        // The choices moved away from the noise: about half of the bits flipped.
        let flips: u32 = b.iter().zip(&e).map(|(x, y)| (x ^ y).count_ones()).sum();
        assert!((flips as f64 / p.n as f64 - 0.5).abs() < 0.05, "{flips}");
    }
}
