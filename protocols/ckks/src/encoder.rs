//! Canonical-embedding encoder (CKKS, Cheon–Kim–Kim–Song ASIACRYPT 2017 §3.2–3.3).
//!
//! A vector `z ∈ C^{N/2}` is mapped to the real polynomial `m(X)` whose evaluations at the
//! primitive `2N`-th roots `ζ^{5^j}` (`ζ = e^{iπ/N}`, `j < N/2`) are `z_j`; the coefficients are
//! scaled by `Δ` and rounded. Slot `j` pairs with the Galois element `5^j`, so the automorphism
//! `X ↦ X^{5^r}` rotates the slots left by `r` and `X ↦ X^{-1}` conjugates them. The transform
//! is the "special FFT" of HEAAN (`O(N log N)`), in `f64`.

use rayon::prelude::*;

use crate::error::{CkksError, Result};
use crate::params::CkksParams;
use crate::poly::{Coeff, Ntt, RnsPoly};

/// A complex number (`f64` parts).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct C64 {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

impl C64 {
    /// `re + i·im`.
    pub const fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }
    /// Complex conjugate.
    pub fn conj(self) -> Self {
        Self::new(self.re, -self.im)
    }
    /// Modulus `|z|`.
    pub fn abs(self) -> f64 {
        self.re.hypot(self.im)
    }
    fn add(self, o: Self) -> Self {
        Self::new(self.re + o.re, self.im + o.im)
    }
    fn sub(self, o: Self) -> Self {
        Self::new(self.re - o.re, self.im - o.im)
    }
    fn mul(self, o: Self) -> Self {
        Self::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
}

/// A plaintext: an encoded polynomial in NTT form at a level, with its scale.
#[derive(Clone, Debug)]
pub struct Plaintext {
    pub(crate) poly: RnsPoly<Ntt>,
    pub(crate) scale: f64,
    pub(crate) params_id: u64,
}

impl Plaintext {
    /// The level (number of `q` primes minus one).
    pub fn level(&self) -> usize {
        self.poly.q_len() - 1
    }
    /// The scale `Δ` the values were multiplied by.
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// The underlying polynomial.
    pub fn poly(&self) -> &RnsPoly<Ntt> {
        &self.poly
    }
    /// Whether the plaintext also has residues modulo the special primes
    /// ([`Encoder::encode_ext`]), for products over `Q_l ∪ P`.
    pub fn is_extended(&self) -> bool {
        self.poly.p_len() > 0
    }
    /// Refuses an extended plaintext where `object` (what it was given as) must live over `Q_l`
    /// alone.
    pub(crate) fn refuse_extended(&self, object: &'static str) -> Result<()> {
        if self.is_extended() {
            return Err(CkksError::ParamsMismatch {
                object,
                field: "special limbs",
                expected: 0,
                found: self.poly.p_len() as u64,
            });
        }
        Ok(())
    }
    pub(crate) fn check_params(&self, params: &CkksParams) -> Result<()> {
        if self.params_id != params.fingerprint() {
            return Err(CkksError::ForeignObject {
                object: "plaintext",
                expected: params.fingerprint(),
                found: self.params_id,
            });
        }
        params.check_level(self.level())
    }
}

/// Encoder/decoder between slot vectors and plaintexts.
#[derive(Clone, Debug)]
pub struct Encoder {
    params: CkksParams,
    /// Twiddles of the special FFT over `N/2` slots, stage by stage: the stage of butterfly
    /// length `len` uses entries `len/2 − 1 .. len − 1` (forward), and the same range of
    /// `inv_re`/`inv_im` (inverse). Precomputed so that no butterfly computes an index modulo.
    twiddles: Vec<C64>,
    /// The inverse twiddles' real and imaginary parts (the inverse FFT, on every encoding's
    /// path, runs on split real and imaginary arrays).
    inv_re: Vec<f64>,
    inv_im: Vec<f64>,
    /// `bitrev[i]`: `i` with its `log2(N/2)` bits reversed (the inverse FFT's output order).
    bitrev: Vec<u32>,
}

