//! RNS polynomials in `Z_Q[X]/(X^N + 1)` with the representation in the type.
//!
//! A polynomial is stored as one limb of `N` residues per prime (RNS, Cheon–Han–Kim–Kim–Song,
//! SAC 2018 §3). [`Coeff`] polynomials hold coefficients, [`Ntt`] polynomials hold evaluations at
//! the odd powers of a primitive `2N`-th root of unity (in `tfhe-ntt`'s bit-reversed order), so an
//! NTT-domain polynomial cannot be added to a coefficient-domain one by mistake. The basis is
//! `q_0..q_{q_len-1}` optionally followed by all special primes `p_0..p_{k-1}`.
//!
//! This module holds the type, its storage and the limb-wise additions; [`transform`] the NTT,
//! the pointwise products and the ring automorphisms `X ↦ X^g` used for rotations; [`extended`]
//! products and `P`-multiples over `Q_l ∪ P` for key-switching results kept before their
//! division by `P` (lazy ModDown); [`rescale`]
//! rescaling by the last prime and division by `P` (Han–Ki "ModDown"); [`base_conv`] fast RNS base
//! conversion (SAC 2018 §2.2), made exact and centred with the floating-point overflow estimate of
//! Halevi–Polyakov–Shoup (CT-RSA 2019 §2.3) so that key-switching digits and ModDown roundings
//! have zero mean (measured: +2 to +6 bits of rotation precision over the plain fast conversion).
//!
//! Every operation takes the basis as `&impl AsRef<RnsBasis>`, so a scheme passes its own
//! parameter type (which holds an [`RnsBasis`]).

use std::marker::PhantomData;

use rayon::prelude::*;
use zeroize::Zeroize;

use crate::arith::Modulus;
use crate::basis::RnsBasis;
use crate::kernels;
use crate::pool;

pub mod base_conv;
pub mod extended;
pub mod rescale;
#[cfg(test)]
mod tests;
pub mod transform;

pub use base_conv::BaseConverter;
pub use transform::ntt_automorphism_perm;

mod sealed {
    pub trait Sealed {}
}

/// Marker for a polynomial representation.
pub trait Repr: sealed::Sealed + Copy + Send + Sync + 'static + std::fmt::Debug {}

/// Coefficient representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coeff;
/// Evaluation (NTT) representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ntt;
impl sealed::Sealed for Coeff {}
impl sealed::Sealed for Ntt {}
impl Repr for Coeff {}
impl Repr for Ntt {}

/// A polynomial in RNS form over `q_0..q_{q_len-1}` (and `P` when `p_len > 0`).
///
/// The residue buffer comes from, and returns to on drop, the crate's buffer pool
/// ([`crate::pool`]), so results of homomorphic operations are written into recycled memory.
#[derive(PartialEq, Eq)]
pub struct RnsPoly<R: Repr> {
    n: usize,
    q_len: usize,
    p_len: usize,
    /// Limb-major residues: limb `t` is `data[t*n..(t+1)*n]`.
    data: Vec<u64>,
    _repr: PhantomData<R>,
}

impl<R: Repr> std::fmt::Debug for RnsPoly<R> {
    // Residues may be secret (keys, plaintexts): print the shape only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RnsPoly")
            .field("repr", &std::any::type_name::<R>())
            .field("n", &self.n)
            .field("q_len", &self.q_len)
            .field("p_len", &self.p_len)
            .finish_non_exhaustive()
    }
}

impl<R: Repr> Clone for RnsPoly<R> {
    fn clone(&self) -> Self {
        let mut data = pool::take_empty(self.data.len());
        data.extend_from_slice(&self.data);
        Self::from_data(self.n, self.q_len, self.p_len, data)
    }
}

impl<R: Repr> Drop for RnsPoly<R> {
    fn drop(&mut self) {
        pool::give(std::mem::take(&mut self.data));
    }
}

impl<R: Repr> RnsPoly<R> {
    /// The zero polynomial over `q_0..q_{q_len-1}` and `p_len` special primes.
    pub fn zero(basis: &(impl AsRef<RnsBasis> + ?Sized), q_len: usize, p_len: usize) -> Self {
        let params = basis.as_ref();
        let n = params.n();
        Self::from_data(n, q_len, p_len, pool::take_zeroed(n * (q_len + p_len)))
    }

