//! BN re-calibration: on the twin, the re-calibrated model evaluates the calibration clips
//! exactly as the `stgcn` crate's training-mode forward pass does (BN with the batch's
//! statistics); on shares (dealer triples) it matches the twin and
//! consumes exactly what [`plan_calibrate_with`] asks for.

use super::tests::{as_rows, tiny_model};
use super::*;
use crate::backend::{Backend, Plain, Shared};
use mpc::net::mem_pair;
use mpc::share::{reconstruct, share};
use mpc::triples::{dealer, TripleSource};
use mpc::trunc::Truncation;
use mpc::{FixedPoint, FracBits, Role};
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use stgcn::ActivationKind;

const ROWS: [usize; 6] = [1, 2, 4, 5, 6, 7];

fn max_diff(a: &[Array2<f64>], b: &[Array2<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f64::max)
}

/// The twin's calibrated parameters of the tiny model.
async fn twin_calibrated(act: ActivationKind) -> (StgcnShape, Vec<Array2<f64>>, Vec<Array2<f64>>) {
    let (model, x, labels) = tiny_model(act, 11);
    let shape = StgcnShape::from_model(&model).unwrap();
    let init = initial_params(&shape, &model);
    let (rows, _) = as_rows(&x, &labels);
    let b = &mut Plain::new();
    let xp = prepare_inputs(b, &shape, &rows).await.unwrap();
    let mut params = init.clone();
    calibrate(b, &shape, &xp, &mut params, &ROWS).await.unwrap();
    (shape, init, params)
}

/// The exported re-calibrated model's evaluation of the calibration clips is the starting
/// model's training-mode forward pass on them (BN with the batch statistics of those clips).
#[tokio::test]
async fn calibration_is_batch_statistics_folded_into_the_affine() {
    for act in [ActivationKind::Poly, ActivationKind::Square] {
        let (model, x, _) = tiny_model(act, 11);
        let (shape, init, params) = twin_calibrated(act).await;
        let tensors = export_tensors(&mut Plain::new(), &shape, &params)
            .await
            .unwrap();
        let ours = to_model(&shape, &model, &tensors).unwrap();
        let xs = x.select(Axis(0), &ROWS);
        let labels = vec![0; ROWS.len()];
        let (_, train_mode, _) = model
            .clone()
            .loss_and_gradients(xs.view(), &labels)
            .unwrap();
        let (a, b) = (ours.forward(xs.view()).unwrap(), train_mode);
        let d = max_diff(std::slice::from_ref(&a), &[b]);
        let scale = a.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(d < 1e-9 * scale.max(1.0), "{act:?}: logits differ by {d}");
        let before = model.forward(xs.view()).unwrap();
        let moved = max_diff(&[a], &[before]);
        assert!(
            moved > 1e-3,
            "{act:?}: calibration changed nothing ({moved})"
        );
        // Only BN affines change.
        for (i, (p, q)) in params.iter().zip(&init).enumerate() {
            let bn = shape
                .bn_stats
                .iter()
                .any(|f| f.params.scale == i || f.params.shift == i);
            assert!(bn || p == q, "{act:?}: parameter {i} changed");
        }
    }
}

#[test]
fn calibration_rows_are_distinct_public_and_capped() {
    let r = calibration_rows(50, 20, 7);
    let mut s = r.clone();
    s.sort_unstable();
    s.dedup();
    assert_eq!((r.len(), s.len()), (20, 20));
    assert!(r.iter().all(|&i| i < 50));
    assert_eq!(r, calibration_rows(50, 20, 7));
    assert_ne!(r, calibration_rows(50, 20, 8));
    assert_eq!(calibration_rows(5, 20, 7).len(), 5);
    assert!(calibration_rows(5, 0, 7).is_empty());
}

/// On shares (dealer triples, exact truncation): the calibrated affines within `tol` of the
/// twin's, and the shared run consumes exactly the plan.
async fn secure_case(frac: u32, tol: f64) {
    let act = ActivationKind::Poly;
    let (model, x, labels) = tiny_model(act, 11);
    let (shape, init, twin) = twin_calibrated(act).await;
    let (rows, _) = as_rows(&x, &labels);
    let mode = Truncation::Exact;
    let fp = FixedPoint::new(FracBits::new(frac).unwrap());
    let n = rows.nrows();
    let mut reqs = plan_prepare_with(&shape, n, mode).await.unwrap();
    reqs.extend(plan_calibrate_with(&shape, n, &ROWS, mode).await.unwrap());
    let (mut d0, mut d1, _h) = dealer::spawn_in_process().await.unwrap();
    let (pre0, pre1) = tokio::join!(d0.generate(&reqs), d1.generate(&reqs));
    let (c0, c1) = mem_pair();
    let mut b0 = Shared::new(c0, Role::P0, fp, pre0.unwrap()).with_truncation(mode);
    let mut b1 = Shared::new(c1, Role::P1, fp, pre1.unwrap()).with_truncation(mode);
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut split = |m: &Array2<f64>| share(&fp.encode_matrix(&m.view()).unwrap().view(), &mut rng);
    let [x0, x1] = split(&rows);
    let (mut p0, mut p1) = (Vec::new(), Vec::new());
    for p in &init {
        let [a, b] = split(p);
        p0.push(a);
        p1.push(b);
    }
    async fn party<B: Backend>(
        b: &mut B,
        shape: &StgcnShape,
        x: &B::Tensor,
        params: &mut [B::Tensor],
    ) {
        let xp = prepare_inputs(b, shape, x).await.unwrap();
        calibrate(b, shape, &xp, params, &ROWS).await.unwrap();
    }
    tokio::join!(
        party(&mut b0, &shape, &x0, &mut p0),
        party(&mut b1, &shape, &x1, &mut p1)
    );
    assert!(b0.preprocessing_drained() && b1.preprocessing_drained());
    let secure: Vec<Array2<f64>> = p0
        .iter()
        .zip(&p1)
        .map(|(a, b)| fp.decode_matrix(&reconstruct(a, b).view()))
        .collect();
    let d = max_diff(&secure, &twin);
    assert!(d < tol, "f = {frac}: affines differ from the twin's by {d}");
    assert!(
        max_diff(&twin, &init) > 1e-2,
        "the tiny model's statistics moved"
    );
    let _ = model;
}

/// Measured: 4.1e-5 at f = 16, 2.4e-6 at f = 20 (fixed-point rounding of the means, the
/// variances and thirty Newton steps); tolerances 3e-4 and 3e-5.
#[tokio::test]
async fn calibration_on_shares_matches_the_twin() {
    secure_case(16, 3e-4).await;
    secure_case(20, 3e-5).await;
}
