//! Exponential by the limit approximation `e^x ≈ (1 + x/2^n)^(2^n)` (n squarings, as in CrypTen,
//! Knott et al. NeurIPS 2021, §C.1) and the two softmax variants: exp-normalized and SecureML's
//! ReLU-normalized one (Mohassel–Zhang §IV-C).
//!
//! **Exp.** `x/2^n` is a local truncation; the base `1 + x/2^n` is clamped to
//! `[0, 1 + max_input/2^n]` with [`super::activation::clamp`] (8 rounds), so inputs below `−2^n`
//! give 0 (the true value is below e^−256) and inputs above `max_input` give
//! `≈ e^max_input` instead of wrapping around the ring; then n squarings, one round each.
//! **Rounds** 8 + n. **Accuracy** (f = 16, n = 8): the approximation underestimates by a relative
//! `≈ x²/2^(n+1)` and the fixed-point base carries a relative error up to 2^−f that the squarings
//! amplify 2^n-fold; tested bound `|ê − e^x| ≤ e^x·(x²/2^(n+1) + 2^(n+1−f)) + 2^−12` on
//! `x ∈ [−8, max_input]`. **Truncation**: the last squaring's product is `e^x·2^(2f)`; with
//! f = 16 and `max_input = 6` it stays below 2^41 (failure probability 2^−22 per value).
//!
//! **Softmax** (row-wise, each row a distribution over its columns): `e = exp(x)`, `s = Σ_j e_j`
//! (local), `out = e·(1/s)` with [`super::recip`]'s reciprocal; 8 + n + 22 + 1 rounds. Tested
//! with f = 16, n = 8 on logits in `[−4, 4]`, k = 10: max absolute error ≤ 0.01 per probability
//! (measured 5·10^−3, dominated by exp's `x²/2^(n+1)` bias, which does not cancel between rows'
//! entries). Logits above `max_input` are clamped (subtracting a row maximum first would need
//! k − 1 more comparisons; not done).
//!
//! **Stable softmax** ([`stable_softmax`]): subtracts the row maximum first ([`row_max`]: a
//! tournament of `max(a, b) = b + relu(a − b)`, ⌈log2 k⌉ levels of 8 rounds, all rows and pairs of
//! a level batched), so every exponent is ≤ 0 and no logit is clamped, and the row sum lies in
//! `[1, k]` where the reciprocal is most accurate. 8⌈log2 k⌉ + 8 + n + 31 rounds (71 for k = 10).
//! Use it when logits may exceed `max_input`; tested on logits in `[−20, 20]`.
//!
//! **ReLU softmax**: `r = relu(x)`, `s = Σ_j r_j`, `out = r·(1/s) + [s = 0]/k`. When every entry
//! of a row is ≤ 0 the output is the uniform `1/k` — decided without opening anything: the zero
//! flag `[s = 0]` falls out of the reciprocal's bit decomposition (it is the suffix-AND of all
//! negated bits), is converted in the reciprocal's B2A round, and `1/s` is 0 there, so the
//! formula needs no select. 8 + 22 + 1 = 31 rounds. Row sums must stay below 2^(TOP+1−f)
//! (2^23 with f = 16). Tested on logits in `[−4, 4]`, k = 10: max absolute error ≤ 5·10^−4
//! (measured 6·10^−5), exact uniform rows for all-non-positive inputs.

use super::activation::{clamp, relu};
use super::convert::{flat, share_of};
use super::normalize::TOP;
use super::recip::{mul_trunc, reciprocal_flat, reciprocal_truncations};
use crate::dry_run::planned;
use crate::error::{MpcError, Result};
use crate::fixed::FixedPoint;
use crate::net::Channel;
use crate::session::Session;
use crate::share::Share;
use crate::triples::TripleRequest;
use crate::trunc::{self, Truncation};

