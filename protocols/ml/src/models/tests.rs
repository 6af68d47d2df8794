//! Differential tests: every model trained on shares equals its plaintext twin (same data, same
//! batches, same initial weights) within a stated tolerance.

use crate::backend::{Plain, Plan, PlanTensor, Shared, SoftmaxKind};
use crate::models::linreg::LinRegHyper;
use crate::models::{logreg, mlp};
use crate::Schedule;
use mpc::net::{mem_pair, MemChannel};
use mpc::share::{reconstruct, share};
use mpc::triples::OtSource;
use mpc::triples::{dealer, elementwise_entries, TripleRequest, TripleSource};
use mpc::trunc::Truncation;
use mpc::{FixedPoint, Role, Share};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

pub(super) fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

pub(super) async fn backends_with(
    reqs: &[TripleRequest],
    fp: FixedPoint,
    mode: Truncation,
) -> (Shared<MemChannel>, Shared<MemChannel>) {
    let (mut s0, mut s1, _h) = dealer::spawn_in_process().await.unwrap();
    let (p0, p1) = tokio::join!(s0.generate(reqs), s1.generate(reqs));
    let (c0, c1) = mem_pair();
    (
        Shared::new(c0, Role::P0, fp, p0.unwrap()).with_truncation(mode),
        Shared::new(c1, Role::P1, fp, p1.unwrap()).with_truncation(mode),
    )
}

/// Backends whose triples come from the two-server OT offline phase instead of a dealer.
async fn backends_ot(
    reqs: &[TripleRequest],
    fp: FixedPoint,
) -> (Shared<MemChannel>, Shared<MemChannel>) {
    let (o0, o1) = mem_pair();
    let (s0, s1) = tokio::join!(OtSource::setup(o0, Role::P0), OtSource::setup(o1, Role::P1));
    let (mut s0, mut s1) = (s0.unwrap(), s1.unwrap());
    let (p0, p1) = tokio::join!(s0.generate(reqs), s1.generate(reqs));
    let (c0, c1) = mem_pair();
    (
        Shared::new(c0, Role::P0, fp, p0.unwrap()),
        Shared::new(c1, Role::P1, fp, p1.unwrap()),
    )
}

/// Each matrix of `ws` split into two shares: (party 0's shares, party 1's).
pub(super) fn share_each(
    fp: FixedPoint,
    ws: &[Array2<f64>],
    rng: &mut ChaCha20Rng,
) -> (Vec<Share>, Vec<Share>) {
    ws.iter()
        .map(|w| {
            let [a, b] = shares(fp, w, rng);
            (a, b)
        })
        .unzip()
}

pub(super) fn shares(fp: FixedPoint, x: &Array2<f64>, rng: &mut ChaCha20Rng) -> [Share; 2] {
    share(&fp.encode_matrix(&x.view()).unwrap().view(), rng)
}

/// Two Gaussian blobs in 4-D, labels 0/1.
pub(super) fn blobs(n: usize, rng: &mut ChaCha20Rng) -> (Array2<f64>, Array2<f64>) {
    let y = Array2::from_shape_fn((n, 1), |(i, _)| (i % 2) as f64);
    let x = Array2::from_shape_fn((n, 4), |(i, j)| {
        let c = if i % 2 == 0 { -0.6 } else { 0.6 };
        c * if j < 2 { 1.0 } else { -1.0 } + rng.gen_range(-0.5..0.5)
    });
    (x, y)
}

/// Logistic regression with SecureML's piecewise sigmoid: the comparisons are exact, so the
/// weights differ only by truncation error — within 2e-3 after 24 steps.
#[tokio::test]
async fn secure_logreg_matches_twin() {
    logreg_case(Truncation::Local, 1.0, 16).await
}

/// The same with exact truncation: same ±1-ulp rounding, same tolerance, no failure event.
#[tokio::test]
async fn secure_logreg_with_exact_truncation_matches_twin() {
    logreg_case(Truncation::Exact, 1.0, 16).await
}

/// A learning rate and a batch size that are not powers of two (α = 3, |B| = 10: α/|B| = 0.3 =
/// 2^-2 · 1.2): the factor 1.2 is one public fixed-point multiply
/// per update (one more truncation, ±1 ulp, and 1.2 encoded to within 2^-17), so the same 2e-3
/// tolerance holds, in both truncation modes (the plan records the multiply's truncation).
#[tokio::test]
async fn secure_logreg_with_a_non_power_of_two_rate_matches_twin() {
    assert!(LinRegHyper::new(3.0, 10)
        .unwrap()
        .step_size()
        .factor
        .is_some());
    logreg_case(Truncation::Local, 3.0, 10).await;
    logreg_case(Truncation::Exact, 3.0, 10).await;
}

