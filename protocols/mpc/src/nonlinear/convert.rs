//! Boolean-to-arithmetic conversion and the Beaver select, batched into rounds of Beaver products
//! (ABY §III-C, with the cross terms grouped so that select needs one round). The protocols
//! select with the OT multiplexer (module `mux`); [`select_beaver`] stays as its reference.
//!
//! For a bit `b = b0 ⊕ b1` (P0 knows `b0`, P1 knows `b1`):
//!
//! * B2A: `b = b0 + b1 − 2·b0·b1` — one product of a P0-private by a P1-private value;
//! * select (`b·x` for shared `x = x0 + x1`): expanding `b·x = (b0 + b1 − 2 b0 b1)(x0 + x1)` and
//!   grouping the cross terms gives `b·x = b0·x0 + b1·x1 + b0·[x1 (1 − 2 b1)] + b1·[x0 (1 − 2 b0)]`:
//!   two products of a P0-private by a P1-private value, **one round** (the naive B2A-then-multiply
//!   takes two rounds for the same bytes).
//!
//! Each product is an ordinary elementwise Beaver product ([`crate::online::mul`]) whose operands
//! are shared as `(v, 0)` or `(0, v)`; all products of one round go into one triple of shape
//! `1 × N` and one flight. Results are exact (no truncation: `b ∈ {0, 1}`).

use super::bits::{unpack_bits, BitShare};
use crate::dry_run::planned;
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::online;
use crate::session::Session;
use crate::share::{Role, Share};
use crate::triples::TripleRequest;
use ndarray::Array2;

/// The products of one round, collected as this party's shares of the two operands.
#[derive(Default)]
pub(crate) struct ProductRound {
    x: Vec<u64>,
    y: Vec<u64>,
}

/// Where a batched operation's products sit in the round, to pick its result out.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot {
    at: usize,
    n: usize,
}

impl ProductRound {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Queues a product of two shared vectors (this party's shares).
    pub(crate) fn push_mul(&mut self, x: &[u64], y: &[u64]) -> Slot {
        debug_assert_eq!(x.len(), y.len());
        let slot = Slot {
            at: self.x.len(),
            n: x.len(),
        };
        self.x.extend_from_slice(x);
        self.y.extend_from_slice(y);
        slot
    }

    /// Queues `b0 · b1` for B2A; `bits` are this party's 0/1 shares.
    pub(crate) fn push_b2a(&mut self, role: Role, bits: &[u64]) -> Slot {
        let zeros = vec![0u64; bits.len()];
        match role {
            Role::P0 => self.push_mul(bits, &zeros),
            Role::P1 => self.push_mul(&zeros, bits),
        }
    }

    /// Queues the two cross products of `b · x`; `bits` are this party's 0/1 shares, `x` its
    /// arithmetic shares.
    pub(crate) fn push_select(&mut self, role: Role, bits: &[u64], x: &[u64]) -> Slot {
        let n = bits.len();
        debug_assert_eq!(n, x.len());
        let zeros = vec![0u64; n];
        // v = x_i (1 − 2 b_i), this party's private factor.
        let v: Vec<u64> = bits
            .iter()
            .zip(x)
            .map(|(&b, &x)| x.wrapping_mul(1u64.wrapping_sub(b << 1)))
            .collect();
        let at = self.x.len();
        // Product 1: b0 · (P1's v); product 2: b1 · (P0's v).
        match role {
            Role::P0 => {
                self.push_mul(bits, &zeros);
                self.push_mul(&zeros, &v);
            }
            Role::P1 => {
                self.push_mul(&zeros, &v);
                self.push_mul(bits, &zeros);
            }
        }
        Slot { at, n: 2 * n }
    }

    /// Runs the round: one Beaver product over everything queued, one flight.
    pub(crate) async fn run<C: Channel>(self, cx: &mut Session<'_, C>) -> Result<Vec<u64>> {
        let role = cx.role;
        let n = self.x.len();
        if n == 0 {
            return Ok(Vec::new());
        }
        let t = cx.pre.next_elementwise((1, n))?;
        let x = Share::from_ring(Array2::from_shape_vec((1, n), self.x).expect("shape"));
        let y = Share::from_ring(Array2::from_shape_vec((1, n), self.y).expect("shape"));
        let z = online::mul(cx.ch, role, &x, &y, &t).await?;
        Ok(z.into_ring().into_raw_vec_and_offset().0)
    }
}

/// This party's arithmetic share of the bits from its product share: `b_i − 2 z_i`.
pub(crate) fn finish_b2a(bits: &[u64], z: &[u64], slot: Slot) -> Vec<u64> {
    let z = &z[slot.at..slot.at + slot.n];
    bits.iter()
        .zip(z)
        .map(|(&b, &z)| b.wrapping_sub(z << 1))
        .collect()
}

/// This party's share of `b · x` from its product shares: `b_i x_i + z_1 + z_2`.
pub(crate) fn finish_select(bits: &[u64], x: &[u64], z: &[u64], slot: Slot) -> Vec<u64> {
    let n = bits.len();
    let z = &z[slot.at..slot.at + slot.n];
    (0..n)
        .map(|i| {
            x[i].wrapping_mul(bits[i])
                .wrapping_add(z[i])
                .wrapping_add(z[n + i])
        })
        .collect()
}

pub(crate) fn flat(x: &Share) -> Vec<u64> {
    x.view().iter().copied().collect()
}

pub(crate) fn share_of(dim: (usize, usize), v: Vec<u64>) -> Share {
    Share::from_ring(Array2::from_shape_vec(dim, v).expect("shape"))
}

pub(crate) fn bits_of(b: &BitShare) -> Vec<u64> {
    let (r, c) = b.dim();
    unpack_bits(b.words(), r * c)
}

/// The preprocessing [`and`] consumes for `dim`-shaped bit matrices (one round).
pub fn and_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let z = BitShare::zeros(dim);
    planned!(format!("and {dim:?}"), |cx| and(cx, &z, &z))
}

