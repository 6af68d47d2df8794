//! The negacyclic NTT of [`RnsPoly`] limbs (`tfhe-ntt` plans), pointwise products in the NTT
//! domain and the ring automorphisms `X ↦ X^g`, in both representations.

use rayon::prelude::*;

use super::{Coeff, Ntt, RnsPoly};
use crate::basis::RnsBasis;
use crate::kernels;
use crate::pool;

impl RnsPoly<Coeff> {
    /// Builds a polynomial from small signed coefficients (secret, error, message).
    pub fn from_signed(
        basis: &(impl AsRef<RnsBasis> + ?Sized),
        coeffs: &[i64],
        q_len: usize,
        p_len: usize,
    ) -> Self {
        let params = basis.as_ref();
        assert_eq!(coeffs.len(), params.n(), "one coefficient per slot");
        // Every residue is written below.
        let mut out = Self::dirty(params.n(), q_len, p_len);
        let moduli = out.moduli(params);
        let n = out.n;
        let max = coeffs.iter().fold(0u64, |m, &c| m.max(c.unsigned_abs()));
        out.data
            .par_chunks_mut(n)
            .zip(moduli.par_iter())
            .for_each(|(limb, m)| {
                if max < m.value() {
                    // Every coefficient is in (−p, p): adding p to the negative ones is the
                    // whole reduction.
                    crate::kernels::signed_small_into(limb, coeffs, m.value());
                } else {
                    for (x, &c) in limb.iter_mut().zip(coeffs) {
                        *x = m.reduce_i64(c);
                    }
                }
            });
        out
    }

    /// Forward NTT of every limb.
    pub fn into_ntt(mut self, basis: &(impl AsRef<RnsBasis> + ?Sized)) -> RnsPoly<Ntt> {
        let params = basis.as_ref();
        let n = self.n;
        let idx: Vec<usize> = (0..self.limbs())
            .map(|t| self.modulus_index(params, t))
            .collect();
        self.data
            .par_chunks_mut(n)
            .zip(idx.par_iter())
            .for_each(|(limb, &i)| params.plans()[i].fwd(limb));
        RnsPoly::from_data(n, self.q_len, self.p_len, std::mem::take(&mut self.data))
    }

    /// The automorphism `X ↦ X^g` (g odd) on coefficients.
    pub fn automorphism(&self, basis: &(impl AsRef<RnsBasis> + ?Sized), g: u64) -> Self {
        let params = basis.as_ref();
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
pub fn ntt_automorphism_perm(log_n: u32, g: u64) -> Vec<u32> {
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
    pub fn into_coeff(mut self, basis: &(impl AsRef<RnsBasis> + ?Sized)) -> RnsPoly<Coeff> {
        let params = basis.as_ref();
        let n = self.n;
        let idx: Vec<usize> = (0..self.limbs())
            .map(|t| self.modulus_index(params, t))
            .collect();
        self.data
            .par_chunks_mut(n)
            .zip(idx.par_iter())
            .for_each(|(limb, &i)| {
                let plan = &params.plans()[i];
                plan.inv(limb);
                plan.normalize(limb);
            });
        RnsPoly::from_data(n, self.q_len, self.p_len, std::mem::take(&mut self.data))
    }

    /// Pointwise product `self *= other` (negacyclic product of the polynomials).
    pub fn mul_assign(&mut self, basis: &(impl AsRef<RnsBasis> + ?Sized), other: &Self) {
        let params = basis.as_ref();
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
                    params.plans()[i].mul_accumulate(a, &tmp.0, b);
                },
            );
    }

    /// Pointwise product as a new polynomial over `self`'s `q` basis (`other` may have more `q`
    /// limbs, e.g. a plaintext encoded at a higher level).
    pub fn mul(&self, basis: &(impl AsRef<RnsBasis> + ?Sized), other: &Self) -> Self {
        let params = basis.as_ref();
        self.zip_new(params, other, |t, a, b, o| {
            o.fill(0);
            params.plans()[t].mul_accumulate(o, a, b);
        })
    }

    /// `self *= other` pointwise where `other` may have more `q` limbs than `self` (a
    /// plaintext at a higher level; its prefix is used). No special primes.
    pub fn mul_prefix_assign(&mut self, basis: &(impl AsRef<RnsBasis> + ?Sized), other: &Self) {
        let params = basis.as_ref();
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
                    params.plans()[i].mul_accumulate(a, &tmp.0, b);
                },
            );
    }

    /// `self ± other` in place where `other` may have more `q` limbs than `self` (its prefix is
    /// used). No special primes.
    pub fn add_prefix_assign(
        &mut self,
        basis: &(impl AsRef<RnsBasis> + ?Sized),
        other: &Self,
        subtract: bool,
    ) {
        let params = basis.as_ref();
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
                kernels::add_assign(a, b, params.moduli()[i].value(), subtract)
            });
    }

    /// The pointwise square, and `2·self·other`, of two polynomials over the same basis, as
    /// new polynomials (used by ciphertext squaring).
    pub fn square_and_double_product(
        &self,
        basis: &(impl AsRef<RnsBasis> + ?Sized),
        other: &Self,
    ) -> (Self, Self) {
        let params = basis.as_ref();
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
                let plan = &params.plans()[i];
                let m = params.moduli()[i];
                s.fill(0);
                plan.mul_accumulate(s, a, a);
                d.fill(0);
                plan.mul_accumulate(d, a, b);
                d.iter_mut().for_each(|x| *x = m.add(*x, *x));
            });
        (sq, dp)
    }

    /// `self += a * b` pointwise.
    pub fn mul_add_assign(&mut self, basis: &(impl AsRef<RnsBasis> + ?Sized), a: &Self, b: &Self) {
        let params = basis.as_ref();
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
            .for_each(|(((acc, x), y), &i)| params.plans()[i].mul_accumulate(acc, x, y));
    }

    /// `self += a * b` pointwise on `self`'s `q` limbs, where `a` and `b` may have more `q` limbs
    /// (their prefix is used). No special primes.
    pub fn mul_add_prefix_assign(
        &mut self,
        basis: &(impl AsRef<RnsBasis> + ?Sized),
        a: &Self,
        b: &Self,
    ) {
        let params = basis.as_ref();
        for x in [a, b] {
            assert!(
                self.n == x.n && self.p_len == 0 && x.p_len == 0 && x.q_len >= self.q_len,
                "RNS basis mismatch (internal invariant)"
            );
        }
        let n = self.n;
        self.data
            .par_chunks_mut(n)
            .zip(a.data.par_chunks(n))
            .zip(b.data.par_chunks(n))
            .enumerate()
            .for_each(|(i, ((acc, x), y))| params.plans()[i].mul_accumulate(acc, x, y));
    }

    /// Adds the constant polynomial `c` (an integer, the same in every NTT slot).
    pub fn add_scalar_assign(&mut self, basis: &(impl AsRef<RnsBasis> + ?Sized), c: i128) {
        let params = basis.as_ref();
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
    pub fn automorphism(&self, basis: &(impl AsRef<RnsBasis> + ?Sized), g: u64) -> Self {
        let params = basis.as_ref();
        let perm = ntt_automorphism_perm(params.log_n(), g);
        self.automorphism_with(&perm)
    }

    /// The automorphism given by its NTT-domain permutation ([`ntt_automorphism_perm`]):
    /// `out[i] = self[perm[i]]` in every limb.
    pub fn automorphism_with(&self, perm: &[u32]) -> Self {
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
}
