//! Vectorized word kernels for the RNS passes outside the NTT: Shoup products by constants,
//! base-conversion sums, ModDown/rescale corrections and modular additions.
//!
//! The arithmetic is V. Shoup's multiplication by a precomputed constant (as in [`crate::arith`],
//! with the same companion [`crate::arith::shoup_companion`])
//! written with 32-bit partial products and branch-free `min`-based corrections, so that the
//! compiler vectorizes it; each kernel body is compiled three times and the AVX-512
//! (x86-64-v4) or AVX2 (x86-64-v3) copy is selected at run time through `pulp`'s safe
//! `vectorize` (scalar copy elsewhere). All moduli are below 2^62, all inputs are reduced
//! unless stated otherwise. The base conversion and the ModDown/rescale corrections take the
//! IFMA copies of `ifma` instead where the CPU has AVX-512 IFMA and the moduli (and so the
//! residues) are below 2^50, as every preset's are: about half of a key switch's time went to
//! the 64-bit products here before.

/// Runs `$body` (a block returning `()`) compiled for the best instruction set available.
macro_rules! dispatch {
    ($body:block) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(simd) = pulp::x86::V4::try_new() {
                return simd.vectorize(
                    #[inline(always)]
                    || $body,
                );
            }
            if let Some(simd) = pulp::x86::V3::try_new() {
                return simd.vectorize(
                    #[inline(always)]
                    || $body,
                );
            }
        }
        $body
    }};
}

/// High 64 bits of the 128-bit product, from 32-bit partial products (vectorizable).
#[inline(always)]
fn mulhi(a: u64, b: u64) -> u64 {
    const M: u64 = 0xFFFF_FFFF;
    let (a0, a1) = (a & M, a >> 32);
    let (b0, b1) = (b & M, b >> 32);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 32) + (p01 & M) + (p10 & M);
    p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32)
}

/// `x mod p` for `x < 2p`.
#[inline(always)]
fn reduce_once(x: u64, p: u64) -> u64 {
    x.min(x.wrapping_sub(p))
}

/// `a·w mod p` for any `a` and `w < p`, `ws = floor(w·2^64/p)`.
#[inline(always)]
fn mul_shoup(a: u64, w: u64, ws: u64, p: u64) -> u64 {
    let q = mulhi(a, ws);
    reduce_once(a.wrapping_mul(w).wrapping_sub(q.wrapping_mul(p)), p)
}

#[inline(always)]
fn add_mod(a: u64, b: u64, p: u64) -> u64 {
    reduce_once(a + b, p)
}

#[inline(always)]
fn sub_mod(a: u64, b: u64, p: u64) -> u64 {
    let d = a.wrapping_sub(b);
    d.min(d.wrapping_add(p))
}

/// A constant with its Shoup companion.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shoup {
    pub(crate) w: u64,
    pub(crate) ws: u64,
}

impl Shoup {
    pub(crate) fn new(w: u64, p: u64) -> Self {
        Self {
            w,
            ws: crate::arith::shoup_companion(w, p),
        }
    }
}

const BLOCK: usize = 64;

/// `out[c] = x[c]·w mod p` (any `x[c]`).
pub(crate) fn mul_const_into(out: &mut [u64], x: &[u64], w: Shoup, p: u64) {
    dispatch!({
        for (o, &a) in out.iter_mut().zip(x) {
            *o = mul_shoup(a, w.w, w.ws, p);
        }
    })
}

/// `acc[c] = acc[c] + x[c]·w mod p` (any `x[c]`, reduced `acc[c]`).
pub(crate) fn mul_const_add_assign(acc: &mut [u64], x: &[u64], w: Shoup, p: u64) {
    dispatch!({
        for (o, &a) in acc.iter_mut().zip(x) {
            *o = add_mod(*o, mul_shoup(a, w.w, w.ws, p), p);
        }
    })
}