/// Elementwise AND of two shared bit matrices: one round of bit-sliced GMW gates (2 bits sent
/// per entry). XOR and NOT are local ([`BitShare::xor`], [`BitShare::not`]).
pub async fn and<C: Channel>(
    cx: &mut Session<'_, C>,
    a: &BitShare,
    b: &BitShare,
) -> Result<BitShare> {
    if a.dim() != b.dim() {
        return Err(MpcError::ShapeMismatch {
            op: "bit and",
            left: a.dim(),
            right: b.dim(),
        });
    }
    if a.words().is_empty() {
        return Ok(a.clone());
    }
    let z = super::bits::and_gates(cx, a.words(), b.words()).await?;
    Ok(BitShare::from_words(a.dim(), z))
}

/// The preprocessing [`b2a`] consumes for a `dim`-shaped bit matrix (one round).
pub fn b2a_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let z = BitShare::zeros(dim);
    planned!(format!("b2a {dim:?}"), |cx| b2a(cx, &z))
}

/// Boolean-to-arithmetic conversion: additive shares of the bits as integers 0/1 (multiply by
/// 2^f with [`Share::mul_const`] for fixed-point 1.0). One round, one product per bit.
pub async fn b2a<C: Channel>(cx: &mut Session<'_, C>, b: &BitShare) -> Result<Share> {
    let role = cx.role;
    let bits = bits_of(b);
    let mut round = ProductRound::new();
    let slot = round.push_b2a(role, &bits);
    let z = round.run(cx).await?;
    Ok(share_of(b.dim(), finish_b2a(&bits, &z, slot)))
}

/// The preprocessing [`select_beaver`] consumes for `dim`-shaped operands (one round).
pub fn select_beaver_requests(dim: (usize, usize)) -> Vec<TripleRequest> {
    let (b, x) = (BitShare::zeros(dim), Share::zeros(dim.0, dim.1));
    planned!(format!("select_beaver {dim:?}"), |cx| select_beaver(
        cx, &b, &x
    ))
}

