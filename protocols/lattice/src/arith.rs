//! Word-size modular arithmetic for RNS limbs: Barrett reduction of 64- and 128-bit values,
//! Shoup multiplication by precomputed constants and modular exponentiation/inversion. Every
//! scheme of the workspace (CKKS, the RLWE triple source) reduces through [`Modulus`]; the
//! vectorized kernels of [`crate::poly`] use the same Shoup companion ([`shoup_companion`]).
//!
//! Barrett reduction follows the 128-bit variant used by SEAL (floor(2^128/p) precomputed);
//! Shoup multiplication is V. Shoup's "multiplication by a fixed operand" (NTL), with the
//! quotient estimate `floor(w * 2^64 / p)`. All moduli are odd primes below 2^62.

/// The Shoup companion `floor(w * 2^64 / p)` of a constant `w < p`.
#[inline]
pub fn shoup_companion(w: u64, p: u64) -> u64 {
    debug_assert!(w < p);
    (((w as u128) << 64) / p as u128) as u64
}

/// An odd modulus `p < 2^62` with its Barrett constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modulus {
    p: u64,
    ratio_lo: u64,
    ratio_hi: u64,
    bits: u32,
    mu: u64,
    /// `floor(2^64 / p)`: single-word Barrett constant of [`Self::reduce`].
    ratio64: u64,
}

impl Modulus {
    /// Creates the modulus. Panics if `p` is even, below 3 or not below 2^62 (internal use only:
    /// the parameter builder only produces valid primes).
    pub fn new(p: u64) -> Self {
        assert!(p >= 3 && p % 2 == 1 && p < (1 << 62), "invalid modulus {p}");
        let ratio = u128::MAX / p as u128;
        let bits = 64 - p.leading_zeros();
        Self {
            p,
            ratio_lo: ratio as u64,
            ratio_hi: (ratio >> 64) as u64,
            bits,
            mu: ((1u128 << (2 * bits)) / p as u128) as u64,
            ratio64: ((1u128 << 64) / p as u128) as u64,
        }
    }

    /// The modulus value.
    #[inline]
    pub fn value(&self) -> u64 {
        self.p
    }