/// `out = a + b mod p`, or `a - b` with `subtract`.
pub(crate) fn add_into(out: &mut [u64], a: &[u64], b: &[u64], p: u64, subtract: bool) {
    dispatch!({
        if subtract {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = sub_mod(x, y, p);
            }
        } else {
            for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                *o = add_mod(x, y, p);
            }
        }
    })
}

/// `a ±= b mod p` in place.
pub(crate) fn add_assign(a: &mut [u64], b: &[u64], p: u64, subtract: bool) {
    dispatch!({
        if subtract {
            for (x, &y) in a.iter_mut().zip(b) {
                *x = sub_mod(*x, y, p);
            }
        } else {
            for (x, &y) in a.iter_mut().zip(b) {
                *x = add_mod(*x, y, p);
            }
        }
    })
}

/// Fast base conversion into one target prime `p`:
/// `out[c] = Σ_i ys[i][c]·hats[i] − v[c]·d mod p` (the `v` term only when given); every
/// `ys[i][c]` and `v[c]` is below `inputs_below`.
pub(crate) fn base_convert_into(
    out: &mut [u64],
    ys: &[&[u64]],
    hats: &[Shoup],
    v: Option<(&[u64], Shoup)>,
    p: u64,
    inputs_below: u64,
) {
    #[cfg(target_arch = "x86_64")]
    if out.len().is_multiple_of(8) && inputs_below <= crate::ifma::MODULUS_LIMIT {
        if let Some(simd) = crate::ifma::for_modulus(p) {
            return crate::ifma::base_convert_into(simd, out, ys, hats, v, p);
        }
    }
    dispatch!({
        for (blk, o) in out.chunks_mut(BLOCK).enumerate() {
            let base = blk * BLOCK;
            let len = o.len();
            let mut acc = [0u64; BLOCK];
            let acc = &mut acc[..len];
            for (y, h) in ys.iter().zip(hats) {
                for (a, &yk) in acc.iter_mut().zip(&y[base..base + len]) {
                    *a = add_mod(*a, mul_shoup(yk, h.w, h.ws, p), p);
                }
            }
            if let Some((v, d)) = v {
                for (a, &vk) in acc.iter_mut().zip(&v[base..base + len]) {
                    *a = sub_mod(*a, mul_shoup(vk, d.w, d.ws, p), p);
                }
            }
            o.copy_from_slice(acc);
        }
    })
}

/// The overflow estimate of a centred base conversion: `v[c] = round(Σ_i ys[i][c] / d_i)`,
/// with `inv_d[i] = 1/d_i` (all `ys[i][c] < 2^62`).
pub(crate) fn overflow_estimate(v: &mut [u64], ys: &[&[u64]], inv_d: &[f64]) {
    dispatch!({
        for (blk, o) in v.chunks_mut(BLOCK).enumerate() {
            let base = blk * BLOCK;
            let len = o.len();
            let mut acc = [0.5f64; BLOCK];
            let acc = &mut acc[..len];
            for (y, &w) in ys.iter().zip(inv_d) {
                for (a, &yk) in acc.iter_mut().zip(&y[base..base + len]) {
                    *a += yk as i64 as f64 * w;
                }
            }
            // acc ≥ 1/2: truncation rounds the sum to the nearest integer.
            for (x, &a) in o.iter_mut().zip(acc.iter()) {
                *x = a as u64;
            }
        }
    })
}

/// `x[c] = (x[c] − y[c])·w mod p` in place.
pub(crate) fn sub_mul_assign(x: &mut [u64], y: &[u64], w: Shoup, p: u64) {
    #[cfg(target_arch = "x86_64")]
    if x.len().is_multiple_of(8) {
        if let Some(simd) = crate::ifma::for_modulus(p) {
            return crate::ifma::sub_mul_assign(simd, x, y, w, p);
        }
    }
    dispatch!({
        for (a, &b) in x.iter_mut().zip(y) {
            *a = mul_shoup(sub_mod(*a, b, p), w.w, w.ws, p);
        }
    })
}