    /// A polynomial whose residues are arbitrary leftovers of an earlier use (a pooled buffer):
    /// every element must be overwritten before the polynomial is used.
    pub fn dirty(n: usize, q_len: usize, p_len: usize) -> Self {
        Self::from_data(n, q_len, p_len, pool::take_dirty(n * (q_len + p_len)))
    }

    /// A polynomial of degree `n` over `q_len` + `p_len` limbs holding the limb-major residues
    /// `data` (each reduced modulo its limb's prime; decoders check this).
    pub fn from_data(n: usize, q_len: usize, p_len: usize, data: Vec<u64>) -> Self {
        assert_eq!(
            data.len(),
            n * (q_len + p_len),
            "residue count of an RNS polynomial"
        );
        Self {
            n,
            q_len,
            p_len,
            data,
            _repr: PhantomData,
        }
    }

    /// Number of `q` limbs (level + 1).
    pub fn q_len(&self) -> usize {
        self.q_len
    }
    /// Number of special-prime limbs (0 or `k`).
    pub fn p_len(&self) -> usize {
        self.p_len
    }
    /// Total number of limbs.
    pub fn limbs(&self) -> usize {
        self.q_len + self.p_len
    }
    /// The residues modulo the `t`-th prime of the basis.
    pub fn limb(&self, t: usize) -> &[u64] {
        &self.data[t * self.n..(t + 1) * self.n]
    }
    /// The residues modulo the `t`-th prime, mutably (writers keep them reduced).
    pub fn limb_mut(&mut self, t: usize) -> &mut [u64] {
        &mut self.data[t * self.n..(t + 1) * self.n]
    }
    /// All residues, limb-major: limb `t` is `data()[t*n..(t+1)*n]`.
    pub fn data(&self) -> &[u64] {
        &self.data
    }
    /// All residues, mutably (writers keep them reduced).
    pub fn data_mut(&mut self) -> &mut [u64] {
        &mut self.data
    }
    /// The ring degree `N`.
    pub fn degree(&self) -> usize {
        self.n
    }
    /// Index into the basis' moduli of limb `t`.
    #[inline]
    pub fn modulus_index(&self, basis: &(impl AsRef<RnsBasis> + ?Sized), t: usize) -> usize {
        let params = basis.as_ref();
        if t < self.q_len {
            t
        } else {
            params.q_count() + (t - self.q_len)
        }
    }
    /// The moduli of this polynomial's limbs, in limb order.
    pub fn moduli(&self, basis: &(impl AsRef<RnsBasis> + ?Sized)) -> Vec<Modulus> {
        let params = basis.as_ref();
        (0..self.limbs())
            .map(|t| params.moduli()[self.modulus_index(params, t)])
            .collect()
    }

    fn same_basis(&self, other: &Self) {
        assert!(
            self.n == other.n && self.q_len == other.q_len && self.p_len == other.p_len,
            "RNS basis mismatch (internal invariant)"
        );
    }

    /// `self += other`.
    pub fn add_assign(&mut self, basis: &(impl AsRef<RnsBasis> + ?Sized), other: &Self) {
        let params = basis.as_ref();
        self.same_basis(other);
        let moduli = self.moduli(params);
        let n = self.n;
        self.data
            .par_chunks_mut(n)
            .zip(other.data.par_chunks(n))
            .zip(moduli.par_iter())
            .for_each(|((a, b), m)| kernels::add_assign(a, b, m.value(), false));
    }

    /// `self -= other`.
    pub fn sub_assign(&mut self, basis: &(impl AsRef<RnsBasis> + ?Sized), other: &Self) {
        let params = basis.as_ref();
        self.same_basis(other);
        let moduli = self.moduli(params);
        let n = self.n;
        self.data
            .par_chunks_mut(n)
            .zip(other.data.par_chunks(n))
            .zip(moduli.par_iter())
            .for_each(|((a, b), m)| kernels::add_assign(a, b, m.value(), true));
    }

    /// `self = -self`.
    pub fn neg_assign(&mut self, basis: &(impl AsRef<RnsBasis> + ?Sized)) {
        let params = basis.as_ref();
        let moduli = self.moduli(params);
        let n = self.n;
        self.data
            .par_chunks_mut(n)
            .zip(moduli.par_iter())
            .for_each(|(a, m)| a.iter_mut().for_each(|x| *x = m.neg(*x)));
    }

