//! Differential tests of the 2PC trainer: the shared run (in-process dealer triples, in-memory
//! channel) against its plaintext twin — same model, same batches — for both truncation modes,
//! and the plans against what the shared run consumed.

use super::tests::{as_rows, tiny_model};
use super::*;
use crate::backend::{Backend, Plain, Plan, Shared};
use mpc::net::{mem_pair, MemChannel};
use mpc::share::{reconstruct, share};
use mpc::triples::{dealer, TripleRequest, TripleSource};
use mpc::trunc::Truncation;
use mpc::{FixedPoint, FracBits, Role, Share};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use stgcn::ActivationKind;

const HYPER: StgcnHyper = StgcnHyper {
    learning_rate: 0.1,
    momentum: 0.9,
    weight_decay: 1e-3,
    batch_size: 4,
};

fn batches() -> Vec<Vec<usize>> {
    vec![vec![0, 3, 5, 6], vec![1, 2, 4, 7], vec![7, 0, 2, 5]]
}

/// What one run (on any backend) produced.
struct Run<T> {
    params: Vec<T>,
    exported: Vec<T>,
    logits: Vec<T>,
}

async fn run<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    x: &B::Tensor,
    y: &B::Tensor,
    state: StgcnState<B::Tensor>,
) -> Run<B::Tensor> {
    let xp = prepare_inputs(b, shape, x).await.unwrap();
    let mut state = state;
    let mut logits = Vec::new();
    let mut keep = |_: usize, o: &StepOutputs<B::Tensor>| logits.push(o.logits.clone());
    train(b, shape, &xp, y, &mut state, &batches(), &HYPER, &mut keep)
        .await
        .unwrap();
    let exported = export_tensors(b, shape, &state.params).await.unwrap();
    Run {
        params: state.params,
        exported,
        logits,
    }
}

fn zeros_like(ps: &[Array2<f64>]) -> Vec<Array2<f64>> {
    ps.iter().map(|p| Array2::zeros(p.dim())).collect()
}

fn shares(fp: FixedPoint, x: &Array2<f64>, rng: &mut ChaCha20Rng) -> [Share; 2] {
    share(&fp.encode_matrix(&x.view()).unwrap().view(), rng)
}

fn decode(fp: FixedPoint, a: &[Share], b: &[Share]) -> Vec<Array2<f64>> {
    a.iter()
        .zip(b)
        .map(|(a, b)| fp.decode_matrix(&reconstruct(a, b).view()))
        .collect()
}

fn max_diff(a: &[Array2<f64>], b: &[Array2<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f64::max)
}

