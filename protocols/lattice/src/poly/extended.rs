//! Products and lifts of NTT-domain polynomials over the extended basis `Q_l ∪ P`, for
//! key-switching results kept before their division by `P` (lazy ModDown, "double hoisting":
//! Bossuat–Mouchet–Troncoso-Pastoriza–Hubaux, EUROCRYPT 2021 §3.2).
//!
//! A polynomial over `Q_l ∪ P` stores its `q_len` limbs of `Q_l` followed by its `p_len` special
//! limbs. A second operand may carry more `q` limbs (a plaintext encoded at a higher level): its
//! first `q_len` limbs and all of its special limbs are used, the same prefix rule as the
//! `Q`-only products of [`super::transform`].

use rayon::prelude::*;

use super::{Ntt, RnsPoly};
use crate::basis::RnsBasis;
use crate::kernels::{self, Shoup};
use crate::pool;

impl RnsPoly<Ntt> {
    /// The limb of `b` that pairs with limb `t` of `self` (`b`'s prefix of `q` limbs, then its
    /// special limbs).
    fn paired_limb<'b>(&self, b: &'b Self, t: usize) -> &'b [u64] {
        let n = self.n;
        let u = if t < self.q_len {
            t
        } else {
            b.q_len + (t - self.q_len)
        };
        &b.data[u * n..(u + 1) * n]
    }

    /// `self = a ⊙ b` (or `self += a ⊙ b` with `accumulate`) over `self`'s basis, special primes
    /// included: `a` has `self`'s basis; `b` has the same special primes and at least as many
    /// `q` limbs (its prefix is used).
    pub fn mul_ext_into(
        &mut self,
        basis: &(impl AsRef<RnsBasis> + ?Sized),
        a: &Self,
        b: &Self,
        accumulate: bool,
    ) {
        let params = basis.as_ref();
        self.same_basis(a);
        assert!(
            b.n == self.n && b.p_len == self.p_len && b.q_len >= self.q_len,
            "RNS basis mismatch (internal invariant)"
        );
        let n = self.n;
        let idx: Vec<usize> = (0..self.limbs())
            .map(|t| self.modulus_index(params, t))
            .collect();
        let this: &Self = self;
        let pairs: Vec<&[u64]> = (0..this.limbs()).map(|t| this.paired_limb(b, t)).collect();
        self.data
            .par_chunks_mut(n)
            .zip(a.data.par_chunks(n))
            .zip(pairs.par_iter())
            .zip(idx.par_iter())
            .for_each(|(((o, x), y), &i)| {
                if !accumulate {
                    o.fill(0);
                }
                params.plans()[i].mul_accumulate(o, x, y);
            });
    }

    /// `self += P·σ(x)` where `P` is the product of the special primes and `σ` the NTT-domain
    /// automorphism `perm` (`σ(x)[c] = x[perm[c]]`; identity without it): the lift of a
    /// polynomial over `Q_l` to `Q_l ∪ P` that a division by `P` turns back into `σ(x)`
    /// exactly. `P·σ(x)` vanishes modulo the special primes, so only the `q` limbs change; `x`
    /// may have more `q` limbs than `self` (its prefix is used).
    pub fn add_p_multiple(
        &mut self,
        basis: &(impl AsRef<RnsBasis> + ?Sized),
        x: &Self,
        perm: Option<&[u32]>,
    ) {
        let params = basis.as_ref();
        assert!(
            x.n == self.n && x.p_len == 0 && x.q_len >= self.q_len && self.p_len > 0,
            "RNS basis mismatch (internal invariant)"
        );
        let n = self.n;
        let big_l = params.q_count();
        let special = &params.moduli()[big_l..big_l + self.p_len];
        self.data[..self.q_len * n]
            .par_chunks_mut(n)
            .zip(x.data.par_chunks(n))
            .enumerate()
            .for_each_init(
                || pool::Scratch::dirty(if perm.is_some() { n } else { 0 }),
                |scratch, (i, (o, xl))| {
                    let m = params.moduli()[i];
                    let p_mod = special
                        .iter()
                        .fold(1u64, |acc, pm| m.mul(acc, m.reduce(pm.value())));
                    let src: &[u64] = match perm {
                        Some(perm) => {
                            for (s, &j) in scratch.0.iter_mut().zip(perm) {
                                *s = xl[j as usize];
                            }
                            &scratch.0[..]
                        }
                        None => xl,
                    };
                    kernels::mul_const_add_assign(o, src, Shoup::new(p_mod, m.value()), m.value());
                },
            );
    }
}
