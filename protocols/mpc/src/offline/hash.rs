//! AES-based primitives of the OT extension: the fixed-key tweakable correlation-robust hash, a
//! fixed-key PRG that stretches a 128-bit seed into a vector of ring elements, and the AES-128-CTR
//! column PRG of IKNP.
//!
//! * `tccr(i, x) = π(π(x) ⊕ i) ⊕ π(x)` with π = AES-128 under a fixed public key: the tweakable
//!   circular correlation-robust hash of Guo–Katz–Wang–Yu ("Efficient and Secure Multiparty
//!   Computation from Fixed-Key Block Ciphers", IEEE S&P 2020, §7), secure in the ideal-permutation
//!   model. The tweak is the global index of the OT instance, so no two instances share a hash.
//! * `expand(s, n)`: `n` words taken from the blocks `π(s ⊕ c) ⊕ s ⊕ c`, `c = 0, 1, …` (the
//!   Matyas–Meyer–Oseas feed-forward makes each block unpredictable without `s`; for `n ≤ 2` the seed's
//!   own words are used); [`expand_pad`] draws two 32-bit values per word where only the low
//!   `64 − k ≤ 32` bits of a Gilboa pad matter.
//! * [`ColumnPrg`]: AES-128 keyed by a base-OT seed in counter mode; it expands one column of the
//!   IKNP matrix and keeps its counter across extensions, so no keystream is ever reused.
//!
//! The `aes` crate (0.9) selects VAES (AVX-512) or AES-NI at run time; every batch of blocks
//! under one key goes through a single call into its backend (`aes_batch`), and the callers hand
//! it `BATCH` blocks or more at a time, which VAES needs to pay.

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes::Aes128;
pub use aes::Block;
use std::sync::OnceLock;

/// A 128-bit block, little-endian (bit `i` of the integer is bit `i` of the block).
pub type Block128 = u128;

/// Blocks encrypted per call into the cipher: the VAES backend's batch (16 ZMM registers of four
/// blocks); shorter calls fall back to one block at a time.
pub(crate) const BATCH: usize = 64;

/// The public key of the fixed-key permutation: the first 16 bytes of BLAKE3("Dyad fixed-key AES").
fn fixed_key() -> &'static Aes128 {
    static KEY: OnceLock<Aes128> = OnceLock::new();
    KEY.get_or_init(|| {
        let h = blake3::hash(b"Dyad fixed-key AES");
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.as_bytes()[..16]);
        Aes128::new(&k.into())
    })
}

/// Applies the AES permutation under `key` to every block of `xs` in place. The whole slice goes
/// through one call into the cipher's backend, chosen at run time: VAES on 64 blocks at a time
/// where the processor has AVX-512 and VAES (twice AES-NI's throughput here), else AES-NI's
/// eight-way pipeline. On little-endian targets the integers are the blocks (no copy).
pub(crate) fn aes_batch(key: &Aes128, xs: &mut [Block128]) {
    if cfg!(target_endian = "little") {
        let bytes: &mut [[u8; 16]] = bytemuck::cast_slice_mut(xs);
        key.encrypt_blocks(Block::cast_slice_from_core_mut(bytes));
        return;
    }
    for chunk in xs.chunks_mut(BATCH) {
        let mut b: [Block; BATCH] = core::array::from_fn(|_| Block::default());
        for (b, x) in b.iter_mut().zip(chunk.iter()) {
            *b = Block::from(x.to_le_bytes());
        }
        key.encrypt_blocks(&mut b[..chunk.len()]);
        for (x, b) in chunk.iter_mut().zip(b.iter()) {
            *x = u128::from_le_bytes((*b).into());
        }
    }
}

/// The fixed-key permutation π on every block of `xs`.
pub fn pi_batch(xs: &mut [Block128]) {
    aes_batch(fixed_key(), xs);
}

/// `tccr(first + k, xs[k])` for every `k`, in place.
pub fn tccr_batch(first: u64, xs: &mut [Block128]) {
    let mut tmp = [0u128; BATCH];
    for (c, chunk) in xs.chunks_mut(BATCH).enumerate() {
        let n = chunk.len();
        pi_batch(chunk);
        let base = first + (c * BATCH) as u64;
        for (k, (t, x)) in tmp.iter_mut().zip(chunk.iter()).enumerate() {
            *t = *x ^ (base + k as u64) as u128;
        }
        pi_batch(&mut tmp[..n]);
        for (x, t) in chunk.iter_mut().zip(tmp.iter()) {
            *x ^= *t;
        }
    }
}

/// The tweakable correlation-robust hash of one block.
pub fn tccr(tweak: u64, x: Block128) -> Block128 {
    let mut v = [x];
    tccr_batch(tweak, &mut v);
    v[0]
}

