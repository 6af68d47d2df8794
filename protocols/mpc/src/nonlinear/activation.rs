//! Comparisons and piecewise-linear activations on top of the MSB: ReLU and its derivative,
//! SecureML's piecewise sigmoid (Mohassel–Zhang §IV-C, Eq. 4), comparison and clamping.
//!
//! Every function runs one millionaires' comparison pass ([`super::millionaire`], 6 rounds at
//! the default leaf width) for all of its comparisons and one pass of the OT multiplexer
//! ([`super::mux`], 2 rounds) for all of its bit products, so a whole layer costs 8 rounds
//! whatever its size. The GMW adder ([`super::msb`]) and the Beaver select
//! ([`super::select_beaver`]) stay as the references; they compute the same values.

use super::bits::{unpack_bits, BitShare};
use super::convert::{flat, share_of};
use super::millionaire::{msb_flat, msb_millionaire, LEAF_BITS};
use super::mux::{select, MuxRound};
use crate::dry_run::planned;
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::session::Session;
use crate::share::{Role, Share};
use crate::triples::TripleRequest;

/// The preprocessing [`less_than`] consumes.
pub fn less_than_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(format!("less_than {dim:?}"), |cx| less_than(cx, &z, &z))
}

/// XOR shares of `[x < y]` (signed), as `msb(x − y)`: exact whenever `x − y` does not wrap,
/// i.e. `|x − y| < 2^63` (always true for two fixed-point encodings). 6 rounds.
pub async fn less_than<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    y: &Share,
) -> Result<BitShare> {
    if x.dim() != y.dim() {
        return Err(MpcError::ShapeMismatch {
            op: "less_than",
            left: x.dim(),
            right: y.dim(),
        });
    }
    msb_millionaire(cx, &x.sub(y), LEAF_BITS).await
}

/// The preprocessing [`drelu`] consumes.
pub fn drelu_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(format!("drelu {dim:?}"), |cx| drelu(cx, &z))
}

/// XOR shares of ReLU's derivative `[x ≥ 0] = 1 − msb(x)`, exact for every ring element. 6 rounds.
pub async fn drelu<C: Channel>(cx: &mut Session<'_, C>, x: &Share) -> Result<BitShare> {
    let role = cx.role;
    Ok(msb_millionaire(cx, x, LEAF_BITS).await?.not(role))
}

/// The preprocessing [`relu`] and [`relu_with_derivative`] consume: the comparison, then `n`
/// random OTs per direction.
pub fn relu_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(format!("relu {dim:?}"), |cx| relu_with_derivative(cx, &z))
}

/// ReLU `max(x, 0)` and its derivative `[x ≥ 0]` from one comparison and one multiplexer:
/// 8 rounds, exact.
pub async fn relu_with_derivative<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
) -> Result<(Share, BitShare)> {
    let d = drelu(cx, x).await?;
    let r = select(cx, &d, x).await?;
    Ok((r, d))
}

/// ReLU `max(x, 0)`: 8 rounds, exact for every ring element.
pub async fn relu<C: Channel>(cx: &mut Session<'_, C>, x: &Share) -> Result<Share> {
    Ok(relu_with_derivative(cx, x).await?.0)
}

/// The preprocessing [`piecewise_sigmoid`] consumes: one comparison pass over `2n` values, then
/// `2n` random OTs per direction.
pub fn piecewise_sigmoid_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(
        format!("piecewise_sigmoid {dim:?}"),
        |cx| piecewise_sigmoid(cx, &z)
    )
}

