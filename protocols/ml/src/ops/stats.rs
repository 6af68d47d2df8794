//! Column means and standard deviations of a table and its standardization
//! `z = (x − mean) / sd` (population statistics, as scikit-learn's `StandardScaler`), on any
//! backend, with the results as tensors: shares on [`crate::Shared`], so the statistics can stay
//! secret on the parties.
//!
//! # On shares
//! The mean is a local column sum, a truncation by `2^⌊log₂ n⌋` and a public scale in `[1, 2)`.
//! The centred values `d = x − mean` are pre-scaled by a public `2^-p` ([`auto_pre_shift`]: no
//! product overflows the ring for any variance in the normalization range), and
//! `S = Σ d²/4^p` is one Gram product per column, truncated once after the sum. The magnitude of
//! the variance is found without opening it: `S` is compared (in one batch of secure
//! comparisons) with the public thresholds `n·4^k/4^p`, `k ∈ LOW_POWER..=HIGH_POWER`, and the
//! comparison bits select a shared power of two `h` with `h²·var ∈ [1/4, 1)`. Newton's
//! `1/√·` ([`super::newton`]) runs on that normalized value from the public start 1 for
//! [`NORMALIZED_NEWTON_STEPS`] steps, and `1/sd = h/√(h²·var)`; `sd = S·4^p/n · (1/sd)`.
//! So the variance may be anywhere in `[4^LOW_POWER, 4^(HIGH_POWER+1))` (about `1.5·10⁻⁵` to
//! `1.7·10⁷`, standard deviations from `0.004` to `4096`). A constant column gets a large but
//! finite `1/sd` (about `6.6·10³`) and standardizes to values within a few units of the last
//! fractional bit times that (near 0, as scikit-learn maps a constant column to 0); a variance
//! above the range breaks Newton's convergence. `1/sd` is held at the backend's `f` fractional
//! bits, so its relative precision is about `2^-f·sd` (0.7 % for `sd = 900` at `f = 16`; `sd`
//! itself and the means stay precise): give columns with large deviations more fractional
//! bits, and `f ≥ 12` for the whole range (`h` reaches `2^-12`). Nothing is opened but
//! Beaver-masked differences and masked comparison inputs: the parties learn no statistic,
//! not even its power of two. Use exact truncation ([`mpc::trunc::Truncation::Exact`]): the
//! Gram sums reach `2^60` before their truncation, where local truncation fails too often.

use super::newton::inverse_sqrt_from;
use crate::backend::{Backend, IndexMap};
use crate::error::{MlError, Result};
use ndarray::Array2;

/// Smallest power of four the variance normalization distinguishes (`4^-8 ≈ 1.5·10⁻⁵`).
pub const LOW_POWER: i32 = -8;
/// Largest power of four it distinguishes (variances below `4^12 ≈ 1.7·10⁷`).
pub const HIGH_POWER: i32 = 11;
/// Newton steps on the normalized variance in `[1/4, 1)` from the start 1 (error below 10⁻¹²).
pub const NORMALIZED_NEWTON_STEPS: usize = 8;

/// Statistics of a table's columns, each `1 × C`.
#[derive(Debug, Clone)]
pub struct ColumnStats<T> {
    /// Column means.
    pub mean: T,
    /// `1 / sd` of every column (population standard deviation).
    pub inv_sd: T,
    /// The standard deviations.
    pub sd: T,
}

/// The pre-shift `p` that keeps `Σ (d/2^p)²·2^(2f)` below `2^62` for `n` rows, `f`
/// fractional bits and any variance below `4^(HIGH_POWER+1)`.
pub fn auto_pre_shift(n: usize, frac_bits: u32) -> u32 {
    let log_n = usize::BITS - n.max(1).saturating_sub(1).leading_zeros();
    let need = log_n as i64 + 2 * i64::from(frac_bits) + 2 * i64::from(HIGH_POWER + 1) - 61;
    u32::try_from((need.max(0) + 1) / 2).unwrap_or(0)
}

/// The row broadcast `1 × c → n × c`.
pub fn row_broadcast(n: usize, c: usize) -> Result<IndexMap> {
    IndexMap::from_fn((1, c), (n, c), |_, j| Some((0, j)))
}

/// `t / n` for a public count `n ≥ 1`: a truncation by `2^⌊log₂ n⌋`, then a public scale in
/// `[1, 2)` (so `1/n` is never encoded at the fractional bits).
pub async fn divide_by<B: Backend>(b: &mut B, t: &B::Tensor, n: usize) -> Result<B::Tensor> {
    let n = n.max(1);
    let k = n.ilog2();
    let shifted = b.shift_right(t, k).await?;
    b.scale(&shifted, f64::from(1u32 << k) / n as f64).await
}

/// Column sums `1 × C` of an `n × C` tensor (local and exact).
pub fn column_sums<B: Backend>(b: &B, t: &B::Tensor) -> Result<B::Tensor> {
    let (n, c) = B::dim(t);
    b.scatter_add(t, &row_broadcast(n, c)?)
}

