//! Intercepts and biases ([`super::bias`]): trained on shares they equal the plaintext twin
//! (same data with its ones column, same batches, same initial weights) within the stated
//! tolerance, the plan equals what the run consumes, and an intercept fits what a model without
//! one cannot.

use super::tests::{backends_with, blobs, max_abs_diff, share_each, shares};
use crate::backend::{Plain, Shared, SoftmaxKind};
use crate::models::bias::{append_ones_plain, append_ones_share};
use crate::models::linreg::{self, LinRegHyper};
use crate::models::{logreg, mlp};
use crate::Schedule;
use mpc::net::MemChannel;
use mpc::share::reconstruct;
use mpc::trunc::Truncation;
use mpc::{FixedPoint, Role, Share};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// `y = 1000 + x·w + noise` on `x ∈ [-1, 1]^3`: a target whose mean dwarfs its variation.
fn large_mean(n: usize, rng: &mut ChaCha20Rng) -> (Array2<f64>, Array2<f64>, Vec<f64>) {
    let w = vec![0.8, -0.5, 0.3];
    let x = Array2::from_shape_fn((n, 3), |_| rng.gen_range(-1.0..1.0));
    let y = Array2::from_shape_fn((n, 1), |(i, _)| {
        1000.0 + (0..3).map(|j| x[[i, j]] * w[j]).sum::<f64>() + rng.gen_range(-0.01..0.01)
    });
    (x, y, w)
}

fn mse(p: &Array2<f64>, y: &Array2<f64>) -> f64 {
    p.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum::<f64>() / y.len() as f64
}

/// Trains a GLM (`sigmoid`: logistic) with an intercept on shares (dealer triples, local
/// truncation) and returns the revealed weights; asserts the plan for `d + 1` columns is
/// consumed exactly.
async fn secure_glm(
    x: &Array2<f64>,
    y: &Array2<f64>,
    sched: &Schedule,
    hyper: &LinRegHyper,
    sigmoid: bool,
) -> Array2<f64> {
    let fp = FixedPoint::default();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let (n, d) = x.dim();
    let [x0, x1] = shares(fp, x, &mut rng);
    let [y0, y1] = shares(fp, y, &mut rng);
    let reqs = if sigmoid {
        logreg::plan(n, d + 1, sched, hyper).await.unwrap()
    } else {
        linreg::plan(n, d + 1, sched, hyper).await.unwrap()
    };
    let (mut b0, mut b1) = backends_with(&reqs, fp, Truncation::Local).await;
    let (w0, w1) = tokio::join!(
        glm_half(&mut b0, Role::P0, x0, y0, sched, hyper, sigmoid),
        glm_half(&mut b1, Role::P1, x1, y1, sched, hyper, sigmoid)
    );
    fp.decode_matrix(&reconstruct(&w0, &w1).view())
}

/// One party's half of [`secure_glm`]: its share of `[X | 1]`, training, the plan drained.
async fn glm_half(
    b: &mut Shared<MemChannel>,
    role: Role,
    xs: Share,
    ys: Share,
    sched: &Schedule,
    hyper: &LinRegHyper,
    sigmoid: bool,
) -> Share {
    let fp = FixedPoint::default();
    let xs = append_ones_share(role, &fp, &xs).unwrap();
    let xd = b.data(&xs).await.unwrap();
    let w0 = Share::zeros(xs.dim().1, 1);
    let w = if sigmoid {
        logreg::train(b, &xd, &ys, w0, sched, hyper, &|_| {}).await
    } else {
        linreg::train(b, &xd, &ys, w0, sched, hyper, &|_| {}).await
    };
    assert!(b.preprocessing_drained());
    w.unwrap()
}

/// Linear regression on `y = 1000 + x·w`: with the intercept the twin recovers 1000 and `w`
/// (within 0.05) and a test MSE below 1e-3, without it the MSE stays above 1e5 (no weight on
/// `x ∈ [-1, 1]` can make up a mean of 1000); the secure run equals the twin within 1e-3 (f = 16:
/// a few ulps of truncation per step, contracted by SGD).
#[tokio::test]
async fn intercept_fits_a_large_mean_on_shares_as_in_the_twin() {
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let (x, y, w_true) = large_mean(256, &mut rng);
    let (xt, yt, _) = large_mean(128, &mut rng);
    let hyper = LinRegHyper::new(0.5, 32).unwrap();
    let sched = Schedule::shuffled(256, 32, 8, 4).unwrap();
    let p = &mut Plain::new();
    let xi = append_ones_plain(&x);
    let with = linreg::train(p, &xi, &y, Array2::zeros((4, 1)), &sched, &hyper, &|_| {});
    let with = with.await.unwrap();
    let without = linreg::train(p, &x, &y, Array2::zeros((3, 1)), &sched, &hyper, &|_| {});
    let without = without.await.unwrap();
    assert!(
        (with[[3, 0]] - 1000.0).abs() < 0.05,
        "intercept {}",
        with[[3, 0]]
    );
    for (j, t) in w_true.iter().enumerate() {
        assert!(
            (with[[j, 0]] - t).abs() < 0.05,
            "w[{j}] = {} vs {t}",
            with[[j, 0]]
        );
    }
    let mse_with = mse(&linreg::predict(&with, &xt).unwrap(), &yt);
    let mse_without = mse(&linreg::predict(&without, &xt).unwrap(), &yt);
    assert!(mse_with < 1e-3, "test MSE with the intercept {mse_with}");
    assert!(
        mse_without > 1e5,
        "test MSE without the intercept {mse_without}"
    );
    let secure = secure_glm(&x, &y, &sched, &hyper, false).await;
    let diff = max_abs_diff(&secure, &with);
    assert!(diff < 1e-3, "max |w_secure − w_plain| = {diff}");
}

