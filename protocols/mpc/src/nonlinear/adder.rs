//! Arithmetic-to-boolean conversion and MSB extraction by a bit-sliced Sklansky parallel-prefix
//! adder evaluated with GMW (ABY §III-C; Sklansky, IRE Trans. Electronic Computers 1960).
//!
//! The shares `x0` (P0's) and `x1` (P1's) are the two addends; P0's bits are XOR-shared as
//! `(x0_j, 0)` and P1's as `(0, x1_j)`, so the propagate bits `p_j = x0_j ⊕ x1_j` are free (each
//! party's own bit is its share) and only the generate bits `g_j = x0_j ∧ x1_j` need one round of
//! AND gates. The carries `c_{j+1} = G[j:0]` then come from a Sklansky prefix over the 63 low
//! positions with the operator `(G, P)_hi ∘ (G, P)_lo = (G_hi ⊕ P_hi ∧ G_lo, P_hi ∧ P_lo)` —
//! ⌈log2 63⌉ = 6 levels, one round each. Gates whose outputs are not needed are pruned (the
//! group-propagate of any block that reaches bit 0 is never used; for the MSB only the chain to
//! `G[62:0]` is kept), so the MSB costs 1 + 6 = 7 rounds and fewer AND gates than a full
//! conversion (see [`msb_and_gates`], [`a2b_and_gates`]).
//!
//! The adder works modulo 2^64 exactly, so the MSB is exact for every two's-complement value —
//! no range assumption.

use super::bits::{and_gates, bit_planes, BitShare};
use crate::dry_run::planned;
use crate::error::Result;
use crate::net::Channel;
use crate::session::Session;
use crate::share::{Role, Share};
use crate::triples::TripleRequest;

/// Width of the carry prefix: positions 0..=62 produce the carries into bits 1..=63.
const WIDTH: usize = 63;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `g[j] ^= p[j] ∧ g[l]`.
    G,
    /// `p[j] = p[j] ∧ p[l]`.
    P,
}

#[derive(Debug, Clone, Copy)]
struct Gate {
    kind: Kind,
    j: usize,
    l: usize,
}

/// A pruned Sklansky carry network: which leaf generates are needed (round 0) and the gates of
/// each later round. Empty levels are dropped (they would cost a round for nothing).
#[derive(Debug, Clone)]
struct CarryPlan {
    leaves: Vec<usize>,
    levels: Vec<Vec<Gate>>,
}

impl CarryPlan {
    /// The Sklansky network for `G[j:0]`, `j ∈ outputs`, with every unneeded gate removed.
    fn new(outputs: &[usize]) -> Self {
        let mut full: Vec<Vec<Gate>> = Vec::new();
        let mut k = 0;
        while (1usize << k) < WIDTH {
            let mut level = Vec::new();
            for j in 0..WIDTH {
                if (j >> k) & 1 == 1 {
                    let l = ((j >> k) << k) - 1;
                    level.push(Gate {
                        kind: Kind::G,
                        j,
                        l,
                    });
                    if (j >> (k + 1)) << (k + 1) > 0 {
                        level.push(Gate {
                            kind: Kind::P,
                            j,
                            l,
                        });
                    }
                }
            }
            full.push(level);
            k += 1;
        }
        let mut need_g = [false; WIDTH];
        let mut need_p = [false; WIDTH];
        for &o in outputs {
            need_g[o] = true;
        }
        let mut levels = Vec::new();
        for level in full.into_iter().rev() {
            let kept: Vec<Gate> = level
                .into_iter()
                .filter(|g| match g.kind {
                    Kind::G => need_g[g.j],
                    Kind::P => need_p[g.j],
                })
                .collect();
            for g in &kept {
                need_p[g.j] = true;
                match g.kind {
                    Kind::G => need_g[g.l] = true,
                    Kind::P => need_p[g.l] = true,
                }
            }
            if !kept.is_empty() {
                levels.push(kept);
            }
        }
        levels.reverse();
        let leaves = (0..WIDTH).filter(|&j| need_g[j]).collect();
        Self { leaves, levels }
    }

    /// AND gates per round (per instance).
    fn gates_per_round(&self) -> Vec<usize> {
        std::iter::once(self.leaves.len())
            .chain(self.levels.iter().map(Vec::len))
            .collect()
    }

