//! Intercepts and biases as a public column of ones.
//!
//! A linear or logistic regression with an intercept is the same regression on the data with a
//! column of ones appended (the intercept is the last weight); an MLP layer with a bias is the
//! same layer on its input with a column of ones appended (the bias is the last row of the
//! layer's weight matrix). On shares the ones column is public: party 0 holds `1 · 2^f`, party 1
//! holds 0 — local, no communication, and nothing is learned that the job spec does not say.
//! The intercept is one more shared weight, trained by the same SGD update (the models here
//! have no weight decay, so none applies to it either).
//!
//! Convention used by [`super::mlp`] and [`super::linreg::predict`]: a weight matrix with one
//! row more than its input has columns has a bias, in that last row.
//!
//! Security model: as the backend's (semi-honest, non-colluding parties); everything added here
//! is public.

use crate::backend::{Backend, IndexMap};
use crate::error::{MlError, Result};
use mpc::{FixedPoint, Role, Share};
use ndarray::{concatenate, Array2, Axis};

/// `x` with a column of ones appended (plaintext data, or the owner's twin).
pub fn append_ones_plain(x: &Array2<f64>) -> Array2<f64> {
    let ones = Array2::<f64>::ones((x.nrows(), 1));
    concatenate![Axis(1), x.view(), ones.view()]
}

/// This party's share of `[X | 1]` from its share of `X`: P0 appends the encoding of 1, P1 a
/// zero column (local; the column is public).
///
/// # Errors
/// A fixed-point format that cannot encode 1 (never for `f ≤ 62`).
pub fn append_ones_share(role: Role, fp: &FixedPoint, x: &Share) -> Result<Share> {
    let one = match role {
        Role::P0 => fp.encode(1.0)?,
        Role::P1 => 0,
    };
    let col = Array2::<u64>::from_elem((x.dim().0, 1), one);
    Ok(Share::from_ring(concatenate![
        Axis(1),
        x.view(),
        col.view()
    ]))
}

/// `[t | 1]` on any backend, for a (batch-sized) tensor: a public widening gather plus a public
/// constant, both local.
///
/// # Errors
/// A tensor too large for an index map.
pub fn append_ones<B: Backend>(b: &B, t: &B::Tensor) -> Result<B::Tensor> {
    let (r, c) = B::dim(t);
    let widen = IndexMap::from_fn((r, c), (r, c + 1), |i, j| (j < c).then_some((i, j)))?;
    let ones = Array2::from_shape_fn((r, c + 1), |(_, j)| if j == c { 1.0 } else { 0.0 });
    b.add(&b.gather(t, &widen)?, &b.constant(&ones)?)
}

/// `t` without its last column (the gradient that flowed into a bias's ones column), local.
///
/// # Errors
/// A tensor with no column.
pub fn drop_last_column<B: Backend>(b: &B, t: &B::Tensor) -> Result<B::Tensor> {
    let (r, c) = B::dim(t);
    if c == 0 {
        return Err(MlError::InvalidHyper {
            name: "bias gradient columns",
            value: "0".into(),
            reason: "a tensor with a bias column has at least one column",
        });
    }
    let narrow = IndexMap::from_fn((r, c), (r, c - 1), |i, j| Some((i, j)))?;
    b.gather(t, &narrow)
}

/// Whether a weight matrix of `w_rows` rows applied to an input of `in_cols` columns has a bias
/// (one row more), or none (equal).
///
/// # Errors
/// [`MlError::InvalidHyper`] naming both counts when the rows fit neither.
pub fn has_bias(op: &'static str, in_cols: usize, w_rows: usize) -> Result<bool> {
    if w_rows == in_cols + 1 {
        Ok(true)
    } else if w_rows == in_cols {
        Ok(false)
    } else {
        Err(MlError::InvalidHyper {
            name: op,
            value: format!("{w_rows} weight rows for {in_cols} input columns"),
            reason: "a layer's weights have one row per input column, plus one for a bias",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Plain, Plan, PlanTensor};
    use mpc::share::{reconstruct, share};
    use rand::SeedableRng;

    #[test]
    fn ones_on_shares_reconstruct_to_ones() {
        let fp = FixedPoint::default();
        let x = Array2::from_shape_fn((3, 2), |(i, j)| i as f64 - j as f64 * 0.5);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let [s0, s1] = share(&fp.encode_matrix(&x.view()).unwrap().view(), &mut rng);
        let a0 = append_ones_share(Role::P0, &fp, &s0).unwrap();
        let a1 = append_ones_share(Role::P1, &fp, &s1).unwrap();
        let got = fp.decode_matrix(&reconstruct(&a0, &a1).view());
        assert_eq!(got, append_ones_plain(&x));
        assert_eq!(got.column(2).to_vec(), vec![1.0; 3]);
    }

    #[test]
    fn widen_and_narrow_on_every_backend() {
        let p = Plain::new();
        let t = Array2::from_shape_fn((2, 3), |(i, j)| (i * 3 + j) as f64);
        let w = append_ones(&p, &t).unwrap();
        assert_eq!(w, append_ones_plain(&t));
        assert_eq!(drop_last_column(&p, &w).unwrap(), t);
        let plan = Plan::new();
        let w = append_ones(&plan, &PlanTensor((4, 5))).unwrap();
        assert_eq!(w, PlanTensor((4, 6)));
        assert_eq!(drop_last_column(&plan, &w).unwrap(), PlanTensor((4, 5)));
    }

    #[test]
    fn bias_rows_are_recognized_or_refused() {
        assert!(has_bias("l", 4, 5).unwrap());
        assert!(!has_bias("l", 4, 4).unwrap());
        let e = has_bias("mlp layer 1", 4, 7).unwrap_err().to_string();
        assert!(e.contains("7 weight rows for 4 input columns"), "{e}");
    }
}