/// The means and standard deviations of the columns of `x` (`n × C`, `n ≥ 2`), with `d` pre-
/// scaled by `2^-pre_shift` (see the module docs; [`auto_pre_shift`] for the table's shape).
///
/// # Errors
/// Fewer than two rows; the backend's errors.
pub async fn column_stats<B: Backend>(
    b: &mut B,
    x: &B::Tensor,
    pre_shift: u32,
) -> Result<ColumnStats<B::Tensor>> {
    let (n, c) = B::dim(x);
    if n < 2 || c == 0 {
        return Err(MlError::InvalidHyper {
            name: "rows × columns",
            value: format!("{n} × {c}"),
            reason: "column statistics need at least 2 rows and 1 column",
        });
    }
    let bcast = row_broadcast(n, c)?;
    let sums = b.scatter_add(x, &bcast)?;
    let mean = divide_by(b, &sums, n).await?;
    let d = b.sub(x, &b.gather(&mean, &bcast)?)?;
    let d = b.shift_right(&d, pre_shift).await?;
    let gram = b.matmul(&b.transpose(&d), &d, 0).await?;
    let diag = IndexMap::from_fn((c, c), (c, 1), |j, _| Some((j, j)))?;
    let s = b.gather(&gram, &diag)?;
    let unit = f64::powi(4.0, pre_shift as i32) / n as f64;
    let h = normalizer(b, &s, n as f64 / f64::powi(4.0, pre_shift as i32)).await?;
    // `s·h·h`, not `s·h²`: `h²` can be below the last fractional bit.
    let sh = b.mul(&s, &h, 0).await?;
    let shh = b.mul(&sh, &h, 0).await?;
    let vn = scale_public(b, &shh, unit).await?;
    let r = inverse_sqrt_from(b, &vn, 1.0, NORMALIZED_NEWTON_STEPS).await?;
    let inv_sd = b.mul(&r, &h, 0).await?;
    // sd = var/sd = s·unit·h·r, with `s·h` and `r` both well inside the fixed-point range.
    let shr = b.mul(&sh, &r, 0).await?;
    let sd = scale_public(b, &shr, unit).await?;
    Ok(ColumnStats {
        mean,
        inv_sd: b.transpose(&inv_sd),
        sd: b.transpose(&sd),
    })
}

/// `c · t` for a public `c > 0`: small factors as a truncation by their power of two and a
/// scale in `[1, 2)` (keeps the factor's precision), others one scale.
async fn scale_public<B: Backend>(b: &mut B, t: &B::Tensor, c: f64) -> Result<B::Tensor> {
    if c >= 1.0 {
        return b.scale(t, c).await;
    }
    let k = (-c.log2()).ceil() as u32;
    let shifted = b.shift_right(t, k).await?;
    b.scale(&shifted, c * f64::powi(2.0, k as i32)).await
}

/// A shared power of two `h` (`C × 1`) with `h² · s / unit ∈ [1/4, 1)` for `s/unit` in the
/// normalization range, from one batch of comparisons of `s` with `unit · 4^k`.
async fn normalizer<B: Backend>(b: &mut B, s: &B::Tensor, unit: f64) -> Result<B::Tensor> {
    let c = B::dim(s).0;
    let powers: Vec<i32> = (LOW_POWER..=HIGH_POWER).collect();
    let k = powers.len();
    let spread = IndexMap::from_fn((c, 1), (c, k), |i, _| Some((i, 0)))?;
    let th = Array2::from_shape_fn((c, k), |(_, j)| unit * f64::powi(4.0, powers[j]));
    let diff = b.sub(&b.gather(s, &spread)?, &b.constant(&th)?)?;
    let (_, bits) = b.relu(&diff).await?;
    let ones = b.constant(&Array2::ones((c, k)))?;
    let above = b.select(&bits, &ones).await?;
    let mut factors = Vec::with_capacity(k);
    for (j, &p) in powers.iter().enumerate() {
        let col = IndexMap::from_fn((c, k), (c, 1), |i, _| Some((i, j)))?;
        let bit = b.gather(&above, &col)?;
        // Below 4^p (p < 0): scale up by 2; at or above 4^p (p ≥ 0): scale down by 2.
        let f = if p < 0 {
            b.sub(&b.constant(&Array2::from_elem((c, 1), 2.0))?, &bit)?
        } else {
            let half = b.shift_right(&bit, 1).await?;
            b.sub(&b.constant(&Array2::ones((c, 1)))?, &half)?
        };
        factors.push(f);
    }
    product(b, factors).await
}

/// The elementwise product of `ts` (a tree: `⌈log₂ len⌉` rounds).
async fn product<B: Backend>(b: &mut B, mut ts: Vec<B::Tensor>) -> Result<B::Tensor> {
    while ts.len() > 1 {
        let mut next = Vec::with_capacity(ts.len().div_ceil(2));
        let mut it = ts.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(c) => next.push(b.mul(&a, &c, 0).await?),
                None => next.push(a),
            }
        }
        ts = next;
    }
    ts.pop().ok_or(MlError::InvalidHyper {
        name: "factors",
        value: "0".into(),
        reason: "a product needs at least one factor",
    })
}

/// `(x − mean) ⊙ (1/sd)` row by row (one elementwise product).
///
/// # Errors
/// Statistics of another width; the backend's errors.
pub async fn standardize<B: Backend>(
    b: &mut B,
    x: &B::Tensor,
    stats: &ColumnStats<B::Tensor>,
) -> Result<B::Tensor> {
    let (n, c) = B::dim(x);
    let bcast = row_broadcast(n, c)?;
    let d = b.sub(x, &b.gather(&stats.mean, &bcast)?)?;
    b.mul(&d, &b.gather(&stats.inv_sd, &bcast)?, 0).await
}

/// `z ⊙ sd + mean` row by row: standardized values back in the original units.
///
/// # Errors
/// Statistics of another width; the backend's errors.
pub async fn unstandardize<B: Backend>(
    b: &mut B,
    z: &B::Tensor,
    stats: &ColumnStats<B::Tensor>,
) -> Result<B::Tensor> {
    let (n, c) = B::dim(z);
    let bcast = row_broadcast(n, c)?;
    let scaled = b.mul(z, &b.gather(&stats.sd, &bcast)?, 0).await?;
    b.add(&scaled, &b.gather(&stats.mean, &bcast)?)
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
