//! One dispatch over the models: [`train`] runs linear regression, logistic regression or the MLP
//! on any [`Backend`], so the plaintext twin, the plan and the secure run of every caller (the
//! in-process experiments and the party's jobs) share one code path.

use super::linreg::{self, LinRegHyper, Progress};
use super::{logreg, mlp};
use crate::backend::{Backend, SoftmaxKind};
use crate::error::{MlError, Result};
use crate::schedule::Schedule;

/// A model and its non-numeric hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Linear regression ([`linreg`]): one weight column.
    Linreg,
    /// Logistic regression with the piecewise sigmoid ([`logreg`]): one weight column.
    Logreg,
    /// The ReLU MLP ([`mlp`]) with the given softmax: one weight matrix per layer.
    Mlp(SoftmaxKind),
}

/// Trains `model` on backend `b` from the initial weights `ws` (one column for the regressions,
/// one matrix per layer for the MLP) and returns the trained weights in the same layout.
///
/// # Errors
/// No initial weights, invalid hyper-parameters, shape mismatches, or a failed protocol step.
#[allow(clippy::too_many_arguments)] // the model code's own arguments plus the model choice
pub async fn train<B: Backend>(
    b: &mut B,
    model: Model,
    x: &B::Data,
    y: &B::Tensor,
    ws: Vec<B::Tensor>,
    sched: &Schedule,
    hyper: &LinRegHyper,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<B::Tensor>> {
    let first = |ws: Vec<B::Tensor>| {
        ws.into_iter().next().ok_or(MlError::InvalidHyper {
            name: "initial weights",
            value: "[]".into(),
            reason: "a regression needs its weight column",
        })
    };
    Ok(match model {
        Model::Linreg => vec![linreg::train(b, x, y, first(ws)?, sched, hyper, progress).await?],
        Model::Logreg => vec![logreg::train(b, x, y, first(ws)?, sched, hyper, progress).await?],
        Model::Mlp(s) => mlp::train(b, x, y, ws, sched, hyper, s, progress).await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Plain, Plan, PlanTensor};
    use ndarray::Array2;

    fn data() -> (Array2<f64>, Array2<f64>) {
        let x = Array2::from_shape_fn((16, 3), |(i, j)| ((i * 3 + j) as f64 * 0.37).sin());
        let y = Array2::from_shape_fn((16, 2), |(i, j)| ((i + j) % 2) as f64);
        (x, y)
    }

    /// The dispatch runs exactly the model's own training code: equal weights on the twin.
    #[tokio::test]
    async fn dispatch_equals_the_model_code() {
        let (x, y) = data();
        let sched = Schedule::shuffled(16, 4, 2, 7).unwrap();
        let hyper = LinRegHyper::new(0.25, 4).unwrap();
        let y1 = y.column(0).to_owned().insert_axis(ndarray::Axis(1));
        let w0 = Array2::zeros((3, 1));
        let p = &mut Plain::new();
        let direct = logreg::train(p, &x, &y1, w0.clone(), &sched, &hyper, &|_| {});
        let direct = direct.await.unwrap();
        let via = train(p, Model::Logreg, &x, &y1, vec![w0], &sched, &hyper, &|_| {});
        assert_eq!(via.await.unwrap(), vec![direct]);
        let ws = mlp::init_weights(&[3, 4, 2], 1);
        let sm = SoftmaxKind::Relu;
        let direct = mlp::train(p, &x, &y, ws.clone(), &sched, &hyper, sm, &|_| {});
        let direct = direct.await.unwrap();
        let via = train(p, Model::Mlp(sm), &x, &y, ws, &sched, &hyper, &|_| {});
        assert_eq!(via.await.unwrap(), direct);
    }

    /// The plan of a dispatched run lists the model's own requests; no weights is an error.
    #[tokio::test]
    async fn plans_match_and_missing_weights_are_refused() {
        let sched = Schedule::shuffled(16, 4, 1, 7).unwrap();
        let hyper = LinRegHyper::new(0.25, 4).unwrap();
        let (mut a, mut b) = (Plan::new(), Plan::new());
        let (xa, xb) = (a.data((16, 3)), b.data((16, 3)));
        let (y, w) = (PlanTensor((16, 1)), PlanTensor((3, 1)));
        linreg::train(&mut a, &xa, &y, w, &sched, &hyper, &|_| {})
            .await
            .unwrap();
        train(
            &mut b,
            Model::Linreg,
            &xb,
            &y,
            vec![w],
            &sched,
            &hyper,
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(a.into_requests(), b.into_requests());
        let mut p = Plan::new();
        let xp = p.data((16, 3));
        let e = train(
            &mut p,
            Model::Linreg,
            &xp,
            &y,
            vec![],
            &sched,
            &hyper,
            &|_| {},
        );
        assert!(matches!(e.await, Err(MlError::InvalidHyper { .. })));
    }
}