/// SecureML's piecewise sigmoid (§IV-C, Eq. 4): `0` for `x < −½`, `x + ½` for `−½ ≤ x < ½`, `1`
/// for `x ≥ ½`, in fixed point with `fp`'s fractional bits. 8 rounds.
///
/// With `c1 = [x + ½ ≥ 0]` and `c2 = [x − ½ ≥ 0]` (both comparisons in one pass), the
/// output is `(c1 ⊕ c2)·(x + ½) + c2·1` — two multiplexer entries in the same pass (the second
/// on the public 1, shared as P0's). Exact (no
/// truncation) for every `|x| < 2^(63−f) − ½`. Known limit: in the outermost half unit of the
/// range that [`FixedPoint::encode`](crate::FixedPoint::encode) accepts (`2^(63−f) − ½ ≤ |x| < 2^(63−f)`) `x ± ½` wraps
/// around the ring and the result is wrong; exactness there would need a third comparison
/// (`msb(x)`) and more products.
pub async fn piecewise_sigmoid<C: Channel>(cx: &mut Session<'_, C>, x: &Share) -> Result<Share> {
    let role = cx.role;
    let fp = cx.fp;
    let half = 1u64 << (fp.frac_bits().get() - 1);
    let one = 1u64 << fp.frac_bits().get();
    let n = x.dim().0 * x.dim().1;
    let hi = flat(&x.add_public(role, &ndarray::Array2::from_elem(x.dim(), half).view()));
    let lo = flat(&x.add_public(
        role,
        &ndarray::Array2::from_elem(x.dim(), half.wrapping_neg()).view(),
    ));
    let mut both = hi.clone();
    both.extend_from_slice(&lo);
    let m = msb_flat(cx, &both).await?;
    let m = unpack_bits(&m, 2 * n);
    let (m1, m2) = m.split_at(n);
    // c1 ⊕ c2 = (1 − m1) ⊕ (1 − m2) = m1 ⊕ m2; c2 = 1 − m2 (P0 flips).
    let d: Vec<u64> = m1.iter().zip(m2).map(|(a, b)| a ^ b).collect();
    let c2: Vec<u64> = m2
        .iter()
        .map(|&b| if role == Role::P0 { b ^ 1 } else { b })
        .collect();
    let ones = vec![if role == Role::P0 { one } else { 0 }; n];
    let mut round = MuxRound::new();
    let s_sel = round.push(&d, &hi);
    let s_one = round.push(&c2, &ones);
    let z = round.run(cx).await?;
    let out: Vec<u64> = z[s_sel]
        .iter()
        .zip(&z[s_one])
        .map(|(s, c)| s.wrapping_add(*c))
        .collect();
    Ok(share_of(x.dim(), out))
}

/// The preprocessing [`clamp`] consumes: one comparison pass over `2n` values, then `2n`
/// random OTs per direction.
pub fn clamp_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(format!("clamp {dim:?}"), |cx| clamp(cx, &z, 0, 0))
}

/// Clamps every entry to `[lo, hi]` (public ring elements, compared as signed): 8 rounds, exact
/// whenever `x − lo` and `hi − x` do not wrap (|x|, |lo|, |hi| below 2^62 suffices).
pub async fn clamp<C: Channel>(
    cx: &mut Session<'_, C>,
    x: &Share,
    lo: u64,
    hi: u64,
) -> Result<Share> {
    let role = cx.role;
    let n = x.dim().0 * x.dim().1;
    let xs = flat(x);
    let p0 = role == Role::P0;
    // Shares of x − lo and hi − x.
    let below: Vec<u64> = xs
        .iter()
        .map(|&v| if p0 { v.wrapping_sub(lo) } else { v })
        .collect();
    let above: Vec<u64> = xs
        .iter()
        .map(|&v| {
            let nv = v.wrapping_neg();
            if p0 {
                nv.wrapping_add(hi)
            } else {
                nv
            }
        })
        .collect();
    let mut both = below.clone();
    both.extend_from_slice(&above);
    let m = msb_flat(cx, &both).await?;
    let m = unpack_bits(&m, 2 * n);
    let (c_lo, c_hi) = m.split_at(n);
    // x + [x < lo]·(lo − x) + [x > hi]·(hi − x): lo − x = −below, hi − x = above.
    let neg_below: Vec<u64> = below.iter().map(|v| v.wrapping_neg()).collect();
    let mut round = MuxRound::new();
    let s1 = round.push(c_lo, &neg_below);
    let s2 = round.push(c_hi, &above);
    let z = round.run(cx).await?;
    let (a, b) = (&z[s1], &z[s2]);
    let out: Vec<u64> = (0..n)
        .map(|i| xs[i].wrapping_add(a[i]).wrapping_add(b[i]))
        .collect();
    Ok(share_of(x.dim(), out))
}