/// Logistic regression with an intercept on blobs shifted off the origin (labels 0/1): the
/// comparisons of the piecewise sigmoid are exact, so shares equal the twin within 2e-3, and the
/// intercept is learned (clearly non-zero).
#[tokio::test]
async fn logreg_intercept_on_shares_matches_twin() {
    let mut rng = ChaCha20Rng::seed_from_u64(32);
    let (mut x, y) = blobs(128, &mut rng);
    x.column_mut(0).mapv_inplace(|v| v + 1.5);
    let hyper = LinRegHyper::new(1.0, 16).unwrap();
    let sched = Schedule::shuffled(128, 16, 3, 8).unwrap();
    let xi = append_ones_plain(&x);
    let plain = logreg::train(
        &mut Plain::new(),
        &xi,
        &y,
        Array2::zeros((5, 1)),
        &sched,
        &hyper,
        &|_| {},
    )
    .await
    .unwrap();
    assert!(plain[[4, 0]].abs() > 0.1, "intercept {}", plain[[4, 0]]);
    let secure = secure_glm(&x, &y, &sched, &hyper, true).await;
    let diff = max_abs_diff(&secure, &plain);
    assert!(diff < 2e-3, "max |w_secure − w_plain| = {diff}");
}

/// An MLP 4-8-2 with a bias in every layer: the weights (bias rows included) on shares equal the
/// twin's within 5e-3 after 12 steps (as without biases: ReLU exact, the ReLU-softmax's
/// reciprocal accurate to about 2^-12), predictions agree, and `plan_with_bias` is exactly what
/// the run consumes.
#[tokio::test]
async fn mlp_with_biases_matches_twin() {
    let mut rng = ChaCha20Rng::seed_from_u64(33);
    let (n, sizes) = (64, vec![4usize, 8, 2]);
    let (x, y1) = blobs(n, &mut rng);
    let y = Array2::from_shape_fn((n, 2), |(i, j)| f64::from(y1[[i, 0]] as usize == j));
    let hyper = LinRegHyper::new(0.5, 16).unwrap();
    let sm = SoftmaxKind::Relu;
    let sched = Schedule::shuffled(n, 16, 3, 6).unwrap();
    let w_init = mlp::init_weights_with_bias(&sizes, 3, true);
    assert_eq!(w_init[1].dim(), (9, 2));
    let xi = append_ones_plain(&x);
    let p = &mut Plain::new();
    let w_plain = mlp::train(p, &xi, &y, w_init.clone(), &sched, &hyper, sm, &|_| {});
    let w_plain = w_plain.await.unwrap();
    assert!(
        w_plain[1].row(8).iter().any(|b| b.abs() > 1e-3),
        "biases moved"
    );
    let fp = FixedPoint::default();
    let [x0, x1] = shares(fp, &x, &mut rng);
    let [y0, y1] = shares(fp, &y, &mut rng);
    let (ws0, ws1) = share_each(fp, &w_init, &mut rng);
    let reqs = mlp::plan_with_bias(&sizes, n, &sched, &hyper, sm, true);
    let reqs = reqs.await.unwrap();
    let (mut b0, mut b1) = backends_with(&reqs, fp, Truncation::Local).await;
    let (r0, r1) = tokio::join!(
        mlp_half(&mut b0, Role::P0, (x0, y0), ws0, &sched, &hyper),
        mlp_half(&mut b1, Role::P1, (x1, y1), ws1, &sched, &hyper)
    );
    let ws: Vec<Array2<f64>> = r0
        .iter()
        .zip(&r1)
        .map(|(a, b)| fp.decode_matrix(&reconstruct(a, b).view()))
        .collect();
    for (s, p) in ws.iter().zip(&w_plain) {
        let diff = max_abs_diff(s, p);
        assert!(diff < 5e-3, "max |W_secure − W_plain| = {diff}");
    }
    assert_eq!(mlp::predict(&ws, &x), mlp::predict(&w_plain, &x));
}

/// One party's half of [`mlp_with_biases_matches_twin`] (ReLU softmax).
async fn mlp_half(
    b: &mut Shared<MemChannel>,
    role: Role,
    (xs, ys): (Share, Share),
    ws: Vec<Share>,
    sched: &Schedule,
    hyper: &LinRegHyper,
) -> Vec<Share> {
    let fp = FixedPoint::default();
    let xs = append_ones_share(role, &fp, &xs).unwrap();
    let xd = b.data(&xs).await.unwrap();
    let r = mlp::train(b, &xd, &ys, ws, sched, hyper, SoftmaxKind::Relu, &|_| {}).await;
    assert!(b.preprocessing_drained());
    r.unwrap()
}
