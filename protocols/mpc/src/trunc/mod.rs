//! Truncation of shared fixed-point values: SecureML's local truncation (Mohassel–Zhang §IV-A,
//! Theorem 1) and an exact interactive variant ([`exact`]).
//!
//! After a product, a shared value carries 2f fractional bits. With **local** truncation
//! ([`truncate`]) each party truncates its own share without interaction: P0 computes
//! `⌊x0 / 2^d⌋`, P1 computes `2^64 − ⌊(2^64 − x1) / 2^d⌋`. If the true value satisfies
//! |x| < 2^l_x, the truncated shares reconstruct to `⌊x / 2^d⌋` or that plus one (an error of at
//! most 1 ulp), **except with probability at most 2^(l_x + 1 − 64)** per value, when the shares
//! wrap around and the result is garbage. With f = 16 and products bounded by 2^40 (values below
//! 2^8 = 256 in magnitude) that is 2^-23 per value. The asymmetry between the parties is what
//! makes the error one-sided and small.
//!
//! The bound is per value: a run that truncates `n` values fails somewhere with probability at
//! most `n · 2^(l_x + 1 − 64)` (a union bound, [`run_failure_bound`]); a SecureML MLP run truncates
//! about 2^29 values, so the whole-run bound is what reports state beside the per-value one.
//!
//! **Exact** truncation ([`exact::truncate_exact`]) has no failure event for `|x| < 2^62`: it
//! costs one elementwise triple, one round and 16 bytes per party per value (see [`exact`] for the
//! proof and what each party sees). [`Truncation`] selects between the two.
//!
//! Measured (`experiment run`, both parties in one process on the in-memory channel, dealer
//! triples, 2 shared cores): an MLP 784-32-10 with the ReLU softmax on 4,096 MNIST rows, one epoch
//! of 64 batches, truncates 2,007,040 values. Local: 2,887 rounds, 64.5 MB sent by P0, 0.93 s
//! online, 0.89 s offline; exact: 3,847 rounds (+15 per step: 5 products, 10 inside the softmax),
//! 96.6 MB (+16 bytes per truncated value), 0.93 s online, 1.22 s offline. The local run's
//! whole-run bound is 2^21 · 2^-19 ≥ 1, i.e. no guarantee at all.

pub mod exact;

pub use exact::{exact_requests, truncate_exact};

use crate::dry_run::planned;
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::share::{Role, Share};
use crate::triples::{Preprocessing, TripleRequest};
use serde::{Deserialize, Serialize};

/// How shared products are truncated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Truncation {
    /// SecureML's local truncation: free, fails with probability ≤ 2^(l_x + 1 − 64) per value.
    #[default]
    Local,
    /// [`truncate_exact`]: one elementwise triple and one round per call, never fails for
    /// `|x| < 2^62`.
    Exact,
}

impl Truncation {
    /// The preprocessing one truncation of a `dim`-shaped value consumes.
    /// Found by a dry run of [`truncate_with`] (local: nothing).
    pub fn requests(self, dim: (usize, usize)) -> Vec<TripleRequest> {
        let z = Share::zeros(dim.0, dim.1);
        planned!(format!("truncate {self:?} {dim:?}"), |cx| {
            truncate_with(self, cx.ch, cx.role, &z, 1, cx.pre)
        })
    }

    /// The probability that one value below 2^l_x in magnitude is truncated wrongly.
    pub fn failure_probability(self, l_x: u32) -> f64 {
        match self {
            Truncation::Local => failure_probability(l_x),
            Truncation::Exact => 0.0,
        }
    }

    /// The name used in configs and reports (`local`, `exact`).
    pub fn name(self) -> &'static str {
        match self {
            Truncation::Local => "local",
            Truncation::Exact => "exact",
        }
    }
}

/// Truncates shares of `x` by `bits` bits the way `mode` says (exact consumes one elementwise
/// triple from `pre` and one round; local neither).
pub async fn truncate_with<C: Channel>(
    mode: Truncation,
    ch: &mut C,
    role: Role,
    x: &Share,
    bits: u32,
    pre: &mut Preprocessing,
) -> Result<Share> {
    match mode {
        Truncation::Local => truncate(role, x, bits),
        Truncation::Exact => truncate_exact(ch, role, x, bits, pre).await,
    }
}

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

/// Union bound on the probability that any of `count` local truncations of values below 2^l_x
/// fails: `min(1, count · 2^(l_x + 1 − 64))`.
pub fn run_failure_bound(count: u64, l_x: u32) -> f64 {
    (count as f64 * failure_probability(l_x)).min(1.0)
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
