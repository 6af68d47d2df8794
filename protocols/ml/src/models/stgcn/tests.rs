//! The plaintext twin against the `stgcn` crate: forward logits, export round trip, the
//! backward pass against finite differences, training lowers the loss, bad input is refused.

use super::forward::forward;
use super::optim::forward_backward;
use super::*;
use crate::backend::Plain;
use ndarray::{Array2, Array5, ArrayD};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use stgcn::{ActivationKind, Architecture, InputNorm, StGcn, StGcnConfig};

pub(super) const N: usize = 8;
const Q: usize = 3;

/// A tiny ST-GCN: 5-node graph, T = 8, widths 4/8/8 (block 1 stride 2 with a conv residual,
/// block 2 an identity residual), some activations pruned, every tensor randomised (BN
/// statistics, affines, biases, edge importance, poly coefficients), input normalisation fitted.
pub(super) fn tiny_model(act: ActivationKind, seed: u64) -> (StGcn, Array5<f64>, Vec<usize>) {
    let a = stgcn::spatial_partition(5, &[(0, 1), (1, 2), (2, 3), (1, 4)], 1).unwrap();
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 16, 3, 8, &a, Q);
    cfg.activation = act;
    // Near the identity with a small square term, so the class signal survives three blocks.
    cfg.poly_init = [0.1, 1.0, 0.0];
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    // Class `i mod Q` raises coordinate `i mod Q` of nodes 0..3: learnable from pooled features.
    let x = Array5::from_shape_fn((N, 3, 8, 5, 1), |(i, c, _, v, _)| {
        let signal = if c == i % Q && v < 3 { 1.0 } else { 0.0 };
        rng.gen_range(-1.0..1.0) + signal
    });
    cfg.input_norm = Some(InputNorm::fit(x.view()));
    cfg.prune(0, 1, &[2]).unwrap();
    cfg.prune(2, 0, &[0, 4]).unwrap();
    let mut model = StGcn::new(cfg, seed).unwrap();
    let updates: Vec<(String, ArrayD<f64>)> = model
        .tensors()
        .iter()
        .map(|t| {
            let (lo, hi) = match t.name.rsplit('.').next().unwrap() {
                "running_var" => (0.7, 1.5),
                "edge_importance" => (0.5, 1.5),
                "a" | "b" | "c" => (-0.05, 0.05),
                // x² of x² of … grows fast: keep the square model's BN scales small.
                "weight" if t.name.contains("bn") && act == ActivationKind::Square => (0.3, 0.7),
                "weight" if t.name.contains("bn") => (0.8, 1.2),
                _ => (-0.2, 0.2),
            };
            let keep = t.name.ends_with("conv.weight") || t.name == "fc.weight";
            let base = |v: f64| match t.name.rsplit('.').next().unwrap() {
                "a" | "b" | "c" => v,
                _ => 0.0,
            };
            let v = t.value.mapv(|v| {
                if keep {
                    v
                } else {
                    base(v) + rng.gen_range(lo..hi)
                }
            });
            (t.name.clone(), v)
        })
        .collect();
    for (name, v) in updates {
        model.set_tensor(&name, v).unwrap();
    }
    let labels = (0..N).map(|i| i % Q).collect();
    (model, x, labels)
}