async fn logreg_case(mode: Truncation, lr: f64, batch: usize) {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let (n, d) = (128, 4);
    let (x, y) = blobs(n, &mut rng);
    let hyper = LinRegHyper::new(lr, batch).unwrap();
    let sched = Schedule::shuffled(n, batch, 3, 5).unwrap();
    let w_plain = logreg::train(
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
    let [x0, x1] = shares(fp, &x, &mut rng);
    let [y0, y1] = shares(fp, &y, &mut rng);
    let mut plan = Plan::with_truncation(mode);
    let xp = plan.data((n, d));
    logreg::train(
        &mut plan,
        &xp,
        &PlanTensor((n, 1)),
        PlanTensor((d, 1)),
        &sched,
        &hyper,
        &|_| {},
    )
    .await
    .unwrap();
    let reqs = plan.requests().to_vec();
    if mode == Truncation::Local {
        assert_eq!(reqs, logreg::plan(n, d, &sched, &hyper).await.unwrap());
    }
    let (mut b0, mut b1) = backends_with(&reqs, fp, mode).await;
    let (w0, w1) = tokio::join!(
        async {
            let xd = b0.data(&x0).await.unwrap();
            let w = logreg::train(
                &mut b0,
                &xd,
                &y0,
                Share::zeros(d, 1),
                &sched,
                &hyper,
                &|_| {},
            )
            .await
            .unwrap();
            assert!(b0.preprocessing_drained());
            assert_eq!(b0.truncations(), plan.truncations());
            w
        },
        async {
            let xd = b1.data(&x1).await.unwrap();
            logreg::train(
                &mut b1,
                &xd,
                &y1,
                Share::zeros(d, 1),
                &sched,
                &hyper,
                &|_| {},
            )
            .await
            .unwrap()
        }
    );
    let w = fp.decode_matrix(&reconstruct(&w0, &w1).view());
    let diff = max_abs_diff(&w, &w_plain);
    assert!(diff < 2e-3, "max |w_secure − w_plain| = {diff}");
    // It learned something: the blobs are separable along the first two axes.
    assert!(
        w_plain[[0, 0]] > 0.1 && w_plain[[2, 0]] < -0.1,
        "{w_plain:?}"
    );
}

async fn mlp_case(softmax: SoftmaxKind, tol: f64) {
    mlp_case_with(softmax, tol, false, Truncation::Local).await
}

async fn mlp_case_with(softmax: SoftmaxKind, tol: f64, ot: bool, mode: Truncation) {
    let hyper = LinRegHyper::new(0.5, 16).unwrap();
    mlp_case_hyper(softmax, tol, ot, mode, hyper).await
}

/// The plan of an MLP run with truncation `mode`.
async fn mlp_plan(
    sizes: &[usize],
    n: usize,
    sched: &Schedule,
    hyper: &LinRegHyper,
    softmax: SoftmaxKind,
    mode: Truncation,
) -> Plan {
    let mut p = Plan::with_truncation(mode);
    let x = p.data((n, sizes[0]));
    let y = PlanTensor((n, *sizes.last().unwrap()));
    let ws = sizes.windows(2).map(|w| PlanTensor((w[0], w[1]))).collect();
    mlp::train(&mut p, &x, &y, ws, sched, hyper, softmax, &|_| {})
        .await
        .unwrap();
    p
}

async fn mlp_case_hyper(
    softmax: SoftmaxKind,
    tol: f64,
    ot: bool,
    mode: Truncation,
    hyper: LinRegHyper,
) {
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let (n, sizes) = (64, vec![4usize, 8, 2]);
    let (x, y1) = blobs(n, &mut rng);
    let y = Array2::from_shape_fn(
        (n, 2),
        |(i, j)| if y1[[i, 0]] as usize == j { 1.0 } else { 0.0 },
    );
    let sched = Schedule::shuffled(n, hyper.batch_size(), 3, 6).unwrap();
    let w_init = mlp::init_weights(&sizes, 3);
    let w_plain = mlp::train(
        &mut Plain::new(),
        &x,
        &y,
        w_init.clone(),
        &sched,
        &hyper,
        softmax,
        &|_| {},
    )
    .await
    .unwrap();
    let fp = FixedPoint::default();
    let [x0, x1] = shares(fp, &x, &mut rng);
    let [y0, y1] = shares(fp, &y, &mut rng);
    let (ws0, ws1) = share_each(fp, &w_init, &mut rng);
    let plan = mlp_plan(&sizes, n, &sched, &hyper, softmax, mode).await;
    let reqs = plan.requests().to_vec();
    let (mut b0, mut b1) = if ot {
        backends_ot(&reqs, fp).await
    } else {
        backends_with(&reqs, fp, mode).await
    };
    let (r0, r1) = tokio::join!(
        async {
            let xd = b0.data(&x0).await.unwrap();
            let r = mlp::train(&mut b0, &xd, &y0, ws0, &sched, &hyper, softmax, &|_| {})
                .await
                .unwrap();
            assert!(b0.preprocessing_drained());
            assert_eq!(b0.truncations(), plan.truncations());
            r
        },
        async {
            let xd = b1.data(&x1).await.unwrap();
            let r = mlp::train(&mut b1, &xd, &y1, ws1, &sched, &hyper, softmax, &|_| {})
                .await
                .unwrap();
            assert!(b1.preprocessing_drained());
            r
        }
    );
    let ws: Vec<Array2<f64>> = r0
        .iter()
        .zip(&r1)
        .map(|(a, b)| fp.decode_matrix(&reconstruct(a, b).view()))
        .collect();
    for (s, p) in ws.iter().zip(&w_plain) {
        let diff = max_abs_diff(s, p);
        assert!(diff < tol, "{softmax:?}: max |W_secure − W_plain| = {diff}");
    }
    assert_eq!(mlp::predict(&ws, &x), mlp::predict(&w_plain, &x));
}

/// The MLP with SecureML's ReLU-normalized softmax: ReLU is exact and the reciprocal is accurate
/// to about 2^-12 relative, so the weights agree within 5e-3 after 12 steps.
#[tokio::test]
async fn secure_mlp_relu_softmax_matches_twin() {
    mlp_case(SoftmaxKind::Relu, 5e-3).await;
}

/// The MLP with the exp-normalized softmax: the limit approximation of exp (8 squarings) is off by
/// up to x²/2^9 relative against the twin's exact exp, so the tolerance is looser: 3e-2.
#[tokio::test]
async fn secure_mlp_exp_softmax_matches_twin() {
    mlp_case(SoftmaxKind::Exp, 3e-2).await;
}

/// The same MLP with every triple (matrix, elementwise, AND) made by the two servers with OT:
/// the result must agree with the twin exactly as with dealer triples.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_mlp_with_ot_triples_matches_twin() {
    mlp_case_with(SoftmaxKind::Relu, 5e-3, true, Truncation::Local).await;
}