/// Secure select `b · x` by two Beaver products per entry: exact, one round, 32 bytes sent per
/// entry. The reference for the OT multiplexer [`super::select`], which the protocols use (a
/// quarter of the online bytes and almost none of the offline ones, for one more flight).
pub async fn select_beaver<C: Channel>(
    cx: &mut Session<'_, C>,
    b: &BitShare,
    x: &Share,
) -> Result<Share> {
    let role = cx.role;
    if b.dim() != x.dim() {
        return Err(MpcError::ShapeMismatch {
            op: "select",
            left: b.dim(),
            right: x.dim(),
        });
    }
    let bits = bits_of(b);
    let xs = flat(x);
    let mut round = ProductRound::new();
    let slot = round.push_select(role, &bits, &xs);
    let z = round.run(cx).await?;
    Ok(share_of(x.dim(), finish_select(&bits, &xs, &z, slot)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::online::beaver_local;
    use crate::share::{reconstruct, share};
    use crate::triples::ElemTriple;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Runs a product round for both parties locally, with an honestly made triple and the
    /// opening done by hand: the channel-free twin of [`ProductRound::run`].
    fn run_local(r0: ProductRound, r1: ProductRound, seed: u64) -> [Vec<u64>; 2] {
        let n = r0.x.len();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let a = crate::ring::random(&mut rng, 1, n);
        let b = crate::ring::random(&mut rng, 1, n);
        let c = crate::ring::hadamard(&a.view(), &b.view());
        let [a0, a1] = share(&a.view(), &mut rng);
        let [b0, b1] = share(&b.view(), &mut rng);
        let [c0, c1] = share(&c.view(), &mut rng);
        let t = [
            ElemTriple {
                a: a0,
                b: b0,
                c: c0,
            },
            ElemTriple {
                a: a1,
                b: b1,
                c: c1,
            },
        ];
        let row = |v: &[u64]| Share::from_ring(Array2::from_shape_vec((1, n), v.to_vec()).unwrap());
        let (x0, y0, x1, y1) = (row(&r0.x), row(&r0.y), row(&r1.x), row(&r1.y));
        let e = reconstruct(&x0.sub(&t[0].a), &x1.sub(&t[1].a));
        let f = reconstruct(&y0.sub(&t[0].b), &y1.sub(&t[1].b));
        let z0 = beaver_local(Role::P0, &e.view(), &f.view(), &t[0]);
        let z1 = beaver_local(Role::P1, &e.view(), &f.view(), &t[1]);
        [
            z0.into_ring().into_raw_vec_and_offset().0,
            z1.into_ring().into_raw_vec_and_offset().0,
        ]
    }

    proptest! {
        /// B2A and the one-round select are exact for every bit and every ring element.
        #[test]
        fn b2a_and_select_laws(
            bits in proptest::collection::vec(0u64..2, 1..40),
            masks in proptest::collection::vec(0u64..2, 40),
            xs in proptest::collection::vec(any::<u64>(), 40),
            rs in proptest::collection::vec(any::<u64>(), 40),
            seed in any::<u64>(),
        ) {
            let n = bits.len();
            let b0: Vec<u64> = masks[..n].to_vec();
            let b1: Vec<u64> = (0..n).map(|i| bits[i] ^ b0[i]).collect();
            let x0: Vec<u64> = rs[..n].to_vec();
            let x1: Vec<u64> = (0..n).map(|i| xs[i].wrapping_sub(x0[i])).collect();
            let (mut r0, mut r1) = (ProductRound::new(), ProductRound::new());
            let s0 = r0.push_b2a(Role::P0, &b0);
            let s1 = r1.push_b2a(Role::P1, &b1);
            let t0 = r0.push_select(Role::P0, &b0, &x0);
            let t1 = r1.push_select(Role::P1, &b1, &x1);
            let [z0, z1] = run_local(r0, r1, seed);
            let a0 = finish_b2a(&b0, &z0, s0);
            let a1 = finish_b2a(&b1, &z1, s1);
            let y0 = finish_select(&b0, &x0, &z0, t0);
            let y1 = finish_select(&b1, &x1, &z1, t1);
            for i in 0..n {
                prop_assert_eq!(a0[i].wrapping_add(a1[i]), bits[i]);
                prop_assert_eq!(y0[i].wrapping_add(y1[i]), bits[i].wrapping_mul(xs[i]));
            }
        }
    }
}
