//! Randomness for keys, masks, noise and public polynomials, all drawn from a ChaCha20 CSPRNG
//! (`rand_chacha::ChaCha20Rng`, seeded from the OS by [`os_rng`] unless a caller supplies the
//! generator; every caller must pass a cryptographically secure generator).
//!
//! * Secrets and encryption masks: uniform ternary {-1, 0, 1} ([`ternary`]; the "ternary
//!   secret" row of the HE Security Standard v1.1).
//! * Errors: the discrete Gaussian with σ = [`SIGMA`] = 3.2 (HE standard §2.1) truncated to
//!   `|e| ≤` [`ERROR_BOUND`] = 19 (≈ 6σ; the removed tail mass is about 2^-29 per coefficient),
//!   sampled by inverting its cumulative distribution ([`gaussian`], [`gaussian_one`]).
//! * Uniform residues, drawn directly in the NTT domain (the NTT is a bijection, so this is still
//!   uniform) from a generator or a 32-byte public seed, which lets ciphertexts and keys carry
//!   the seed instead of the polynomial ([`uniform_ntt`], [`expand_seed_high_bits`]).
//!
//! ## Why this Gaussian sampler
//!
//! The workspace had two: a rounded continuous Gaussian (Box–Muller on 53-bit uniforms, with
//! rejection beyond the bound) and this table inversion. The table is kept because it samples
//! the *exact* truncated discrete Gaussian (up to the 2^-64 resolution of its thresholds) that
//! the RLWE security estimates assume — rounding a continuous Gaussian changes the variance by
//! 1/12 — and because it runs in constant time: one 64-bit word per sample, compared with every
//! one of the 39 thresholds without branching, where Box–Muller calls `ln`, `sqrt`, `sin`/`cos`
//! (variable-time in common libms) and rejects a data-dependent number of draws.
//!
//! ## Two seed expansions
//!
//! [`uniform_ntt`] (CKKS: low bits of each 64-bit word, rejection at once) and
//! [`expand_seed_high_bits`] (RLWE triple source: one bulk fill, high bits, rejections redrawn
//! at the end) are both exactly uniform; they differ in how they consume the ChaCha20 stream,
//! and each is fixed by the serialized formats that carry seeds (a CKKS ciphertext or key, an
//! RLWE query or public key expands to the same polynomial on both sides and across versions).

use std::sync::OnceLock;

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

use crate::basis::RnsBasis;
use crate::poly::{Ntt, RnsPoly};

/// Standard deviation of the error distribution.
pub const SIGMA: f64 = 3.2;
/// Truncation bound of the error distribution (⌊6σ⌋).
pub const ERROR_BOUND: i64 = 19;
/// Bytes of a public seed.
pub const SEED_BYTES: usize = 32;
/// Number of values the truncated Gaussian takes.
const SUPPORT: usize = 2 * ERROR_BOUND as usize + 1;

/// A generator seeded from the operating system.
pub fn os_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_entropy()
}

/// A fresh seed.
pub fn fresh_seed<R: RngCore + ?Sized>(rng: &mut R) -> [u8; SEED_BYTES] {
    let mut s = [0u8; SEED_BYTES];
    rng.fill_bytes(&mut s);
    s
}

/// `n` uniform ternary coefficients (zeroized when dropped: secrets and masks).
pub fn ternary<R: RngCore + ?Sized>(rng: &mut R, n: usize) -> Zeroizing<Vec<i64>> {
    let mut out = Zeroizing::new(Vec::with_capacity(n));
    while out.len() < n {
        let b = rng.next_u32().to_le_bytes();
        for x in b {
            // 255 = 3*85: reject the last value to keep the three outcomes equally likely.
            if x < 255 && out.len() < n {
                out.push((x % 3) as i64 - 1);
            }
        }
    }
    out
}

/// Cumulative thresholds (scaled to 2^64) of the discrete Gaussian on `[−B, B]`: entry `k` is
/// `2^64·P(e ≤ k − B)`, the last is `u64::MAX`.
fn gaussian_cdf() -> &'static [u64; SUPPORT] {
    static CDF: OnceLock<[u64; SUPPORT]> = OnceLock::new();
    CDF.get_or_init(|| {
        let w: Vec<f64> = (-ERROR_BOUND..=ERROR_BOUND)
            .map(|x| (-((x * x) as f64) / (2.0 * SIGMA * SIGMA)).exp())
            .collect();
        let total: f64 = w.iter().sum();
        let mut acc = 0.0;
        let mut out = [0u64; SUPPORT];
        for (o, x) in out.iter_mut().zip(&w) {
            acc += x / total;
            *o = (acc * 18_446_744_073_709_551_616.0).min(u64::MAX as f64) as u64;
        }
        out[SUPPORT - 1] = u64::MAX;
        out
    })
}

/// One truncated discrete Gaussian sample (σ = 3.2, `|e| ≤ 19`), in constant time: the index of
/// a uniform word among the thresholds is counted over the whole table.
#[inline]
pub fn gaussian_one<R: RngCore + ?Sized>(rng: &mut R) -> i64 {
    let r = rng.next_u64();
    let below: usize = gaussian_cdf().iter().map(|&c| usize::from(c <= r)).sum();
    below.min(SUPPORT - 1) as i64 - ERROR_BOUND
}

