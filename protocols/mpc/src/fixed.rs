//! Fixed-point encoding of reals into Z_2^64 (SecureML §IV-A).
//!
//! A real `x` is encoded as `round(x · 2^f)` in two's complement, `f` being the number of
//! fractional bits ([`FracBits`], default 16). The encodable range is |x| < 2^(63 − f): anything
//! outside it (or NaN/∞) is rejected with an error naming the value and the bound, never wrapped
//! silently. Products of two encodings carry 2f fractional bits and are brought back with
//! [`crate::trunc`].

use crate::error::{MpcError, Result};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

/// Number of fractional bits of the fixed-point encoding.
///
/// Serialized as its `u32`; deserializing goes through [`FracBits::new`], so a decoded value is
/// always valid (the bytes are those of the bare `u32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct FracBits(u32);

impl FracBits {
    /// Largest supported number of fractional bits (a product must still fit in 64 bits).
    pub const MAX: u32 = 30;

    /// Validates `bits` (1 ..= [`FracBits::MAX`]).
    pub fn new(bits: u32) -> Result<Self> {
        if bits == 0 || bits > Self::MAX {
            return Err(MpcError::InvalidFracBits {
                frac_bits: bits,
                max: Self::MAX,
            });
        }
        Ok(Self(bits))
    }

    /// The number of bits.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for FracBits {
    type Error = MpcError;

    fn try_from(bits: u32) -> Result<Self> {
        Self::new(bits)
    }
}

impl From<FracBits> for u32 {
    fn from(f: FracBits) -> u32 {
        f.0
    }
}

impl std::fmt::Display for FracBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Default for FracBits {
    fn default() -> Self {
        Self(16)
    }
}

/// The fixed-point codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct FixedPoint {
    frac_bits: FracBits,
}

impl FixedPoint {
    /// A codec with `f` fractional bits.
    pub fn new(frac_bits: FracBits) -> Self {
        Self { frac_bits }
    }

    /// The fractional bits.
    pub fn frac_bits(&self) -> FracBits {
        self.frac_bits
    }

    /// 2^f as a float.
    pub fn scale(&self) -> f64 {
        (1u64 << self.frac_bits.0) as f64
    }

    /// The exclusive bound on |x| for [`FixedPoint::encode`]: 2^(63 − f).
    pub fn bound(&self) -> f64 {
        2f64.powi(63 - self.frac_bits.0 as i32)
    }

    /// One unit in the last place, 2^−f.
    pub fn ulp(&self) -> f64 {
        1.0 / self.scale()
    }

    /// Encodes `x`, rejecting non-finite and out-of-range values.
    pub fn encode(&self, x: f64) -> Result<u64> {
        if !x.is_finite() {
            return Err(MpcError::NonFinite { value: x });
        }
        let bound = self.bound();
        let y = (x * self.scale()).round();
        if x.abs() >= bound || y.abs() >= 2f64.powi(63) {
            return Err(MpcError::OutOfRange {
                value: x,
                bound,
                frac_bits: self.frac_bits.0,
            });
        }
        Ok(y as i64 as u64)
    }

    /// Decodes a ring element as a signed fixed-point number.
    pub fn decode(&self, v: u64) -> f64 {
        v as i64 as f64 / self.scale()
    }

    /// Encodes a matrix; the error names the first offending entry's value.
    pub fn encode_matrix(&self, x: &ArrayView2<'_, f64>) -> Result<Array2<u64>> {
        let mut out = Array2::zeros(x.dim());
        for (o, &v) in out.iter_mut().zip(x.iter()) {
            *o = self.encode(v)?;
        }
        Ok(out)
    }

    /// Decodes a matrix.
    pub fn decode_matrix(&self, v: &ArrayView2<'_, u64>) -> Array2<f64> {
        v.mapv(|x| self.decode(x))
    }

    /// Encodes `2^e` for an integer exponent `e` with `-f ≤ e`, e.g. a learning rate `2^-7`.
    pub fn encode_pow2(&self, e: i32) -> Result<u64> {
        self.encode(2f64.powi(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip_within_half_ulp(x in -1.0e6f64..1.0e6) {
            let fp = FixedPoint::default();
            let y = fp.decode(fp.encode(x).unwrap());
            prop_assert!((x - y).abs() <= fp.ulp() / 2.0 + 1e-12);
        }

        #[test]
        fn encoding_is_additive(x in -1.0e5f64..1.0e5, y in -1.0e5f64..1.0e5) {
            let fp = FixedPoint::new(FracBits::new(20).unwrap());
            let s = fp.encode(x).unwrap().wrapping_add(fp.encode(y).unwrap());
            prop_assert!((fp.decode(s) - (x + y)).abs() <= fp.ulp() + 1e-12);
        }
    }

    #[test]
    fn rejects_out_of_range_and_non_finite() {
        let fp = FixedPoint::default();
        let bound = fp.bound();
        assert_eq!(bound, 2f64.powi(47));
        match fp.encode(bound) {
            Err(MpcError::OutOfRange {
                value,
                bound: b,
                frac_bits,
            }) => {
                assert_eq!(value, bound);
                assert_eq!(b, bound);
                assert_eq!(frac_bits, 16);
            }
            other => panic!("expected OutOfRange, got {other:?}"),
        }
        assert!(fp.encode(-bound * 1.5).is_err());
        assert!(fp.encode(bound * 0.99).is_ok());
        assert!(matches!(
            fp.encode(f64::NAN),
            Err(MpcError::NonFinite { .. })
        ));
        assert!(matches!(
            fp.encode(f64::INFINITY),
            Err(MpcError::NonFinite { .. })
        ));
        let msg = fp.encode(1e300).unwrap_err().to_string();
        assert!(
            msg.contains("1e300") && msg.contains("140737488355328.0"),
            "{msg}"
        );
    }

    #[test]
    fn frac_bits_validated() {
        assert!(FracBits::new(0).is_err());
        assert!(FracBits::new(31).is_err());
        assert_eq!(FracBits::new(13).unwrap().get(), 13);
    }

    #[test]
    fn frac_bits_travel_as_u32_and_are_validated_when_decoded() {
        use crate::net::{decode_message, encode_message};
        let f = FracBits::new(20).unwrap();
        assert_eq!(encode_message(&f).unwrap(), encode_message(&20u32).unwrap());
        assert_eq!(
            decode_message::<FracBits>(&20u32.to_le_bytes(), 8).unwrap(),
            f
        );
        for bad in [0u32, FracBits::MAX + 1, u32::MAX] {
            let e = decode_message::<FracBits>(&bad.to_le_bytes(), 8).unwrap_err();
            assert!(e.to_string().contains(&bad.to_string()), "{e}");
        }
        let fp = FixedPoint::new(f);
        let b = encode_message(&fp).unwrap();
        assert_eq!(decode_message::<FixedPoint>(&b, 8).unwrap(), fp);
        assert!(decode_message::<FixedPoint>(&0u32.to_le_bytes(), 8).is_err());
    }

    #[test]
    fn negative_values_are_twos_complement() {
        let fp = FixedPoint::default();
        assert_eq!(fp.encode(-1.0).unwrap(), (-(1i64 << 16)) as u64);
        assert_eq!(fp.decode(u64::MAX), -fp.ulp());
    }
}
