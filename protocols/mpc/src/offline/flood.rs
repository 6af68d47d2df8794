//! Noise flooding of RLWE responses, sized for a whole run: the noise bound of one response, the
//! width of the uniform noise that hides it, the statistical distance that leaves, and the
//! per-run ledger that caps how many coefficients a responder floods. [`super::rlwe::respond`]
//! draws its noise with these widths and charges the ledger; [`super::he`] sums the distances of
//! a request list with the same functions.
//!
//! ## What is hidden, from whom
//!
//! Semi-honest servers. The querier holds the secret key and decrypts `c_0 + c_1·s` at the
//! output coefficients of a response. Besides the value `x − R` it is meant to learn, that phase
//! carries the error `E = (e + ε)·ŵ + e'·u + e_0 + e_1·s` (product error of the responder's
//! secret plaintext `ŵ` with the query error, plus the re-randomization error). The responder adds
//! a fresh uniform integer `F ∈ [−2^f, 2^f)` to every output coefficient. A simulator that knows
//! only `x − R` draws `F` alone; the two distributions differ, per coefficient, by statistical
//! distance at most `|E|/2^(f+1) < |E|/2^f`. Over a run the querier sees many flooded
//! coefficients and the distances add (hybrid argument), so the width must pay for the count:
//!
//! ```text
//! f = bits(E_max(nnz)) + FLOOD_STAT_BITS + RUN_FLOOD_BUDGET_LOG2 + 1,
//! E_max(nnz) = nnz·2^63·(B_e + ½) + (2N + 1)·B_e       (B_e = 19; integers, exact),
//! ```
//!
//! where `nnz` is the number of plaintext entries the response sums, counted from the public
//! block shape (never from the data: the width is visible in the noise, so it may depend only on
//! what the querier already knows). Each coefficient is then at distance below
//! `2^-(FLOOD_STAT_BITS + RUN_FLOOD_BUDGET_LOG2 + 1)`, and a run that floods at most
//! `2^RUN_FLOOD_BUDGET_LOG2` coefficients — which [`FloodLedger`] enforces per responder — is at
//! distance below `2^-(FLOOD_STAT_BITS + 1)` in total. [`run_distance_log2`] gives the tighter
//! figure for a known list of responses (each coefficient's `E_max/2^f`, summed).
//!
//! At the largest response (`nnz = 2^18`, `N = 2^14`) `E_max < 2^85.3`, so `f = 86 + 40 + 40 + 1
//! = 167`; [`super::rlwe::RlweParams::new`] checks that the decryption still rounds correctly
//! with noise of that width.

use crate::error::{MpcError, Result};
use rand::RngCore;
use std::sync::atomic::{AtomicU64, Ordering};

use super::rlwe::{ERROR_BOUND, FLOOD_STAT_BITS, RUN_FLOOD_BUDGET_LOG2};

/// Bound on the error a response's output coefficient carries before flooding: the product
/// error of `nnz` plaintext entries (each `|ŵ_l| ≤ 2^63`, query error `≤ B_e + ½` with rounding)
/// plus the re-randomization error `(2N + 1)·B_e` at ring degree `degree`.
pub fn response_noise(degree: usize, nnz: usize) -> u128 {
    let b = ERROR_BOUND as u128;
    // nnz·2^63·(B_e + ½) = nnz·(2·B_e + 1)·2^62.
    let product = (nnz as u128 * (2 * b + 1)) << 62;
    product + (2 * degree as u128 + 1) * b
}

/// Bits `f` of the flooding noise `[−2^f, 2^f)` of a response summing `nnz` plaintext entries.
pub fn flood_bits(degree: usize, nnz: usize) -> u32 {
    let e = response_noise(degree, nnz);
    (128 - e.leading_zeros()) + FLOOD_STAT_BITS + RUN_FLOOD_BUDGET_LOG2 + 1
}

/// `log2` of the statistical distance one flooded coefficient of such a response adds.
pub fn coefficient_distance_log2(degree: usize, nnz: usize) -> f64 {
    (response_noise(degree, nnz) as f64).log2() - flood_bits(degree, nnz) as f64
}

/// `log2` of the statistical distance of everything a querier receives, given the responses as
/// `(flooded output coefficients, nnz)` pairs: the sum of every coefficient's distance.
pub fn run_distance_log2(
    degree: usize,
    responses: impl IntoIterator<Item = (usize, usize)>,
) -> f64 {
    responses
        .into_iter()
        .map(|(outputs, nnz)| outputs as f64 * coefficient_distance_log2(degree, nnz).exp2())
        .sum::<f64>()
        .log2()
}

/// A uniform integer `hi·2^128 + lo` in `[−2^bits, 2^bits)`, `bits ≤ 191`.
#[derive(Clone, Copy)]
pub(crate) struct FloodNoise {
    pub(crate) hi: i64,
    pub(crate) lo: u128,
}