    /// Limb-wise `f(limb index, self_limb, other_limb, out_limb)` into a new polynomial; `other`
    /// may have more `q` limbs than `self` (a plaintext at a higher level), of which the prefix
    /// is used. `out_limb` holds arbitrary values: `f` must overwrite all of it.
    fn zip_new(
        &self,
        params: &RnsBasis,
        other: &Self,
        f: impl Fn(usize, &[u64], &[u64], &mut [u64]) + Sync,
    ) -> Self {
        assert!(
            self.n == other.n && self.p_len == 0 && other.p_len == 0 && other.q_len >= self.q_len,
            "RNS basis mismatch (internal invariant)"
        );
        let n = self.n;
        let _ = params;
        let mut data = pool::take_dirty(self.data.len());
        data.par_chunks_mut(n)
            .zip(self.data.par_chunks(n))
            .zip(other.data.par_chunks(n))
            .enumerate()
            .for_each(|(t, ((o, a), b))| f(t, a, b, o));
        Self::from_data(n, self.q_len, 0, data)
    }

    /// `self + other` as a new polynomial (over `self`'s `q` basis; no special primes).
    pub fn add(&self, basis: &(impl AsRef<RnsBasis> + ?Sized), other: &Self) -> Self {
        let params = basis.as_ref();
        self.zip_new(params, other, |t, a, b, o| {
            kernels::add_into(o, a, b, params.moduli()[t].value(), false)
        })
    }

    /// `self - other` as a new polynomial (over `self`'s `q` basis; no special primes).
    pub fn sub(&self, basis: &(impl AsRef<RnsBasis> + ?Sized), other: &Self) -> Self {
        let params = basis.as_ref();
        self.zip_new(params, other, |t, a, b, o| {
            kernels::add_into(o, a, b, params.moduli()[t].value(), true)
        })
    }

    /// `self += c·other` limb by limb, for the integer `c` (given modulo each limb's prime):
    /// one pass over both polynomials, no temporary (a sum of scalar multiples, as in a dense
    /// layer over ciphertexts, costs one read of each term).
    pub fn mul_scalar_add_assign(
        &mut self,
        basis: &(impl AsRef<RnsBasis> + ?Sized),
        other: &Self,
        c: i128,
    ) {
        let params = basis.as_ref();
        self.same_basis(other);
        let moduli = self.moduli(params);
        let n = self.n;
        for ((a, b), m) in self
            .data
            .chunks_mut(n)
            .zip(other.data.chunks(n))
            .zip(moduli)
        {
            let w = kernels::Shoup::new(m.reduce_i128(c), m.value());
            kernels::mul_const_add_assign(a, b, w, m.value());
        }
    }

    /// Multiplies every limb by the integer `c` (given modulo each limb's prime).
    pub fn mul_scalar_assign(&mut self, basis: &(impl AsRef<RnsBasis> + ?Sized), c: i128) {
        let params = basis.as_ref();
        let moduli = self.moduli(params);
        let n = self.n;
        self.data
            .par_chunks_mut(n)
            .zip(moduli.par_iter())
            .for_each(|(a, m)| {
                let w = m.reduce_i128(c);
                let ws = m.shoup(w);
                a.iter_mut().for_each(|x| *x = m.mul_shoup(*x, w, ws));
            });
    }

    /// Drops `q` limbs above `q_len` (level drop; exact for the message, which is small).
    pub fn truncate_q(&mut self, q_len: usize) {
        assert!(self.p_len == 0 && q_len <= self.q_len && q_len >= 1);
        self.data.truncate(q_len * self.n);
        self.q_len = q_len;
    }

    /// A copy restricted to `q_0..q_{q_len-1}` and, if `with_p`, the special primes.
    pub fn restrict(&self, q_len: usize, with_p: bool) -> Self {
        assert!(q_len <= self.q_len && (!with_p || self.p_len > 0));
        let n = self.n;
        let mut data = pool::take_empty(n * (q_len + if with_p { self.p_len } else { 0 }));
        data.extend_from_slice(&self.data[..q_len * n]);
        let p_len = if with_p { self.p_len } else { 0 };
        if with_p {
            data.extend_from_slice(&self.data[self.q_len * n..]);
        }
        Self::from_data(n, q_len, p_len, data)
    }

    /// Overwrites every residue with zero (owners of secret polynomials call this before
    /// dropping them: the buffer goes back to the pool uncleared otherwise).
    pub fn zeroize_data(&mut self) {
        self.data.zeroize();
    }
}
