//! Conversion between the model file (`stgcn::StGcn`) and the trainable matrices: the public
//! start ([`initial_params`]), the export of trained parameters as model tensors on any backend
//! ([`export_tensors`], local on shares: transposes, public constants and one truncation per BN
//! row) and the plaintext model from reconstructed tensors ([`to_model`]).

use super::shape::{as_matrix, ExportSource, ParamKind, StgcnShape};
use crate::backend::{Backend, PublicLinear};
use crate::error::{MlError, Result};
use ndarray::{Array1, Array2, ArrayD, IxDyn};

fn model_tensor<'a>(model: &'a stgcn::StGcn, name: &str) -> &'a ArrayD<f64> {
    model
        .tensor(name)
        .unwrap_or_else(|| panic!("tensor {name} of the shape is missing from the model"))
}

/// `(s, t)` of the BN called `prefix` in `model`: `s = γ/√(var+eps)`, `t = β − mean·s`.
fn bn_affine(model: &stgcn::StGcn, prefix: &str, eps: f64) -> (Array1<f64>, Array1<f64>) {
    let get = |x: &str| {
        let t = model_tensor(model, &format!("{prefix}.{x}"));
        Array1::from_iter(t.iter().copied())
    };
    let s = get("weight") / get("running_var").mapv(|v| (v + eps).sqrt());
    let t = get("bias") - &(get("running_mean") * &s);
    (s, t)
}

/// Trainable params of `model` as f64 matrices in `param_dims` order (the public start).
///
/// # Panics
/// If `model` lacks a tensor of `shape` (it must be the model `shape` was built from, or one
/// with the same configuration).
pub fn initial_params(shape: &StgcnShape, model: &stgcn::StGcn) -> Vec<Array2<f64>> {
    let eps = shape.bn_eps();
    shape
        .params
        .iter()
        .map(|p| match p.kind {
            ParamKind::BnScale | ParamKind::BnShift => {
                let prefix = p.name.rsplit_once('.').expect("BN names have a prefix").0;
                let (s, t) = bn_affine(model, prefix, eps);
                let v = if p.kind == ParamKind::BnScale { s } else { t };
                v.insert_axis(ndarray::Axis(0))
            }
            _ => {
                let m = as_matrix(model_tensor(model, &p.name));
                if p.kind == ParamKind::Weight {
                    m.t().to_owned()
                } else {
                    m.into_shape_with_order(p.dims)
                        .expect("a row of the tensor's length")
                }
            }
        })
        .collect()
}

/// The diagonal public map with entries `d`.
pub(crate) fn diagonal(d: impl ExactSizeIterator<Item = f64>) -> Result<PublicLinear> {
    let n = d.len();
    PublicLinear::from_triplets(n, n, d.enumerate().map(|(i, c)| (i, i, c)))
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
    super::optim::check_params::<B>(shape, params)?;
    let eps = shape.bn_eps();
    let mut out = Vec::with_capacity(shape.exports.len());
    for (_, _, src) in &shape.exports {
        out.push(match src {
            ExportSource::Param(i) => b.transpose(&params[*i]),
            ExportSource::BnWeight { scale } => {
                let (_, var) = shape.bn_stats(*scale);
                let map = diagonal(var.iter().map(|v| (v + eps).sqrt()))?;
                b.linear_public(&b.transpose(&params[*scale]), &map).await?
            }
            ExportSource::BnBias { scale, shift } => {
                let (mean, _) = shape.bn_stats(*scale);
                let map = diagonal(mean.iter().copied())?;
                let ms = b.linear_public(&b.transpose(&params[*scale]), &map).await?;
                b.add(&b.transpose(&params[*shift]), &ms)?
            }
            ExportSource::Public(m) => b.constant(m)?,
        });
    }
    Ok(out)
}

/// A plaintext model file from exported tensors (the matrices of [`export_tensors`],
/// reconstructed and decoded; only their row-major values and counts matter), with `base`'s
/// configuration.
///
/// # Errors
/// A tensor count or size that differs from `base`'s, or a model whose tensor names differ from
/// the shape's.
pub fn to_model(
    shape: &StgcnShape,
    base: &stgcn::StGcn,
    tensors: &[Array2<f64>],
) -> Result<stgcn::StGcn> {
    let names = base.tensors();
    if tensors.len() != names.len() || shape.exports.len() != names.len() {
        return Err(MlError::OutOfRange {
            what: "exported tensor count (model tensors)",
            index: 0,
            value: tensors.len(),
            limit: names.len(),
        });
    }
    let mut model = base.clone();
    for (i, ((t, m), (name, dims, _))) in names.iter().zip(tensors).zip(&shape.exports).enumerate()
    {
        if &t.name != name || t.value.len() != m.len() {
            return Err(MlError::OutOfRange {
                what: "exported tensor size (model tensor size)",
                index: i,
                value: m.len(),
                limit: t.value.len(),
            });
        }
        let v = ArrayD::from_shape_vec(IxDyn(dims), m.iter().copied().collect())
            .expect("sizes checked");
        model.set_tensor(name, v)?;
    }
    Ok(model)
}
