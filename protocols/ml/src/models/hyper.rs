//! The SGD hyper-parameters of the SecureML models (linear and logistic regression, the MLP) and
//! the step size `α/|B|` they imply, split into a power of two and a residual factor.
//!
//! An update is `w ← w − (α/|B|)·g`. Write `α/|B| = m · 2^-k` with `m ∈ [1, 2)` and `k ≥ 0`
//! (or `k = 0` and `m = α/|B|` for a step of at least 2): the `2^-k` folds into the truncation of
//! the gradient product (free), and `m`, unless it is exactly 1, is one public fixed-point
//! multiply ([`crate::Backend::scale`]: one more truncation) per weight update. Powers of two
//! keep the update a pure truncation, as in SecureML.
//!
//! Security model: none needed — every value here is public (the job's hyper-parameters); the
//! secure backends apply it to shares with local operations and truncations only.

use crate::backend::Backend;
use crate::error::{MlError, Result};

/// Smallest learning rate accepted (2^-30: smaller steps vanish below the fixed-point precision).
pub const MIN_LEARNING_RATE: f64 = 1.0 / (1u64 << 30) as f64;
/// Largest learning rate accepted.
pub const MAX_LEARNING_RATE: f64 = 64.0;
/// Largest power-of-two shift of a step: `α/|B|` must be at least `2^-MAX_STEP_SHIFT`, so that
/// the gradient product's truncation (`f + k` bits, `f ≤ 30`) stays below 64 bits.
pub const MAX_STEP_SHIFT: u32 = 32;

/// Hyper-parameters of mini-batch SGD: the learning rate α and the batch size |B|.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinRegHyper {
    learning_rate: f64,
    batch_size: usize,
}

/// The step `α/|B| = factor · 2^-shift` of an update.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepSize {
    /// The power of two folded into the gradient product's truncation.
    pub shift: u32,
    /// The residual factor (in `[1, 2)`, or the whole step when it is at least 2), applied by
    /// one public fixed-point multiply; `None` when the step is a power of two.
    pub factor: Option<f64>,
}

impl LinRegHyper {
    /// Validates a learning rate (finite, in `MIN_LEARNING_RATE..=MAX_LEARNING_RATE`) and a
    /// batch size (at least 1, with `α/|B| ≥ 2^-MAX_STEP_SHIFT`).
    ///
    /// # Errors
    /// [`MlError::InvalidHyper`] naming the parameter, its value and the limit.
    pub fn new(learning_rate: f64, batch_size: usize) -> Result<Self> {
        let in_range = (MIN_LEARNING_RATE..=MAX_LEARNING_RATE).contains(&learning_rate);
        if !(learning_rate.is_finite() && in_range) {
            return Err(MlError::InvalidHyper {
                name: "learning_rate",
                value: learning_rate.to_string(),
                reason: "must be finite and within 2^-30 ..= 64 (MIN_LEARNING_RATE ..= \
                         MAX_LEARNING_RATE)",
            });
        }
        if batch_size == 0 {
            return Err(MlError::InvalidHyper {
                name: "batch_size",
                value: "0".into(),
                reason: "must be at least 1",
            });
        }
        let h = Self {
            learning_rate,
            batch_size,
        };
        if h.step() < (-f64::from(MAX_STEP_SHIFT)).exp2() {
            return Err(MlError::InvalidHyper {
                name: "learning_rate / batch_size",
                value: format!("{learning_rate} / {batch_size}"),
                reason: "the step must be at least 2^-32 (MAX_STEP_SHIFT)",
            });
        }
        Ok(h)
    }

    /// The learning rate α.
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// The batch size |B|.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// `α/|B|` as a real number.
    pub fn step(&self) -> f64 {
        self.learning_rate / self.batch_size as f64
    }

    /// `α/|B|` split into the power of two folded into the truncation and the residual factor.
    pub fn step_size(&self) -> StepSize {
        let r = self.step();
        if r >= 2.0 {
            return StepSize {
                shift: 0,
                factor: Some(r),
            };
        }
        // r·2^k ∈ [1, 2): scaling by powers of two is exact in f64.
        let mut k = 0u32;
        while r * f64::from(k).exp2() < 1.0 {
            k += 1;
        }
        let m = r * f64::from(k).exp2();
        StepSize {
            shift: k,
            factor: (m != 1.0).then_some(m),
        }
    }
}

impl StepSize {
    /// `t · factor` on `b` (one public fixed-point multiply), or `t` itself for a power-of-two
    /// step: what turns a gradient product truncated by [`StepSize::shift`] into the update.
    ///
    /// # Errors
    /// A factor the backend cannot encode.
    pub async fn apply<B: Backend>(&self, b: &mut B, t: B::Tensor) -> Result<B::Tensor> {
        match self.factor {
            Some(m) => b.scale(&t, m).await,
            None => Ok(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn powers_of_two_are_pure_shifts() {
        let s = LinRegHyper::new(0.25, 128).unwrap().step_size();
        assert_eq!(
            s,
            StepSize {
                shift: 9,
                factor: None
            }
        );
        let s = LinRegHyper::new(1.0, 1).unwrap().step_size();
        assert_eq!(
            s,
            StepSize {
                shift: 0,
                factor: None
            }
        );
    }

    #[test]
    fn other_rates_keep_a_factor() {
        let s = LinRegHyper::new(0.3, 16).unwrap().step_size();
        assert_eq!(s.shift, 6);
        assert!((s.factor.unwrap() - 0.3 * 64.0 / 16.0).abs() < 1e-15);
        let s = LinRegHyper::new(6.0, 2).unwrap().step_size();
        assert_eq!(
            s,
            StepSize {
                shift: 0,
                factor: Some(3.0)
            }
        );
        // Batch sizes need not be powers of two either.
        let s = LinRegHyper::new(0.5, 3).unwrap().step_size();
        assert_eq!(s.shift, 3);
        assert!((s.factor.unwrap() - 4.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn out_of_range_values_are_refused_by_name_value_and_limit() {
        for lr in [0.0, -0.25, f64::NAN, f64::INFINITY, 65.0, 1e-10] {
            let e = LinRegHyper::new(lr, 8).unwrap_err().to_string();
            assert!(
                e.contains("learning_rate") && e.contains(&lr.to_string()),
                "{e}"
            );
            assert!(e.contains("2^-30 ..= 64"), "{e}");
        }
        let e = LinRegHyper::new(0.25, 0).unwrap_err().to_string();
        assert!(
            e.contains("batch_size = 0") && e.contains("at least 1"),
            "{e}"
        );
        let e = LinRegHyper::new(MIN_LEARNING_RATE, 1 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("learning_rate / batch_size") && e.contains("2^-32"),
            "{e}"
        );
    }

    proptest! {
        /// `factor · 2^-shift` is exactly `α/|B|`, the factor lies in [1, 2) (or is the whole
        /// step from 2 up), and it is absent exactly for powers of two.
        #[test]
        fn the_split_is_exact(lr in MIN_LEARNING_RATE..=MAX_LEARNING_RATE, batch in 1usize..4096) {
            let h = LinRegHyper::new(lr, batch).unwrap();
            let s = h.step_size();
            let m = s.factor.unwrap_or(1.0);
            prop_assert_eq!(m * (-f64::from(s.shift)).exp2(), h.step());
            if s.shift > 0 {
                prop_assert!((1.0..2.0).contains(&m));
            } else {
                prop_assert!(m >= 1.0);
            }
            let pow2 = h.step().log2().fract() == 0.0;
            prop_assert_eq!(s.factor.is_none(), pow2 && h.step() <= 1.0);
        }
    }
}