impl FloodNoise {
    /// Draws the noise (the caller has checked `bits ≤ 191`).
    pub(crate) fn sample(bits: u32, rng: &mut impl RngCore) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        let lo = u128::from_le_bytes(b);
        if bits >= 128 {
            // hi uniform in [−2^(bits−128), 2^(bits−128)), lo uniform in [0, 2^128).
            let hi = (rng.next_u64() as i64) >> (63 - (bits - 128));
            Self { hi, lo }
        } else {
            let v = (lo as i128) >> (127 - bits);
            Self {
                hi: if v < 0 { -1 } else { 0 },
                lo: v as u128,
            }
        }
    }
}

/// The coefficients one responder has flooded in this run, against the budget
/// `2^RUN_FLOOD_BUDGET_LOG2`. Shared by the concurrent responses of a run; a response that
/// would exceed the budget is refused before anything is computed.
#[derive(Debug)]
pub struct FloodLedger {
    used: AtomicU64,
    budget: u64,
}

impl Default for FloodLedger {
    fn default() -> Self {
        Self::with_budget(1 << RUN_FLOOD_BUDGET_LOG2)
    }
}

impl FloodLedger {
    /// A ledger with a smaller budget than the sizing allows (never a larger one: the widths
    /// above pay for `2^RUN_FLOOD_BUDGET_LOG2` coefficients only).
    pub fn with_budget(budget: u64) -> Self {
        Self {
            used: AtomicU64::new(0),
            budget: budget.min(1 << RUN_FLOOD_BUDGET_LOG2),
        }
    }

    /// Coefficients flooded so far.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Records `count` more flooded coefficients, or refuses (naming the count the run would
    /// reach and the budget) and records nothing.
    pub fn charge(&self, count: u64) -> Result<()> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(count).filter(|&t| t <= self.budget)
            })
            .map(|_| ())
            .map_err(|u| MpcError::InvalidHeParams {
                what: "output coefficients flooded in this run (run budget)",
                value: u.saturating_add(count),
                max: self.budget,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// The largest response floods with 167 bits and is at distance below 2^-81 per coefficient;
    /// the width follows the response's nnz (a single entry needs far less noise).
    #[test]
    fn widths_pay_for_the_run_budget() {
        let n = 1 << 14;
        let max = super::super::rlwe::MAX_RESPONSE_NNZ;
        assert!((response_noise(n, max) as f64).log2() < 85.3);
        assert_eq!(flood_bits(n, max), 167);
        assert_eq!(flood_bits(n, 1), 68 + 81);
        for nnz in [0, 1, 1000, max] {
            let d = coefficient_distance_log2(n, nnz);
            assert!(d <= -81.0 && d > -82.0, "{nnz}: {d}");
        }
        // A full budget of worst-case coefficients stays below 2^-40.
        let all = run_distance_log2(n, [(1usize << RUN_FLOOD_BUDGET_LOG2, max)]);
        assert!(all <= -(FLOOD_STAT_BITS as f64) - 1.0, "{all}");
    }

    /// The noise lies in [−2^bits, 2^bits) and reaches its upper half in magnitude, on both
    /// sampler paths (the 128-bit split included).
    #[test]
    fn flood_noise_has_the_requested_width() {
        let mut g = ChaCha20Rng::seed_from_u64(1);
        for bits in [20u32, 127, 128, 129, 150, 191] {
            let mut reached = false;
            for _ in 0..200 {
                let f = FloodNoise::sample(bits, &mut g);
                if bits >= 128 {
                    let (hi, half) = (f.hi as i128, 1i128 << (bits - 128));
                    assert!(hi >= -half && hi < half, "{bits}: {hi}");
                    reached |= if bits == 128 {
                        hi == -1
                    } else {
                        hi.abs() >= half / 2
                    };
                } else {
                    let v = f.lo as i128;
                    assert_eq!(f.hi, if v < 0 { -1 } else { 0 });
                    // In [−2^bits, 2^bits): the bits above `bits` are sign copies.
                    assert!(matches!(v >> bits, 0 | -1), "{bits}: {v}");
                    reached |= v.unsigned_abs() >= 1u128 << (bits - 1);
                }
            }
            assert!(reached, "{bits}");
        }
    }

    /// The ledger refuses the coefficient that would exceed the budget, names both numbers, and
    /// records nothing for a refused charge.
    #[test]
    fn ledger_refuses_beyond_the_budget() {
        let l = FloodLedger::with_budget(100);
        l.charge(60).unwrap();
        let e = l.charge(41).unwrap_err().to_string();
        assert!(e.contains("101") && e.contains("100"), "{e}");
        assert_eq!(l.used(), 60);
        l.charge(40).unwrap();
        assert!(l.charge(1).is_err());
        assert_eq!(FloodLedger::default().budget, 1 << 40);
        assert_eq!(FloodLedger::with_budget(u64::MAX).budget, 1 << 40);
    }
}
