//! Feature scaling and label encoding, fitted on training data and applied unchanged to test data
//! (so no statistic of the test set leaks into training).
//!
//! [`Standardizer`] is z-scoring with the population standard deviation (as scikit-learn's
//! `StandardScaler`); [`MinMaxScaler`] maps each column's training range onto a target interval;
//! [`one_hot`] encodes class indices. Constant columns are handled without dividing by zero: they
//! map to 0 (standardizer) or to the interval's lower end (min-max).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};

/// Relative size under which a column's spread counts as zero (the column is constant up to
/// rounding).
const CONSTANT_REL: f64 = 1e-12;

fn check_cols(what: &'static str, expected: usize, x: &ArrayView2<'_, f64>) -> Result<()> {
    if x.ncols() != expected {
        return Err(DatasetError::DimensionMismatch {
            what,
            expected,
            found: x.ncols(),
        });
    }
    Ok(())
}

/// Per-column standardization `(x − mean) / std`, fitted on one matrix and applied to others.
///
/// Serializable, so the training statistics can be stored with a model; deserializing checks
/// that there is one positive finite scale per mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StandardizerParts")]
pub struct Standardizer {
    mean: Array1<f64>,
    scale: Array1<f64>,
}

#[derive(Deserialize)]
struct StandardizerParts {
    mean: Array1<f64>,
    scale: Array1<f64>,
}

impl TryFrom<StandardizerParts> for Standardizer {
    type Error = DatasetError;

    fn try_from(p: StandardizerParts) -> Result<Self> {
        if p.scale.len() != p.mean.len() {
            return Err(DatasetError::DimensionMismatch {
                what: "scales vs means",
                expected: p.mean.len(),
                found: p.scale.len(),
            });
        }
        if let Some(&bad) = p.scale.iter().find(|v| !(v.is_finite() && **v > 0.0)) {
            return Err(DatasetError::InvalidArgument {
                name: "scale",
                value: bad,
                constraint: "finite and > 0",
            });
        }
        Ok(Self {
            mean: p.mean,
            scale: p.scale,
        })
    }
}

impl Standardizer {
    /// Fits the column means and population standard deviations of `x`.
    ///
    /// A column whose standard deviation is zero (relative to its magnitude) gets scale 1, so it
    /// transforms to all zeros. With no rows, means are 0 and scales 1 (the identity).
    pub fn fit<'a>(x: impl Into<ArrayView2<'a, f64>>) -> Self {
        let x = x.into();
        let n = x.nrows();
        if n == 0 {
            return Self {
                mean: Array1::zeros(x.ncols()),
                scale: Array1::ones(x.ncols()),
            };
        }
        let mean = x.mean_axis(Axis(0)).expect("n > 0");
        let mut scale = Array1::zeros(x.ncols());
        for (j, col) in x.axis_iter(Axis(1)).enumerate() {
            let m = mean[j];
            // Two-pass variance: accurate for columns with a large mean.
            let var = col.iter().map(|&v| (v - m) * (v - m)).sum::<f64>() / n as f64;
            let std = var.sqrt();
            scale[j] = if std <= CONSTANT_REL * m.abs().max(f64::MIN_POSITIVE) || std == 0.0 {
                1.0
            } else {
                std
            };
        }
        Self { mean, scale }
    }

    /// Fitted column means.
    pub fn mean(&self) -> &Array1<f64> {
        &self.mean
    }

    /// Fitted column scales (standard deviations; 1 for constant columns).
    pub fn scale(&self) -> &Array1<f64> {
        &self.scale
    }

    /// Standardizes `x` with the fitted statistics.
    ///
    /// # Errors
    /// [`DatasetError::DimensionMismatch`] if `x` has a different number of columns.
    pub fn transform<'a>(&self, x: impl Into<ArrayView2<'a, f64>>) -> Result<Array2<f64>> {
        let x = x.into();
        check_cols("columns of x vs fitted standardizer", self.mean.len(), &x)?;
        Ok((&x - &self.mean) / &self.scale)
    }

    /// Maps standardized values back to the original units.
    ///
    /// # Errors
    /// [`DatasetError::DimensionMismatch`] if `z` has a different number of columns.
    pub fn inverse_transform<'a>(&self, z: impl Into<ArrayView2<'a, f64>>) -> Result<Array2<f64>> {
        let z = z.into();
        check_cols("columns of z vs fitted standardizer", self.mean.len(), &z)?;
        Ok(&z * &self.scale + &self.mean)
    }

    /// Fits on `x` and returns the standardizer with `x` transformed.
    pub fn fit_transform<'a>(x: impl Into<ArrayView2<'a, f64>>) -> (Self, Array2<f64>) {
        let x = x.into();
        let s = Self::fit(x);
        let z = (&x - &s.mean) / &s.scale;
        (s, z)
    }
}

