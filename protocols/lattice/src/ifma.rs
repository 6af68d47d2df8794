//! AVX-512 IFMA copies of the hottest word kernels (base conversion, the ModDown and rescale
//! corrections), for moduli below 2^50: Shoup's multiplication by a constant with a 52-bit
//! companion `⌊w·2^52/p⌋`, whose quotient is one `vpmadd52huq` and whose remainder two
//! `vpmadd52luq`, where the portable kernels in [`crate::kernels`] build a 64×64-bit high
//! product from four 32-bit multiplies and take two 64-bit low products (three micro-ops each
//! on current Intel cores). The same instruction set carries `tfhe-ntt`'s NTT.
//!
//! Correctness: for `a < 2^52` and `w < p < 2^50`, `q = ⌊a·w'/2^52⌋` with `w' = ⌊w·2^52/p⌋`
//! leaves `a·w − q·p ∈ [0, 2p)` (Shoup), which is below `2^52`, so the 52-bit low products give
//! it exactly; one conditional subtraction reduces it. Every input here is a residue (below its
//! modulus, so below `2^50`). The kernels match the portable ones word for word (tests in
//! `kernels`).

use core::arch::x86_64::__m512i;

use pulp::cast;

use crate::kernels::Shoup;

pulp::simd_type! {
    /// AVX-512 (F, BW, CD, DQ, VL) with the 52-bit integer fused multiply-add.
    pub(crate) struct V4Ifma {
        pub sse: "sse",
        pub sse2: "sse2",
        pub fxsr: "fxsr",
        pub sse3: "sse3",
        pub ssse3: "ssse3",
        pub sse4_1: "sse4.1",
        pub sse4_2: "sse4.2",
        pub popcnt: "popcnt",
        pub avx: "avx",
        pub avx2: "avx2",
        pub bmi1: "bmi1",
        pub bmi2: "bmi2",
        pub fma: "fma",
        pub lzcnt: "lzcnt",
        pub avx512f: "avx512f",
        pub avx512bw: "avx512bw",
        pub avx512cd: "avx512cd",
        pub avx512dq: "avx512dq",
        pub avx512vl: "avx512vl",
        pub avx512ifma: "avx512ifma",
    }
}

/// Moduli (and so residues) below this bound may take these kernels.
pub(crate) const MODULUS_LIMIT: u64 = 1 << 50;

const MASK52: u64 = (1 << 52) - 1;

/// The 52-bit Shoup companion `⌊w·2^52/p⌋` of `w < p`.
fn companion52(w: u64, p: u64) -> u64 {
    (((w as u128) << 52) / p as u128) as u64
}

/// The IFMA token when the CPU has it and `p` is small enough.
pub(crate) fn for_modulus(p: u64) -> Option<V4Ifma> {
    if p < MODULUS_LIMIT {
        V4Ifma::try_new()
    } else {
        None
    }
}

/// A constant `w` ready for [`V4Ifma::mul`]: `w` and its companion, broadcast.
#[derive(Clone, Copy)]
struct Const {
    w: __m512i,
    w52: __m512i,
}

impl V4Ifma {
    #[inline(always)]
    fn splat(self, x: u64) -> __m512i {
        self.avx512f._mm512_set1_epi64(x as i64)
    }

    /// `p` and `2^64 − p`, broadcast.
    #[inline(always)]
    fn prime(self, p: u64) -> (__m512i, __m512i) {
        (self.splat(p), self.splat(p.wrapping_neg()))
    }

    #[inline(always)]
    fn constant(self, w: &Shoup, p: u64) -> Const {
        Const {
            w: self.splat(w.w),
            w52: self.splat(companion52(w.w, p)),
        }
    }

    /// `a·w mod p` lane by lane (`neg_p = 2^64 − p`, `p` broadcast).
    #[inline(always)]
    fn mul(self, a: __m512i, c: Const, neg_p: __m512i, p: __m512i) -> __m512i {
        let zero = self.avx512f._mm512_setzero_si512();
        let q = self.avx512ifma._mm512_madd52hi_epu64(zero, a, c.w52);
        let lo = self.avx512ifma._mm512_madd52lo_epu64(zero, a, c.w);
        let r = self.avx512ifma._mm512_madd52lo_epu64(lo, q, neg_p);
        self.reduce_once(self.avx512f._mm512_and_si512(r, self.splat(MASK52)), p)
    }

    #[inline(always)]
    fn reduce_once(self, x: __m512i, p: __m512i) -> __m512i {
        self.avx512f
            ._mm512_min_epu64(x, self.avx512f._mm512_sub_epi64(x, p))
    }

