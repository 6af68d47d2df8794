//! SecureML's local truncation of shared fixed-point values (Mohassel–Zhang §IV-A, Theorem 1).
//!
//! After a product, a shared value carries 2f fractional bits. Each party truncates its own share
//! without interaction: P0 computes `⌊x0 / 2^d⌋`, P1 computes `2^64 − ⌊(2^64 − x1) / 2^d⌋`. If the
//! true value satisfies |x| < 2^l_x, the truncated shares reconstruct to `⌊x / 2^d⌋` or that plus
//! one (an error of at most 1 ulp), **except with probability at most 2^(l_x + 1 − 64)** per value,
//! when the shares wrap around and the result is garbage. With f = 16 and products bounded by
//! 2^40 (values below 2^8 = 256 in magnitude) that is 2^-23 per value; the experiment reports state
//! the bound in force. The asymmetry between the parties is what makes the error one-sided and
//! small.

use crate::error::{MpcError, Result};
use crate::share::{Role, Share};

/// Truncates this party's share by `bits` bits, locally.
pub fn truncate(role: Role, x: &Share, bits: u32) -> Result<Share> {
    if bits >= 64 {
        return Err(MpcError::InvalidShift { bits, max: 64 });
    }
    let m = match role {
        Role::P0 => x.view().mapv(|v| v >> bits),
        Role::P1 => x.view().mapv(|v| (v.wrapping_neg() >> bits).wrapping_neg()),
    };
    Ok(Share::from_ring(m))
}

/// The failure probability bound 2^(l_x + 1 − 64) of [`truncate`] for values below 2^l_x.
pub fn failure_probability(l_x: u32) -> f64 {
    2f64.powi(l_x as i32 + 1 - 64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::share::{reconstruct, share};
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// Counts values whose truncation is off by more than one ulp.
    fn failures(l_x: u32, d: u32, trials: usize, seed: u64) -> usize {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let bound = 1i64 << l_x;
        let vals = Array2::from_shape_fn((trials, 1), |_| rng.gen_range(-bound + 1..bound) as u64);
        let [a, b] = share(&vals.view(), &mut rng);
        let t = reconstruct(
            &truncate(Role::P0, &a, d).unwrap(),
            &truncate(Role::P1, &b, d).unwrap(),
        );
        vals.iter()
            .zip(t.iter())
            .filter(|(&v, &r)| {
                let exact = (v as i64) >> d;
                let got = r as i64;
                !(got == exact || got == exact + 1)
            })
            .count()
    }

    #[test]
    fn error_is_at_most_one_ulp_for_small_values() {
        // l_x = 40: failure probability 2^-23 per value, so 2^16 trials expect 0.008 failures.
        assert_eq!(failures(40, 16, 1 << 16, 5), 0);
    }

    #[test]
    fn failure_rate_respects_the_stated_bound() {
        // l_x = 60: bound 2^-3. With 2^16 trials the count is Binomial(n, p ≤ 1/8); assert it is
        // below the bound plus five standard deviations, and that failures do happen: for x
        // uniform in (−2^60, 2^60) the exact rate is E|x|/2^64 = 2^-5, a quarter of the bound, so
        // a count below an eighth of the bound would mean the analysis (or the test) is broken.
        let n = 1usize << 16;
        let p = failure_probability(60);
        let k = failures(60, 16, n, 6) as f64;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            k <= n as f64 * p + 5.0 * sd,
            "{k} failures in {n}: above 2^-3"
        );
        assert!(
            k >= n as f64 * p / 8.0,
            "{k} failures: bound is suspiciously loose"
        );
    }

    #[test]
    fn rejects_shift_of_64() {
        let s = Share::zeros(1, 1);
        assert!(truncate(Role::P0, &s, 64).is_err());
    }
}