/// Stretches `seed` into `out.len()` words (see the module docs); `scratch` is reused between calls.
pub fn expand(seed: Block128, out: &mut [u64], scratch: &mut Vec<Block>) {
    let n = out.len();
    if n <= 2 {
        let w = [seed as u64, (seed >> 64) as u64];
        out.copy_from_slice(&w[..n]);
        return;
    }
    let blocks = n.div_ceil(2);
    scratch.resize(blocks, Block::default());
    for (c, b) in scratch.iter_mut().enumerate() {
        b.copy_from_slice(&(seed ^ c as u128).to_le_bytes());
    }
    fixed_key().encrypt_blocks(scratch);
    let (pairs, tail) = out.split_at_mut(n & !1);
    for (c, (pair, b)) in pairs.chunks_exact_mut(2).zip(scratch.iter()).enumerate() {
        let v = u128::from_le_bytes((*b).into()) ^ seed ^ c as u128;
        pair[0] = v as u64;
        pair[1] = (v >> 64) as u64;
    }
    if let [last] = tail {
        let c = blocks - 1;
        let v = u128::from_le_bytes(scratch[c].into()) ^ seed ^ c as u128;
        *last = v as u64;
    }
}

/// The pad of bit `k` of a Gilboa product: `out.len()` values of which only the low `64 − k` bits
/// matter. For `k ≥ 32` two 32-bit values come from each word of [`expand`], halving the AES work.
pub fn expand_pad(
    seed: Block128,
    k: usize,
    out: &mut [u64],
    words: &mut Vec<u64>,
    scratch: &mut Vec<Block>,
) {
    if k < 32 || out.len() <= 2 {
        expand(seed, out, scratch);
        return;
    }
    let n = out.len().div_ceil(2);
    words.resize(n, 0);
    expand(seed, words, scratch);
    for (pair, w) in out.chunks_mut(2).zip(words.iter()) {
        pair[0] = *w & 0xffff_ffff;
        if pair.len() > 1 {
            pair[1] = *w >> 32;
        }
    }
}

/// AES-128 in counter mode keyed by a base-OT seed: one column of the IKNP matrix.
#[derive(Clone)]
pub struct ColumnPrg {
    key: Aes128,
}

impl std::fmt::Debug for ColumnPrg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ColumnPrg(<key hidden>)")
    }
}

impl ColumnPrg {
    /// A generator keyed by `seed`.
    pub fn new(seed: &[u8; 16]) -> Self {
        Self {
            key: Aes128::new(&(*seed).into()),
        }
    }

    /// Writes the keystream blocks `counter, counter + 1, …` into `out` (as little-endian
    /// integers), in one call into the cipher (a multiple of `BATCH` blocks keeps VAES busy).
    pub fn blocks(&self, counter: u64, out: &mut [Block128]) {
        for (k, b) in out.iter_mut().enumerate() {
            *b = (counter + k as u64) as u128;
        }
        aes_batch(&self.key, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS-197 Appendix C.1 through the batch path, so the block/u128 conversions are checked.
    #[test]
    fn aes_known_answer() {
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let pt: [u8; 16] = core::array::from_fn(|i| (i as u8) * 0x11);
        let mut xs = [u128::from_le_bytes(pt); 3];
        aes_batch(&Aes128::new(&key.into()), &mut xs);
        let ct = [
            0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
            0xc5, 0x5a,
        ];
        assert!(xs.iter().all(|x| x.to_le_bytes() == ct));
    }

    #[test]
    fn tccr_depends_on_tweak_and_input_and_batches_agree() {
        let xs: Vec<u128> = (0..200u128).map(|i| i * 0x9e37_79b9_7f4a_7c15).collect();
        let mut batch = xs.clone();
        tccr_batch(1000, &mut batch);
        for (k, x) in xs.iter().enumerate() {
            assert_eq!(batch[k], tccr(1000 + k as u64, *x));
        }
        assert_ne!(tccr(1, 5), tccr(2, 5));
        assert_ne!(tccr(1, 5), tccr(1, 6));
    }

    #[test]
    fn expand_is_deterministic_and_prefix_consistent() {
        let mut s = Vec::new();
        let mut a = vec![0u64; 7];
        let mut b = vec![0u64; 8];
        expand(42, &mut a, &mut s);
        expand(42, &mut b, &mut s);
        assert_eq!(a[..], b[..7]);
        let mut c = vec![0u64; 8];
        expand(43, &mut c, &mut s);
        assert_ne!(b, c);
        let mut d = [0u64; 1];
        expand(7 | (9 << 64), &mut d, &mut s);
        assert_eq!(d, [7]);
    }

    #[test]
    fn column_prg_counter_continues_and_is_aes_ctr() {
        let seed = [3u8; 16];
        let p = ColumnPrg::new(&seed);
        let mut all = vec![0u128; 150];
        p.blocks(10, &mut all);
        let mut tail = vec![0u128; 50];
        p.blocks(110, &mut tail);
        assert_eq!(all[100..], tail[..]);
        let mut one = [Block::from(37u128.to_le_bytes())];
        Aes128::new(&seed.into()).encrypt_blocks(&mut one);
        assert_eq!(all[27], u128::from_le_bytes(one[0].into()));
    }
}