    #[inline(always)]
    fn add_mod(self, a: __m512i, b: __m512i, p: __m512i) -> __m512i {
        self.reduce_once(self.avx512f._mm512_add_epi64(a, b), p)
    }

    #[inline(always)]
    fn sub_mod(self, a: __m512i, b: __m512i, p: __m512i) -> __m512i {
        let d = self.avx512f._mm512_sub_epi64(a, b);
        self.avx512f
            ._mm512_min_epu64(d, self.avx512f._mm512_add_epi64(d, p))
    }
}

#[inline(always)]
fn load(x: &[u64; 8]) -> __m512i {
    cast(*x)
}

/// [`crate::kernels::base_convert_into`] (lengths a multiple of 8).
pub(crate) fn base_convert_into(
    simd: V4Ifma,
    out: &mut [u64],
    ys: &[&[u64]],
    hats: &[Shoup],
    v: Option<(&[u64], Shoup)>,
    p: u64,
) {
    simd.vectorize(
        #[inline(always)]
        || {
            let (pv, neg_p) = simd.prime(p);
            let consts: Vec<Const> = hats.iter().map(|h| simd.constant(h, p)).collect();
            let ys: Vec<&[[u64; 8]]> = ys.iter().map(|y| pulp::as_arrays::<8, u64>(y).0).collect();
            let v = v.map(|(v, d)| (pulp::as_arrays::<8, u64>(v).0, simd.constant(&d, p)));
            let out = pulp::as_arrays_mut::<8, u64>(out).0;
            for (c, o) in out.iter_mut().enumerate() {
                let mut acc = simd.avx512f._mm512_setzero_si512();
                for (y, &k) in ys.iter().zip(&consts) {
                    acc = simd.add_mod(acc, simd.mul(load(&y[c]), k, neg_p, pv), pv);
                }
                if let Some((v, k)) = v {
                    acc = simd.sub_mod(acc, simd.mul(load(&v[c]), k, neg_p, pv), pv);
                }
                *o = cast(acc);
            }
        },
    )
}

/// [`crate::kernels::sub_mul_assign`]: `x = (x − y)·w mod p` (lengths a multiple of 8).
pub(crate) fn sub_mul_assign(simd: V4Ifma, x: &mut [u64], y: &[u64], w: Shoup, p: u64) {
    difference_times(simd, x, y, w, p, true);
}

/// [`crate::kernels::rsub_mul_assign`]: `y = (x − y)·w mod p` (lengths a multiple of 8).
pub(crate) fn rsub_mul_assign(simd: V4Ifma, y: &mut [u64], x: &[u64], w: Shoup, p: u64) {
    difference_times(simd, y, x, w, p, false);
}

/// `out = (out − other)·w` (`out_first`) or `(other − out)·w` modulo `p`, in place in `out`.
fn difference_times(
    simd: V4Ifma,
    out: &mut [u64],
    other: &[u64],
    w: Shoup,
    p: u64,
    out_first: bool,
) {
    simd.vectorize(
        #[inline(always)]
        || {
            let ((pv, neg_p), k) = (simd.prime(p), simd.constant(&w, p));
            let out = pulp::as_arrays_mut::<8, u64>(out).0;
            let other = pulp::as_arrays::<8, u64>(other).0;
            for (o, b) in out.iter_mut().zip(other) {
                let (x, y) = if out_first {
                    (load(o), load(b))
                } else {
                    (load(b), load(o))
                };
                *o = cast(simd.mul(simd.sub_mod(x, y, pv), k, neg_p, pv));
            }
        },
    )
}

/// [`crate::kernels::sub_mul_add_assign`]: `x = (x − y)·w + z mod p` (lengths a multiple of 8).
pub(crate) fn sub_mul_add_assign(
    simd: V4Ifma,
    x: &mut [u64],
    y: &[u64],
    w: Shoup,
    z: &[u64],
    p: u64,
) {
    simd.vectorize(
        #[inline(always)]
        || {
            let ((pv, neg_p), k) = (simd.prime(p), simd.constant(&w, p));
            let x = pulp::as_arrays_mut::<8, u64>(x).0;
            let y = pulp::as_arrays::<8, u64>(y).0;
            let z = pulp::as_arrays::<8, u64>(z).0;
            for ((a, b), c) in x.iter_mut().zip(y).zip(z) {
                let d = simd.sub_mod(load(a), load(b), pv);
                *a = cast(simd.add_mod(simd.mul(d, k, neg_p, pv), load(c), pv));
            }
        },
    )
}