    /// Reduces any 128-bit value modulo `p`.
    #[inline]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let xl = x as u64;
        let xh = (x >> 64) as u64;
        // q_est = floor(x * floor(2^128/p) / 2^128), off from the true quotient by at most 2.
        let a = (xl as u128 * self.ratio_lo as u128) >> 64;
        let b = xh as u128 * self.ratio_lo as u128;
        let c = xl as u128 * self.ratio_hi as u128;
        let (s, c1) = b.overflowing_add(a);
        let (s, c2) = s.overflowing_add(c);
        let q = (xh as u128 * self.ratio_hi as u128)
            .wrapping_add(s >> 64)
            .wrapping_add(((c1 as u128) + (c2 as u128)) << 64);
        // x - q*p lies in [0, 3p), so computing it modulo 2^64 is exact.
        let mut r = xl.wrapping_sub((q as u64).wrapping_mul(self.p));
        while r >= self.p {
            r -= self.p;
        }
        r
    }

    /// Reduces a 64-bit value modulo `p`.
    #[inline]
    pub fn reduce(&self, x: u64) -> u64 {
        // q = floor(x·floor(2^64/p) / 2^64) is the true quotient or one less (x < 2^64), so
        // x − q·p lies in [0, 2p).
        let q = ((x as u128 * self.ratio64 as u128) >> 64) as u64;
        let r = x.wrapping_sub(q.wrapping_mul(self.p));
        if r >= self.p {
            r - self.p
        } else {
            r
        }
    }

    /// Maps a signed integer to `[0, p)`.
    #[inline]
    pub fn reduce_i64(&self, x: i64) -> u64 {
        // Branch-free on the sign (random-sign inputs would mispredict half the time).
        let r = self.reduce(x.unsigned_abs());
        let neg = if r == 0 { 0 } else { self.p - r };
        if x < 0 {
            neg
        } else {
            r
        }
    }

    /// Maps a signed 128-bit integer to `[0, p)`.
    #[inline]
    pub fn reduce_i128(&self, x: i128) -> u64 {
        if x >= 0 {
            self.reduce_u128(x as u128)
        } else {
            self.neg(self.reduce_u128(x.unsigned_abs()))
        }
    }

    /// `a * b mod p` for reduced inputs (single-word Barrett: the product is below `p^2`).
    #[inline]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        let x = a as u128 * b as u128;
        // q ≈ floor(x / p) with mu = floor(2^(2b) / p): at most 2 too small.
        let q =
            (((x >> (self.bits - 1)) as u64 as u128 * self.mu as u128) >> (self.bits + 1)) as u64;
        let mut r = (x as u64).wrapping_sub(q.wrapping_mul(self.p));
        while r >= self.p {
            r -= self.p;
        }
        r
    }

    /// `a + b mod p` for reduced inputs.
    #[inline]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        let s = a + b;
        if s >= self.p {
            s - self.p
        } else {
            s
        }
    }

    /// `a - b mod p` for reduced inputs.
    #[inline]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        if a >= b {
            a - b
        } else {
            a + self.p - b
        }
    }

    /// `-a mod p` for a reduced input.
    #[inline]
    pub fn neg(&self, a: u64) -> u64 {
        if a == 0 {
            0
        } else {
            self.p - a
        }
    }

    /// The Shoup companion `floor(w * 2^64 / p)` of a reduced constant `w`.
    #[inline]
    pub fn shoup(&self, w: u64) -> u64 {
        shoup_companion(w, self.p)
    }

    /// `a * w mod p` with `w_shoup = self.shoup(w)`; `a` may be any 64-bit value.
    #[inline]
    pub fn mul_shoup(&self, a: u64, w: u64, w_shoup: u64) -> u64 {
        let q = ((a as u128 * w_shoup as u128) >> 64) as u64;
        let r = a.wrapping_mul(w).wrapping_sub(q.wrapping_mul(self.p));
        if r >= self.p {
            r - self.p
        } else {
            r
        }
    }

    /// `base^exp mod p`.
    pub fn pow(&self, base: u64, mut exp: u64) -> u64 {
        let mut b = self.reduce(base);
        let mut r = 1u64;
        while exp > 0 {
            if exp & 1 == 1 {
                r = self.mul(r, b);
            }
            b = self.mul(b, b);
            exp >>= 1;
        }
        r
    }

    /// The inverse of `a` modulo the prime `p` (Fermat); `None` for `a ≡ 0`.
    pub fn inv(&self, a: u64) -> Option<u64> {
        let a = self.reduce(a);
        if a == 0 {
            None
        } else {
            Some(self.pow(a, self.p - 2))
        }
    }

    /// The centred representative of a reduced value, in `(-p/2, p/2]`.
    #[inline]
    pub fn centered(&self, a: u64) -> i64 {
        if a > self.p / 2 {
            -((self.p - a) as i64)
        } else {
            a as i64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PRIMES: [u64; 4] = [
        1125899906826241,   // 50-bit, 1 mod 2^15
        1099511922689,      // 40-bit
        576460752303439873, // 60-bit
        65537,
    ];

    proptest! {
        #[test]
        fn barrett_matches_u128_rem(x in any::<u128>(), i in 0usize..4) {
            let m = Modulus::new(PRIMES[i]);
            prop_assert_eq!(m.reduce_u128(x) as u128, x % PRIMES[i] as u128);
        }

        #[test]
        fn single_word_reduction_matches_rem(x in any::<u64>(), y in any::<i64>(), i in 0usize..4) {
            let p = PRIMES[i];
            let m = Modulus::new(p);
            for x in [x, 0, 1, p - 1, p, p + 1, 2 * p, u64::MAX, u64::MAX - 1] {
                prop_assert_eq!(m.reduce(x), x % p);
            }
            for y in [y, 0, -1, i64::MIN, i64::MAX, -(p as i64), p as i64] {
                prop_assert_eq!(m.reduce_i64(y) as i128, (y as i128).rem_euclid(p as i128));
            }
        }

        #[test]
        fn mul_matches_u128_rem(a in any::<u64>(), b in any::<u64>(), i in 0usize..4) {
            let m = Modulus::new(PRIMES[i]);
            let (a, b) = (a % PRIMES[i], b % PRIMES[i]);
            prop_assert_eq!(m.mul(a, b) as u128, (a as u128 * b as u128) % PRIMES[i] as u128);
        }

        #[test]
        fn shoup_matches_mul(a in any::<u64>(), w in any::<u64>(), i in 0usize..4) {
            let m = Modulus::new(PRIMES[i]);
            let w = w % PRIMES[i];
            let expect = ((a as u128 * w as u128) % PRIMES[i] as u128) as u64;
            prop_assert_eq!(m.mul_shoup(a, w, m.shoup(w)), expect);
        }

        #[test]
        fn add_sub_neg_inverse_laws(a in any::<u64>(), b in any::<u64>(), i in 0usize..4) {
            let m = Modulus::new(PRIMES[i]);
            let (a, b) = (m.reduce(a), m.reduce(b));
            prop_assert_eq!(m.sub(m.add(a, b), b), a);
            prop_assert_eq!(m.add(a, m.neg(a)), 0);
            if a != 0 {
                prop_assert_eq!(m.mul(a, m.inv(a).unwrap()), 1);
            }
            prop_assert_eq!(m.reduce_i64(m.centered(a)), a);
        }
    }
}
