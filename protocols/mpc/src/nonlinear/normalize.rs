//! The range reduction shared by the reciprocal ([`super::recip`]) and the logarithm
//! ([`super::log`]): the one-hot position of the leading one of a shared positive fixed-point
//! value (Catrina–Saxena, FC 2010, §3.4, with bit decomposition by the GMW adder of
//! [`super::adder`]).
//!
//! For an encoding `X ∈ [2^j, 2^(j+1))`:
//!
//! 1. bits of `X` by [`super::adder::a2b`] (7 rounds);
//! 2. `z_i = [X < 2^i]` for `i ≤ TOP + 1` by a Sklansky suffix-AND of the negated bits
//!    (6 rounds); the one-hot leading-one indicator is `l_j = z_j ⊕ z_(j+1)` and `z_0 = [X = 0]`;
//! 3. B2A of `l_0 … l_TOP` and `z_0` in one round.
//!
//! **Rounds**: 14. Every `l_j` is 0 when `X = 0`, when `X` is negative (two's complement) and
//! when `X ≥ 2^(TOP+1)`; callers turn that into a documented clamp. Any public function of `j`
//! is then a local weighted sum `Σ_j l_j·w(j)` ([`LeadingOne::weighted`]), exact in the ring.
//!
//! Security: as the adder and B2A it is built from — only values masked by fresh AND and Beaver
//! triples are opened, nothing about `X` or `j`.

use super::adder::a2b_flat;
use super::bits::{and_gates, unpack_bits};
use super::convert::{finish_b2a, ProductRound};
use crate::error::Result;
use crate::net::Channel;
use crate::session::Session;
use crate::share::Role;

/// Highest leading-one position handled by the normalization: inputs with encoding below
/// 2^(TOP+1) are normalized.
pub const TOP: usize = 38;

/// This party's arithmetic shares of the leading-one indicators of a flat vector.
#[derive(Debug)]
pub(crate) struct LeadingOne {
    /// `onehot[j][i] = [the leading one of X_i is bit j]` for `j ≤ TOP`, as integers 0/1.
    onehot: Vec<Vec<u64>>,
    /// `[X_i = 0]` as integers 0/1.
    pub(crate) is_zero: Vec<u64>,
}

impl LeadingOne {
    /// Shares of `Σ_j l_j·w(j)` per value: a public function of the leading-one position,
    /// 0 where no `l_j` is set (local, exact modulo 2^64).
    pub(crate) fn weighted(&self, w: impl Fn(usize) -> u64) -> Vec<u64> {
        let n = self.is_zero.len();
        let mut out = vec![0u64; n];
        for (j, l) in self.onehot.iter().enumerate() {
            let wj = w(j);
            for (o, a) in out.iter_mut().zip(l) {
                *o = o.wrapping_add(a.wrapping_mul(wj));
            }
        }
        out
    }
}

/// A pruned Sklansky prefix-AND network over 64 positions.
#[derive(Debug, Clone)]
struct AndPrefixPlan {
    levels: Vec<Vec<(usize, usize)>>,
}

impl AndPrefixPlan {
    fn new(width: usize, outputs: &[usize]) -> Self {
        let mut full = Vec::new();
        let mut k = 0;
        while (1usize << k) < width {
            let level: Vec<(usize, usize)> = (0..width)
                .filter(|j| (j >> k) & 1 == 1)
                .map(|j| (j, ((j >> k) << k) - 1))
                .collect();
            full.push(level);
            k += 1;
        }
        let mut need = vec![false; width];
        for &o in outputs {
            need[o] = true;
        }
        let mut levels = Vec::new();
        for level in full.into_iter().rev() {
            let kept: Vec<(usize, usize)> = level.into_iter().filter(|&(j, _)| need[j]).collect();
            for &(_, l) in &kept {
                need[l] = true;
            }
            if !kept.is_empty() {
                levels.push(kept);
            }
        }
        levels.reverse();
        Self { levels }
    }