/// `y[c] = (x[c] − y[c])·w mod p` in place in `y`.
pub(crate) fn rsub_mul_assign(y: &mut [u64], x: &[u64], w: Shoup, p: u64) {
    #[cfg(target_arch = "x86_64")]
    if y.len().is_multiple_of(8) {
        if let Some(simd) = crate::ifma::for_modulus(p) {
            return crate::ifma::rsub_mul_assign(simd, y, x, w, p);
        }
    }
    dispatch!({
        for (b, &a) in y.iter_mut().zip(x) {
            *b = mul_shoup(sub_mod(a, *b, p), w.w, w.ws, p);
        }
    })
}

/// `x[c] = (x[c] − y[c])·w + z[c] mod p` in place.
pub(crate) fn sub_mul_add_assign(x: &mut [u64], y: &[u64], w: Shoup, z: &[u64], p: u64) {
    #[cfg(target_arch = "x86_64")]
    if x.len().is_multiple_of(8) {
        if let Some(simd) = crate::ifma::for_modulus(p) {
            return crate::ifma::sub_mul_add_assign(simd, x, y, w, z, p);
        }
    }
    dispatch!({
        for ((a, &b), &c) in x.iter_mut().zip(y).zip(z) {
            *a = add_mod(mul_shoup(sub_mod(*a, b, p), w.w, w.ws, p), c, p);
        }
    })
}

/// `out[c] = x[c] mod p` for signed `|x[c]| < p`: the negative ones plus `p`.
pub(crate) fn signed_small_into(out: &mut [u64], x: &[i64], p: u64) {
    dispatch!({
        for (o, &c) in out.iter_mut().zip(x) {
            let negative = ((c < 0) as u64).wrapping_neg();
            *o = (c as u64).wrapping_add(p & negative);
        }
    })
}