/// Parameters of [`exp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExpParams {
    /// Number of squarings n (the approximation is `(1 + x/2^n)^(2^n)`); at most f.
    pub squarings: u32,
    /// Inputs above this are clamped to it (keeps the last squaring inside the truncation bound).
    pub max_input: f64,
}

impl Default for ExpParams {
    fn default() -> Self {
        Self {
            squarings: 8,
            max_input: 6.0,
        }
    }
}

impl ExpParams {
    fn check(&self, fp: FixedPoint) -> Result<(u64, u64)> {
        let f = fp.frac_bits().get();
        if self.squarings > f {
            return Err(MpcError::InvalidShift {
                bits: self.squarings,
                max: f + 1,
            });
        }
        let hi = fp.encode(1.0 + self.max_input / 2f64.powi(self.squarings as i32))?;
        if (hi as i64) <= 0 {
            return Err(MpcError::OutOfRange {
                value: self.max_input,
                bound: 2f64.powi(self.squarings as i32),
                frac_bits: f,
            });
        }
        Ok((0, hi))
    }
}

/// The preprocessing [`exp`] consumes.
pub fn exp_requests(dim: (usize, usize), params: ExpParams) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(format!("exp {dim:?} {params:?}"), |cx| exp(cx, &z, params))
}

/// The preprocessing [`exp_with`] consumes with truncation `mode`.
pub fn exp_requests_with(
    dim: (usize, usize),
    params: ExpParams,
    mode: Truncation,
) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    let key = format!("exp {dim:?} {params:?} {mode:?}");
    planned!(key, |cx| exp_with(cx, &z, (params, mode)))
}

/// How many values [`exp`] truncates: the input scaling and one per squaring, per entry.
pub fn exp_truncations(dim: (usize, usize), params: ExpParams) -> u64 {
    (dim.0 * dim.1) as u64 * (1 + u64::from(params.squarings))
}

/// Secure `e^x` elementwise by the limit approximation (see the module docs for range, accuracy
/// and rounds).
pub async fn exp<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    params: ExpParams,
) -> Result<Share> {
    exp_with(cx, x, (params, Truncation::Local)).await
}

/// [`exp`] with its truncations done by `mode`.
pub async fn exp_with<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    (params, mode): (ExpParams, Truncation),
) -> Result<Share> {
    let role = cx.role;
    let fp = cx.fp;
    let (lo, hi) = params.check(fp)?;
    let f = fp.frac_bits().get();
    let one = ndarray::Array2::from_elem(x.dim(), 1u64 << f);
    let scaled = trunc::truncate_with(mode, cx.ch, role, x, params.squarings, cx.pre).await?;
    let base = clamp(cx, &scaled.add_public(role, &one.view()), lo, hi).await?;
    let mut y = flat(&base);
    for _ in 0..params.squarings {
        y = mul_trunc(cx, (&y, &y), f, mode).await?;
    }
    Ok(share_of(x.dim(), y))
}

fn row_sums(x: &Share) -> Vec<u64> {
    x.view()
        .rows()
        .into_iter()
        .map(|r| r.iter().fold(0u64, |a, &b| a.wrapping_add(b)))
        .collect()
}

/// `out_ij = trunc(num_ij · r_i) + zero_i · (1/k)`, one round.
async fn normalize<C: Channel>(
    cx: &mut Session<'_, C>,
    num: &Share,
    (iterations, mode): (u32, Truncation),
) -> Result<Share> {
    let fp = cx.fp;
    let (rows, k) = num.dim();
    let sums = row_sums(num);
    let (r, zero) = reciprocal_flat(cx, &sums, iterations, mode).await?;
    let rb: Vec<u64> = (0..rows * k).map(|i| r[i / k.max(1)]).collect();
    let q = mul_trunc(cx, (&flat(num), &rb), fp.frac_bits().get(), mode).await?;
    let uniform = fp.encode(1.0 / k.max(1) as f64)?;
    let out: Vec<u64> = q
        .iter()
        .enumerate()
        .map(|(i, q)| q.wrapping_add(zero[i / k.max(1)].wrapping_mul(uniform)))
        .collect();
    Ok(share_of(num.dim(), out))
}

