//! Hybrid key switching (Han–Ki, CT-RSA 2020, §3) in RNS form.
//!
//! To switch `d·s'` to `s` at level `l`: split the primes of `Q_l` into digits of `α`
//! consecutive primes; extend each digit `[d]_{Q_j}` to the whole basis `Q_l ∪ P` by fast base
//! conversion ("ModUp"); take the inner product with the key pairs `(b_j, a_j)`; divide by `P`
//! ("ModDown"). The decomposition can be computed once and reused by several rotations of the
//! same ciphertext (hoisting, Halevi–Shoup CRYPTO 2018 §5): the automorphism is applied to the
//! extended digits instead of to `d`. Because each digit is extended as its exact centred
//! representative (see [`crate::poly`]), and the automorphism only permutes coefficients and
//! flips signs, this gives bit-for-bit the same result as decomposing `σ(d)` (a single rotation
//! does the latter, which permutes `β` times less data; the tests check that both agree); with
//! the plain fast conversion it would differ by multiples of `Q_j`, which the gadget annihilates
//! anyway.
//!
//! Every polynomial here is written once into a pooled buffer ([`crate::pool`]); the additions
//! that follow a key switch (`d0 + …` in relinearization, `σ(c0) + …` in a rotation) are fused
//! into the ModDown pass.

use rayon::prelude::*;

use crate::keys::KeySwitchKey;
use crate::params::CkksParams;
use crate::poly::{BaseConverter, Ntt, RnsPoly};
use crate::pool;

/// The extended digits of `d` (NTT form over `Q_l ∪ P`), one per digit of the decomposition.
///
/// Each digit is written once into a pooled buffer: its own primes are copied from `d`, every
/// other limb is base-converted straight into place and transformed there.
pub(crate) fn decompose(params: &CkksParams, d: &RnsPoly<Ntt>) -> Vec<RnsPoly<Ntt>> {
    assert_eq!(d.p_len(), 0, "decompose expects a polynomial over Q_l");
    let q_len = d.q_len();
    let k = params.p_primes().len();
    let alpha = params.alpha();
    let n = params.n();
    let big_l = params.inner.q.len();
    // N·d in coefficient form (one pooled copy of its q limbs; the inverse NTT's scaling by
    // N^{-1} is folded into the base conversion's constants).
    let mut coeff = pool::Scratch::empty(q_len * n);
    coeff.0.extend_from_slice(&d.data()[..q_len * n]);
    coeff
        .0
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(i, limb)| params.inner.basis.plans()[i].inv(limb));
    let beta = q_len.div_ceil(alpha);
    (0..beta)
        .map(|j| {
            let lo = j * alpha;
            let hi = ((j + 1) * alpha).min(q_len);
            let src_limbs: Vec<&[u64]> = (lo..hi).map(|i| &coeff.0[i * n..(i + 1) * n]).collect();
            let conv = BaseConverter::new(
                n,
                &src_limbs,
                &params.inner.basis.moduli()[lo..hi],
                true,
                true,
            );
            let mut out = RnsPoly::<Ntt>::dirty(n, q_len, k);
            out.data_mut()
                .par_chunks_mut(n)
                .enumerate()
                .for_each(|(t, limb)| {
                    if (lo..hi).contains(&t) {
                        limb.copy_from_slice(d.limb(t));
                    } else {
                        let gi = if t < q_len { t } else { big_l + (t - q_len) };
                        conv.convert_into(params.inner.basis.moduli()[gi], limb);
                        params.inner.basis.plans()[gi].fwd(limb);
                    }
                });
            out
        })
        .collect()
}

/// `(Σ_j digit_j·b_j, Σ_j digit_j·a_j)` over `Q_l ∪ P` (before the division by `P`).
///
/// With `perm`, the digits are read through the NTT-domain automorphism permutation
/// (`σ(digit_j)[c] = digit_j[perm[c]]`), one limb at a time into a scratch buffer, so a hoisted
/// rotation never materialises the rotated digits.
pub(crate) fn inner_product(
    params: &CkksParams,
    digits: &[RnsPoly<Ntt>],
    key: &KeySwitchKey,
    perm: Option<&[u32]>,
) -> (RnsPoly<Ntt>, RnsPoly<Ntt>) {
    let q_len = digits[0].q_len();
    let k = digits[0].p_len();
    let n = params.n();
    let mut acc0 = RnsPoly::<Ntt>::dirty(n, q_len, k);
    let mut acc1 = RnsPoly::<Ntt>::dirty(n, q_len, k);
    acc0.data_mut()
        .par_chunks_mut(n)
        .zip(acc1.data_mut().par_chunks_mut(n))
        .enumerate()
        .for_each_init(
            || pool::Scratch::dirty(if perm.is_some() { n } else { 0 }),
            |scratch, (t, (o0, o1))| {
                let gi = digits[0].modulus_index(params, t);
                let plan = &params.inner.basis.plans()[gi];
                // The accumulators start from arbitrary pooled contents.
                o0.fill(0);
                o1.fill(0);
                // Key polynomials live over `Q_L' ∪ P` (`L'` the key's level, at least `l`):
                // a prime of `Q` is limb `gi`, a special prime follows the key's own `Q` limbs.
                let kl = if t < q_len {
                    t
                } else {
                    key.b[0].q_len() + (t - q_len)
                };
                for (j, dj) in digits.iter().enumerate() {
                    let limb = &dj.data()[t * n..(t + 1) * n];
                    let x: &[u64] = match perm {
                        Some(perm) => {
                            for (s, &src) in scratch.0.iter_mut().zip(perm) {
                                *s = limb[src as usize];
                            }
                            &scratch.0[..]
                        }
                        None => limb,
                    };
                    plan.mul_accumulate(o0, x, &key.b[j].data()[kl * n..(kl + 1) * n]);
                    plan.mul_accumulate(o1, x, &key.a[j].data()[kl * n..(kl + 1) * n]);
                }
            },
        );
    (acc0, acc1)
}

/// Key switch of `d` added to `add0` (hybrid key switching, then ModDown fused with the
/// addition): returns `(add0 + ⌊Σ_j digit_j·b_j / P⌉, ⌊Σ_j digit_j·a_j / P⌉)` over `Q_l`.
pub(crate) fn key_switch_add(
    params: &CkksParams,
    d: &RnsPoly<Ntt>,
    key: &KeySwitchKey,
    add0: &RnsPoly<Ntt>,
    add1: Option<&RnsPoly<Ntt>>,
) -> (RnsPoly<Ntt>, RnsPoly<Ntt>) {
    let digits = decompose(params, d);
    let (acc0, acc1) = inner_product(params, &digits, key, None);
    drop(digits);
    rayon::join(
        || acc0.mod_down_add(params, Some(add0), None),
        || acc1.mod_down_add(params, add1, None),
    )
}

/// Full key switch of `d` (decomposition, inner product, ModDown), for reference tests.
#[cfg(test)]
pub(crate) fn key_switch(
    params: &CkksParams,
    d: &RnsPoly<Ntt>,
    key: &KeySwitchKey,
) -> (RnsPoly<Ntt>, RnsPoly<Ntt>) {
    let digits = decompose(params, d);
    let (acc0, acc1) = inner_product(params, &digits, key, None);
    (acc0.mod_down(params), acc1.mod_down(params))
}
