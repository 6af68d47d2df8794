//! The training loop: input preparation, one SGD step (forward, backward, momentum update) and
//! the loop over a schedule of batches. Semi-honest 2PC on [`crate::Shared`]; the same code is
//! the plaintext twin on [`crate::Plain`] and the plan on [`crate::Plan`].

use super::backward::backward;
use super::forward::forward;
use super::shape::{ParamKind, StgcnShape};
use super::{StepOutputs, StgcnHyper, StgcnState};
use crate::backend::{check_same, Backend, PublicLinear, SoftmaxKind};
use crate::error::{MlError, Result};

/// Checks that `params` has the shape's count and matrix shapes.
pub(crate) fn check_params<B: Backend>(shape: &StgcnShape, params: &[B::Tensor]) -> Result<()> {
    if params.len() != shape.params.len() {
        return Err(MlError::OutOfRange {
            what: "parameter count (expected count)",
            index: 0,
            value: params.len(),
            limit: shape.params.len(),
        });
    }
    for (p, spec) in params.iter().zip(&shape.params) {
        check_same("stgcn parameter (expected vs given)", spec.dims, B::dim(p))?;
    }
    Ok(())
}

fn check_hyper(h: &StgcnHyper, rows: usize) -> Result<()> {
    let bad = |name, value: f64, reason| MlError::InvalidHyper {
        name,
        value: value.to_string(),
        reason,
    };
    if !(h.learning_rate.is_finite() && h.learning_rate > 0.0) {
        return Err(bad(
            "learning_rate",
            h.learning_rate,
            "must be positive and finite",
        ));
    }
    if !(0.0..1.0).contains(&h.momentum) {
        return Err(bad("momentum", h.momentum, "must be in [0, 1)"));
    }
    if !(h.weight_decay.is_finite() && h.weight_decay >= 0.0) {
        return Err(bad(
            "weight_decay",
            h.weight_decay,
            "must be >= 0 and finite",
        ));
    }
    if h.batch_size == 0 || rows != h.batch_size {
        return Err(MlError::OutOfRange {
            what: "batch rows (batch_size)",
            index: 0,
            value: rows,
            limit: h.batch_size,
        });
    }
    Ok(())
}

/// Applies the input normalisation to the whole `N × input_cols` dataset (once per run): a
/// per-column public scale (one truncation) and a public shift; the identity without one.
pub async fn prepare_inputs<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    x: &B::Tensor,
) -> Result<B::Tensor> {
    let n = B::dim(x).0;
    check_same("stgcn dataset", (n, shape.input_cols()), B::dim(x))?;
    let Some((scale, shift)) = &shape.input_norm else {
        return Ok(x.clone());
    };
    let (t, v) = (shape.frames(), shape.nodes());
    // Column c·T·V + t·V + v of a clip row.
    let node = |col: usize| (col / (t * v), col % v);
    let cols = shape.input_cols();
    let diag = PublicLinear::from_triplets(cols, cols, (0..cols).map(|j| (j, j, scale[node(j)])))?;
    let scaled = b.linear_public(&b.transpose(x), &diag).await?;
    let shifts = ndarray::Array2::from_shape_fn((n, cols), |(_, j)| shift[node(j)]);
    b.add(&b.transpose(&scaled), &b.constant(&shifts)?)
}

/// `v ← μ·v + g/|B| + wd·w` (weight decay on weights only), `w ← w − lr·v`.
async fn update<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    state: &mut StgcnState<B::Tensor>,
    grads: Vec<B::Tensor>,
    h: &StgcnHyper,
) -> Result<()> {
    for (i, g) in grads.into_iter().enumerate() {
        let mut v = b.scale(&g, 1.0 / h.batch_size as f64).await?;
        if h.momentum != 0.0 {
            let mv = b.scale(&state.velocity[i], h.momentum).await?;
            v = b.add(&mv, &v)?;
        }
        if h.weight_decay != 0.0 && shape.params[i].kind == ParamKind::Weight {
            let dw = b.scale(&state.params[i], h.weight_decay).await?;
            v = b.add(&v, &dw)?;
        }
        let step = b.scale(&v, h.learning_rate).await?;
        state.params[i] = b.sub(&state.params[i], &step)?;
        state.velocity[i] = v;
    }
    Ok(())
}

/// One SGD step on the clips `rows` of the prepared `x` (one-hot `y`).
pub async fn step<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    x: &B::Tensor,
    y: &B::Tensor,
    state: &mut StgcnState<B::Tensor>,
    rows: &[usize],
    hyper: &StgcnHyper,
) -> Result<StepOutputs<B::Tensor>> {
    check_hyper(hyper, rows.len())?;
    check_params::<B>(shape, &state.velocity)?;
    let n = B::dim(x).0;
    check_same("stgcn labels", (n, shape.num_classes()), B::dim(y))?;
    let (logits, tape) = forward(b, shape, x, &state.params, rows).await?;
    let p = b.softmax(&logits, SoftmaxKind::Exp).await?;
    let yb = b.select_rows(y, rows);
    let g = b.sub(&p, &yb)?;
    let py = b.mul(&p, &yb, 0).await?;
    let p_true = b.scatter_add(&py, &tape.maps.row_sum)?;
    let grads = backward(b, shape, &state.params, &tape, &g).await?;
    drop(tape);
    update(b, shape, state, grads, hyper).await?;
    Ok(StepOutputs { logits, p_true })
}

/// Steps over `batches` in order, calling `progress(i, &outputs)` after each.
#[allow(clippy::too_many_arguments)]
pub async fn train<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    x: &B::Tensor,
    y: &B::Tensor,
    state: &mut StgcnState<B::Tensor>,
    batches: &[Vec<usize>],
    hyper: &StgcnHyper,
    progress: &mut (dyn FnMut(usize, &StepOutputs<B::Tensor>) + Send),
) -> Result<()> {
    for (i, rows) in batches.iter().enumerate() {
        let out = step(b, shape, x, y, state, rows, hyper).await?;
        progress(i, &out);
    }
    Ok(())
}

/// The loss gradient's building blocks for tests: logits and tape of a forward pass, then the
/// summed parameter gradients for a logit gradient `g`.
#[cfg(test)]
pub(crate) async fn forward_backward<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    x: &B::Tensor,
    params: &[B::Tensor],
    rows: &[usize],
    g_of_logits: impl FnOnce(&B::Tensor) -> B::Tensor,
) -> Result<(B::Tensor, Vec<B::Tensor>)> {
    let (logits, tape) = forward(b, shape, x, params, rows).await?;
    let g = g_of_logits(&logits);
    let grads = backward(b, shape, params, &tape, &g).await?;
    Ok((logits, grads))
}
