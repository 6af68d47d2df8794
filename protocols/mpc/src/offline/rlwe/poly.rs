//! The RNS polynomial of the RLWE triple source: `lattice`'s [`RnsPoly`] over a prefix of the
//! five primes of `Q` (no special primes), with the operations this scheme needs taking its
//! [`RlweParams`]. The representation (coefficients or NTT values) is part of the type, so the
//! two cannot be mixed.

use lattice::RnsPoly;

use super::RlweParams;

pub use lattice::{Coeff, Ntt, Repr};

/// An RNS polynomial: `limbs` residue polynomials of `N` coefficients each, limb-major.
#[derive(Clone, PartialEq, Eq)]
pub struct Poly<D: Repr>(pub(super) RnsPoly<D>);

impl<D: Repr> std::fmt::Debug for Poly<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Poly({} words)", self.0.data().len())
    }
}

impl<D: Repr> Poly<D> {
    /// The zero polynomial on the first `limbs` primes.
    pub(super) fn zero(p: &RlweParams, limbs: usize) -> Self {
        Self(RnsPoly::zero(p, limbs, 0))
    }

    /// The residues modulo prime `i`.
    pub fn limb(&self, i: usize) -> &[u64] {
        self.0.limb(i)
    }

    pub(super) fn limb_mut(&mut self, i: usize) -> &mut [u64] {
        self.0.limb_mut(i)
    }

    /// All residues, limb-major.
    pub(super) fn data(&self) -> &[u64] {
        self.0.data()
    }

    pub(super) fn data_mut(&mut self) -> &mut [u64] {
        self.0.data_mut()
    }
}

impl Poly<Coeff> {
    /// Forward NTT of every limb.
    pub fn into_ntt(self, p: &RlweParams) -> Poly<Ntt> {
        Poly(self.0.into_ntt(p))
    }

    /// The polynomial with signed integer coefficients `v` (at most `N`; missing ones are zero),
    /// on the first `limbs` primes.
    pub fn from_signed(p: &RlweParams, v: &[i64], limbs: usize) -> Self {
        let n = p.degree();
        assert!(v.len() <= n, "more coefficients than the ring degree");
        if v.len() == n {
            return Self(RnsPoly::from_signed(p, v, limbs, 0));
        }
        let mut padded = v.to_vec();
        padded.resize(n, 0);
        Self(RnsPoly::from_signed(p, &padded, limbs, 0))
    }

    /// The polynomial whose coefficient `j` is `x` for each `(j, x)` of `entries` (positions below
    /// `N`, each at most once) and zero elsewhere, on the first `limbs` primes: a sparse
    /// plaintext costs its entries, not `N` reductions per prime.
    pub fn from_sparse_signed(p: &RlweParams, entries: &[(usize, i64)], limbs: usize) -> Self {
        let mut out = Self::zero(p, limbs);
        for i in 0..limbs {
            let q = p.modulus(i);
            let limb = out.limb_mut(i);
            for &(j, x) in entries {
                limb[j] = q.reduce_i64(x);
            }
        }
        out
    }
}

impl Poly<Ntt> {
    /// Inverse NTT of every limb (scaled, so the result is the polynomial itself).
    pub fn into_coeff(self, p: &RlweParams) -> Poly<Coeff> {
        Poly(self.0.into_coeff(p))
    }

    /// `self += a ⊙ b` on the limbs of `self` (`a` and `b` may have more).
    pub fn mul_acc(&mut self, p: &RlweParams, a: &Poly<Ntt>, b: &Poly<Ntt>) {
        self.0.mul_add_prefix_assign(p, &a.0, &b.0);
    }

    /// `(Σ_j x_j ⊙ w_j, Σ_j y_j ⊙ w_j)` over `terms = [(x_j, y_j, w_j)]` on the first `limbs`
    /// primes (the inputs may have more), one limb at a time: the two accumulators of a limb stay
    /// in cache while the terms stream through, where a [`Poly::mul_acc`] per term reads and
    /// writes both whole accumulators again for every term.
    pub fn dot_pair(
        p: &RlweParams,
        terms: &[(&Poly<Ntt>, &Poly<Ntt>, &Poly<Ntt>)],
        limbs: usize,
    ) -> (Poly<Ntt>, Poly<Ntt>) {
        let (mut c0, mut c1) = (Self::zero(p, limbs), Self::zero(p, limbs));
        for i in 0..limbs {
            let plan = &p.as_ref().plans()[i];
            let (a0, a1) = (c0.limb_mut(i), c1.limb_mut(i));
            for (x, y, w) in terms {
                let w = w.limb(i);
                plan.mul_accumulate(a0, x.limb(i), w);
                plan.mul_accumulate(a1, y.limb(i), w);
            }
        }
        (c0, c1)
    }

    /// `self -= other`, limb by limb.
    pub(super) fn sub_assign(&mut self, p: &RlweParams, other: &Poly<Ntt>) {
        self.0.sub_assign(p, &other.0);
    }

    /// Overwrites every residue with zero (secret polynomials, before they are dropped).
    pub(super) fn zeroize(&mut self) {
        self.0.zeroize_data();
    }
}