impl Encoder {
    /// Precomputes the roots for `params`.
    pub fn new(params: &CkksParams) -> Self {
        let n = params.n();
        let m = 2 * n;
        let mut rot_group = Vec::with_capacity(n / 2);
        let mut g = 1usize;
        for _ in 0..n / 2 {
            rot_group.push(g);
            g = g * 5 % m;
        }
        let ksi_pows: Vec<C64> = (0..=m)
            .map(|j| {
                let a = 2.0 * std::f64::consts::PI * j as f64 / m as f64;
                C64::new(a.cos(), a.sin())
            })
            .collect();
        let slots = n / 2;
        let mut twiddles = Vec::with_capacity(slots);
        let mut inv_twiddles = Vec::with_capacity(slots);
        let mut len = 2;
        while len <= slots {
            let lenq = len * 4;
            for &r in &rot_group[..len / 2] {
                twiddles.push(ksi_pows[(r % lenq) * (m / lenq)]);
                inv_twiddles.push(ksi_pows[(lenq - r % lenq) * (m / lenq)]);
            }
            len *= 2;
        }
        Self {
            params: params.clone(),
            twiddles,
            inv_re: inv_twiddles.iter().map(|z| z.re).collect(),
            inv_im: inv_twiddles.iter().map(|z| z.im).collect(),
            bitrev: {
                let bits = slots.trailing_zeros();
                (0..slots as u32)
                    .map(|i| i.reverse_bits().checked_shr(32 - bits).unwrap_or(0))
                    .collect()
            },
        }
    }

    /// Number of slots `N/2`.
    pub fn slots(&self) -> usize {
        self.params.slots()
    }

    /// Coefficients (packed as `u_i = m_i + i·m_{i+N/2}`) to slot values.
    fn fft_special(&self, vals: &mut [C64]) {
        let size = vals.len();
        assert_eq!(size, self.slots(), "the special FFT runs over all slots");
        bit_reverse(vals);
        let mut len = 2;
        while len <= size {
            let lenh = len / 2;
            let tw = &self.twiddles[lenh - 1..len - 1];
            for i in (0..size).step_by(len) {
                for j in 0..lenh {
                    let u = vals[i + j];
                    let v = vals[i + j + lenh].mul(tw[j]);
                    vals[i + j] = u.add(v);
                    vals[i + j + lenh] = u.sub(v);
                }
            }
            len *= 2;
        }
    }

    /// Slot values (real parts `re`, imaginary parts `im`) to packed coefficients `N/2 ·
    /// (m_i + i·m_{i+N/2})` in bit-reversed order: the inverse of [`Self::fft_special`]
    /// without its division by `N/2` and its bit reversal, which the caller folds into one
    /// gather with the scale. Split arrays, one pass per stage over disjoint halves.
    fn fft_special_inv(&self, re: &mut [f64], im: &mut [f64]) {
        let size = re.len();
        assert!(
            size == self.slots() && im.len() == size,
            "the special FFT runs over all slots"
        );
        let mut len = size;
        while len >= 2 {
            let lenh = len / 2;
            let (tr, ti) = (
                &self.inv_re[lenh - 1..len - 1],
                &self.inv_im[lenh - 1..len - 1],
            );
            for (r, i) in re.chunks_exact_mut(len).zip(im.chunks_exact_mut(len)) {
                let (r0, r1) = r.split_at_mut(lenh);
                let (i0, i1) = i.split_at_mut(lenh);
                let pairs = r0.iter_mut().zip(i0).zip(r1.iter_mut().zip(i1));
                for (((ar, ai), (br, bi)), (wr, wi)) in pairs.zip(tr.iter().zip(ti)) {
                    let (sr, si) = (*ar + *br, *ai + *bi);
                    let (dr, di) = (*ar - *br, *ai - *bi);
                    (*ar, *ai) = (sr, si);
                    (*br, *bi) = (dr * wr - di * wi, dr * wi + di * wr);
                }
            }
            len /= 2;
        }
    }

    /// Encodes real values (zero-padded to `N/2` slots) at `level` with `scale`.
    pub fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext> {
        self.encode_parts(values, None, level, scale, 0)
    }

    /// Encodes complex values (zero-padded to `N/2` slots) at `level` with `scale`.
    pub fn encode_complex(&self, values: &[C64], level: usize, scale: f64) -> Result<Plaintext> {
        let (re, im): (Vec<f64>, Vec<f64>) = values.iter().map(|v| (v.re, v.im)).unzip();
        self.encode_parts(&re, Some(&im), level, scale, 0)
    }

