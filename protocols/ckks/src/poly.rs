//! RNS polynomials in `Z_Q[X]/(X^N + 1)` with the representation in the type.
//!
//! A polynomial is stored as one limb of `N` residues per prime (RNS, Cheon–Han–Kim–Kim–Song,
//! SAC 2018 §3). [`Coeff`] polynomials hold coefficients, [`Ntt`] polynomials hold evaluations at
//! the odd powers of a primitive `2N`-th root of unity (in `tfhe-ntt`'s bit-reversed order), so an
//! NTT-domain polynomial cannot be added to a coefficient-domain one by mistake. The basis is
//! `q_0..q_{q_len-1}` optionally followed by all special primes `p_0..p_{k-1}`.
//!
//! Also here: fast RNS base conversion (SAC 2018 §2.2), made exact and centred with the
//! floating-point overflow estimate of Halevi–Polyakov–Shoup (CT-RSA 2019 §2.3) so that
//! key-switching digits and ModDown roundings have zero mean (measured: +2 to +6 bits of rotation
//! precision over the plain fast conversion); rescaling by the last prime and division by `P`
//! (Han–Ki "ModDown"); and the ring automorphisms `X ↦ X^g` used for rotations.

use std::marker::PhantomData;

use rayon::prelude::*;
use zeroize::Zeroize;