    /// The suffix plan of the normalization: position `r` holds bit `63 − r`, outputs `z_j` for
    /// `j ≤ TOP + 1`.
    fn suffix() -> Self {
        Self::new(64, &((62 - TOP)..64).collect::<Vec<_>>())
    }
}

/// Shares of `z_j = [X < 2^j]` for `j ≤ TOP + 1` (bits, one `u64` per value), steps 1 and 2.
async fn below_powers<C: Channel>(cx: &mut Session<'_, C>, xs: &[u64]) -> Result<Vec<Vec<u64>>> {
    let p0 = cx.role == Role::P0;
    let n = xs.len();
    let (planes, w) = a2b_flat(cx, xs).await?;
    // Suffix-AND of the negated bits, position r = 63 − j.
    let mut v: Vec<u64> = vec![0; 64 * w];
    for r in 0..64 {
        let j = 63 - r;
        for i in 0..w {
            let s = planes[j * w + i];
            v[r * w + i] = if p0 { !s } else { s };
        }
    }
    for level in &AndPrefixPlan::suffix().levels {
        let mut x = Vec::with_capacity(level.len() * w);
        let mut y = Vec::with_capacity(level.len() * w);
        for &(j, l) in level {
            x.extend_from_slice(&v[j * w..(j + 1) * w]);
            y.extend_from_slice(&v[l * w..(l + 1) * w]);
        }
        let out = and_gates(cx, &x, &y).await?;
        for (i, &(j, _)) in level.iter().enumerate() {
            v[j * w..(j + 1) * w].copy_from_slice(&out[i * w..(i + 1) * w]);
        }
    }
    Ok((0..=TOP + 1)
        .map(|j| unpack_bits(&v[(63 - j) * w..(64 - j) * w], n))
        .collect())
}

/// The one-hot leading one and the zero flag of every `X_i` (14 rounds, see the module docs).
pub(crate) async fn leading_one<C: Channel>(
    cx: &mut Session<'_, C>,
    xs: &[u64],
) -> Result<LeadingOne> {
    let role = cx.role;
    let zs = below_powers(cx, xs).await?;
    let mut round = ProductRound::new();
    let mut slots = Vec::with_capacity(TOP + 2);
    let mut bits = Vec::with_capacity(TOP + 1);
    for j in 0..=TOP {
        let l: Vec<u64> = zs[j].iter().zip(&zs[j + 1]).map(|(a, b)| a ^ b).collect();
        slots.push(round.push_b2a(role, &l));
        bits.push(l);
    }
    let zslot = round.push_b2a(role, &zs[0]);
    let zz = round.run(cx).await?;
    let onehot = bits
        .iter()
        .zip(slots)
        .map(|(l, s)| finish_b2a(l, &zz, s))
        .collect();
    let is_zero = finish_b2a(&zs[0], &zz, zslot);
    Ok(LeadingOne { onehot, is_zero })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pruned suffix network computes `z_j = [X < 2^j]` for every `j ≤ TOP + 1` (plaintext).
    #[test]
    fn suffix_plan_finds_the_leading_one() {
        let plan = AndPrefixPlan::suffix();
        assert_eq!(plan.levels.len(), 6);
        let mut xs: Vec<u64> = vec![0, 1, 2, 3, u64::MAX, 1 << 63, (1 << 39) - 1, 1 << 39];
        xs.extend((0..64).map(|j| 1u64 << j));
        xs.extend((0..64).map(|j| (1u64 << j).wrapping_mul(0x9E37_79B9) | (1 << j)));
        for x in xs {
            let mut v: Vec<bool> = (0..64).map(|r| (x >> (63 - r)) & 1 == 0).collect();
            for level in &plan.levels {
                let old = v.clone();
                for &(j, l) in level {
                    v[j] = old[j] && old[l];
                }
            }
            for j in 0..=TOP + 1 {
                let want = x < (1u64 << j);
                assert_eq!(v[63 - j], want, "z_{j} of {x:#x}");
            }
        }
    }
}