    /// Encodes real values like [`Self::encode`], with residues modulo the special primes as
    /// well: the plaintext of a product over `Q_l ∪ P` (see [`crate::lazy`]). The value must
    /// stay below `Q_level / 2` as for [`Self::encode`]; it is the same integer polynomial.
    pub fn encode_ext(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext> {
        let k = self.params.p_primes().len();
        self.encode_parts(values, None, level, scale, k)
    }

    /// Encodes slots with real parts `re` and imaginary parts `im` (zero when `None`; as many
    /// as `re`), over `q_0..q_level` and the first `p_len` special primes.
    fn encode_parts(
        &self,
        re_in: &[f64],
        im_in: Option<&[f64]>,
        level: usize,
        scale: f64,
        p_len: usize,
    ) -> Result<Plaintext> {
        self.params.check_level(level)?;
        check_scale(&self.params, scale, level)?;
        let slots = self.slots();
        if re_in.len() > slots {
            return Err(CkksError::TooManyValues {
                len: re_in.len(),
                slots,
            });
        }
        let bad = |v: &[f64]| v.iter().position(|x| !x.is_finite()).map(|i| (i, v[i]));
        if let Some((index, value)) = bad(re_in).or_else(|| im_in.and_then(bad)) {
            return Err(CkksError::ValueOutOfRange {
                index,
                value,
                limit_bits: 0,
            });
        }
        let mut re = vec![0f64; slots];
        let mut im = vec![0f64; slots];
        re[..re_in.len()].copy_from_slice(re_in);
        if let Some(v) = im_in {
            im[..v.len()].copy_from_slice(v);
        }
        self.fft_special_inv(&mut re, &mut im);
        // `m_i` from the real parts, `m_{i+N/2}` from the imaginary parts, in natural order.
        let s = scale / slots as f64;
        let coeffs: Vec<f64> = (self.bitrev.iter().map(|&j| re[j as usize] * s))
            .chain(self.bitrev.iter().map(|&j| im[j as usize] * s))
            .collect();
        let poly = coeffs_to_poly(&self.params, &coeffs, level, p_len)?;
        Ok(Plaintext {
            poly,
            scale,
            params_id: self.params.fingerprint(),
        })
    }

    /// Decodes the real parts of all `N/2` slots.
    pub fn decode(&self, pt: &Plaintext) -> Vec<f64> {
        self.decode_complex(pt).into_iter().map(|z| z.re).collect()
    }

    /// Decodes all `N/2` complex slots (a plaintext from other parameters decodes to garbage;
    /// [`crate::SecretKey::decrypt`] already refuses foreign ciphertexts).
    pub fn decode_complex(&self, pt: &Plaintext) -> Vec<C64> {
        let coeff = pt.poly.clone().into_coeff(&self.params);
        let m = crt_to_f64(&self.params, &coeff);
        let slots = self.slots();
        let inv = 1.0 / pt.scale;
        let mut u: Vec<C64> = (0..slots)
            .map(|i| C64::new(m[i] * inv, m[i + slots] * inv))
            .collect();
        self.fft_special(&mut u);
        u
    }
}

/// Refuses a scale that is not finite/positive or leaves no room below `Q_level`.
pub(crate) fn check_scale(params: &CkksParams, scale: f64, level: usize) -> Result<()> {
    if !(scale.is_finite() && scale >= 1.0) {
        return Err(CkksError::InvalidScale {
            scale,
            reason: "scale must be finite and at least 1",
        });
    }
    let log_q: f64 = params.inner.q[..=level]
        .iter()
        .map(|&q| (q as f64).log2())
        .sum();
    if scale.log2() >= log_q - 1.0 {
        return Err(CkksError::InvalidScale {
            scale,
            reason: "scale must be below Q_level / 2",
        });
    }
    Ok(())
}

/// Rounds real coefficients and reduces them into RNS/NTT form at `level`.
pub(crate) fn coeffs_to_poly(
    params: &CkksParams,
    coeffs: &[f64],
    level: usize,
    p_len: usize,
) -> Result<RnsPoly<Ntt>> {
    let log_q: f64 = params.inner.q[..=level]
        .iter()
        .map(|&q| (q as f64).log2())
        .sum();
    // i128 holds |x| < 2^126; the value must also stay below Q_level / 2 to be decodable.
    let limit_bits = (log_q - 1.0).floor().min(126.0) as u32;
    let limit = (limit_bits as f64).exp2();
    // One pass for the magnitude, rounding only on the error path (`f64::round` is a library
    // call on baseline x86-64, and this runs for every plaintext); NaN makes `max` NaN.
    let max = coeffs.iter().fold(0f64, |m, &c| {
        if c.abs() > m || c.is_nan() {
            c.abs()
        } else {
            m
        }
    });
    if max.is_nan() || max.round() >= limit {
        let index = coeffs
            .iter()
            .position(|&c| c.is_nan() || c.round().abs() >= limit)
            .unwrap_or(0);
        return Err(CkksError::ValueOutOfRange {
            index,
            value: coeffs[index],
            limit_bits,
        });
    }
    let n = params.n();
    if max < ROUND_MAGIC_LIMIT {
        // The common case (values of order one at scale ≤ 2^50): rounding by the magic
        // constant and a single-word reduction per residue.
        let ints: Vec<i64> = coeffs.iter().map(|&c| round_small(c)).collect();
        return Ok(RnsPoly::<Coeff>::from_signed(params, &ints, level + 1, p_len).into_ntt(params));
    }
    if max < (1u64 << 62) as f64 {
        let ints: Vec<i64> = coeffs.iter().map(|&c| c.round() as i64).collect();
        return Ok(RnsPoly::<Coeff>::from_signed(params, &ints, level + 1, p_len).into_ntt(params));
    }
    let ints: Vec<i128> = coeffs.iter().map(|&c| c.round() as i128).collect();
    let mut poly = RnsPoly::<Coeff>::zero(params, level + 1, p_len);
    let moduli = poly.moduli(params);
    poly.data_mut()
        .par_chunks_mut(n)
        .enumerate()
        .for_each(|(t, limb)| {
            let m = moduli[t];
            for (x, &v) in limb.iter_mut().zip(&ints) {
                *x = m.reduce_i128(v);
            }
        });
    Ok(poly.into_ntt(params))
}

/// Puts `vals[i]` at the bit-reversed index of `i` (a power-of-two length).
fn bit_reverse<T>(vals: &mut [T]) {
    let n = vals.len();
    let bits = n.trailing_zeros();
    if bits == 0 {
        return;
    }
    for i in 0..n {
        let j = i.reverse_bits() >> (usize::BITS - bits);
        if i < j {
            vals.swap(i, j);
        }
    }
}

/// Below this magnitude [`round_small`] is exact.
const ROUND_MAGIC_LIMIT: f64 = (1u64 << 51) as f64;

/// `c` rounded to the nearest integer, ties to even, for `|c| < 2^51`: adding and subtracting
/// `1.5·2^52` leaves no fraction bits (IEEE round-to-nearest does the rounding), in two
/// vectorizable additions instead of a call to `round`. Ties go to even where `f64::round`
/// goes away from zero: either is a valid rounding of an encoding.
#[inline]
fn round_small(c: f64) -> i64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 · 2^52
    ((c + MAGIC) - MAGIC) as i64
}

