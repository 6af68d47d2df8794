//! Linear regression by mini-batch SGD (SecureML §IV-A, Fig. 4).
//!
//! Per batch B: `w ← w − (α/|B|) · X_Bᵀ (X_B w − y_B)`. The power-of-two part 2^-k of α/|B| is
//! folded into the truncation of the gradient product, so a step costs two matrix products
//! against the masked data matrix (forward and backward); any other factor is one public
//! fixed-point multiply of the d×1 update ([`StepSize`]).
//!
//! An intercept is one more weight on a public column of ones appended to the data
//! ([`super::bias`]): train on `[X | 1]` (plan with `d + 1` columns) and the last weight is the
//! intercept; [`predict`] recognizes it by the weight count. It has no weight decay (there is
//! none here).

use crate::backend::Backend;
use crate::error::{MlError, Result};
use crate::schedule::Schedule;

pub use super::hyper::{
    LinRegHyper, StepSize, MAX_LEARNING_RATE, MAX_STEP_SHIFT, MIN_LEARNING_RATE,
};

/// Progress of a training run, reported after every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Step within the epoch (1-based, after the step).
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
}

/// Trains `w` (d×1) on data `x` (n×d) and targets `y` (n×1) along `schedule`.
pub async fn train<B: Backend>(
    b: &mut B,
    x: &B::Data,
    y: &B::Tensor,
    w0: B::Tensor,
    schedule: &Schedule,
    hyper: &LinRegHyper,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<B::Tensor> {
    train_glm(b, x, y, w0, schedule, hyper, false, progress).await
}

/// The SGD loop shared by linear and logistic regression (a generalized linear model):
/// `w ← w − (α/|B|)·X_Bᵀ(f(X_B w) − y_B)`, `f` the identity or, if `sigmoid`, the backend's
/// logistic function.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn train_glm<B: Backend>(
    b: &mut B,
    x: &B::Data,
    y: &B::Tensor,
    w0: B::Tensor,
    schedule: &Schedule,
    hyper: &LinRegHyper,
    sigmoid: bool,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<B::Tensor> {
    let step_size = hyper.step_size();
    let mut w = w0;
    for (epoch, batches) in schedule.epochs.iter().enumerate() {
        for (i, rows) in batches.iter().enumerate() {
            if rows.len() != hyper.batch_size() {
                return Err(MlError::InvalidHyper {
                    name: "batch_size",
                    value: rows.len().to_string(),
                    reason: "schedule batches must all have the configured size",
                });
            }
            let mut pred = b.data_matmul(x, rows, false, &w, 0).await?;
            if sigmoid {
                pred = b.sigmoid(&pred).await?;
            }
            let err = b.sub(&pred, &b.select_rows(y, rows))?;
            let grad = b.data_matmul(x, rows, true, &err, step_size.shift).await?;
            let step = step_size.apply(b, grad).await?;
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

/// Predictions `x·w` of plaintext weights on the raw features `x` (`n × d`); `w` has `d` rows,
/// or `d + 1` with the intercept last.
///
/// # Errors
/// [`MlError::InvalidHyper`] when `w` has neither `d` nor `d + 1` rows, or is not one column.
pub fn predict(w: &ndarray::Array2<f64>, x: &ndarray::Array2<f64>) -> Result<ndarray::Array2<f64>> {
    if w.ncols() != 1 {
        return Err(MlError::InvalidHyper {
            name: "regression weights",
            value: format!("{} columns", w.ncols()),
            reason: "a regression has one weight column",
        });
    }
    Ok(
        if super::bias::has_bias("regression weights", x.ncols(), w.nrows())? {
            super::bias::append_ones_plain(x).dot(w)
        } else {
            x.dot(w)
        },
    )
}

/// The requests of the preprocessing a shared run of [`train`] consumes, for data of shape
/// `(n, d)` (`d` counting an intercept's ones column); the data matrix is mask #0.
pub async fn plan(
    n: usize,
    d: usize,
    schedule: &Schedule,
    hyper: &LinRegHyper,
) -> Result<Vec<mpc::triples::TripleRequest>> {
    plan_glm(n, d, schedule, hyper, false).await
}

pub(crate) async fn plan_glm(
    n: usize,
    d: usize,
    schedule: &Schedule,
    hyper: &LinRegHyper,
    sigmoid: bool,
) -> Result<Vec<mpc::triples::TripleRequest>> {
    let mut p = crate::backend::Plan::new();
    let x = p.data((n, d));
    let y = crate::backend::PlanTensor((n, 1));
    let w = crate::backend::PlanTensor((d, 1));
    train_glm(&mut p, &x, &y, w, schedule, hyper, sigmoid, &|_| {}).await?;
    Ok(p.into_requests())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Plain, Shared};
    use mpc::net::mem_pair;
    use mpc::share::{reconstruct, share};
    use mpc::triples::{dealer, TripleSource};
    use mpc::{FixedPoint, Role};
    use ndarray::Array2;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    /// The secure run and its plaintext twin (same data, same batches, same initial weights)
    /// end with weights within 1e-3 of each other (fixed point with f = 16: each step adds at
    /// most a few ulps of truncation error, 2^-16 ≈ 1.5e-5, and SGD contracts it).
    #[tokio::test]
    async fn secure_training_matches_plaintext_twin() {
        let (n, d) = (256, 5);
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let w_true: Vec<f64> = (0..d).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let x = Array2::from_shape_fn((n, d), |_| rng.gen_range(-1.0..1.0));
        let y = Array2::from_shape_fn((n, 1), |(i, _)| {
            (0..d).map(|j| x[[i, j]] * w_true[j]).sum::<f64>() + rng.gen_range(-0.01..0.01)
        });
        let hyper = LinRegHyper::new(0.5, 32).unwrap();
        let sched = Schedule::shuffled(n, 32, 4, 3).unwrap();

        let w_plain = train(
            &mut Plain::new(),
            &x,
            &y,
            Array2::zeros((d, 1)),
            &sched,
            &hyper,
            &|_| {},
        )
        .await
        .unwrap();

        let fp = FixedPoint::default();
        let [x0, x1] = share(&fp.encode_matrix(&x.view()).unwrap().view(), &mut rng);
        let [y0, y1] = share(&fp.encode_matrix(&y.view()).unwrap().view(), &mut rng);
        let reqs = plan(n, d, &sched, &hyper).await.unwrap();
        let (mut s0, mut s1, _h) = dealer::spawn_in_process().await.unwrap();
        let (p0, p1) = tokio::join!(s0.generate(&reqs), s1.generate(&reqs));
        let (c0, c1) = mem_pair();
        let mut b0 = Shared::new(c0, Role::P0, fp, p0.unwrap());
        let mut b1 = Shared::new(c1, Role::P1, fp, p1.unwrap());
        let (w0, w1) = tokio::join!(
            async {
                let xd = b0.data(&x0).await.unwrap();
                let w = train(
                    &mut b0,
                    &xd,
                    &y0,
                    mpc::Share::zeros(d, 1),
                    &sched,
                    &hyper,
                    &|_| {},
                )
                .await
                .unwrap();
                assert!(b0.preprocessing_drained());
                w
            },
            async {
                let xd = b1.data(&x1).await.unwrap();
                train(
                    &mut b1,
                    &xd,
                    &y1,
                    mpc::Share::zeros(d, 1),
                    &sched,
                    &hyper,
                    &|_| {},
                )
                .await
                .unwrap()
            }
        );
        let w_secure = fp.decode_matrix(&reconstruct(&w0, &w1).view());
        let max_diff = w_secure
            .iter()
            .zip(w_plain.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(max_diff < 1e-3, "max |w_secure − w_plain| = {max_diff}");
        // And training actually learned the planted weights.
        for (a, t) in w_plain.iter().zip(&w_true) {
            assert!((a - t).abs() < 0.05, "{a} vs {t}");
        }
    }
}
