//! Natural logarithm on shares: range reduction by the position of the leading one, then a
//! Chebyshev polynomial on the reduced argument, evaluated with Beaver products.
//!
//! For a shared fixed-point `x > 0` with encoding `X ∈ [2^j, 2^(j+1))`:
//!
//! 1. the one-hot leading-one indicators `l_j` ([`super::normalize`], the reciprocal's range
//!    reduction; 14 rounds);
//! 2. `t = X·Σ l_j 2^(TOP−j) / 2^(TOP−1−f) − 3`, i.e. `t = 4·X/2^(j+1) − 3 ∈ [−1, 1)` with `f`
//!    fractional bits (1 round), and `k·ln 2` with `k = j + 1 − f` as the local sum
//!    `Σ l_j·(j + 1 − f)·ln 2` of public encodings;
//! 3. `ln x = k·ln 2 + g(t)`, `g(t) = ln((3 + t)/4)`, approximated by its degree-7 Chebyshev
//!    interpolant `P` ([`ln_polynomial`]): the powers `t², t³ … t⁷` in 3 rounds (`t²`; `t³, t⁴`;
//!    `t⁵, t⁶, t⁷` from `t⁴`), then `Σ c_i t^i` with public coefficients, one truncation.
//!
//! **Why this and not CrypTen's Householder iterations on exp** (Knott et al. NeurIPS 2021,
//! §C.1): each iteration there is an [`super::exp`] (16 rounds) and the result inherits exp's
//! relative error (up to 2^(n+1−f)); here the range reduction costs what the reciprocal's does
//! and the polynomial is accurate to a fraction of an ulp on the whole reduced range, since
//! `g` is analytic well beyond `[−1, 1]` (its singularity is at `t = −3`; the interpolant's
//! error is below 2^−21, [`ln_polynomial`]'s test). Working in `t ∈ [−1, 1]` rather than in
//! the mantissa keeps every power at most 1, so their truncation errors are weighted by the
//! small coefficients `|c_i| ≤ 1/3`.
//!
//! **Rounds**: 14 + 1 + 3 = 18 (local truncation; exact truncation adds one round per
//! truncating round: 23). **Products** per value: 1 (normalization) + 6 (powers).
//!
//! **Input range**: `2^−f ≤ x < 2^(TOP+1−f)` (with f = 16: up to 2^23 ≈ 8.4·10^6). Outside it
//! (`x ≤ 0`, larger `x`) no `l_j` is set and the reduced argument is set to `t = 1` locally
//! (`+ (1 − Σ l_j)·4`), so the result is `ln 1 = 0` up to the rounding below — a documented
//! clamp, not a wrapped-around value.
//!
//! **Accuracy** (f = 16): `t` carries the normalization's rounding (one ulp, weighted by
//! `g' ≤ ½`), the powers and the final sum one ulp each (the powers' weighted by `|c_i|`), the
//! public encodings of `k·ln 2` and `c_0` half an ulp each. Tested bound on encoded inputs over
//! the whole range: `|ln̂ x − ln x| ≤ 2^−13` (8 ulp; measured at most 2.3 ulp on 640 values over
//! every leading-one position, the largest printed by the test).
//!
//! **Truncation** ([`crate::trunc`]): the normalization product is below 2^(TOP+1) = 2^39
//! (failure probability 2^−24 per value), the powers' products below 2^(2f) and the final sum
//! below 2^(2f+1) (2^−30 with f = 16).
//!
//! Security: semi-honest, non-colluding parties; only values masked by fresh AND and Beaver
//! triples are opened, nothing about `x`, its magnitude `j` or whether it is in range.

use super::convert::{flat, share_of};
use super::normalize::{leading_one, TOP};
use super::recip::{mul_trunc, trunc_flat};
use crate::dry_run::planned;
use crate::error::{MpcError, Result};
use crate::fixed::FixedPoint;
use crate::net::Channel;
use crate::session::Session;
use crate::share::{Role, Share};
use crate::triples::TripleRequest;
use crate::trunc::Truncation;
use std::f64::consts::LN_2;