/// The MLP with exact truncation everywhere (products and the softmax's reciprocal and exp):
/// within the local variant's tolerances of the twin, the pools drained (the plan recorded every
/// extra triple) and both backends counting the same truncations.
#[tokio::test]
async fn secure_mlp_with_exact_truncation_matches_twin() {
    mlp_case_with(SoftmaxKind::Relu, 5e-3, false, Truncation::Exact).await;
    mlp_case_with(SoftmaxKind::Exp, 3e-2, false, Truncation::Exact).await;
}

/// The plan's truncation count is the same in both modes, and exact truncation asks for exactly
/// one elementwise-triple entry per truncated value on top of the local plan.
#[tokio::test]
async fn exact_plan_adds_one_triple_entry_per_truncation() {
    let sizes = [4usize, 8, 2];
    let hyper = LinRegHyper::new(0.5, 16).unwrap();
    let sched = Schedule::shuffled(64, 16, 2, 6).unwrap();
    for softmax in [SoftmaxKind::Relu, SoftmaxKind::Exp] {
        let local = mlp_plan(&sizes, 64, &sched, &hyper, softmax, Truncation::Local).await;
        let exact = mlp_plan(&sizes, 64, &sched, &hyper, softmax, Truncation::Exact).await;
        assert_eq!(local.truncations(), exact.truncations());
        assert!(local.truncations() > 0);
        assert_eq!(
            elementwise_entries(exact.requests()) - elementwise_entries(local.requests()),
            exact.truncations()
        );
        let reqs = mlp::plan(&sizes, 64, &sched, &hyper, softmax)
            .await
            .unwrap();
        assert_eq!(local.requests(), &reqs[..]);
    }
}

/// The MLP with α = 0.3 and |B| = 16 (α/|B| = 2^-6 · 1.2): every weight update is truncated once
/// more after the public multiply by 1.2 (±1 ulp, 1.2 encoded to within 2^-17), well inside the
/// 5e-3 tolerance of the power-of-two runs, in both truncation modes.
#[tokio::test]
async fn secure_mlp_with_learning_rate_0_3_matches_twin() {
    let hyper = LinRegHyper::new(0.3, 16).unwrap();
    assert!(hyper.step_size().factor.is_some());
    for mode in [Truncation::Local, Truncation::Exact] {
        mlp_case_hyper(SoftmaxKind::Relu, 5e-3, false, mode, hyper).await;
    }
}

/// The factor of a non-power-of-two step is applied exactly once per weight update: the plan
/// truncates one more value per weight entry per step than the power-of-two plan, and not one
/// more for a power-of-two step.
#[tokio::test]
async fn a_step_factor_costs_one_truncation_per_weight_per_update() {
    let sizes = [4usize, 8, 2];
    let sched = Schedule::shuffled(64, 16, 2, 6).unwrap();
    let weights = (4 * 8 + 8 * 2) as u64;
    let pow2 = LinRegHyper::new(0.25, 16).unwrap();
    let other = LinRegHyper::new(0.3, 16).unwrap();
    for mode in [Truncation::Local, Truncation::Exact] {
        let sm = SoftmaxKind::Relu;
        let a = mlp_plan(&sizes, 64, &sched, &pow2, sm, mode).await;
        let b = mlp_plan(&sizes, 64, &sched, &other, sm, mode).await;
        let steps = sched.steps() as u64;
        assert_eq!(b.truncations() - a.truncations(), steps * weights);
        let pow2_again = LinRegHyper::new(2.0, 16).unwrap();
        let same = mlp_plan(&sizes, 64, &sched, &pow2_again, sm, mode).await;
        assert_eq!(same.truncations(), a.truncations());
    }
}