/// Truncations of [`normalize`]: the row sums' reciprocals and one product per entry.
fn normalize_truncations(dim: (usize, usize), iterations: u32) -> u64 {
    reciprocal_truncations(dim.0, iterations) + (dim.0 * dim.1) as u64
}

/// How many values [`softmax`] truncates.
pub fn softmax_truncations(dim: (usize, usize), params: ExpParams, iterations: u32) -> u64 {
    exp_truncations(dim, params) + normalize_truncations(dim, iterations)
}

/// How many values [`stable_softmax`] truncates (the row maximum is exact).
pub fn stable_softmax_truncations(dim: (usize, usize), params: ExpParams, iterations: u32) -> u64 {
    softmax_truncations(dim, params, iterations)
}

/// How many values [`relu_softmax`] truncates (the ReLU is exact).
pub fn relu_softmax_truncations(dim: (usize, usize), iterations: u32) -> u64 {
    normalize_truncations(dim, iterations)
}

fn check_softmax(fp: FixedPoint, x: &Share) -> Result<()> {
    let f = fp.frac_bits().get();
    if f as usize > TOP {
        return Err(MpcError::InvalidFracBits {
            frac_bits: f,
            max: TOP as u32,
        });
    }
    if x.dim().1 == 0 && x.dim().0 > 0 {
        return Err(MpcError::ShapeMismatch {
            op: "softmax over zero classes",
            left: x.dim(),
            right: (x.dim().0, 1),
        });
    }
    Ok(())
}

/// The preprocessing [`softmax`] consumes.
pub fn softmax_requests(
    dim: (usize, usize),
    params: ExpParams,
    iterations: u32,
) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    let key = format!("softmax {dim:?} {params:?} {iterations}");
    planned!(key, |cx| softmax(cx, &z, params, iterations))
}

/// Row-wise softmax `e^(x_ij) / Σ_j e^(x_ij)` with [`exp`] and the reciprocal (see the module
/// docs). A row whose exponentials all clamp to 0 (every entry below −2^n) gives `1/k`.
pub async fn softmax<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    params: ExpParams,
    iterations: u32,
) -> Result<Share> {
    let fp = cx.fp;
    check_softmax(fp, x)?;
    let e = exp(cx, x, params).await?;
    normalize(cx, &e, (iterations, Truncation::Local)).await
}

/// The preprocessing [`relu_softmax`] consumes.
pub fn relu_softmax_requests(dim: (usize, usize), iterations: u32) -> Vec<TripleRequest> {
    relu_softmax_requests_with(dim, iterations, Truncation::Local)
}

/// The preprocessing [`relu_softmax_with`] consumes with truncation `mode`.
pub fn relu_softmax_requests_with(
    dim: (usize, usize),
    iterations: u32,
    mode: Truncation,
) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    let key = format!("relu_softmax {dim:?} {iterations} {mode:?}");
    planned!(key, |cx| relu_softmax_with(cx, &z, (iterations, mode)))
}

/// SecureML's ReLU-normalized softmax `relu(x_ij) / Σ_j relu(x_ij)`, `1/k` for a row with no
/// positive entry, decided without opening anything (see the module docs).
pub async fn relu_softmax<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    iterations: u32,
) -> Result<Share> {
    relu_softmax_with(cx, x, (iterations, Truncation::Local)).await
}

/// [`relu_softmax`] with its truncations done by `mode`.
pub async fn relu_softmax_with<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    (iterations, mode): (u32, Truncation),
) -> Result<Share> {
    let fp = cx.fp;
    check_softmax(fp, x)?;
    let r = relu(cx, x).await?;
    normalize(cx, &r, (iterations, mode)).await
}