/// CRT-reconstructs each coefficient of a polynomial over `q_0..q_l` to its centred value, as
/// `f64` (exact multiprecision CRT, then rounding to the nearest double).
pub(crate) fn crt_to_f64(params: &CkksParams, poly: &RnsPoly<Coeff>) -> Vec<f64> {
    let q_len = poly.q_len();
    let n = params.n();
    let moduli = &params.inner.basis.moduli()[..q_len];
    if q_len == 1 {
        return poly
            .limb(0)
            .iter()
            .map(|&v| moduli[0].centered(v) as f64)
            .collect();
    }
    let words = q_len + 1;
    // Q and Q̂_i = Q / q_i as little-endian multiprecision integers.
    let big_q = moduli.iter().fold(vec![0u64; words], |acc, m| {
        if acc.iter().all(|&w| w == 0) {
            let mut v = vec![0u64; words];
            v[0] = m.value();
            v
        } else {
            mul_small(&acc, m.value())
        }
    });
    let hats: Vec<Vec<u64>> = (0..q_len)
        .map(|i| {
            let mut v = vec![0u64; words];
            v[0] = 1;
            for (j, m) in moduli.iter().enumerate() {
                if j != i {
                    v = mul_small(&v, m.value());
                }
            }
            v
        })
        .collect();
    let inv: Vec<(u64, u64)> = moduli
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let hat_mod = moduli
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold(1u64, |a, (_, d)| m.mul(a, m.reduce(d.value())));
            let w = m.inv(hat_mod).expect("distinct primes");
            (w, m.shoup(w))
        })
        .collect();
    let mut half_q = big_q.clone();
    shr1(&mut half_q);
    (0..n)
        .into_par_iter()
        .map(|k| {
            let mut acc = vec![0u64; words];
            for i in 0..q_len {
                let y = moduli[i].mul_shoup(poly.limb(i)[k], inv[i].0, inv[i].1);
                mul_small_add(&mut acc, &hats[i], y);
            }
            while cmp(&acc, &big_q) != std::cmp::Ordering::Less {
                sub_assign(&mut acc, &big_q);
            }
            if cmp(&acc, &half_q) == std::cmp::Ordering::Greater {
                let mut neg = big_q.clone();
                sub_assign(&mut neg, &acc);
                -to_f64(&neg)
            } else {
                to_f64(&acc)
            }
        })
        .collect()
}