/// Per-column affine map of the training range `[min, max]` onto `[low, high]`.
///
/// Serializable; deserializing checks the parts agree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "MinMaxParts")]
pub struct MinMaxScaler {
    min: Array1<f64>,
    /// `max − min` per column; 0 marks a constant column.
    range: Array1<f64>,
    low: f64,
    high: f64,
}

#[derive(Deserialize)]
struct MinMaxParts {
    min: Array1<f64>,
    range: Array1<f64>,
    low: f64,
    high: f64,
}

impl TryFrom<MinMaxParts> for MinMaxScaler {
    type Error = DatasetError;

    fn try_from(p: MinMaxParts) -> Result<Self> {
        if p.range.len() != p.min.len() {
            return Err(DatasetError::DimensionMismatch {
                what: "ranges vs minima",
                expected: p.min.len(),
                found: p.range.len(),
            });
        }
        if let Some(&bad) = p.range.iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            return Err(DatasetError::InvalidArgument {
                name: "range",
                value: bad,
                constraint: "finite and >= 0",
            });
        }
        if !(p.low.is_finite() && p.high.is_finite() && p.low < p.high) {
            return Err(DatasetError::InvalidArgument {
                name: "high",
                value: p.high,
                constraint: "low < high, both finite",
            });
        }
        Ok(Self {
            min: p.min,
            range: p.range,
            low: p.low,
            high: p.high,
        })
    }
}

impl MinMaxScaler {
    /// Fits column minima and maxima of `x`, to map them onto `[0, 1]`.
    pub fn fit<'a>(x: impl Into<ArrayView2<'a, f64>>) -> Self {
        Self::fit_range(x, 0.0, 1.0).expect("[0, 1] is a valid range")
    }

    /// Fits column minima and maxima of `x`, to map them onto `[low, high]`.
    ///
    /// A constant column maps to `low`. With no rows the map is `v ↦ low + v·(high − low)`.
    ///
    /// # Errors
    /// [`DatasetError::InvalidArgument`] unless `low < high` and both are finite.
    pub fn fit_range<'a>(x: impl Into<ArrayView2<'a, f64>>, low: f64, high: f64) -> Result<Self> {
        if !(low.is_finite() && high.is_finite() && low < high) {
            return Err(DatasetError::InvalidArgument {
                name: "high",
                value: high,
                constraint: "low < high, both finite",
            });
        }
        let x = x.into();
        let d = x.ncols();
        let mut min = Array1::zeros(d);
        let mut range = Array1::ones(d);
        if x.nrows() > 0 {
            for (j, col) in x.axis_iter(Axis(1)).enumerate() {
                let lo = col.fold(f64::INFINITY, |a, &b| a.min(b));
                let hi = col.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                min[j] = lo;
                let r = hi - lo;
                range[j] = if r <= CONSTANT_REL * lo.abs().max(hi.abs()) {
                    0.0
                } else {
                    r
                };
            }
        }
        Ok(Self {
            min,
            range,
            low,
            high,
        })
    }

    /// Fitted column minima.
    pub fn data_min(&self) -> &Array1<f64> {
        &self.min
    }

    /// Scales `x`; training data lands in `[low, high]`, other data may fall outside (no clipping).
    ///
    /// # Errors
    /// [`DatasetError::DimensionMismatch`] if `x` has a different number of columns.
    pub fn transform<'a>(&self, x: impl Into<ArrayView2<'a, f64>>) -> Result<Array2<f64>> {
        let x = x.into();
        check_cols("columns of x vs fitted min-max scaler", self.min.len(), &x)?;
        let width = self.high - self.low;
        let mut out = x.to_owned();
        for (j, mut col) in out.axis_iter_mut(Axis(1)).enumerate() {
            let (min, range) = (self.min[j], self.range[j]);
            if range == 0.0 {
                col.fill(self.low);
            } else {
                col.mapv_inplace(|v| self.low + (v - min) / range * width);
            }
        }
        Ok(out)
    }
}