/// Degree of the polynomial approximating `ln((3 + t)/4)` on `[−1, 1]`.
pub const LN_DEGREE: usize = 7;

/// Monomial coefficients `c_0 … c_7` (from degree 0 up) of the Chebyshev interpolant of
/// `g(t) = ln((3 + t)/4)` at the 8 Chebyshev nodes of `[−1, 1]`; the plaintext reference of
/// the approximation (`ln x = k·ln 2 + g(t)` in the module docs).
pub fn ln_polynomial() -> [f64; LN_DEGREE + 1] {
    const N: usize = LN_DEGREE + 1;
    let g = |t: f64| ((3.0 + t) / 4.0).ln();
    let nodes: Vec<f64> = (0..N)
        .map(|k| (std::f64::consts::PI * (k as f64 + 0.5) / N as f64).cos())
        .collect();
    // T_0 … T_7 in the monomial basis, by T_(j+1) = 2t·T_j − T_(j−1).
    let mut cheb = vec![[0.0; N]; N];
    cheb[0][0] = 1.0;
    cheb[1][1] = 1.0;
    for j in 1..N - 1 {
        for i in 0..N {
            let up = if i > 0 { 2.0 * cheb[j][i - 1] } else { 0.0 };
            cheb[j + 1][i] = up - cheb[j - 1][i];
        }
    }
    let mut out = [0.0; N];
    for (j, tj) in cheb.iter().enumerate() {
        // a_j = (2/N) Σ_k g(t_k) T_j(t_k), the first halved.
        let a: f64 = nodes
            .iter()
            .map(|&t| g(t) * (j as f64 * t.acos()).cos())
            .sum::<f64>()
            * 2.0
            / N as f64;
        let a = if j == 0 { a / 2.0 } else { a };
        for (o, c) in out.iter_mut().zip(tj) {
            *o += a * c;
        }
    }
    out
}

/// The preprocessing [`ln`] consumes for a `dim`-shaped input.
pub fn ln_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    ln_requests_with(dim, Truncation::Local)
}

/// The preprocessing [`ln_with`] consumes with truncation `mode`.
pub fn ln_requests_with(dim: (usize, usize), mode: Truncation) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(format!("ln {dim:?} {mode:?}"), |cx| ln_with(cx, &z, mode))
}

/// How many values [`ln`] truncates for `n` inputs: the normalization, six powers and the sum.
pub fn ln_truncations(n: usize) -> u64 {
    n as u64 * (2 + LN_DEGREE as u64 - 1)
}

/// Secure natural logarithm elementwise, for `2^−f ≤ x < 2^(TOP+1−f)`; other inputs give ≈ 0
/// (see the module docs for rounds, accuracy and truncation bounds).
pub async fn ln<C: Channel>(cx: &mut Session<'_, C>, x: &Share) -> Result<Share> {
    ln_with(cx, x, Truncation::Local).await
}

/// [`ln`] with its truncations done by `mode`.
pub async fn ln_with<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    mode: Truncation,
) -> Result<Share> {
    let fp = cx.fp;
    let f = fp.frac_bits().get();
    if f as usize + 1 > TOP {
        return Err(MpcError::InvalidFracBits {
            frac_bits: f,
            max: TOP as u32 - 1,
        });
    }
    let xs = flat(x);
    if xs.is_empty() {
        return Ok(x.clone());
    }
    let (t, kln2) = reduce(cx, &xs, mode).await?;
    let p = polynomial(cx, &t, mode).await?;
    let out = p
        .iter()
        .zip(&kln2)
        .map(|(a, b)| a.wrapping_add(*b))
        .collect();
    Ok(share_of(x.dim(), out))
}

