//! Conversion between the model file (`stgcn::StGcn`) and the trainable matrices: the public
//! start ([`initial_params`]), the export of trained parameters as model tensors on any backend
//! ([`export_tensors`], local on shares: transposes, public constants and one truncation per BN
//! row) and the plaintext model from reconstructed tensors ([`to_model`]).

use super::StgcnShape;
use crate::backend::Backend;
use crate::error::Result;
use ndarray::Array2;

/// Trainable params of `model` as f64 matrices in `param_dims` order (the public start).
pub fn initial_params(shape: &StgcnShape, model: &stgcn::StGcn) -> Vec<Array2<f64>> {
    let _ = (shape, model);
    unimplemented!()
}

/// Every tensor of the model file (`stgcn::StGcn::tensors()` order) from trained params, on the
/// backend (BN γ, β solved back with public running statistics: local, one truncation), so a
/// party can store its share of the exported model without opening anything. Tensor `i` of
/// shape `(d0, d1, …)` comes as the `d0 × (d1·…)` matrix of its row-major values (a vector of
/// length `d` as `d × 1`).
pub async fn export_tensors<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    params: &[B::Tensor],
) -> Result<Vec<B::Tensor>> {
    let _ = (b, shape, params);
    unimplemented!()
}

/// A plaintext model file from exported tensors (the matrices of [`export_tensors`],
/// reconstructed and decoded; only their row-major values and counts matter), with `base`'s
/// configuration.
pub fn to_model(
    shape: &StgcnShape,
    base: &stgcn::StGcn,
    tensors: &[Array2<f64>],
) -> Result<stgcn::StGcn> {
    let _ = (shape, base, tensors);
    unimplemented!()
}