use crate::arith::Modulus;
use crate::kernels::{self, Shoup};
use crate::params::CkksParams;
use crate::pool;

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
    pub(crate) data: Vec<u64>,
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
    pub fn zero(params: &CkksParams, q_len: usize, p_len: usize) -> Self {
        let n = params.n();
        Self::from_data(n, q_len, p_len, pool::take_zeroed(n * (q_len + p_len)))
    }

    /// A polynomial whose residues are arbitrary leftovers of an earlier use: every element must
    /// be overwritten before the polynomial is used.
    pub(crate) fn dirty(n: usize, q_len: usize, p_len: usize) -> Self {
        Self::from_data(n, q_len, p_len, pool::take_dirty(n * (q_len + p_len)))
    }

    pub(crate) fn from_data(n: usize, q_len: usize, p_len: usize, data: Vec<u64>) -> Self {
        debug_assert_eq!(data.len(), n * (q_len + p_len));
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
    pub(crate) fn limb_mut(&mut self, t: usize) -> &mut [u64] {
        &mut self.data[t * self.n..(t + 1) * self.n]
    }
    /// Index into `params.moduli` of limb `t`.
    #[inline]
    pub(crate) fn modulus_index(&self, params: &CkksParams, t: usize) -> usize {
        if t < self.q_len {
            t
        } else {
            params.inner.q.len() + (t - self.q_len)
        }
    }
    pub(crate) fn moduli(&self, params: &CkksParams) -> Vec<Modulus> {
        (0..self.limbs())
            .map(|t| params.inner.moduli[self.modulus_index(params, t)])
            .collect()
    }

    fn same_basis(&self, other: &Self) {
        assert!(
            self.n == other.n && self.q_len == other.q_len && self.p_len == other.p_len,
            "RNS basis mismatch (internal invariant)"
        );
    }

    /// `self += other`.
    pub fn add_assign(&mut self, params: &CkksParams, other: &Self) {
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
    pub fn sub_assign(&mut self, params: &CkksParams, other: &Self) {
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
    pub fn neg_assign(&mut self, params: &CkksParams) {
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
        params: &CkksParams,
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
    pub fn add(&self, params: &CkksParams, other: &Self) -> Self {
        self.zip_new(params, other, |t, a, b, o| {
            kernels::add_into(o, a, b, params.inner.moduli[t].value(), false)
        })
    }

    /// `self - other` as a new polynomial (over `self`'s `q` basis; no special primes).
    pub fn sub(&self, params: &CkksParams, other: &Self) -> Self {
        self.zip_new(params, other, |t, a, b, o| {
            kernels::add_into(o, a, b, params.inner.moduli[t].value(), true)
        })
    }

    /// Multiplies every limb by the integer `c` (given modulo each limb's prime).
    pub fn mul_scalar_assign(&mut self, params: &CkksParams, c: i128) {
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

    pub(crate) fn zeroize_data(&mut self) {
        self.data.zeroize();
    }
}

impl RnsPoly<Coeff> {
    /// Builds a polynomial from small signed coefficients (secret, error, message).
    pub fn from_signed(params: &CkksParams, coeffs: &[i64], q_len: usize, p_len: usize) -> Self {
        assert_eq!(coeffs.len(), params.n(), "one coefficient per slot");
        // Every residue is written below.
        let mut out = Self::dirty(params.n(), q_len, p_len);
        let moduli = out.moduli(params);
        let n = out.n;
        out.data
            .par_chunks_mut(n)
            .zip(moduli.par_iter())
            .for_each(|(limb, m)| {
                for (x, &c) in limb.iter_mut().zip(coeffs) {
                    *x = m.reduce_i64(c);
                }
            });
        out
    }

    /// Forward NTT of every limb.
    pub fn into_ntt(mut self, params: &CkksParams) -> RnsPoly<Ntt> {
        let n = self.n;
        let idx: Vec<usize> = (0..self.limbs())
            .map(|t| self.modulus_index(params, t))
            .collect();
        self.data
            .par_chunks_mut(n)
            .zip(idx.par_iter())
            .for_each(|(limb, &i)| params.inner.plans[i].fwd(limb));
        RnsPoly::from_data(n, self.q_len, self.p_len, std::mem::take(&mut self.data))
    }

    /// The automorphism `X ↦ X^g` (g odd) on coefficients.
    pub fn automorphism(&self, params: &CkksParams, g: u64) -> Self {
        let n = self.n;
        let mask = 2 * n as u64 - 1;
        let moduli = self.moduli(params);
        // `i ↦ i·g mod 2N` is a bijection onto ±X^j, so every slot is written.
        let mut out = Self::dirty(n, self.q_len, self.p_len);
        out.data
            .par_chunks_mut(n)
            .zip(self.data.par_chunks(n))
            .zip(moduli.par_iter())
            .for_each(|((dst, src), m)| {
                for (i, &v) in src.iter().enumerate() {
                    let j = (i as u64 * g) & mask;
                    if j < n as u64 {
                        dst[j as usize] = v;
                    } else {
                        dst[(j - n as u64) as usize] = m.neg(v);
                    }
                }
            });
        out
    }
}

/// Index permutation realising `X ↦ X^g` on NTT-domain limbs: `out[i] = in[perm[i]]`.
///
/// `tfhe-ntt` returns evaluations in bit-reversed order: slot `i` holds `a(ψ^{2·brev(i)+1})`
/// (checked by `ntt_order_is_bit_reversed_odd_powers` below). Since
/// `σ_g(a)(ψ^e) = a(ψ^{e·g})`, output slot `i` reads the input slot whose exponent is `e_i·g`.
pub(crate) fn ntt_automorphism_perm(log_n: u32, g: u64) -> Vec<u32> {
    let n = 1usize << log_n;
    let mask = 2 * n as u64 - 1;
    let brev = |x: usize| -> usize {
        if log_n == 0 {
            0
        } else {
            x.reverse_bits() >> (usize::BITS - log_n)
        }
    };
    (0..n)
        .map(|i| {
            let e = 2 * brev(i) as u64 + 1;
            let e2 = (e * g) & mask;
            brev(((e2 - 1) / 2) as usize) as u32
        })
        .collect()
}

impl RnsPoly<Ntt> {
    /// Inverse NTT of every limb.
    pub fn into_coeff(mut self, params: &CkksParams) -> RnsPoly<Coeff> {
        let n = self.n;
        let idx: Vec<usize> = (0..self.limbs())
            .map(|t| self.modulus_index(params, t))
            .collect();
        self.data
            .par_chunks_mut(n)
            .zip(idx.par_iter())
            .for_each(|(limb, &i)| {
                let plan = &params.inner.plans[i];
                plan.inv(limb);
                plan.normalize(limb);
            });
        RnsPoly::from_data(n, self.q_len, self.p_len, std::mem::take(&mut self.data))
    }

    /// Pointwise product `self *= other` (negacyclic product of the polynomials).
    pub fn mul_assign(&mut self, params: &CkksParams, other: &Self) {
        self.same_basis(other);
        let n = self.n;
        let idx: Vec<usize> = (0..self.limbs())
            .map(|t| self.modulus_index(params, t))
            .collect();
        self.data
            .par_chunks_mut(n)
            .zip(other.data.par_chunks(n))
            .zip(idx.par_iter())
            .for_each_init(
                || pool::Scratch::empty(n),
                |tmp, ((a, b), &i)| {
                    // tfhe-ntt's vectorised Barrett product (IFMA below 2^51) accumulates, so
                    // the factor is moved aside and the limb cleared first (both in cache).
                    tmp.0.clear();
                    tmp.0.extend_from_slice(a);
                    a.fill(0);
                    params.inner.plans[i].mul_accumulate(a, &tmp.0, b);
                },
            );
    }

    /// Pointwise product as a new polynomial over `self`'s `q` basis (`other` may have more `q`
    /// limbs, e.g. a plaintext encoded at a higher level).
    pub fn mul(&self, params: &CkksParams, other: &Self) -> Self {
        self.zip_new(params, other, |t, a, b, o| {
            o.fill(0);
            params.inner.plans[t].mul_accumulate(o, a, b);
        })
    }

    /// `self *= other` pointwise where `other` may have more `q` limbs than `self` (a
    /// plaintext at a higher level; its prefix is used). No special primes.
    pub fn mul_prefix_assign(&mut self, params: &CkksParams, other: &Self) {
        assert!(
            self.n == other.n && self.p_len == 0 && other.p_len == 0 && other.q_len >= self.q_len,
            "RNS basis mismatch (internal invariant)"
        );
        let n = self.n;
        self.data
            .par_chunks_mut(n)
            .zip(other.data.par_chunks(n))
            .enumerate()
            .for_each_init(
                || pool::Scratch::empty(n),
                |tmp, (i, (a, b))| {
                    tmp.0.clear();
                    tmp.0.extend_from_slice(a);
                    a.fill(0);
                    params.inner.plans[i].mul_accumulate(a, &tmp.0, b);
                },
            );
    }

    /// `self ± other` in place where `other` may have more `q` limbs than `self` (its prefix is
    /// used). No special primes.
    pub fn add_prefix_assign(&mut self, params: &CkksParams, other: &Self, subtract: bool) {
        assert!(
            self.n == other.n && self.p_len == 0 && other.p_len == 0 && other.q_len >= self.q_len,
            "RNS basis mismatch (internal invariant)"
        );
        let n = self.n;
        self.data
            .par_chunks_mut(n)
            .zip(other.data.par_chunks(n))
            .enumerate()
            .for_each(|(i, (a, b))| {
                kernels::add_assign(a, b, params.inner.moduli[i].value(), subtract)
            });
    }

    /// The pointwise square, and `2·self·other`, of two polynomials over the same basis, as
    /// new polynomials (used by ciphertext squaring).
    pub(crate) fn square_and_double_product(
        &self,
        params: &CkksParams,
        other: &Self,
    ) -> (Self, Self) {
        self.same_basis(other);
        let n = self.n;
        let idx: Vec<usize> = (0..self.limbs())
            .map(|t| self.modulus_index(params, t))
            .collect();
        let mut sq = Self::dirty(n, self.q_len, self.p_len);
        let mut dp = Self::dirty(n, self.q_len, self.p_len);
        sq.data
            .par_chunks_mut(n)
            .zip(dp.data.par_chunks_mut(n))
            .zip(self.data.par_chunks(n).zip(other.data.par_chunks(n)))
            .zip(idx.par_iter())
            .for_each(|(((s, d), (a, b)), &i)| {
                let plan = &params.inner.plans[i];
                let m = params.inner.moduli[i];
                s.fill(0);
                plan.mul_accumulate(s, a, a);
                d.fill(0);
                plan.mul_accumulate(d, a, b);
                d.iter_mut().for_each(|x| *x = m.add(*x, *x));
            });
        (sq, dp)
    }

    /// `self += a * b` pointwise.
    pub fn mul_add_assign(&mut self, params: &CkksParams, a: &Self, b: &Self) {
        self.same_basis(a);
        self.same_basis(b);
        let n = self.n;
        let idx: Vec<usize> = (0..self.limbs())
            .map(|t| self.modulus_index(params, t))
            .collect();
        self.data
            .par_chunks_mut(n)
            .zip(a.data.par_chunks(n))
            .zip(b.data.par_chunks(n))
            .zip(idx.par_iter())
            .for_each(|(((acc, x), y), &i)| params.inner.plans[i].mul_accumulate(acc, x, y));
    }

    /// Adds the constant polynomial `c` (an integer, the same in every NTT slot).
    pub fn add_scalar_assign(&mut self, params: &CkksParams, c: i128) {
        let moduli = self.moduli(params);
        let n = self.n;
        self.data
            .par_chunks_mut(n)
            .zip(moduli.par_iter())
            .for_each(|(a, m)| {
                let w = m.reduce_i128(c);
                a.iter_mut().for_each(|x| *x = m.add(*x, w));
            });
    }

    /// The automorphism `X ↦ X^g` (g odd) applied in the NTT domain (a permutation).
    pub fn automorphism(&self, params: &CkksParams, g: u64) -> Self {
        let perm = ntt_automorphism_perm(params.inner.log_n, g);
        self.automorphism_with(&perm)
    }

    pub(crate) fn automorphism_with(&self, perm: &[u32]) -> Self {
        let n = self.n;
        // A permutation writes every slot.
        let mut data = pool::take_dirty(self.data.len());
        data.par_chunks_mut(n)
            .zip(self.data.par_chunks(n))
            .for_each(|(dst, src)| {
                for (d, &j) in dst.iter_mut().zip(perm) {
                    *d = src[j as usize];
                }
            });
        Self::from_data(n, self.q_len, self.p_len, data)
    }

    /// The last `q` limb in coefficient form (the rounding term of a rescale), in a scratch
    /// buffer.
    fn last_limb_coeffs(&self, params: &CkksParams) -> pool::Scratch {
        let l = self.q_len - 1;
        let mut last = pool::Scratch::empty(self.n);
        last.0.extend_from_slice(self.limb(l));
        params.inner.plans[l].inv(&mut last.0);
        params.inner.plans[l].normalize(&mut last.0);
        last
    }

    /// `out = NTT_i([last]_{q_l} centred, reduced mod q_i)`: the rescale correction for limb `i`.
    fn rescale_correction(params: &CkksParams, i: usize, l: usize, last: &[u64], out: &mut [u64]) {
        let ql = params.inner.moduli[l].value();
        let p = params.inner.moduli[i].value();
        // Centred representative of each residue of the last limb, reduced modulo q_i.
        kernels::centered_reduce_into(out, last, ql, Shoup::new(1, p), p);
        params.inner.plans[i].fwd(out);
    }

    /// `q_l^{-1} mod q_i` with its Shoup companion.
    fn inv_last(params: &CkksParams, i: usize, l: usize) -> Shoup {
        let m = params.inner.moduli[i];
        let inv = m
            .inv(params.inner.moduli[l].value())
            .expect("distinct primes");
        Shoup::new(inv, m.value())
    }

    /// Divides by the last `q` prime with rounding and drops it, in place (RNS rescale, SAC 2018
    /// §3.3).
    pub fn rescale_by_last(&mut self, params: &CkksParams) {
        assert!(self.p_len == 0 && self.q_len >= 2);
        let n = self.n;
        let l = self.q_len - 1;
        let last = self.last_limb_coeffs(params);
        self.data.truncate(l * n);
        self.q_len = l;
        self.data.par_chunks_mut(n).enumerate().for_each_init(
            || pool::Scratch::dirty(n),
            |t, (i, limb)| {
                Self::rescale_correction(params, i, l, &last.0, &mut t.0);
                let p = params.inner.moduli[i].value();
                kernels::sub_mul_assign(limb, &t.0, Self::inv_last(params, i, l), p);
            },
        );
    }

    /// [`Self::rescale_by_last`] into a new polynomial (each output limb is written once; the
    /// input is not copied).
    pub fn rescaled_by_last(&self, params: &CkksParams) -> Self {
        assert!(self.p_len == 0 && self.q_len >= 2);
        let n = self.n;
        let l = self.q_len - 1;
        let last = self.last_limb_coeffs(params);
        let mut out = Self::dirty(n, l, 0);
        out.data
            .par_chunks_mut(n)
            .zip(self.data.par_chunks(n))
            .enumerate()
            .for_each(|(i, (o, x))| {
                Self::rescale_correction(params, i, l, &last.0, o);
                let p = params.inner.moduli[i].value();
                kernels::rsub_mul_assign(o, x, Self::inv_last(params, i, l), p);
            });
        out
    }

    /// Divides a polynomial over `Q_l ∪ P` by `P`, rounding to the nearest integer (the `P`-part
    /// is converted exactly and centred, so the rounding error has zero mean), and returns it
    /// over `Q_l` (Han–Ki ModDown).
    pub fn mod_down(self, params: &CkksParams) -> RnsPoly<Ntt> {
        self.mod_down_add(params, None, None)
    }

    /// [`Self::mod_down`] followed by the addition of `addend` (over at least `Q_l`; its first
    /// `q_len` limbs are used), read through the NTT-domain automorphism `perm` when given:
    /// `out[c] = (self/P)[c] + addend[perm[c]]`. One pass writes the result into `self`'s buffer.
    pub(crate) fn mod_down_add(
        mut self,
        params: &CkksParams,
        addend: Option<&RnsPoly<Ntt>>,
        perm: Option<&[u32]>,
    ) -> RnsPoly<Ntt> {
        assert!(self.p_len > 0);
        let n = self.n;
        let q_len = self.q_len;
        let k = self.p_len;
        if let Some(a) = addend {
            assert!(
                a.n == n && a.p_len == 0 && a.q_len >= q_len,
                "RNS basis mismatch (internal invariant)"
            );
        }
        let big_l = params.inner.q.len();
        let (q_part, p_part) = self.data.split_at_mut(q_len * n);
        // P-part back to coefficients, in place (it is dropped afterwards); the scaling by
        // N^{-1} is folded into the base conversion.
        p_part
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(j, v)| params.inner.plans[big_l + j].inv(v));
        let src = &params.inner.moduli[big_l..big_l + k];
        let src_limbs: Vec<&[u64]> = p_part.chunks_exact(n).collect();
        let conv = BaseConverter::new(n, &src_limbs, src, true, true);
        q_part.par_chunks_mut(n).enumerate().for_each_init(
            || pool::Scratch::dirty(n),
            |c, (i, limb)| {
                let m = params.inner.moduli[i];
                conv.convert_into(m, &mut c.0);
                params.inner.plans[i].fwd(&mut c.0);
                let p_mod = src
                    .iter()
                    .fold(1u64, |acc, pm| m.mul(acc, m.reduce(pm.value())));
                let inv = Shoup::new(m.inv(p_mod).expect("distinct primes"), m.value());
                let c = &c.0[..];
                match (addend, perm) {
                    (None, _) => kernels::sub_mul_assign(limb, c, inv, m.value()),
                    (Some(a), None) => {
                        let al = &a.data[i * n..(i + 1) * n];
                        kernels::sub_mul_add_assign(limb, c, inv, al, m.value());
                    }
                    (Some(a), Some(perm)) => {
                        kernels::sub_mul_assign(limb, c, inv, m.value());
                        let al = &a.data[i * n..(i + 1) * n];
                        for (x, &j) in limb.iter_mut().zip(perm) {
                            *x = m.add(*x, al[j as usize]);
                        }
                    }
                }
            },
        );
        self.data.truncate(q_len * n);
        RnsPoly::from_data(n, q_len, 0, std::mem::take(&mut self.data))
    }
}

/// Fast base conversion (coefficient domain) of `x`, given by its residues modulo the primes
/// `src`, into other moduli: `x̃ = Σ_i [x_i · D̂_i^{-1}]_{d_i} · D̂_i mod t`, equal to `x + u·D`
/// with `0 ≤ u < |src|`.
///
/// With `centered`, the overflow `u` is removed with a floating-point estimate
/// `v = round(Σ_i y_i / d_i)` (Halevi–Polyakov–Shoup CT-RSA 2019 §2.3) and the result is the exact
/// centred representative of `x` in `[-D/2, D/2)`; ModDown and the key-switching decomposition
/// use this so that their rounding errors have zero mean (an `O(k)` bias would otherwise be
/// multiplied by `s` in every key switch).
///
/// [`BaseConverter::new`] does the source-side work once (`y_i` and `v`, in pooled buffers);
/// [`BaseConverter::convert_into`] then writes the residues modulo one target prime, so callers
/// convert straight into the limbs of their output polynomial.
pub(crate) struct BaseConverter<'a> {
    n: usize,
    src: &'a [Modulus],
    /// `y_i = x_i · (D/d_i)^{-1} mod d_i`, limb-major.
    y: pool::Scratch,
    /// Overflow estimates `v` (empty unless centred).
    v: pool::Scratch,
    centered: bool,
}

impl<'a> BaseConverter<'a> {
    /// Prepares the conversion of the residues `src_limbs` (modulo `src`). With
    /// `times_n`, the residues are those of `N·x` (an inverse NTT without its final scaling by
    /// `N^{-1}`), which is folded into the constant applied here.
    pub(crate) fn new(
        n: usize,
        src_limbs: &[&[u64]],
        src: &'a [Modulus],
        centered: bool,
        times_n: bool,
    ) -> Self {
        assert_eq!(src_limbs.len(), src.len());
        let mut y = pool::Scratch::dirty(src.len() * n);
        y.0.par_chunks_mut(n)
            .zip(src_limbs.par_iter())
            .enumerate()
            .for_each(|(i, (yi, x))| {
                let m = src[i];
                let hat = src
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .fold(1u64, |acc, (_, d)| m.mul(acc, m.reduce(d.value())));
                let hat = if times_n {
                    m.mul(hat, m.reduce(n as u64))
                } else {
                    hat
                };
                let inv = m.inv(hat).expect("distinct primes");
                kernels::mul_const_into(yi, x, Shoup::new(inv, m.value()), m.value());
            });
        let mut v = pool::Scratch::empty(if centered { n } else { 0 });
        if centered {
            let inv_d: Vec<f64> = src.iter().map(|m| 1.0 / m.value() as f64).collect();
            let ys: Vec<&[u64]> = y.0.chunks_exact(n).collect();
            v.0.resize(n, 0);
            kernels::overflow_estimate(&mut v.0, &ys, &inv_d);
        }
        Self {
            n,
            src,
            y,
            v,
            centered,
        }
    }

    /// Writes the converted residues modulo `t` into `out` (every element is overwritten).
    pub(crate) fn convert_into(&self, t: Modulus, out: &mut [u64]) {
        assert_eq!(out.len(), self.n);
        let src = self.src;
        // [D̂_i]_t with Shoup companions.
        let hats: Vec<Shoup> = (0..src.len())
            .map(|i| {
                let h = src
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .fold(1u64, |acc, (_, d)| t.mul(acc, t.reduce(d.value())));
                Shoup::new(h, t.value())
            })
            .collect();
        let ys: Vec<&[u64]> = self.y.0.chunks_exact(self.n).collect();
        // D mod t: the overflow correction is v·D.
        let v = self.centered.then(|| {
            let d_mod = src
                .iter()
                .fold(1u64, |acc, d| t.mul(acc, t.reduce(d.value())));
            (&self.v.0[..], Shoup::new(d_mod, t.value()))
        });
        kernels::base_convert_into(out, &ys, &hats, v, t.value());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::presets;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn params() -> CkksParams {
        presets::INSECURE_N10_L4_S40_TEST_ONLY.build().unwrap()
    }

    fn random_poly(params: &CkksParams, seed: u64, q_len: usize, p_len: usize) -> RnsPoly<Coeff> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut p = RnsPoly::<Coeff>::zero(params, q_len, p_len);
        for t in 0..p.limbs() {
            let m = params.inner.moduli[p.modulus_index(params, t)];
            for x in p.limb_mut(t) {
                *x = rng.gen_range(0..m.value());
            }
        }
        p
    }

    fn naive_negacyclic(a: &[u64], b: &[u64], m: &Modulus) -> Vec<u64> {
        let n = a.len();
        let mut out = vec![0u64; n];
        for i in 0..n {
            for j in 0..n {
                let prod = m.mul(a[i], b[j]);
                if i + j < n {
                    out[i + j] = m.add(out[i + j], prod);
                } else {
                    out[i + j - n] = m.sub(out[i + j - n], prod);
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn ntt_round_trip(seed in any::<u64>()) {
            let params = params();
            let a = random_poly(&params, seed, params.max_level() + 1, params.p_primes().len());
            let back = a.clone().into_ntt(&params).into_coeff(&params);
            prop_assert_eq!(a, back);
        }

        #[test]
        fn ntt_product_is_negacyclic_convolution(seed in any::<u64>()) {
            let params = params();
            let a = random_poly(&params, seed, 2, 0);
            let b = random_poly(&params, seed ^ 1, 2, 0);
            let mut c = a.clone().into_ntt(&params);
            c.mul_assign(&params, &b.clone().into_ntt(&params));
            let c = c.into_coeff(&params);
            for t in 0..2 {
                let m = params.inner.moduli[t];
                prop_assert_eq!(c.limb(t), &naive_negacyclic(a.limb(t), b.limb(t), &m)[..]);
            }
        }

        #[test]
        fn automorphism_commutes_with_ntt(seed in any::<u64>(), k in 0u64..512) {
            let params = params();
            let g = (2 * k + 1) % (2 * params.n() as u64);
            let a = random_poly(&params, seed, 3, params.p_primes().len());
            let via_coeff = a.automorphism(&params, g).into_ntt(&params);
            let via_ntt = a.into_ntt(&params).automorphism(&params, g);
            prop_assert_eq!(via_coeff, via_ntt);
        }
    }

    #[test]
    fn ntt_order_holds_for_all_preset_primes() {
        // The NTT-domain automorphism relies on tfhe-ntt's output order; check it for every
        // prime of two real presets by comparing with the coefficient-domain automorphism.
        for preset in [presets::N12_L1_S30_128BIT, presets::N14_L7_S40_128BIT] {
            let params = preset.build().unwrap();
            let a = random_poly(&params, 7, params.max_level() + 1, params.p_primes().len());
            for g in [5u64, 25, 2 * params.n() as u64 - 1] {
                let via_coeff = a.automorphism(&params, g).into_ntt(&params);
                let via_ntt = a.clone().into_ntt(&params).automorphism(&params, g);
                assert!(via_coeff == via_ntt, "{} g={g}", preset.name);
            }
        }
    }

    #[test]
    fn rescale_divides_with_rounding() {
        let params = params();
        let q_len = 3;
        // x = q_2 * 1234 + r with small r: rescale gives 1234 (r < q_2/2).
        let q2 = params.q_primes()[2] as i64;
        let coeffs: Vec<i64> = (0..params.n() as i64)
            .map(|i| (i - 500) * q2 + (i % 7) * 1000 - 3000)
            .collect();
        let mut p = RnsPoly::from_signed(&params, &coeffs, q_len, 0).into_ntt(&params);
        p.rescale_by_last(&params);
        let back = p.into_coeff(&params);
        for (i, &c) in coeffs.iter().enumerate() {
            let expect = (c as f64 / q2 as f64).round() as i64;
            let got = params.inner.moduli[0].centered(back.limb(0)[i]);
            assert_eq!(got, expect);
            assert_eq!(params.inner.moduli[1].centered(back.limb(1)[i]), expect);
        }
    }

    #[test]
    fn mod_down_divides_by_p() {
        let params = params();
        let pbig: i128 = params.p_primes().iter().map(|&p| p as i128).product();
        let coeffs: Vec<i64> = (0..params.n() as i64).map(|i| i * 37 - 9000).collect();
        let mut wide = RnsPoly::<Coeff>::zero(&params, 2, params.p_primes().len());
        for t in 0..wide.limbs() {
            let m = params.inner.moduli[wide.modulus_index(&params, t)];
            for (x, &c) in wide.limb_mut(t).iter_mut().zip(&coeffs) {
                *x = m.reduce_i128(c as i128 * pbig + 12345);
            }
        }
        let down = wide.into_ntt(&params).mod_down(&params).into_coeff(&params);
        for (i, &c) in coeffs.iter().enumerate() {
            // 12345 / P rounds to 0: the exact centred ModDown returns c itself.
            assert_eq!(params.inner.moduli[0].centered(down.limb(0)[i]), c);
            assert_eq!(params.inner.moduli[1].centered(down.limb(1)[i]), c);
        }
    }
}
