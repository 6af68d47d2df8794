//! The `Fold` job: a trained linear model or MLP of the owner whose training set was
//! standardized (on the parties, or by its owner before uploading it) gets that standardization
//! folded into its first weight matrix in 2PC (`ml::ops::fold`), and a standardized regression
//! target mapped back to its original units, so the owner receives a model for raw inputs in
//! the original units (`party reveal`). Later MLP layers are kept, with a zero bias row each
//! when the model has none, so every matrix of the result has its bias row.
//!
//! Security model: two semi-honest, non-colluding parties. The weights and the statistics
//! stay shared throughout (only Beaver-masked differences are opened); each party sends its
//! share of the folded weights to the owner only. The owner learns the folded model, which is
//! the function on raw inputs the model computes — not the statistics, unless it could recover
//! them from the model and its own knowledge (SECURITY.md). A standardized model's own weights
//! are never revealed (`server::models`), since together with the folded ones they would give
//! the statistics away (`W' = W / sd`).

use super::linear_spec::refuse;
use super::prep::{backend, finish, offline_phase, with_header, MODE, RESULT_FOLDED};
use super::{JobContext, JobError, JobEvent, JobOutput, Result};
use crate::proto::{JobSpec, LinearModelMeta, ModelMeta};
use crate::store::{Manifest, Standardization};
use ml::backend::{Backend, IndexMap, Plan, PlanTensor};
use ml::ops::fold::fold_standardization;
use ml::ops::stats::ColumnStats;
use mpc::{FixedPoint, Share};
use ndarray::Array2;
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

/// The description and standardization of a model to fold.
///
/// # Errors
/// Not a described linear model or MLP, a model trained on raw data, a standardization that
/// does not cover the model's features.
pub fn check_fold(model: &Manifest) -> Result<(LinearModelMeta, Standardization)> {
    let Some(ModelMeta::Linear(meta)) = &model.model else {
        return refuse(
            "model",
            model.id,
            "not a linear model or MLP with a description (trained by this version's jobs)",
        );
    };
    let Some(s) = &model.standardization else {
        return refuse(
            "model",
            model.id,
            "trained on raw data: nothing to fold (reveal its weights as they are)",
        );
    };
    let features = s.feature_positions().len() as u64;
    if meta.layers.first() != Some(&features) {
        return refuse(
            "model standardization",
            format!("{features} standardized features (job {})", s.origin),
            format!("model {} takes {} features", model.id, meta.layers[0]),
        );
    }
    Ok((meta.clone(), s.clone()))
}

/// The weight matrices of `meta` in the stored column `w`.
fn layers(meta: &LinearModelMeta, w: &Share) -> Result<Vec<Share>> {
    let sizes: Vec<usize> = meta.layers.iter().map(|&l| l as usize).collect();
    super::unflatten_layers_with_bias(&sizes, meta.intercept, w.view())
        .map(|ws| ws.into_iter().map(Share::from_ring).collect())
        .ok_or_else(|| {
            JobError::Invalid(format!(
                "the model's {} weights do not fit its layers {sizes:?}",
                w.dim().0
            ))
        })
}

/// The statistics of the features, and of the target for a regression trained on a
/// standardized target.
type Stats<T> = (ColumnStats<T>, Option<ColumnStats<T>>);

fn stats(meta: &LinearModelMeta, s: &Standardization) -> Result<Stats<Share>> {
    let bad = |e: String| JobError::Invalid(format!("standardization {}: {e}", s.origin));
    let features = s.stats(&s.feature_positions()).map_err(bad)?;
    let target = match s.label_position() {
        Some(at) if meta.kind == "linreg" => Some(s.stats(&[at]).map_err(bad)?),
        _ => None,
    };
    Ok((features, target))
}

fn shapes(st: &Stats<Share>) -> Stats<PlanTensor> {
    let f = |s: &ColumnStats<Share>| ColumnStats {
        mean: PlanTensor(s.mean.dim()),
        inv_sd: PlanTensor(s.inv_sd.dim()),
        sd: PlanTensor(s.sd.dim()),
    };
    (f(&st.0), st.1.as_ref().map(f))
}

