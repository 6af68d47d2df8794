//! Logistic regression by mini-batch SGD (SecureML §IV-C): `w ← w − (α/|B|)·X_Bᵀ(f(X_B w) − y_B)`
//! with `f` the backend's logistic function — SecureML's piecewise sigmoid on shares (and in the
//! plaintext twin), or, on the plaintext backend only, the real sigmoid or a polynomial fit.

use crate::backend::Backend;
use crate::error::{MlError, Result};
use crate::models::linreg::{LinRegHyper, Progress};
use crate::schedule::Schedule;

/// Trains `w` (d×1) on data `x` (n×d) and 0/1 labels `y` (n×1) along `schedule`.
pub async fn train<B: Backend>(
    b: &mut B,
    x: &B::Data,
    y: &B::Tensor,
    w0: B::Tensor,
    schedule: &Schedule,
    hyper: &LinRegHyper,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<B::Tensor> {
    let k = hyper.step_shift()?;
    let mut w = w0;
    for (epoch, batches) in schedule.epochs.iter().enumerate() {
        for (i, rows) in batches.iter().enumerate() {
            if rows.len() != hyper.batch_size {
                return Err(MlError::InvalidHyper {
                    name: "batch_size",
                    value: rows.len().to_string(),
                    reason: "schedule batches must all have the configured size",
                });
            }
            let u = b.data_matmul(x, rows, false, &w, 0).await?;
            let p = b.sigmoid(&u).await?;
            let err = b.sub(&p, &b.select_rows(y, rows))?;
            let step = b.data_matmul(x, rows, true, &err, k).await?;
            w = b.sub(&w, &step)?;
            progress(Progress {
                epoch,
                step: i + 1,
                steps: batches.len(),
            });
        }
    }
    Ok(w)
}

/// The preprocessing a shared run of [`train`] consumes, for data of shape `(n, d)` (mask #0).
pub async fn plan(
    n: usize,
    d: usize,
    schedule: &Schedule,
    hyper: &LinRegHyper,
) -> Result<Vec<mpc::triples::TripleRequest>> {
    let mut p = crate::backend::Plan::new();
    let x = p.data((n, d));
    let y = crate::backend::PlanTensor((n, 1));
    let w = crate::backend::PlanTensor((d, 1));
    train(&mut p, &x, &y, w, schedule, hyper, &|_| {}).await?;
    Ok(p.into_requests())
}