fn mul_small(a: &[u64], b: u64) -> Vec<u64> {
    let mut out = vec![0u64; a.len()];
    mul_small_add(&mut out, a, b);
    out
}

fn mul_small_add(acc: &mut [u64], a: &[u64], b: u64) {
    let mut carry: u128 = 0;
    for (x, &y) in acc.iter_mut().zip(a) {
        let t = *x as u128 + y as u128 * b as u128 + carry;
        *x = t as u64;
        carry = t >> 64;
    }
    debug_assert_eq!(carry, 0, "multiprecision overflow");
}

fn cmp(a: &[u64], b: &[u64]) -> std::cmp::Ordering {
    for (x, y) in a.iter().rev().zip(b.iter().rev()) {
        match x.cmp(y) {
            std::cmp::Ordering::Equal => continue,
            o => return o,
        }
    }
    std::cmp::Ordering::Equal
}

fn sub_assign(a: &mut [u64], b: &[u64]) {
    let mut borrow = false;
    for (x, &y) in a.iter_mut().zip(b) {
        let (d1, b1) = x.overflowing_sub(y);
        let (d2, b2) = d1.overflowing_sub(borrow as u64);
        *x = d2;
        borrow = b1 || b2;
    }
}

fn shr1(a: &mut [u64]) {
    let mut carry = 0u64;
    for x in a.iter_mut().rev() {
        let nc = *x & 1;
        *x = (*x >> 1) | (carry << 63);
        carry = nc;
    }
}

