//! Secure reciprocal and division: normalization by the position of the leading one, then
//! Newton–Raphson (the range reduction of Catrina–Saxena, FC 2010, §3.4, with bit decomposition
//! by the GMW adder of [`super::adder`]).
//!
//! For a shared fixed-point `x > 0` with encoding `X ∈ [2^j, 2^(j+1))`:
//!
//! 1.–3. the one-hot leading-one indicators `l_j` and the zero flag `[X = 0]` as arithmetic
//!    shares ([`super::normalize`]: bit decomposition, suffix-AND, B2A; 14 rounds);
//!    `c = Σ l_j 2^(TOP−j)`, `c' = Σ l_j 2^(2f−j)` (local);
//! 4. `v = X·c / 2^(TOP+1−f)` is `x` normalized into `[½, 1)` (1 round);
//! 5. Newton: `y₀ = 48/17 − 32/17·v` (max relative error 1/17), `y ← y (2 − v y)` (2 rounds per
//!    iteration; the relative error squares each time: 1/17 → 3.5e-3 → 1.2e-5 → 1.4e-10);
//! 6. `1/x = y·c' / 2^(f+1)` (1 round).
//!
//! **Rounds**: 7 + 6 + 1 + 1 + 2·iterations + 1 = 22 with the default 3 iterations.
//!
//! **Input range**: `2^−f ≤ x < 2^(TOP+1−f)` (with f = 16: up to 2^23 ≈ 8.4·10^6). Outside it the
//! result is a documented clamp, not garbage: `x ≤ 0` and `x ≥ 2^(TOP+1−f)` give 0 (for large `x`
//! the true value is below 2^−(TOP+1−f), under one ulp for f ≤ 19). The output scaling `c'`
//! covers leading-one positions `j ≤ min(TOP, 2f)`; above `2f` the true result is below one ulp
//! and 0 is returned.
//!
//! **Accuracy** (f = 16, 3 iterations): relative error about 2^−13 plus one ulp, dominated by the
//! fixed-point rounding of `v` and of the Newton products (tested bound: `|r − 1/x| ≤ 2^−12/x +
//! 2^−14`).
//!
//! **Truncation** ([`crate::trunc`]): the normalization product is below 2^(TOP+1) = 2^39
//! (failure probability 2^−24 per value); the final product is `(1/x)·2^(2f+1)`, so the failure
//! probability is `2^(2f+2−64)/x` — 2^−30/x for f = 16, i.e. 2^−24 for `x ≥ 2^−6`.

use super::convert::{flat, share_of, ProductRound};
use super::normalize::{leading_one, TOP};
use crate::dry_run::planned;
use crate::error::{MpcError, Result};
use crate::fixed::FixedPoint;
use crate::net::Channel;
use crate::session::Session;
use crate::share::{Role, Share};
use crate::triples::TripleRequest;
use crate::trunc::{self, Truncation};
use ndarray::Array2;

/// Newton iterations used by the softmax functions and recommended for f = 16.
pub const DEFAULT_NEWTON_ITERATIONS: u32 = 3;

/// The preprocessing [`reciprocal`] consumes for a `dim`-shaped input.
pub fn reciprocal_requests(dim: (usize, usize), iterations: u32) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    let key = format!("reciprocal {dim:?} {iterations}");
    planned!(key, |cx| reciprocal(cx, &z, iterations))
}

/// How many values [`reciprocal`] truncates for `n` inputs: the normalization, the initial
/// guess, two products per Newton iteration and the final scaling.
pub fn reciprocal_truncations(n: usize, iterations: u32) -> u64 {
    n as u64 * (3 + 2 * u64::from(iterations))
}

/// Truncates a flat vector of shares by `mode` (exact: one more round and triple).
pub(crate) async fn trunc_flat<C: Channel>(
    cx: &mut Session<'_, C>,
    v: Vec<u64>,
    bits: u32,
    mode: Truncation,
) -> Result<Vec<u64>> {
    let role = cx.role;
    let n = v.len();
    let s = Share::from_ring(Array2::from_shape_vec((1, n), v).expect("shape"));
    Ok(trunc::truncate_with(mode, cx.ch, role, &s, bits, cx.pre)
        .await?
        .into_ring()
        .into_raw_vec_and_offset()
        .0)
}

/// One round (two with exact truncation): shares of `trunc(x ⊙ y, bits)`.
pub(crate) async fn mul_trunc<C: Channel>(
    cx: &mut Session<'_, C>,
    (x, y): (&[u64], &[u64]),
    bits: u32,
    mode: Truncation,
) -> Result<Vec<u64>> {
    let mut round = ProductRound::new();
    round.push_mul(x, y);
    let z = round.run(cx).await?;
    trunc_flat(cx, z, bits, mode).await
}