/// The rescale correction before its NTT: `out[c]` is the centred representative of
/// `last[c] ∈ [0, q)` reduced modulo `p` (`one` is the Shoup form of 1 modulo `p`).
pub(crate) fn centered_reduce_into(out: &mut [u64], last: &[u64], q: u64, one: Shoup, p: u64) {
    let half = q / 2;
    dispatch!({
        for (o, &v) in out.iter_mut().zip(last) {
            let neg = v > half;
            let mag = if neg { q - v } else { v };
            let r = mul_shoup(mag, one.w, one.ws, p);
            let nr = sub_mod(0, r, p);
            *o = if neg { nr } else { r };
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arith::Modulus;
    use proptest::prelude::*;

    const PRIMES: [u64; 3] = [1125899906826241, 1099511922689, 576460752303439873];

    proptest! {
        #[test]
        fn signed_small_reduction_matches_reduce_i64(
            pi in 0usize..3,
            xs in proptest::collection::vec(any::<i64>(), 1..200),
        ) {
            let p = PRIMES[pi];
            let m = Modulus::new(p);
            let xs: Vec<i64> = xs.iter().map(|&x| x % p as i64).collect();
            let mut out = vec![0u64; xs.len()];
            signed_small_into(&mut out, &xs, p);
            for (o, &x) in out.iter().zip(&xs) {
                prop_assert_eq!(*o, m.reduce_i64(x));
            }
        }
    }

    proptest! {
        #[test]
        fn kernels_match_scalar_arithmetic(
            xs in proptest::collection::vec(any::<u64>(), 1..200),
            w in any::<u64>(),
            i in 0usize..3,
        ) {
            // Whole multiples of 8 take the IFMA kernels where the CPU has them (moduli below
            // 2^50: the first two primes); the full length takes the portable ones.
            let whole = xs.len() / 8 * 8;
            check_kernels(&xs, w, i)?;
            if whole > 0 {
                check_kernels(&xs[..whole], w, i)?;
            }
        }

        #[test]
        fn base_convert_matches_scalar(
            y0 in proptest::collection::vec(0u64..PRIMES[0], 136),
            y1 in proptest::collection::vec(0u64..PRIMES[1], 136),
            h in any::<(u64, u64)>(),
        ) {
            check_base_convert(&y0, &y1, h)?;
            check_base_convert(&y0[..130], &y1[..130], h)?;
        }
    }

    fn check_kernels(xs: &[u64], w: u64, i: usize) -> Result<(), TestCaseError> {
        {
            let p = PRIMES[i];
            let m = Modulus::new(p);
            let w = w % p;
            let s = Shoup::new(w, p);
            let mut out = vec![0; xs.len()];
            mul_const_into(&mut out, xs, s, p);
            for (o, &x) in out.iter().zip(xs) {
                prop_assert_eq!(*o, m.mul_shoup(x, w, m.shoup(w)));
            }
            let a: Vec<u64> = xs.iter().map(|&x| x % p).collect();
            let b: Vec<u64> = xs.iter().rev().map(|&x| x % p).collect();
            let mut sum = vec![0; a.len()];
            add_into(&mut sum, &a, &b, p, false);
            let mut diff = vec![0; a.len()];
            add_into(&mut diff, &a, &b, p, true);
            let mut fused = a.clone();
            sub_mul_add_assign(&mut fused, &b, s, &a, p);
            let mut rs = b.clone();
            rsub_mul_assign(&mut rs, &a, s, p);
            for c in 0..a.len() {
                prop_assert_eq!(sum[c], m.add(a[c], b[c]));
                prop_assert_eq!(diff[c], m.sub(a[c], b[c]));
                let d = m.mul(m.sub(a[c], b[c]), w);
                prop_assert_eq!(fused[c], m.add(d, a[c]));
                prop_assert_eq!(rs[c], d);
            }
            let mut centred = vec![0; a.len()];
            centered_reduce_into(&mut centred, &a, p, Shoup::new(1, PRIMES[1]), PRIMES[1]);
            let t = Modulus::new(PRIMES[1]);
            for c in 0..a.len() {
                prop_assert_eq!(centred[c], t.reduce_i64(m.centered(a[c])));
            }
            let mut sm = a.clone();
            sub_mul_assign(&mut sm, &b, s, p);
            for c in 0..a.len() {
                prop_assert_eq!(sm[c], m.mul(m.sub(a[c], b[c]), w));
            }
        }
        Ok(())
    }

    fn check_base_convert(y0: &[u64], y1: &[u64], h: (u64, u64)) -> Result<(), TestCaseError> {
        let len = y0.len();
        {
            let p = PRIMES[1];
            let t = Modulus::new(p);
            let (h0, h1) = (h.0 % p, h.1 % p);
            let v: Vec<u64> = y0.iter().map(|&a| a % 3).collect();
            let d = 12345 % p;
            let mut out = vec![0; len];
            base_convert_into(
                &mut out,
                &[y0, y1],
                &[Shoup::new(h0, p), Shoup::new(h1, p)],
                Some((&v, Shoup::new(d, p))),
                p,
                PRIMES[0],
            );
            for c in 0..len {
                let want = t.sub(
                    t.add(t.mul(t.reduce(y0[c]), h0), t.mul(t.reduce(y1[c]), h1)),
                    t.mul(v[c], d),
                );
                prop_assert_eq!(out[c], want);
            }
            let mut est = vec![0; len];
            let inv = [1.0 / PRIMES[0] as f64, 1.0 / PRIMES[1] as f64];
            overflow_estimate(&mut est, &[y0, y1], &inv);
            for c in 0..len {
                let f = y0[c] as f64 / PRIMES[0] as f64 + y1[c] as f64 / PRIMES[1] as f64;
                prop_assert_eq!(est[c], f.round() as u64);
            }
        }
        Ok(())
    }
}