    /// Evaluates the network on this party's bit planes (`64 × w` words, see
    /// [`super::bits::bit_planes`]); returns this party's shares of the generate planes
    /// (`WIDTH × w` words; only the planned outputs are meaningful).
    async fn eval<C: Channel>(
        &self,
        cx: &mut Session<'_, C>,
        planes: &[u64],
        w: usize,
    ) -> Result<Vec<u64>> {
        let role = cx.role;
        let plane = |j: usize| &planes[j * w..(j + 1) * w];
        let zeros = vec![0u64; w];
        // Round 0: g_j = x0_j ∧ x1_j with inputs shared as (x0_j, 0) and (0, x1_j).
        let mut x = Vec::with_capacity(self.leaves.len() * w);
        let mut y = Vec::with_capacity(self.leaves.len() * w);
        for &j in &self.leaves {
            let (mine, none) = (plane(j), &zeros[..]);
            match role {
                Role::P0 => {
                    x.extend_from_slice(mine);
                    y.extend_from_slice(none);
                }
                Role::P1 => {
                    x.extend_from_slice(none);
                    y.extend_from_slice(mine);
                }
            }
        }
        let leaf = and_gates(cx, &x, &y).await?;
        let mut g = vec![0u64; WIDTH * w];
        for (i, &j) in self.leaves.iter().enumerate() {
            g[j * w..(j + 1) * w].copy_from_slice(&leaf[i * w..(i + 1) * w]);
        }
        let mut p = planes[..WIDTH * w].to_vec();
        for level in &self.levels {
            let mut x = Vec::with_capacity(level.len() * w);
            let mut y = Vec::with_capacity(level.len() * w);
            for gate in level {
                x.extend_from_slice(&p[gate.j * w..(gate.j + 1) * w]);
                let src = match gate.kind {
                    Kind::G => &g,
                    Kind::P => &p,
                };
                y.extend_from_slice(&src[gate.l * w..(gate.l + 1) * w]);
            }
            let out = and_gates(cx, &x, &y).await?;
            for (i, gate) in level.iter().enumerate() {
                let o = &out[i * w..(i + 1) * w];
                let dst = &mut match gate.kind {
                    Kind::G => &mut g,
                    Kind::P => &mut p,
                }[gate.j * w..(gate.j + 1) * w];
                match gate.kind {
                    Kind::G => dst.iter_mut().zip(o).for_each(|(d, o)| *d ^= o),
                    Kind::P => dst.copy_from_slice(o),
                }
            }
        }
        Ok(g)
    }
}

fn msb_plan() -> CarryPlan {
    CarryPlan::new(&[WIDTH - 1])
}

fn a2b_plan() -> CarryPlan {
    CarryPlan::new(&(0..WIDTH).collect::<Vec<_>>())
}

/// AND gates per instance in each round of [`msb`] (the first entry is the generate round).
pub fn msb_and_gates() -> Vec<usize> {
    msb_plan().gates_per_round()
}

/// AND gates per instance in each round of [`a2b`].
pub fn a2b_and_gates() -> Vec<usize> {
    a2b_plan().gates_per_round()
}

/// The preprocessing [`msb`] consumes for `n` values: one `And` block per round (7 rounds).
pub fn msb_flat_requests(n: usize) -> Vec<TripleRequest> {
    let z = vec![0; n];
    planned!(format!("msb_flat {n}"), |cx| msb_flat(cx, &z))
}

/// The preprocessing [`msb`] consumes for a `dim`-shaped input.
pub fn msb_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(format!("msb {dim:?}"), |cx| msb(cx, &z))
}

/// The preprocessing [`a2b`] consumes for a `dim`-shaped input.
pub fn a2b_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let z = Share::zeros(dim.0, dim.1);
    planned!(format!("a2b {dim:?}"), |cx| a2b(cx, &z))
}

/// MSB of a flat vector of this party's shares, as packed XOR-share words.
pub(crate) async fn msb_flat<C: Channel>(
    cx: &mut Session<'_, C>,
    values: &[u64],
) -> Result<Vec<u64>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let (planes, w) = bit_planes(values);
    let g = msb_plan().eval(cx, &planes, w).await?;
    let top = &planes[63 * w..64 * w];
    let carry = &g[(WIDTH - 1) * w..WIDTH * w];
    Ok(top.iter().zip(carry).map(|(a, c)| a ^ c).collect())
}