/// Steps 1 and 2: shares of `t ∈ [−1, 1]` (1 outside the range) and of `k·ln 2`.
async fn reduce<C: Channel>(
    cx: &mut Session<'_, C>,
    xs: &[u64],
    mode: Truncation,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let fp = cx.fp;
    let f = fp.frac_bits().get();
    let p0 = cx.role == Role::P0;
    let lead = leading_one(cx, xs).await?;
    let c = lead.weighted(|j| 1u64 << (TOP - j));
    let logs = (0..=TOP)
        .map(|j| fp.encode((j as f64 + 1.0 - f64::from(f)) * LN_2))
        .collect::<Result<Vec<u64>>>()?;
    let kln2 = lead.weighted(|j| logs[j]);
    let valid = lead.weighted(|_| 1);
    let four = fp.encode(4.0)?;
    let three = fp.encode(3.0)?;
    let m = mul_trunc(cx, (xs, &c), TOP as u32 - 1 - f, mode).await?;
    let t = m
        .iter()
        .zip(&valid)
        .map(|(m, v)| {
            // t = 4v − 3 + (1 − valid)·4: the public 1 is P0's.
            let fallback = if p0 {
                1u64.wrapping_sub(*v)
            } else {
                v.wrapping_neg()
            };
            let t = m.wrapping_add(fallback.wrapping_mul(four));
            if p0 {
                t.wrapping_sub(three)
            } else {
                t
            }
        })
        .collect();
    Ok((t, kln2))
}

/// Step 3: shares of `P(t)`, the powers in three rounds and one truncation of the sum.
async fn polynomial<C: Channel>(
    cx: &mut Session<'_, C>,
    t: &[u64],
    mode: Truncation,
) -> Result<Vec<u64>> {
    let fp = cx.fp;
    let f = fp.frac_bits().get();
    let n = t.len();
    let t2 = mul_trunc(cx, (t, t), f, mode).await?;
    let t34 = mul_trunc(cx, (&[t, &t2].concat(), &[&t2[..], &t2].concat()), f, mode).await?;
    let t4 = &t34[n..];
    let t567 = mul_trunc(
        cx,
        (&[t4, t4, t4].concat(), &[t, &t2, &t34[..n]].concat()),
        f,
        mode,
    )
    .await?;
    let powers: [&[u64]; LN_DEGREE] = [
        t,
        &t2,
        &t34[..n],
        t4,
        &t567[..n],
        &t567[n..2 * n],
        &t567[2 * n..],
    ];
    let coef = encode_all(fp, &ln_polynomial())?;
    let mut acc = vec![0u64; n];
    if cx.role == Role::P0 {
        acc.fill(coef[0] << f);
    }
    for (c, p) in coef[1..].iter().zip(powers) {
        for (a, v) in acc.iter_mut().zip(p) {
            *a = a.wrapping_add(c.wrapping_mul(*v));
        }
    }
    trunc_flat(cx, acc, f, mode).await
}

fn encode_all(fp: FixedPoint, c: &[f64]) -> Result<Vec<u64>> {
    c.iter().map(|&c| fp.encode(c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The interpolant is within 2^−21 of `ln((3 + t)/4)` on `[−1, 1]`, and its coefficients
    /// are the small ones the accuracy argument uses.
    #[test]
    fn the_polynomial_approximates_the_reduced_logarithm() {
        let c = ln_polynomial();
        let mut worst = 0f64;
        for i in 0..=20_000 {
            let t = -1.0 + i as f64 / 10_000.0;
            let p = c.iter().rev().fold(0.0, |acc, &ci| acc * t + ci);
            worst = worst.max((p - ((3.0 + t) / 4.0).ln()).abs());
        }
        assert!(worst < 2f64.powi(-21), "interpolation error {worst:e}");
        assert!(c[1..].iter().all(|c| c.abs() <= 1.0 / 3.0 + 1e-6), "{c:?}");
        // ln(1) = g(1) = 0 for the out-of-range clamp.
        let at_one: f64 = c.iter().sum();
        assert!(at_one.abs() < 2f64.powi(-21));
    }
}