fn to_f64(a: &[u64]) -> f64 {
    a.iter()
        .rev()
        .fold(0.0f64, |acc, &w| acc * 18446744073709551616.0 + w as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::presets;
    use proptest::prelude::*;

    fn params() -> CkksParams {
        presets::INSECURE_N10_L4_S40_TEST_ONLY.build().unwrap()
    }

    #[test]
    fn decode_matches_naive_canonical_embedding() {
        let params = params();
        let enc = Encoder::new(&params);
        let n = params.n();
        // A plaintext with small known integer coefficients.
        let coeffs: Vec<f64> = (0..n).map(|i| ((i * 7919) % 23) as f64 - 11.0).collect();
        let poly = coeffs_to_poly(&params, &coeffs, 2, 0).unwrap();
        let pt = Plaintext {
            poly,
            scale: 1.0,
            params_id: params.fingerprint(),
        };
        let slots = enc.decode_complex(&pt);
        let m = 2 * n;
        let mut g = 1usize;
        for (j, s) in slots.iter().enumerate() {
            let mut acc = C64::default();
            for (i, &c) in coeffs.iter().enumerate() {
                let a = std::f64::consts::PI * ((g * i) % m) as f64 / n as f64;
                acc = acc.add(C64::new(c * a.cos(), c * a.sin()));
            }
            assert!((acc.sub(*s)).abs() < 1e-6, "slot {j}: {acc:?} vs {s:?}");
            g = g * 5 % m;
        }
    }

    /// Encoding is `round(Δ·σ^{-1}(z))`: every coefficient equals the rounded naive inverse
    /// canonical embedding `m_i = (2/N)·Re Σ_j z_j·ζ^{-5^j·i}` (real and complex slots).
    #[test]
    fn encode_matches_naive_inverse_embedding() {
        let params = params();
        let enc = Encoder::new(&params);
        let (n, slots) = (params.n(), params.slots());
        let z: Vec<C64> = (0..slots)
            .map(|j| {
                C64::new(
                    ((j * 31) % 17) as f64 / 8.0 - 1.0,
                    ((j * 7) % 5) as f64 / 4.0,
                )
            })
            .collect();
        let scale = 2f64.powi(30);
        for complex in [false, true] {
            let pt = if complex {
                enc.encode_complex(&z, 2, scale).unwrap()
            } else {
                let re: Vec<f64> = z.iter().map(|v| v.re).collect();
                enc.encode(&re, 2, scale).unwrap()
            };
            let got = crt_to_f64(&params, &pt.poly.clone().into_coeff(&params));
            let m = 2 * n;
            for (i, &g) in got.iter().enumerate() {
                let mut acc = 0.0;
                let mut r = 1usize;
                for v in &z {
                    let a = -std::f64::consts::PI * ((r * i) % m) as f64 / n as f64;
                    let im = if complex { v.im } else { 0.0 };
                    acc += v.re * a.cos() - im * a.sin();
                    r = r * 5 % m;
                }
                let want = scale * 2.0 * acc / n as f64;
                // Ties and last-bit differences of the two summation orders aside, equal.
                assert!(
                    (g - want.round()).abs() <= 1.0,
                    "coefficient {i}: {g} vs {want}"
                );
                assert!(
                    (g - want).abs() <= 0.5 + 1e-6 * want.abs().max(1.0),
                    "{i}: {g} vs {want}"
                );
            }
        }
    }

    #[test]
    fn magic_rounding_is_nearest_ties_to_even() {
        for (c, r) in [
            (0.4, 0),
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-0.5, 0),
            (-1.5, -2),
            (-2.6, -3),
        ] {
            assert_eq!(round_small(c), r, "{c}");
        }
        let big = ROUND_MAGIC_LIMIT - 1.0;
        assert_eq!(round_small(big), big as i64);
        assert_eq!(round_small(-big), -big as i64);
    }

    proptest! {
        #[test]
        fn magic_rounding_agrees_with_round_ties_even(c in -2f64.powi(51) + 1.0..2f64.powi(51) - 1.0) {
            prop_assert_eq!(round_small(c), c.round_ties_even() as i64);
        }
    }

    #[test]
    fn crt_reconstruction_is_exact_for_large_values() {
        let params = params();
        // Values near 2^100 (needs three or more primes) survive CRT exactly up to f64 rounding.
        let coeffs: Vec<f64> = (0..params.n())
            .map(|i| (i as f64 - 512.0) * 2f64.powi(90) + i as f64)
            .collect();
        let poly = coeffs_to_poly(&params, &coeffs, 3, 0)
            .unwrap()
            .into_coeff(&params);
        let back = crt_to_f64(&params, &poly);
        for (a, b) in coeffs.iter().zip(&back) {
            assert!((a - b).abs() <= a.abs() * 1e-15 + 1.0, "{a} vs {b}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn encode_decode_round_trip(vals in proptest::collection::vec(-1000.0f64..1000.0, 1..512),
                                    level in 0usize..5) {
            let params = params();
            let enc = Encoder::new(&params);
            let pt = enc.encode(&vals, level, params.default_scale()).unwrap();
            let out = enc.decode(&pt);
            let err = vals.iter().zip(&out).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            // Rounding to integers at scale 2^40 leaves about 2^-30 of absolute error.
            prop_assert!(err < 2f64.powi(-25), "error {}", err);
            prop_assert!(out[vals.len()..].iter().all(|x| x.abs() < 2f64.powi(-25)));
        }
    }

    #[test]
    fn encode_rejects_bad_input() {
        let params = params();
        let enc = Encoder::new(&params);
        let s = params.default_scale();
        assert!(matches!(
            enc.encode(&vec![0.0; params.slots() + 1], 0, s),
            Err(CkksError::TooManyValues { .. })
        ));
        assert!(matches!(
            enc.encode(&[f64::NAN], 0, s),
            Err(CkksError::ValueOutOfRange { index: 0, .. })
        ));
        let mut z = vec![C64::new(1.0, 0.0); 8];
        z[5] = C64::new(0.0, f64::INFINITY);
        assert!(matches!(
            enc.encode_complex(&z, 0, s),
            Err(CkksError::ValueOutOfRange { index: 5, .. })
        ));
        // Finite slots whose coefficients overflow to infinity are refused, not wrapped.
        assert!(matches!(
            enc.encode(&[1e300, -1e300], 0, 1e10),
            Err(CkksError::ValueOutOfRange { .. })
        ));
        // q_0 has 50 bits: a constant 2^12 becomes the coefficient 2^52, too large at level 0.
        assert!(matches!(
            enc.encode(&vec![4096.0; params.slots()], 0, s),
            Err(CkksError::ValueOutOfRange { .. })
        ));
        assert!(matches!(
            enc.encode(&[1.0], 9, s),
            Err(CkksError::InvalidLevel { level: 9, max: 4 })
        ));
        assert!(matches!(
            enc.encode(&[1.0], 0, -1.0),
            Err(CkksError::InvalidScale { .. })
        ));
    }
}
