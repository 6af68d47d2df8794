//! The training loop: input preparation, one SGD step (forward, backward, momentum update) and
//! the loop over a schedule of batches. Semi-honest 2PC on [`crate::Shared`]; the same code is
//! the plaintext twin on [`crate::Plain`] and the plan on [`crate::Plan`].

use super::{StepOutputs, StgcnHyper, StgcnShape, StgcnState};
use crate::backend::Backend;
use crate::error::Result;

/// Applies the input normalisation to the whole `N × input_cols` dataset (once per run): a
/// per-column public scale (one truncation) and a public shift; the identity without one.
pub async fn prepare_inputs<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    x: &B::Tensor,
) -> Result<B::Tensor> {
    let _ = (b, shape, x);
    unimplemented!()
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
    let _ = (b, shape, x, y, state, rows, hyper);
    unimplemented!()
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