async fn backends(
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

/// Trains the tiny model for three steps on shares and on the twin and checks that parameters
/// and the exported model agree within `tol`, while training moved the parameters by more than
/// 20·`tol`; the plans equal the preprocessing consumed and the truncation counts agree.
async fn secure_case(act: ActivationKind, mode: Truncation, frac: u32, tol: f64) {
    let (model, x, labels) = tiny_model(act, 7);
    let shape = StgcnShape::from_model(&model).unwrap();
    let init = initial_params(&shape, &model);
    let (rows, y) = as_rows(&x, &labels);
    let twin_state = StgcnState {
        params: init.clone(),
        velocity: zeros_like(&init),
    };
    let twin = run(&mut Plain::new(), &shape, &rows, &y, twin_state).await;
    // The plan of the whole run equals the three public planners' lists in order.
    let mut plan = Plan::with_truncation(mode);
    let dims = |d: Vec<(usize, usize)>| d.into_iter().map(crate::backend::PlanTensor).collect();
    let plan_state = StgcnState {
        params: dims(shape.param_dims()),
        velocity: dims(shape.param_dims()),
    };
    let (px, py) = (
        crate::backend::PlanTensor(rows.dim()),
        crate::backend::PlanTensor(y.dim()),
    );
    run(&mut plan, &shape, &px, &py, plan_state).await;
    let mut listed = plan_prepare_with(&shape, rows.nrows(), mode).await.unwrap();
    listed.extend(
        plan_steps_with(&shape, rows.nrows(), &batches(), &HYPER, mode)
            .await
            .unwrap(),
    );
    listed.extend(plan_export_with(&shape, mode).await.unwrap());
    assert_eq!(plan.requests(), &listed[..]);
    let fp = FixedPoint::new(FracBits::new(frac).unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let [x0, x1] = shares(fp, &rows, &mut rng);
    let [y0, y1] = shares(fp, &y, &mut rng);
    let (mut p0, mut p1) = (Vec::new(), Vec::new());
    for p in &init {
        let [a, b] = shares(fp, p, &mut rng);
        p0.push(a);
        p1.push(b);
    }
    let zero = |ps: &[Share]| {
        ps.iter()
            .map(|p| Share::zeros(p.dim().0, p.dim().1))
            .collect()
    };
    let (s0, s1) = (
        StgcnState {
            velocity: zero(&p0),
            params: p0,
        },
        StgcnState {
            velocity: zero(&p1),
            params: p1,
        },
    );
    let (mut b0, mut b1) = backends(plan.requests(), fp, mode).await;
    let (r0, r1) = tokio::join!(
        run(&mut b0, &shape, &x0, &y0, s0),
        run(&mut b1, &shape, &x1, &y1, s1)
    );
    assert!(b0.preprocessing_drained() && b1.preprocessing_drained());
    assert_eq!(b0.truncations(), plan.truncations());
    assert_eq!(b1.truncations(), plan.truncations());
    let params = decode(fp, &r0.params, &r1.params);
    let logits = decode(fp, &r0.logits, &r1.logits);
    let dl = max_diff(&logits, &twin.logits);
    let exported = decode(fp, &r0.exported, &r1.exported);
    // The exported shares make a model file: the twin's export within the same tolerance.
    let secure_model = to_model(&shape, &model, &exported).unwrap();
    let twin_model = to_model(&shape, &model, &twin.exported).unwrap();
    let dm = secure_model
        .tensors()
        .iter()
        .zip(twin_model.tensors())
        .flat_map(|(a, b)| {
            a.value
                .iter()
                .zip(b.value.iter())
                .map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f64::max);
    let dp = max_diff(&params, &twin.params);
    let moved = max_diff(&twin.params, &init);
    let what = format!("{act:?} {mode:?} f = {frac}");
    assert!(
        dp < tol && dm < tol,
        "{what}: params {dp}, model {dm}, tolerance {tol}"
    );
    assert!(
        moved > 20.0 * tol,
        "{what}: training moved the parameters by {moved} only"
    );
    // Logits are larger (|z| up to ~5) and see the exp softmax's approximation only later.
    assert!(dl < 30.0 * tol, "{what}: logits {dl}");
}

/// Local truncation with 16 fractional bits (the per-value failure bound stays far below the
/// run's inverse truncation count for values of this size). Measured after three steps: params
/// within 5e-4 of the twin (poly), 1.5e-4 (square): fixed-point rounding of every product,
/// coefficient encoding (lr, 1/(T·V), BN statistics) at 2^-16 and the exp approximation of the
/// secure softmax; tolerance 2e-3 (poly), 5e-4 (square, whose small BN scales train slowly).
#[tokio::test]
async fn secure_training_with_local_truncation_matches_the_twin() {
    secure_case(ActivationKind::Poly, Truncation::Local, 16, 2e-3).await;
    secure_case(ActivationKind::Square, Truncation::Local, 16, 5e-4).await;
}

/// Exact truncation (no failure event) with 20 fractional bits: measured within 1.2e-4 of the
/// twin (poly), 3e-5 (square), four times closer than with 16 bits; tolerance 5e-4 (poly), 1e-4 (square).
#[tokio::test]
async fn secure_training_with_exact_truncation_matches_the_twin() {
    secure_case(ActivationKind::Poly, Truncation::Exact, 20, 5e-4).await;
    secure_case(ActivationKind::Square, Truncation::Exact, 20, 1e-4).await;
}

/// The offline phase in chunks: triples for the input preparation and the first step, then for
/// the remaining steps added to each party's pool between steps; the run drains every chunk and
/// ends where the run with one big pool ends (same twin tolerance as above).
#[tokio::test]
async fn chunked_preprocessing_trains_like_one_pool() {
    let (model, x, labels) = tiny_model(ActivationKind::Poly, 7);
    let shape = StgcnShape::from_model(&model).unwrap();
    let init = initial_params(&shape, &model);
    let (rows, y) = as_rows(&x, &labels);
    let mode = Truncation::Exact;
    let all = batches();
    let mut twin = StgcnState {
        params: init.clone(),
        velocity: zeros_like(&init),
    };
    let pb = &mut Plain::new();
    let xp = prepare_inputs(pb, &shape, &rows).await.unwrap();
    train(pb, &shape, &xp, &y, &mut twin, &all, &HYPER, &mut |_, _| {})
        .await
        .unwrap();
    let mut first = plan_prepare_with(&shape, rows.nrows(), mode).await.unwrap();
    first.extend(
        plan_steps_with(&shape, rows.nrows(), &all[..1], &HYPER, mode)
            .await
            .unwrap(),
    );
    let rest = plan_steps_with(&shape, rows.nrows(), &all[1..], &HYPER, mode)
        .await
        .unwrap();
    let fp = FixedPoint::new(FracBits::new(20).unwrap());
    let (mut b0, mut b1) = backends(&first, fp, mode).await;
    let (mut d0, mut d1, _h) = dealer::spawn_in_process().await.unwrap();
    let (r0, r1) = tokio::join!(d0.generate(&rest), d1.generate(&rest));
    let (mut rest0, mut rest1) = (Some(r0.unwrap()), Some(r1.unwrap()));
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let [x0, x1] = shares(fp, &rows, &mut rng);
    let [y0, y1] = shares(fp, &y, &mut rng);
    let (mut p0, mut p1) = (Vec::new(), Vec::new());
    for p in &init {
        let [a, b] = shares(fp, p, &mut rng);
        p0.push(a);
        p1.push(b);
    }
    let zero = |ps: &[Share]| {
        ps.iter()
            .map(|p| Share::zeros(p.dim().0, p.dim().1))
            .collect()
    };
    let mut s0 = StgcnState {
        velocity: zero(&p0),
        params: p0,
    };
    let mut s1 = StgcnState {
        velocity: zero(&p1),
        params: p1,
    };
    let (xp0, xp1) = tokio::join!(
        prepare_inputs(&mut b0, &shape, &x0),
        prepare_inputs(&mut b1, &shape, &x1)
    );
    let (xp0, xp1) = (xp0.unwrap(), xp1.unwrap());
    for (i, batch) in all.iter().enumerate() {
        if i == 1 {
            assert!(b0.preprocessing_drained() && b1.preprocessing_drained());
            b0.add_preprocessing(rest0.take().unwrap());
            b1.add_preprocessing(rest1.take().unwrap());
        }
        let (o0, o1) = tokio::join!(
            step(&mut b0, &shape, &xp0, &y0, &mut s0, batch, &HYPER),
            step(&mut b1, &shape, &xp1, &y1, &mut s1, batch, &HYPER)
        );
        o0.unwrap();
        o1.unwrap();
    }
    assert!(b0.preprocessing_drained() && b1.preprocessing_drained());
    let d = max_diff(&decode(fp, &s0.params, &s1.params), &twin.params);
    assert!(d < 5e-4, "chunked run vs twin: {d}");
}