/// Every weight matrix of the folded model: the first folded, the others with a bias row.
async fn fold<B: Backend>(
    b: &mut B,
    ws: &[B::Tensor],
    intercept: bool,
    (features, target): &Stats<B::Tensor>,
) -> ml::error::Result<Vec<B::Tensor>> {
    let mut out =
        vec![fold_standardization(b, &ws[0], intercept, features, target.as_ref()).await?];
    for w in &ws[1..] {
        out.push(if intercept {
            w.clone()
        } else {
            let (r, h) = B::dim(w);
            let pad = IndexMap::from_fn((r, h), (r + 1, h), |i, j| (i < r).then_some((i, j)))?;
            b.gather(w, &pad)?
        });
    }
    Ok(out)
}

/// The matrices' words row-major, one after the other, as one column.
fn column(ws: &[Share]) -> Share {
    let words: Vec<u64> = ws
        .iter()
        .flat_map(|w| w.view().iter().copied().collect::<Vec<_>>())
        .collect();
    let n = words.len();
    Share::from_ring(Array2::from_shape_vec((n, 1), words).expect("one column"))
}

/// One party's half of a `Fold` job on `model` (its manifest) with this party's share `w`.
pub(super) async fn run_fold(
    ctx: JobContext,
    spec: JobSpec,
    model: Manifest,
    w: Share,
    (off, on): (crate::transport::PeerChannel, crate::transport::PeerChannel),
    events: UnboundedSender<JobEvent>,
) -> Result<JobOutput> {
    let (meta, s) = check_fold(&model)?;
    let ws = layers(&meta, &w)?;
    let st = stats(&meta, &s)?;
    let mut plan = Plan::with_truncation(MODE);
    let wp: Vec<PlanTensor> = ws.iter().map(|w| PlanTensor(w.dim())).collect();
    fold(&mut plan, &wp, meta.intercept, &shapes(&st)).await?;
    let (pre, offline_s, offline) = offline_phase(&ctx, &spec, off, &plan.into_requests()).await?;
    let t_on = Instant::now();
    let fp = FixedPoint::new(model.frac_bits);
    let mut b = backend(&ctx, fp, on, pre);
    let folded = fold(&mut b, &ws, meta.intercept, &st).await?;
    let result = with_header(ctx.role, &fp, RESULT_FOLDED, &column(&folded))?;
    let (channel, stats) = finish(b, (offline_s, offline, t_on), Some(result), &events)?;
    Ok(JobOutput::result_only(channel, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ml::backend::Plain;
    use ndarray::{array, concatenate, Axis};

    /// `relu` between layers, each matrix with its bias row.
    fn mlp(ws: &[Array2<f64>], x: &Array2<f64>) -> Array2<f64> {
        let mut h = x.clone();
        for (i, w) in ws.iter().enumerate() {
            let ones = Array2::ones((h.nrows(), 1));
            h = concatenate![Axis(1), h, ones].dot(w);
            if i + 1 < ws.len() {
                h.mapv_inplace(|v| v.max(0.0));
            }
        }
        h
    }

    /// An MLP without biases trained on standardized inputs: the folded layers (the first with
    /// its new bias row, the second with a zero one) on raw rows give the model's outputs on
    /// the standardized rows.
    #[tokio::test]
    async fn an_mlp_without_biases_folds_into_layers_with_bias_rows() {
        let (mean, sd) = (array![[10.0, -3.0]], array![[2.0, 0.5]]);
        let st = ColumnStats {
            mean: mean.clone(),
            inv_sd: sd.mapv(|s| 1.0 / s),
            sd: sd.clone(),
        };
        let w1 = array![[0.5, -1.0, 0.25], [1.5, 0.75, -0.5]];
        let w2 = array![[1.0, -2.0], [0.5, 0.5], [-1.0, 0.25]];
        let out = fold(
            &mut Plain::new(),
            &[w1.clone(), w2.clone()],
            false,
            &(st, None),
        )
        .await;
        let out = out.unwrap();
        assert_eq!((out[0].dim(), out[1].dim()), ((3, 3), (4, 2)));
        assert_eq!(out[1].row(3), array![0.0, 0.0]);
        let x = array![[12.0, -2.0], [7.0, -3.5], [10.0, 0.0]];
        let z = (&x - &mean) / &sd;
        let zero =
            |w: &Array2<f64>| concatenate![Axis(0), w.clone(), Array2::zeros((1, w.ncols()))];
        let want = mlp(&[zero(&w1), zero(&w2)], &z);
        let got = mlp(&out, &x);
        assert!(
            (&got - &want).iter().all(|d| d.abs() < 1e-12),
            "{got} vs {want}"
        );
    }
}
