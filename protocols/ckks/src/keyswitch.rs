//! Hybrid key switching (Han–Ki, CT-RSA 2020, §3) in RNS form.
//!
//! To switch `d·s'` to `s` at level `l`: split the primes of `Q_l` into digits of `α`
//! consecutive primes; extend each digit `[d]_{Q_j}` to the whole basis `Q_l ∪ P` by fast base
//! conversion ("ModUp"); take the inner product with the key pairs `(b_j, a_j)`; divide by `P`
//! ("ModDown"). The decomposition can be computed once and reused by several rotations of the
//! same ciphertext (hoisting, Halevi–Shoup CRYPTO 2018 §5): the automorphism is applied to the
//! extended digits instead of to `d`. Because each digit is extended as its exact centred
//! representative (see [`crate::poly`]), and the automorphism only permutes coefficients and
//! flips signs, this gives bit-for-bit the same result as decomposing `σ(d)` (tested against the
//! textbook rotation); with the plain fast conversion it would differ by multiples of `Q_j`,
//! which the gadget annihilates anyway.

use rayon::prelude::*;

use crate::keys::KeySwitchKey;
use crate::params::CkksParams;
use crate::poly::{fast_base_convert, Ntt, RnsPoly};

/// The extended digits of `d` (NTT form over `Q_l ∪ P`), one per digit of the decomposition.
pub(crate) fn decompose(params: &CkksParams, d: &RnsPoly<Ntt>) -> Vec<RnsPoly<Ntt>> {
    let q_len = d.q_len();
    let k = params.p_primes().len();
    let alpha = params.alpha();
    let n = params.n();
    let coeff = d.clone().into_coeff(params);
    let beta = q_len.div_ceil(alpha);
    (0..beta)
        .map(|j| {
            let lo = j * alpha;
            let hi = ((j + 1) * alpha).min(q_len);
            let src_limbs: Vec<Vec<u64>> = (lo..hi).map(|i| coeff.limb(i).to_vec()).collect();
            let src: Vec<_> = (lo..hi).map(|i| params.inner.moduli[i]).collect();
            let mut out = RnsPoly::<Ntt>::zero(params, q_len, k);
            let dst_limbs: Vec<usize> = (0..q_len + k).filter(|&t| t < lo || t >= hi).collect();
            let dst_idx: Vec<usize> = dst_limbs
                .iter()
                .map(|&t| out.modulus_index(params, t))
                .collect();
            let mut conv = fast_base_convert(params, &src_limbs, &src, &dst_idx, true);
            conv.par_iter_mut()
                .zip(dst_idx.par_iter())
                .for_each(|(v, &i)| params.inner.plans[i].fwd(v));
            for (t, v) in dst_limbs.iter().zip(conv) {
                out.limb_mut(*t).copy_from_slice(&v);
            }
            out.data[lo * n..hi * n].copy_from_slice(&d.data[lo * n..hi * n]);
            out
        })
        .collect()
}

/// `(Σ_j digit_j·b_j, Σ_j digit_j·a_j)` over `Q_l ∪ P`, divided by `P` (result over `Q_l`).
///
/// With `perm`, the digits are read through the NTT-domain automorphism permutation
/// (`σ(digit_j)[c] = digit_j[perm[c]]`), one limb at a time into a scratch buffer, so a hoisted
/// rotation never materialises the rotated digits.
pub(crate) fn apply_key(
    params: &CkksParams,
    digits: &[RnsPoly<Ntt>],
    key: &KeySwitchKey,
    perm: Option<&[u32]>,
) -> (RnsPoly<Ntt>, RnsPoly<Ntt>) {
    let q_len = digits[0].q_len();
    let k = digits[0].p_len();
    let n = params.n();
    let mut acc0 = RnsPoly::<Ntt>::zero(params, q_len, k);
    let mut acc1 = RnsPoly::<Ntt>::zero(params, q_len, k);
    acc0.data
        .par_chunks_mut(n)
        .zip(acc1.data.par_chunks_mut(n))
        .enumerate()
        .for_each_init(
            || vec![0u64; if perm.is_some() { n } else { 0 }],
            |scratch, (t, (o0, o1))| {
                let gi = digits[0].modulus_index(params, t);
                let plan = &params.inner.plans[gi];
                // Key polynomials live over the full basis, where the global index is the limb
                // index.
                for (j, dj) in digits.iter().enumerate() {
                    let limb = &dj.data[t * n..(t + 1) * n];
                    let x: &[u64] = match perm {
                        Some(perm) => {
                            for (s, &src) in scratch.iter_mut().zip(perm) {
                                *s = limb[src as usize];
                            }
                            &scratch[..]
                        }
                        None => limb,
                    };
                    plan.mul_accumulate(o0, x, &key.b[j].data[gi * n..(gi + 1) * n]);
                    plan.mul_accumulate(o1, x, &key.a[j].data[gi * n..(gi + 1) * n]);
                }
            },
        );
    let (r0, r1) = rayon::join(|| acc0.mod_down(params), || acc1.mod_down(params));
    (r0, r1)
}

/// Full key switch of `d` (decomposition + key application).
pub(crate) fn key_switch(
    params: &CkksParams,
    d: &RnsPoly<Ntt>,
    key: &KeySwitchKey,
) -> (RnsPoly<Ntt>, RnsPoly<Ntt>) {
    let digits = decompose(params, d);
    apply_key(params, &digits, key, None)
}