/// One-hot encodes class indices: row `i` has a 1 in column `labels[i]`.
///
/// # Errors
/// [`DatasetError::LabelOutOfRange`] if a label is `>= n_classes`.
pub fn one_hot(labels: &[usize], n_classes: usize) -> Result<Array2<f64>> {
    let mut out = Array2::zeros((labels.len(), n_classes));
    for (row, &l) in labels.iter().enumerate() {
        if l >= n_classes {
            return Err(DatasetError::LabelOutOfRange {
                row,
                value: l as f64,
                n_classes,
            });
        }
        out[[row, l]] = 1.0;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use proptest::prelude::*;

    #[test]
    fn standardizer_fit_on_train_apply_to_test() {
        let train = array![[1.0, 10.0, 5.0], [3.0, 20.0, 5.0], [5.0, 30.0, 5.0]];
        let s = Standardizer::fit(&train);
        assert_eq!(s.mean(), &array![3.0, 20.0, 5.0]);
        let sd = (8.0f64 / 3.0).sqrt();
        assert!((s.scale()[0] - sd).abs() < 1e-15);
        assert_eq!(s.scale()[2], 1.0, "constant column gets scale 1");
        let z = s.transform(&train).unwrap();
        for j in 0..2 {
            let c = z.column(j);
            assert!(c.mean().unwrap().abs() < 1e-15);
            assert!((c.mapv(|v| v * v).mean().unwrap() - 1.0).abs() < 1e-12);
        }
        assert!(z.column(2).iter().all(|&v| v == 0.0));
        // Test data uses the training statistics.
        let test = array![[3.0 + sd, 20.0, 7.0]];
        let zt = s.transform(&test).unwrap();
        assert!((zt[[0, 0]] - 1.0).abs() < 1e-12);
        assert_eq!(zt[[0, 1]], 0.0);
        assert_eq!(zt[[0, 2]], 2.0);
        let err = s.transform(&array![[1.0, 2.0]]).unwrap_err();
        assert!(matches!(
            err,
            DatasetError::DimensionMismatch {
                expected: 3,
                found: 2,
                ..
            }
        ));
    }

    #[test]
    fn constant_column_with_large_mean_is_zero_variance() {
        let x = Array2::from_elem((7, 1), 0.1 + 1e6);
        let s = Standardizer::fit(&x);
        assert_eq!(s.scale()[0], 1.0);
        assert!(s.transform(&x).unwrap().iter().all(|v| v.abs() < 1e-9));
    }

    #[test]
    fn empty_fit_is_identity() {
        let x = Array2::<f64>::zeros((0, 2));
        let s = Standardizer::fit(&x);
        let y = array![[1.5, -2.0]];
        assert_eq!(s.transform(&y).unwrap(), y);
    }

    #[test]
    fn min_max_scaler() {
        let x = array![[0.0, -1.0, 4.0], [10.0, 1.0, 4.0], [5.0, 0.0, 4.0]];
        let m = MinMaxScaler::fit(&x);
        let t = m.transform(&x).unwrap();
        assert_eq!(t, array![[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.5, 0.5, 0.0]]);
        let m = MinMaxScaler::fit_range(&x, -1.0, 1.0).unwrap();
        let t = m.transform(&array![[20.0, 0.0, 9.0]]).unwrap();
        assert_eq!(t, array![[3.0, 0.0, -1.0]]);
        assert!(MinMaxScaler::fit_range(&x, 1.0, 1.0).is_err());
        assert!(MinMaxScaler::fit_range(&x, 0.0, f64::NAN).is_err());
    }

    #[test]
    fn one_hot_encodes_and_checks() {
        assert_eq!(
            one_hot(&[2, 0], 3).unwrap(),
            array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
        );
        assert!(matches!(
            one_hot(&[0, 3], 3),
            Err(DatasetError::LabelOutOfRange {
                row: 1,
                n_classes: 3,
                ..
            })
        ));
    }

    #[test]
    fn scalers_serde_round_trip() {
        let x = array![[1.0, 10.0, 5.0], [3.0, 20.0, 5.0]];
        let s = Standardizer::fit(&x);
        let back: Standardizer = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let m = MinMaxScaler::fit(&x);
        let back: MinMaxScaler = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back.transform(&x).unwrap(), m.transform(&x).unwrap());
        let bad =
            r#"{"mean":{"v":1,"dim":[1],"data":[0.0]},"scale":{"v":1,"dim":[1],"data":[0.0]}}"#;
        assert!(serde_json::from_str::<Standardizer>(bad).is_err());
    }

    proptest! {
        #[test]
        fn standardize_inverse_round_trip(
            rows in 1usize..8,
            vals in proptest::collection::vec(-1e3f64..1e3, 24),
        ) {
            let x = Array2::from_shape_vec((rows, 3), vals[..rows * 3].to_vec()).unwrap();
            let s = Standardizer::fit(&x);
            let back = s.inverse_transform(&s.transform(&x).unwrap()).unwrap();
            for (a, b) in back.iter().zip(x.iter()) {
                prop_assert!((a - b).abs() <= 1e-9 * (1.0 + b.abs()));
            }
        }

        #[test]
        fn min_max_lands_in_unit_interval(
            rows in 1usize..8,
            vals in proptest::collection::vec(-1e6f64..1e6, 24),
        ) {
            let x = Array2::from_shape_vec((rows, 3), vals[..rows * 3].to_vec()).unwrap();
            let t = MinMaxScaler::fit(&x).transform(&x).unwrap();
            prop_assert!(t.iter().all(|&v| (-1e-12..=1.0 + 1e-12).contains(&v)));
        }
    }
}
