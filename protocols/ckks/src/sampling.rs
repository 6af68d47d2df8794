//! Randomness for keys, masks and noise, all drawn from a ChaCha20 CSPRNG
//! (`rand_chacha::ChaCha20Rng`, seeded from the OS unless a caller supplies the generator).
//!
//! * Secrets and the public-key encryption mask `v`: uniform ternary {-1, 0, 1}
//!   (the "ternary secret" row of the HE Security Standard v1.1).
//! * Errors: discrete Gaussian with σ = 3.2 (HE standard §2.1), sampled as a rounded continuous
//!   Gaussian (Box–Muller on 53-bit uniforms) and truncated to `|e| ≤ 19` (≈ 6σ) by rejection.
//!   The tail mass removed by the truncation is about 2^-29 per coefficient; rounding a
//!   continuous Gaussian (as SEAL and Lattigo do) instead of sampling the exact discrete
//!   Gaussian changes the variance by 1/12 and is not what the RLWE security estimate rests on.
//! * Uniform residues: rejection sampling from 64-bit words, so every residue is exactly uniform
//!   in `[0, q)`. Polynomials `a` are drawn directly in the NTT domain (the NTT is a bijection, so
//!   this is still uniform) from a 32-byte seed, which lets ciphertexts and keys store the seed
//!   instead of `a`.

use rand::{CryptoRng, Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

use crate::params::CkksParams;
use crate::poly::{Ntt, RnsPoly};

/// Standard deviation of the error distribution.
pub const SIGMA: f64 = 3.2;
/// Truncation bound of the error distribution (⌊6σ⌋).
pub const ERROR_BOUND: i64 = 19;

/// A generator seeded from the operating system.
pub(crate) fn os_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_entropy()
}

/// `n` uniform ternary coefficients (zeroized when dropped: secrets and masks).
pub(crate) fn ternary<R: RngCore + CryptoRng>(rng: &mut R, n: usize) -> Zeroizing<Vec<i64>> {
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

/// `n` rounded Gaussian coefficients (σ = 3.2, truncated at ±19; zeroized when dropped).
pub(crate) fn gaussian<R: RngCore + CryptoRng>(rng: &mut R, n: usize) -> Zeroizing<Vec<i64>> {
    let mut out = Zeroizing::new(Vec::with_capacity(n));
    while out.len() < n {
        // u1 in (0, 1], u2 in [0, 1)
        let u1 = ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
        let u2 = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        let r = SIGMA * (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        for z in [r * theta.cos(), r * theta.sin()] {
            let v = z.round() as i64;
            if v.abs() <= ERROR_BOUND && out.len() < n {
                out.push(v);
            }
        }
    }
    out
}

/// A uniform polynomial in the NTT domain over `q_0..q_{q_len-1}` (and `P` if `p_len > 0`),
/// drawn limb by limb, coefficient by coefficient from `rng`.
pub(crate) fn uniform_ntt<R: RngCore>(
    params: &CkksParams,
    rng: &mut R,
    q_len: usize,
    p_len: usize,
) -> RnsPoly<Ntt> {
    let mut out = RnsPoly::<Ntt>::zero(params, q_len, p_len);
    for t in 0..out.limbs() {
        let m = params.inner.moduli[out.modulus_index(params, t)].value();
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

/// A fresh 32-byte seed.
pub(crate) fn fresh_seed<R: RngCore + CryptoRng>(rng: &mut R) -> [u8; 32] {
    let mut s = [0u8; 32];
    rng.fill(&mut s);
    s
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
        // Rounding adds 1/12 to the variance.
        assert!(
            (var.sqrt() - (SIGMA * SIGMA + 1.0 / 12.0).sqrt()).abs() < 0.05,
            "sd {}",
            var.sqrt()
        );
        assert!(e.iter().all(|x| x.abs() <= ERROR_BOUND));
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
}