/// XOR shares of the most significant bit of a shared matrix (1 where the two's-complement value
/// is negative): 7 rounds, [`msb_and_gates`] AND gates per value.
pub async fn msb<C: Channel>(cx: &mut Session<'_, C>, x: &Share) -> Result<BitShare> {
    let values: Vec<u64> = x.view().iter().copied().collect();
    let words = msb_flat(cx, &values).await?;
    Ok(BitShare::from_words(x.dim(), words))
}

/// Bit planes of a flat vector (this party's XOR shares of every bit of every value; plane `j`
/// at `[j * w, (j + 1) * w)`, `w = ⌈n/64⌉`).
pub(crate) async fn a2b_flat<C: Channel>(
    cx: &mut Session<'_, C>,
    values: &[u64],
) -> Result<(Vec<u64>, usize)> {
    if values.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let (planes, w) = bit_planes(values);
    let g = a2b_plan().eval(cx, &planes, w).await?;
    let mut sum = planes;
    for j in 1..64 {
        for i in 0..w {
            sum[j * w + i] ^= g[(j - 1) * w + i];
        }
    }
    Ok((sum, w))
}

/// Arithmetic-to-boolean conversion: XOR shares of all 64 bits of a shared matrix, bit `j` at
/// index `j` (7 rounds, [`a2b_and_gates`] AND gates per value).
pub async fn a2b<C: Channel>(cx: &mut Session<'_, C>, x: &Share) -> Result<Vec<BitShare>> {
    let values: Vec<u64> = x.view().iter().copied().collect();
    let n = values.len();
    let (planes, w) = a2b_flat(cx, &values).await?;
    Ok((0..64)
        .map(|j| {
            let words = if n == 0 {
                Vec::new()
            } else {
                planes[j * w..(j + 1) * w].to_vec()
            };
            BitShare::from_words(x.dim(), words)
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod tests {
    use super::*;

    /// Evaluates a plan on plaintext bits (P1's shares all zero is the same as plaintext).
    fn plain_carries(plan: &CarryPlan, a: u64, b: u64) -> [u64; WIDTH] {
        let mut g = [0u64; WIDTH];
        let mut p = [0u64; WIDTH];
        for j in 0..WIDTH {
            p[j] = ((a ^ b) >> j) & 1;
        }
        for &j in &plan.leaves {
            g[j] = ((a & b) >> j) & 1;
        }
        for level in &plan.levels {
            let (g0, p0) = (g, p);
            for gate in level {
                match gate.kind {
                    Kind::G => g[gate.j] = g0[gate.j] ^ (p0[gate.j] & g0[gate.l]),
                    Kind::P => p[gate.j] = p0[gate.j] & p0[gate.l],
                }
            }
        }
        g
    }

    #[test]
    fn pruned_plans_compute_the_right_carries() {
        let msb = msb_plan();
        let full = a2b_plan();
        assert_eq!(msb.gates_per_round().len(), 7);
        assert_eq!(full.gates_per_round().len(), 7);
        assert!(
            msb.gates_per_round().iter().sum::<usize>()
                < full.gates_per_round().iter().sum::<usize>()
        );
        let mut s = 0x9E37_79B9_7F4A_7C15u64;
        let mut cases = vec![
            (0, 0),
            (u64::MAX, 1),
            (1 << 62, 1 << 62),
            (u64::MAX >> 1, 1),
        ];
        for _ in 0..2000 {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = s;
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            cases.push((a, s));
        }
        for (a, b) in cases {
            let gm = plain_carries(&msb, a, b);
            let gf = plain_carries(&full, a, b);
            let sum = a.wrapping_add(b);
            // G[62:0] is the carry into bit 63.
            assert_eq!((a >> 63) ^ (b >> 63) ^ gm[62], sum >> 63, "{a:x}+{b:x}");
            for j in 1..64 {
                let bit = ((a ^ b) >> j) & 1 ^ gf[j - 1];
                assert_eq!(bit, (sum >> j) & 1, "bit {j} of {a:x}+{b:x}");
            }
        }
    }
}
