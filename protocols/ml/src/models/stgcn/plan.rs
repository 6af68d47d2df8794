//! The preprocessing of a 2PC ST-GCN run, found by running the model code on
//! [`crate::Plan`] (shapes only). The `*_with` variants take the truncation mode of the shared
//! run (exact truncation adds one elementwise triple per truncation); the plain names plan for
//! local truncation.

use super::{StgcnHyper, StgcnShape, StgcnState};
use crate::backend::{Plan, PlanTensor};
use crate::error::Result;
use mpc::triples::TripleRequest;
use mpc::trunc::Truncation;

/// The preprocessing of [`super::prepare_inputs`] for `n` clips (local truncation).
pub async fn plan_prepare(shape: &StgcnShape, n: usize) -> Result<Vec<TripleRequest>> {
    plan_prepare_with(shape, n, Truncation::Local).await
}

/// [`plan_prepare`] for a run truncating by `mode`.
pub async fn plan_prepare_with(
    shape: &StgcnShape,
    n: usize,
    mode: Truncation,
) -> Result<Vec<TripleRequest>> {
    let mut p = Plan::with_truncation(mode);
    super::prepare_inputs(&mut p, shape, &PlanTensor((n, shape.input_cols()))).await?;
    Ok(p.into_requests())
}

/// The preprocessing of [`super::train`] over `batches` of a prepared `n`-clip dataset (local
/// truncation). Separate from [`plan_prepare`] so a caller can run the offline phase in chunks
/// of steps to bound memory.
pub async fn plan_steps(
    shape: &StgcnShape,
    n: usize,
    batches: &[Vec<usize>],
    hyper: &StgcnHyper,
) -> Result<Vec<TripleRequest>> {
    plan_steps_with(shape, n, batches, hyper, Truncation::Local).await
}

/// [`plan_steps`] for a run truncating by `mode`.
pub async fn plan_steps_with(
    shape: &StgcnShape,
    n: usize,
    batches: &[Vec<usize>],
    hyper: &StgcnHyper,
    mode: Truncation,
) -> Result<Vec<TripleRequest>> {
    let mut p = Plan::with_truncation(mode);
    let params: Vec<PlanTensor> = shape.param_dims().into_iter().map(PlanTensor).collect();
    let mut state = StgcnState {
        velocity: params.clone(),
        params,
    };
    let x = PlanTensor((n, shape.input_cols()));
    let y = PlanTensor((n, shape.num_classes()));
    super::train(
        &mut p,
        shape,
        &x,
        &y,
        &mut state,
        batches,
        hyper,
        &mut |_, _| {},
    )
    .await?;
    Ok(p.into_requests())
}

/// The preprocessing of [`super::calibrate`] on the clips `rows` of a prepared `n`-clip
/// dataset, for a run truncating by `mode`.
pub async fn plan_calibrate_with(
    shape: &StgcnShape,
    n: usize,
    rows: &[usize],
    mode: Truncation,
) -> Result<Vec<TripleRequest>> {
    let mut p = Plan::with_truncation(mode);
    let mut params: Vec<PlanTensor> = shape.param_dims().into_iter().map(PlanTensor).collect();
    let x = PlanTensor((n, shape.input_cols()));
    super::calibrate(&mut p, shape, &x, &mut params, rows).await?;
    Ok(p.into_requests())
}

/// The preprocessing of [`super::export_tensors`] (local truncation).
pub async fn plan_export(shape: &StgcnShape) -> Result<Vec<TripleRequest>> {
    plan_export_with(shape, Truncation::Local).await
}

/// [`plan_export`] for a run truncating by `mode`.
pub async fn plan_export_with(shape: &StgcnShape, mode: Truncation) -> Result<Vec<TripleRequest>> {
    let mut p = Plan::with_truncation(mode);
    let params: Vec<PlanTensor> = shape.param_dims().into_iter().map(PlanTensor).collect();
    super::export_tensors(&mut p, shape, &params).await?;
    Ok(p.into_requests())
}