/// The dataset as `N × (C·T·V·M)` and one-hot labels.
pub(super) fn as_rows(x: &Array5<f64>, labels: &[usize]) -> (Array2<f64>, Array2<f64>) {
    let n = x.dim().0;
    let cols = x.len() / n;
    let rows = x
        .as_standard_layout()
        .into_owned()
        .into_shape_with_order((n, cols))
        .unwrap();
    let y = Array2::from_shape_fn((n, Q), |(i, j)| f64::from(u8::from(labels[i] == j)));
    (rows, y)
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    assert_eq!(a.dim(), b.dim());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

async fn twin_logits(shape: &StgcnShape, params: &[Array2<f64>], x: &Array2<f64>) -> Array2<f64> {
    let b = &mut Plain::new();
    let xp = prepare_inputs(b, shape, x).await.unwrap();
    let rows: Vec<usize> = (0..x.nrows()).collect();
    forward(b, shape, &xp, params, &rows).await.unwrap().0
}

/// The twin's forward pass (fixed BN statistics) is the crate's evaluation-mode forward pass,
/// and exporting the untouched parameters gives back the starting model's tensors.
#[tokio::test]
async fn twin_forward_and_export_match_the_stgcn_crate() {
    for act in [ActivationKind::Poly, ActivationKind::Square] {
        let (model, x, labels) = tiny_model(act, 1);
        let shape = StgcnShape::from_model(&model).unwrap();
        let params = initial_params(&shape, &model);
        let (rows, _) = as_rows(&x, &labels);
        let ours = twin_logits(&shape, &params, &rows).await;
        let theirs = model.forward(x.view()).unwrap();
        let d = max_abs_diff(&ours, &theirs);
        assert!(d < 1e-9, "{act:?}: max |logits − stgcn| = {d}");
        assert!(theirs.iter().any(|v| v.abs() > 1e-3), "non-trivial logits");
        let exported = export_tensors(&mut Plain::new(), &shape, &params)
            .await
            .unwrap();
        let back = to_model(&shape, &model, &exported).unwrap();
        for (a, b) in model.tensors().iter().zip(back.tensors()) {
            let d = a
                .value
                .iter()
                .zip(b.value.iter())
                .map(|(x, y)| (x - y).abs());
            assert!(d.fold(0.0, f64::max) < 1e-12, "{}", a.name);
        }
    }
}

/// Mean cross-entropy of logits against one-hot labels, and `P − Y`.
fn loss_and_grad(logits: &Array2<f64>, y: &Array2<f64>) -> (f64, Array2<f64>) {
    let p = crate::backend::softmax_rows(logits, crate::backend::SoftmaxKind::Exp);
    let loss = -(&p.mapv(f64::ln) * y).sum() / logits.nrows() as f64;
    (loss, &p - y)
}

/// The hand-written backward pass equals central finite differences of the mean loss within
/// 1e-5 relative (h = 1e-5: truncation error O(h²) and rounding O(ε/h) are both far below).
#[tokio::test]
async fn backward_matches_finite_differences() {
    for act in [ActivationKind::Poly, ActivationKind::Square] {
        let (model, x, labels) = tiny_model(act, 2);
        let shape = StgcnShape::from_model(&model).unwrap();
        let params = initial_params(&shape, &model);
        let (rows, y) = as_rows(&x, &labels);
        let b = &mut Plain::new();
        let xp = prepare_inputs(b, &shape, &rows).await.unwrap();
        let batch = [5usize, 0, 3, 6];
        let yb = y.select(ndarray::Axis(0), &batch);
        let loss = |ps: Vec<Array2<f64>>| {
            let (xp, yb) = (xp.clone(), yb.clone());
            let shape = shape.clone();
            async move {
                let l = forward(&mut Plain::new(), &shape, &xp, &ps, &batch)
                    .await
                    .unwrap()
                    .0;
                loss_and_grad(&l, &yb).0
            }
        };
        let (_, grads) =
            forward_backward(b, &shape, &xp, &params, &batch, |l| loss_and_grad(l, &yb).1)
                .await
                .unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let h = 1e-5;
        for (i, name) in shape.param_names().iter().enumerate() {
            let g = &grads[i] / batch.len() as f64;
            for _ in 0..3 {
                let (r, c) = (rng.gen_range(0..g.nrows()), rng.gen_range(0..g.ncols()));
                let mut plus = params.clone();
                plus[i][[r, c]] += h;
                let mut minus = params.clone();
                minus[i][[r, c]] -= h;
                let num = (loss(plus).await - loss(minus).await) / (2.0 * h);
                let ana = g[[r, c]];
                let tol = 1e-5 * ana.abs().max(num.abs()) + 1e-9;
                assert!(
                    (num - ana).abs() <= tol,
                    "{act:?} {name}[{r},{c}]: {num} vs {ana}"
                );
            }
        }
    }
}

/// Full-dataset mean loss of the twin under `params`.
async fn dataset_loss(
    shape: &StgcnShape,
    params: &[Array2<f64>],
    x: &Array2<f64>,
    y: &Array2<f64>,
) -> f64 {
    loss_and_grad(&twin_logits(shape, params, x).await, y).0
}

/// SGD with momentum and weight decay on the twin lowers the loss of the tiny model.
#[tokio::test]
async fn twin_training_lowers_the_loss() {
    let (model, x, labels) = tiny_model(ActivationKind::Poly, 4);
    let shape = StgcnShape::from_model(&model).unwrap();
    let params = initial_params(&shape, &model);
    let (rows, y) = as_rows(&x, &labels);
    let b = &mut Plain::new();
    let xp = prepare_inputs(b, &shape, &rows).await.unwrap();
    let before = dataset_loss(&shape, &params, &rows, &y).await;
    let velocity = params.iter().map(|p| Array2::zeros(p.dim())).collect();
    let mut state = StgcnState { params, velocity };
    let hyper = StgcnHyper {
        learning_rate: 0.2,
        momentum: 0.9,
        weight_decay: 1e-4,
        batch_size: 4,
    };
    let sched = crate::Schedule::shuffled(N, 4, 30, 9).unwrap();
    let batches: Vec<Vec<usize>> = sched.epochs.concat();
    let mut seen = 0;
    let mut count = |_: usize, o: &StepOutputs<Array2<f64>>| {
        assert_eq!(o.p_true.dim(), (4, 1));
        assert!(o.p_true.iter().all(|&p| (0.0..=1.0).contains(&p)));
        seen += 1;
    };
    train(b, &shape, &xp, &y, &mut state, &batches, &hyper, &mut count)
        .await
        .unwrap();
    assert_eq!(seen, batches.len());
    let after = dataset_loss(&shape, &state.params, &rows, &y).await;
    assert!(after < 0.5 * before, "loss {before} → {after}");
}

/// ReLU models, several persons, wrong parameter lists, bad batch rows and bad
/// hyper-parameters are refused with errors naming the value.
#[tokio::test]
async fn bad_models_and_inputs_are_refused() {
    let (model, x, labels) = tiny_model(ActivationKind::Square, 5);
    let relu = {
        let mut c = model.config().clone();
        c.activation = ActivationKind::Relu;
        StGcn::new(c, 1).unwrap()
    };
    let e = StgcnShape::from_model(&relu).unwrap_err().to_string();
    assert!(e.contains("Relu"), "{e}");
    let two = {
        let mut c = model.config().clone();
        c.num_persons = 2;
        StGcn::new(c, 1).unwrap()
    };
    let e = StgcnShape::from_model(&two).unwrap_err().to_string();
    assert!(e.contains("num_persons = 2"), "{e}");
    let shape = StgcnShape::from_model(&model).unwrap();
    let params = initial_params(&shape, &model);
    let (rows, y) = as_rows(&x, &labels);
    let velocity = params.iter().map(|p| Array2::zeros(p.dim())).collect();
    let mut state = StgcnState { params, velocity };
    let hyper = StgcnHyper {
        learning_rate: 0.1,
        momentum: 0.0,
        weight_decay: 0.0,
        batch_size: 2,
    };
    let b = &mut Plain::new();
    let e = step(b, &shape, &rows, &y, &mut state, &[1, 8], &hyper)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("index 1 has value 8, limit 8"),
        "{e}"
    );
    let e = step(b, &shape, &rows, &y, &mut state, &[1], &hyper)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("value 1, limit 2"), "{e}");
    let bad = StgcnHyper {
        momentum: 1.0,
        ..hyper
    };
    assert!(step(b, &shape, &rows, &y, &mut state, &[1, 2], &bad)
        .await
        .is_err());
    state.params.pop();
    let e = step(b, &shape, &rows, &y, &mut state, &[1, 2], &hyper)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("parameter count"), "{e}");
    let short = Array2::zeros((N, shape.input_cols() - 1));
    assert!(prepare_inputs(b, &shape, &short).await.is_err());
}

/// The offline phase can run in chunks of steps: the plans of consecutive chunks, concatenated,
/// are the plan of the whole run (no state carries over between steps in the plan).
#[tokio::test]
async fn step_plans_concatenate_over_chunks() {
    let (model, _, _) = tiny_model(ActivationKind::Poly, 6);
    let shape = StgcnShape::from_model(&model).unwrap();
    let hyper = StgcnHyper {
        learning_rate: 0.1,
        momentum: 0.9,
        weight_decay: 1e-4,
        batch_size: 2,
    };
    let batches = vec![vec![0, 1], vec![2, 3], vec![4, 5]];
    let whole = plan_steps(&shape, N, &batches, &hyper).await.unwrap();
    let mut chunks = plan_steps(&shape, N, &batches[..1], &hyper).await.unwrap();
    chunks.extend(plan_steps(&shape, N, &batches[1..], &hyper).await.unwrap());
    assert_eq!(whole, chunks);
    assert!(!whole.is_empty());
    assert!(
        plan_prepare(&shape, N).await.unwrap().is_empty(),
        "local: no triples"
    );
    assert!(!plan_export_with(&shape, mpc::trunc::Truncation::Exact)
        .await
        .unwrap()
        .is_empty());
}