/// `n` truncated discrete Gaussian coefficients ([`gaussian_one`]; zeroized when dropped).
pub fn gaussian<R: RngCore + ?Sized>(rng: &mut R, n: usize) -> Zeroizing<Vec<i64>> {
    let mut out = Zeroizing::new(Vec::with_capacity(n));
    out.extend((0..n).map(|_| gaussian_one(rng)));
    out
}

/// A uniform polynomial in the NTT domain over `q_0..q_{q_len-1}` (and `P` if `p_len > 0`),
/// drawn limb by limb, coefficient by coefficient from `rng`: the low bits of one word, redrawn
/// at once when not below the prime.
pub fn uniform_ntt<R: RngCore + ?Sized>(
    basis: &(impl AsRef<RnsBasis> + ?Sized),
    rng: &mut R,
    q_len: usize,
    p_len: usize,
) -> RnsPoly<Ntt> {
    let basis = basis.as_ref();
    let mut out = RnsPoly::<Ntt>::zero(basis, q_len, p_len);
    for t in 0..out.limbs() {
        let m = basis.moduli()[out.modulus_index(basis, t)].value();
        let mask = u64::MAX >> m.leading_zeros();
        for x in out.limb_mut(t) {
            *x = loop {
                let v = rng.next_u64() & mask;
                if v < m {
                    break v;
                }
            };
        }
    }
    out
}

/// A uniform polynomial in the NTT domain over `q_0..q_{q_len-1}`, expanded from a public seed:
/// one bulk fill of the ChaCha20 stream, each word's high `bits` bits, then the rare words not
/// below their prime redrawn in order. Every prime must be below `2^bits`.
pub fn expand_seed_high_bits(
    basis: &(impl AsRef<RnsBasis> + ?Sized),
    seed: &[u8; SEED_BYTES],
    q_len: usize,
    bits: u32,
) -> RnsPoly<Ntt> {
    let basis = basis.as_ref();
    assert!((1..=64).contains(&bits) && q_len <= basis.q_count());
    let mut rng = ChaCha20Rng::from_seed(*seed);
    // Every word is written by the fill below.
    let mut out = RnsPoly::<Ntt>::dirty(basis.n(), q_len, 0);
    let shift = 64 - bits;
    rng.fill_bytes(bytemuck::cast_slice_mut(out.data_mut()));
    for t in 0..q_len {
        let p = basis.moduli()[t].value();
        assert!(bits == 64 || p < 1 << bits, "prime {p} not below 2^{bits}");
        for o in out.limb_mut(t) {
            *o = u64::from_le(*o) >> shift;
            while *o >= p {
                *o = rng.next_u64() >> shift;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_moments_and_bound() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let e = gaussian(&mut rng, 200_000);
        let mean = e.iter().sum::<i64>() as f64 / e.len() as f64;
        let var = e.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / e.len() as f64;
        assert!(mean.abs() < 0.05, "mean {mean}");
        // The discrete Gaussian of parameter σ = 3.2 has standard deviation σ (to 10^-9); the
        // rounded continuous Gaussian it replaced had sqrt(σ² + 1/12), also within 0.05.
        assert!((var.sqrt() - SIGMA).abs() < 0.05, "sd {}", var.sqrt());
        assert!(
            (var.sqrt() - (SIGMA * SIGMA + 1.0 / 12.0).sqrt()).abs() < 0.05,
            "sd {}",
            var.sqrt()
        );
        assert!(e.iter().all(|x| x.abs() <= ERROR_BOUND));
    }

    #[test]
    fn gaussian_table_is_a_distribution_on_the_bound() {
        let cdf = gaussian_cdf();
        assert!(cdf.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(cdf[SUPPORT - 1], u64::MAX);
        // The extreme values keep a nonzero (tiny) probability; the table is symmetric.
        assert!(cdf[0] > 0);
        for k in 0..ERROR_BOUND as usize {
            let lo = cdf[k] as f64;
            let hi = u64::MAX as f64 - cdf[SUPPORT - 2 - k] as f64;
            assert!((lo - hi).abs() <= 1e-9 * u64::MAX as f64, "{k}");
        }
    }

    #[test]
    fn ternary_is_balanced() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let s = ternary(&mut rng, 300_000);
        for v in -1..=1 {
            let frac = s.iter().filter(|&&x| x == v).count() as f64 / s.len() as f64;
            assert!((frac - 1.0 / 3.0).abs() < 0.01, "{v}: {frac}");
        }
    }

    #[test]
    fn seed_expansions_are_deterministic_reduced_and_seed_dependent() {
        let two_n = 2u64 << 8;
        let q = crate::primes::largest_ntt_primes(two_n, 50, 3).unwrap();
        let basis = RnsBasis::new(8, &q, &[]);
        let a = expand_seed_high_bits(&basis, &[3; SEED_BYTES], 3, 50);
        assert!(a == expand_seed_high_bits(&basis, &[3; SEED_BYTES], 3, 50));
        assert!(a != expand_seed_high_bits(&basis, &[4; SEED_BYTES], 3, 50));
        let mut rng = ChaCha20Rng::from_seed([3; SEED_BYTES]);
        let b = uniform_ntt(&basis, &mut rng, 3, 0);
        for poly in [&a, &b] {
            for (t, &prime) in q.iter().enumerate() {
                assert!(poly.limb(t).iter().all(|&x| x < prime));
            }
        }
    }
}
