//! RNS rescaling by the last `q` prime (SAC 2018 §3.3) and division by the special modulus
//! `P` with rounding (Han–Ki "ModDown"), on NTT-domain [`RnsPoly`]s.

use rayon::prelude::*;

use super::{BaseConverter, Ntt, RnsPoly};
use crate::basis::RnsBasis;
use crate::kernels::{self, Shoup};
use crate::pool;

impl RnsPoly<Ntt> {
    /// The last `q` limb in coefficient form (the rounding term of a rescale), in a scratch
    /// buffer.
    fn last_limb_coeffs(&self, params: &RnsBasis) -> pool::Scratch {
        let l = self.q_len - 1;
        let mut last = pool::Scratch::empty(self.n);
        last.0.extend_from_slice(self.limb(l));
        params.plans()[l].inv(&mut last.0);
        params.plans()[l].normalize(&mut last.0);
        last
    }

    /// `out = NTT_i([last]_{q_l} centred, reduced mod q_i)`: the rescale correction for limb `i`.
    fn rescale_correction(params: &RnsBasis, i: usize, l: usize, last: &[u64], out: &mut [u64]) {
        let ql = params.moduli()[l].value();
        let p = params.moduli()[i].value();
        // Centred representative of each residue of the last limb, reduced modulo q_i.
        kernels::centered_reduce_into(out, last, ql, Shoup::new(1, p), p);
        params.plans()[i].fwd(out);
    }

    /// `q_l^{-1} mod q_i` with its Shoup companion.
    fn inv_last(params: &RnsBasis, i: usize, l: usize) -> Shoup {
        let m = params.moduli()[i];
        let inv = m.inv(params.moduli()[l].value()).expect("distinct primes");
        Shoup::new(inv, m.value())
    }

    /// Divides by the last `q` prime with rounding and drops it, in place (RNS rescale, SAC 2018
    /// §3.3).
    pub fn rescale_by_last(&mut self, basis: &(impl AsRef<RnsBasis> + ?Sized)) {
        let params = basis.as_ref();
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
                let p = params.moduli()[i].value();
                kernels::sub_mul_assign(limb, &t.0, Self::inv_last(params, i, l), p);
            },
        );
    }

    /// [`Self::rescale_by_last`] into a new polynomial (each output limb is written once; the
    /// input is not copied).
    pub fn rescaled_by_last(&self, basis: &(impl AsRef<RnsBasis> + ?Sized)) -> Self {
        let params = basis.as_ref();
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
                let p = params.moduli()[i].value();
                kernels::rsub_mul_assign(o, x, Self::inv_last(params, i, l), p);
            });
        out
    }

    /// Divides a polynomial over `Q_l ∪ P` by `P`, rounding to the nearest integer (the `P`-part
    /// is converted exactly and centred, so the rounding error has zero mean), and returns it
    /// over `Q_l` (Han–Ki ModDown).
    pub fn mod_down(self, basis: &(impl AsRef<RnsBasis> + ?Sized)) -> RnsPoly<Ntt> {
        let params = basis.as_ref();
        self.mod_down_add(params, None, None)
    }

    /// [`Self::mod_down`] followed by the addition of `addend` (over at least `Q_l`; its first
    /// `q_len` limbs are used), read through the NTT-domain automorphism `perm` when given:
    /// `out[c] = (self/P)[c] + addend[perm[c]]`. One pass writes the result into `self`'s buffer.
    pub fn mod_down_add(
        mut self,
        basis: &(impl AsRef<RnsBasis> + ?Sized),
        addend: Option<&RnsPoly<Ntt>>,
        perm: Option<&[u32]>,
    ) -> RnsPoly<Ntt> {
        let params = basis.as_ref();
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
        let big_l = params.q_count();
        let (q_part, p_part) = self.data.split_at_mut(q_len * n);
        // P-part back to coefficients, in place (it is dropped afterwards); the scaling by
        // N^{-1} is folded into the base conversion.
        p_part
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(j, v)| params.plans()[big_l + j].inv(v));
        let src = &params.moduli()[big_l..big_l + k];
        let src_limbs: Vec<&[u64]> = p_part.chunks_exact(n).collect();
        let conv = BaseConverter::new(n, &src_limbs, src, true, true);
        q_part.par_chunks_mut(n).enumerate().for_each_init(
            || pool::Scratch::dirty(n),
            |c, (i, limb)| {
                let m = params.moduli()[i];
                conv.convert_into(m, &mut c.0);
                params.plans()[i].fwd(&mut c.0);
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