/// The column pairs of each level of the max tournament over `k` columns: `(pairs, carried)` per
/// level, `carried` being whether an odd last column passes through unchanged.
fn tournament(k: usize) -> Vec<(usize, bool)> {
    let mut levels = Vec::new();
    let mut width = k;
    while width > 1 {
        levels.push((width / 2, width % 2 == 1));
        width = width.div_ceil(2);
    }
    levels
}

/// The preprocessing [`row_max`] consumes for a `rows × k` input.
pub fn row_max_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(format!("row_max {dim:?}"), |cx| row_max(cx, &z))
}

/// The maximum of each row (a `rows × 1` share), by a tournament of `max(a, b) = b + relu(a − b)`:
/// exact (no truncation) for entries with `|a − b| < 2^63`, 8 rounds per level, ⌈log2 k⌉ levels.
pub async fn row_max<C: Channel>(cx: &mut Session<'_, C>, x: &Share) -> Result<Share> {
    let (rows, k) = x.dim();
    if k == 0 {
        return Err(MpcError::ShapeMismatch {
            op: "row_max over zero columns",
            left: x.dim(),
            right: (rows, 1),
        });
    }
    // cols[j] holds this party's shares of column j for every row.
    let mut cols: Vec<Vec<u64>> = (0..k).map(|j| x.view().column(j).to_vec()).collect();
    for (pairs, carried) in tournament(k) {
        let mut diff = Vec::with_capacity(rows * pairs);
        for p in 0..pairs {
            let (a, b) = (&cols[2 * p], &cols[2 * p + 1]);
            diff.extend(a.iter().zip(b).map(|(a, b)| a.wrapping_sub(*b)));
        }
        let r = relu(cx, &share_of((1, rows * pairs), diff)).await?;
        let r = flat(&r);
        let mut next: Vec<Vec<u64>> = (0..pairs)
            .map(|p| {
                let b = &cols[2 * p + 1];
                (0..rows)
                    .map(|i| b[i].wrapping_add(r[p * rows + i]))
                    .collect()
            })
            .collect();
        if carried {
            next.push(cols.last().expect("k > 0").clone());
        }
        cols = next;
    }
    Ok(share_of((rows, 1), cols.swap_remove(0)))
}

/// The preprocessing [`stable_softmax`] consumes.
pub fn stable_softmax_requests(
    dim: (usize, usize),
    params: ExpParams,
    iterations: u32,
) -> Vec<TripleRequest> {
    stable_softmax_requests_with(dim, params, iterations, Truncation::Local)
}

/// The preprocessing [`stable_softmax_with`] consumes with truncation `mode`.
pub fn stable_softmax_requests_with(
    dim: (usize, usize),
    params: ExpParams,
    iterations: u32,
    mode: Truncation,
) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    let key = format!("stable_softmax {dim:?} {params:?} {iterations} {mode:?}");
    planned!(key, |cx| stable_softmax_with(
        cx,
        &z,
        (params, iterations, mode)
    ))
}

/// Row-wise softmax with the row maximum subtracted first (see the module docs): no logit is
/// clamped, at the price of the max tournament's rounds.
pub async fn stable_softmax<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    params: ExpParams,
    iterations: u32,
) -> Result<Share> {
    let local = Truncation::Local;
    stable_softmax_with(cx, x, (params, iterations, local)).await
}

/// [`stable_softmax`] with its truncations done by `mode`.
pub async fn stable_softmax_with<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    (params, iterations, mode): (ExpParams, u32, Truncation),
) -> Result<Share> {
    let fp = cx.fp;
    check_softmax(fp, x)?;
    if x.dim().0 == 0 {
        return Ok(x.clone());
    }
    let (rows, k) = x.dim();
    let m = flat(&row_max(cx, x).await?);
    let xs = flat(x);
    let shifted: Vec<u64> = (0..rows * k)
        .map(|i| xs[i].wrapping_sub(m[i / k]))
        .collect();
    let shifted = share_of((rows, k), shifted);
    let e = exp_with(cx, &shifted, (params, mode)).await?;
    normalize(cx, &e, (iterations, mode)).await
}
