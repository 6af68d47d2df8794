//! Folding a standardization into a model's first weight matrix, so that the model takes raw
//! inputs and, for a regression trained on a standardized target, predicts in the original
//! units. With `z = (x − mean) ⊙ (1/sd)` and a first layer `z·W + b`:
//!
//! ```text
//! W' = diag(1/sd) · W            b' = b − mean · W'
//! ```
//!
//! and for a standardized target `y = sd_y·ŷ + mean_y` (one output): `W'' = sd_y · W'`,
//! `b'' = sd_y · b' + mean_y`. A matrix without a bias row gains one (its `b` is 0).
//!
//! On shares: one elementwise product for `W'`, one `1 × d` by `d × h` product for the bias
//! shift, and for a target one more elementwise product; the statistics and the weights stay
//! shared, only Beaver-masked differences are opened (the backend's security model). Each
//! product is truncated once, so the folded weights carry about the backend's last fractional
//! bit times `1/sd` of error.

use super::stats::ColumnStats;
use crate::backend::{Backend, IndexMap};
use crate::error::{MlError, Result};
use ndarray::Array2;

fn shape(op: &'static str, left: (usize, usize), right: (usize, usize)) -> MlError {
    MlError::Shape { op, left, right }
}

/// The first weight matrix `w` (`(d + intercept) × h`, the bias row last) of a model trained on
/// inputs standardized with `features` (each `1 × d`), rewritten for raw inputs: `(d + 1) × h`
/// with its bias row. With `target` (`1 × 1`, `h = 1`): the outputs mapped back to the
/// target's original units too.
///
/// # Errors
/// Statistics that do not fit `w`, a target with several outputs; the backend's errors.
pub async fn fold_standardization<B: Backend>(
    b: &mut B,
    w: &B::Tensor,
    intercept: bool,
    features: &ColumnStats<B::Tensor>,
    target: Option<&ColumnStats<B::Tensor>>,
) -> Result<B::Tensor> {
    let (r, h) = B::dim(w);
    let d = r.saturating_sub(usize::from(intercept));
    if B::dim(&features.mean) != (1, d) || B::dim(&features.inv_sd) != (1, d) {
        return Err(shape("fold features", (r, h), B::dim(&features.mean)));
    }
    let rows = IndexMap::from_fn((r, h), (d, h), |i, j| Some((i, j)))?;
    let by_row = IndexMap::from_fn((1, d), (d, h), |i, _| Some((0, i)))?;
    let inv_sd = b.gather(&features.inv_sd, &by_row)?;
    let scaled = b.mul(&b.gather(w, &rows)?, &inv_sd, 0).await?;
    let shift = b.matmul(&features.mean, &scaled, 0).await?;
    let bias = if intercept {
        b.gather(w, &IndexMap::from_fn((r, h), (1, h), |_, j| Some((d, j)))?)?
    } else {
        b.constant(&Array2::zeros((1, h)))?
    };
    let bias = b.sub(&bias, &shift)?;
    let top = IndexMap::from_fn((d, h), (d + 1, h), |i, j| (i < d).then_some((i, j)))?;
    let last = IndexMap::from_fn((1, h), (d + 1, h), |i, j| (i == d).then_some((0, j)))?;
    let folded = b.add(&b.gather(&scaled, &top)?, &b.gather(&bias, &last)?)?;
    let Some(t) = target else {
        return Ok(folded);
    };
    if h != 1 || B::dim(&t.sd) != (1, 1) || B::dim(&t.mean) != (1, 1) {
        return Err(shape("fold target", (r, h), B::dim(&t.sd)));
    }
    let all = IndexMap::from_fn((1, 1), (d + 1, 1), |_, _| Some((0, 0)))?;
    let out = b.mul(&folded, &b.gather(&t.sd, &all)?, 0).await?;
    let at_bias = IndexMap::from_fn((1, 1), (d + 1, 1), |i, _| (i == d).then_some((0, 0)))?;
    b.add(&out, &b.gather(&t.mean, &at_bias)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::on_shares;
    use ndarray::{array, s, Array2};

    /// The folding by the formulas, in f64.
    fn direct(
        w: &Array2<f64>,
        intercept: bool,
        m: &[f64],
        sd: &[f64],
        y: Option<(f64, f64)>,
    ) -> Array2<f64> {
        let d = m.len();
        let h = w.ncols();
        let mut out = Array2::zeros((d + 1, h));
        for j in 0..h {
            let mut bias = if intercept { w[[d, j]] } else { 0.0 };
            for i in 0..d {
                out[[i, j]] = w[[i, j]] / sd[i];
                bias -= m[i] * out[[i, j]];
            }
            out[[d, j]] = bias;
        }
        if let Some((my, sy)) = y {
            out *= sy;
            out[[d, 0]] += my;
        }
        out
    }

    fn stats(m: &[f64], sd: &[f64]) -> Vec<Array2<f64>> {
        let row = |v: Vec<f64>| Array2::from_shape_vec((1, v.len()), v).unwrap();
        vec![
            row(m.to_vec()),
            row(sd.iter().map(|s| 1.0 / s).collect()),
            row(sd.to_vec()),
        ]
    }

    /// A folded model on raw inputs gives the standardized model's outputs on standardized
    /// inputs (in f64, exactly up to rounding).
    #[tokio::test]
    async fn a_folded_model_on_raw_rows_equals_the_model_on_standardized_rows() {
        let (m, sd) = ([50.0, -2.0], [30.0, 0.5]);
        let w = array![[0.4], [-1.5], [0.25]];
        let x = array![[80.0, -2.5], [20.0, -1.0]];
        let mut b = crate::backend::Plain::new();
        let st = stats(&m, &sd);
        let f = ColumnStats {
            mean: st[0].clone(),
            inv_sd: st[1].clone(),
            sd: st[2].clone(),
        };
        let y = ColumnStats {
            mean: array![[1000.0]],
            inv_sd: array![[0.4]],
            sd: array![[2.5]],
        };
        let folded = fold_standardization(&mut b, &w, true, &f, Some(&y))
            .await
            .unwrap();
        for r in 0..2 {
            let z: Vec<f64> = (0..2).map(|i| (x[[r, i]] - m[i]) / sd[i]).collect();
            let want = 1000.0 + 2.5 * (z[0] * w[[0, 0]] + z[1] * w[[1, 0]] + w[[2, 0]]);
            let got = x[[r, 0]] * folded[[0, 0]] + x[[r, 1]] * folded[[1, 0]] + folded[[2, 0]];
            assert!((got - want).abs() < 1e-9, "row {r}: {got} vs {want}");
        }
    }

    /// Measured at f = 16 (1/sd up to 10, weights up to 3, means up to 50, a target mean of
    /// 1000): folded weights within 3e-5 of the f64 formulas, bias rows within 1.1e-3 (the
    /// means times the weights' last-bit errors, summed). Tolerance: 1e-3 absolute on the
    /// weights, 5e-3 on the bias rows.
    #[tokio::test]
    async fn folding_on_shares_matches_the_formulas() {
        let (m, sd) = ([50.0, -2.0, 0.05], [30.0, 0.5, 0.1]);
        let w = array![[0.4, -3.0], [-1.5, 0.5], [0.25, 1.0], [0.75, -0.125]];
        let mut inputs = vec![w.clone(), w.slice(s![..3, ..1]).to_owned()];
        inputs.extend(stats(&m, &sd));
        inputs.extend([array![[1000.0]], array![[0.4]], array![[2.5]]]);
        let (twin, secure) = on_shares!(16, inputs, |b, xs| {
            let mut xs = xs.into_iter();
            let mut next = || xs.next().unwrap();
            let (w, wr) = (next(), next());
            let mut stats = || ColumnStats {
                mean: next(),
                inv_sd: next(),
                sd: next(),
            };
            let (f, y) = (stats(), stats());
            let mlp = fold_standardization(b, &w, true, &f, None).await.unwrap();
            let reg = fold_standardization(b, &wr, false, &f, Some(&y))
                .await
                .unwrap();
            vec![mlp, reg]
        });
        let want = [
            direct(&w, true, &m, &sd, None),
            direct(
                &w.slice(s![..3, ..1]).to_owned(),
                false,
                &m,
                &sd,
                Some((1000.0, 2.5)),
            ),
        ];
        for k in 0..2 {
            let d = want[k].nrows() - 1;
            for ((i, j), v) in want[k].indexed_iter() {
                let tol = if i == d { 5e-3 } else { 1e-3 };
                assert!((twin[k][[i, j]] - v).abs() < 1e-9, "twin {k} ({i}, {j})");
                let e = (secure[k][[i, j]] - v).abs();
                assert!(
                    e < tol,
                    "matrix {k} ({i}, {j}): {} vs {v}",
                    secure[k][[i, j]]
                );
            }
        }
    }

    #[tokio::test]
    async fn statistics_of_another_width_are_refused() {
        let mut b = crate::backend::Plain::new();
        let st = stats(&[1.0], &[2.0]);
        let f = ColumnStats {
            mean: st[0].clone(),
            inv_sd: st[1].clone(),
            sd: st[2].clone(),
        };
        let w = array![[1.0], [2.0], [3.0]];
        assert!(fold_standardization(&mut b, &w, true, &f, None)
            .await
            .is_err());
        let wide = array![[1.0, 2.0], [3.0, 4.0]];
        assert!(fold_standardization(&mut b, &wide, true, &f, Some(&f))
            .await
            .is_err());
    }
}