/// Reciprocal of a flat vector; also returns shares of `[x = 0]` as integers 0/1.
pub(crate) async fn reciprocal_flat<C: Channel>(
    cx: &mut Session<'_, C>,
    xs: &[u64],
    iterations: u32,
    mode: Truncation,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let role = cx.role;
    let fp = cx.fp;
    let n = xs.len();
    if n == 0 {
        return Ok((Vec::new(), Vec::new()));
    }
    let f = fp.frac_bits().get();
    let p0 = role == Role::P0;
    // 1.–3. The one-hot leading one and the zero flag.
    let lead = leading_one(cx, xs).await?;
    let c = lead.weighted(|j| 1u64 << (TOP - j));
    let c2 = lead.weighted(|j| {
        if j <= 2 * f as usize {
            1u64 << (2 * f as usize - j)
        } else {
            0
        }
    });
    let is_zero = lead.is_zero;
    // 4. Normalize into [½, 1).
    let vnorm = mul_trunc(cx, (xs, &c), TOP as u32 + 1 - f, mode).await?;
    // 5. Newton–Raphson from the linear initial guess 48/17 − 32/17·v.
    let k48 = fp.encode(48.0 / 17.0)?;
    let k32 = fp.encode(32.0 / 17.0)?;
    let two = fp.encode(2.0)?;
    let scaled: Vec<u64> = vnorm.iter().map(|v| v.wrapping_mul(k32)).collect();
    let scaled = trunc_flat(cx, scaled, f, mode).await?;
    let mut y: Vec<u64> = scaled
        .iter()
        .map(|s| {
            let s = s.wrapping_neg();
            if p0 {
                s.wrapping_add(k48)
            } else {
                s
            }
        })
        .collect();
    for _ in 0..iterations {
        let t = mul_trunc(cx, (&vnorm, &y), f, mode).await?;
        let e: Vec<u64> = t
            .iter()
            .map(|t| {
                let t = t.wrapping_neg();
                if p0 {
                    t.wrapping_add(two)
                } else {
                    t
                }
            })
            .collect();
        y = mul_trunc(cx, (&y, &e), f, mode).await?;
    }
    // 6. Undo the normalization.
    let r = mul_trunc(cx, (&y, &c2), f + 1, mode).await?;
    Ok((r, is_zero))
}

fn check_frac_bits(fp: FixedPoint) -> Result<()> {
    let f = fp.frac_bits().get();
    if f as usize > TOP {
        return Err(MpcError::InvalidFracBits {
            frac_bits: f,
            max: TOP as u32,
        });
    }
    Ok(())
}

/// Secure reciprocal `1/x` for `2^−f ≤ x < 2^(TOP+1−f)`, `x ≤ 0` and larger `x` giving 0 (see the
/// module docs for rounds, accuracy and truncation bounds).
pub async fn reciprocal<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    iterations: u32,
) -> Result<Share> {
    let fp = cx.fp;
    check_frac_bits(fp)?;
    let (r, _) = reciprocal_flat(cx, &flat(x), iterations, Truncation::Local).await?;
    Ok(share_of(x.dim(), r))
}

/// The preprocessing [`divide`] consumes.
pub fn divide_requests(dim: (usize, usize), iterations: u32) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    let key = format!("divide {dim:?} {iterations}");
    planned!(key, |cx| divide(cx, &z, &z, iterations))
}

/// How many values [`divide`] truncates for a `dim`-shaped input.
pub fn divide_truncations(dim: (usize, usize), iterations: u32) -> u64 {
    let n = dim.0 * dim.1;
    reciprocal_truncations(n, iterations) + n as u64
}

/// Secure division `a / b` elementwise, as `a · (1/b)` with [`reciprocal`] (23 rounds with 3
/// iterations). Same range for `b` as [`reciprocal`]; the final product `a·(1/b)·2^(2f)` must stay
/// below 2^40 or so for the truncation bound (|a/b| < 2^(40−2f) = 256 with f = 16 gives failure
/// probability 2^−23).
pub async fn divide<C: Channel>(
    cx: &mut Session<'_, C>,
    a: &Share,
    b: &Share,
    iterations: u32,
) -> Result<Share> {
    let fp = cx.fp;
    check_frac_bits(fp)?;
    if a.dim() != b.dim() {
        return Err(MpcError::ShapeMismatch {
            op: "divide",
            left: a.dim(),
            right: b.dim(),
        });
    }
    let local = Truncation::Local;
    let (r, _) = reciprocal_flat(cx, &flat(b), iterations, local).await?;
    let q = mul_trunc(cx, (&flat(a), &r), fp.frac_bits().get(), local).await?;
    Ok(share_of(a.dim(), q))
}
