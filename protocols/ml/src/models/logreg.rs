//! Logistic regression by mini-batch SGD (SecureML §IV-C): `w ← w − (α/|B|)·X_Bᵀ(f(X_B w) − y_B)`
//! with `f` the backend's logistic function — SecureML's piecewise sigmoid on shares (and in the
//! plaintext twin), or, on the plaintext backend only, the real sigmoid or a polynomial fit.

use crate::backend::Backend;
use crate::error::Result;
use crate::models::linreg::{plan_glm, train_glm, LinRegHyper, Progress};
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
    train_glm(b, x, y, w0, schedule, hyper, true, progress).await
}

/// The preprocessing a shared run of [`train`] consumes, for data of shape `(n, d)` (mask #0).
pub async fn plan(
    n: usize,
    d: usize,
    schedule: &Schedule,
    hyper: &LinRegHyper,
) -> Result<Vec<mpc::triples::TripleRequest>> {
    plan_glm(n, d, schedule, hyper, true).await
}
