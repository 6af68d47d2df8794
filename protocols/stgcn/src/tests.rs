//! Acceptance tests of the ST-GCN crate: finite-difference gradient checks of every layer and of
//! a whole model, over-fitting a tiny set, model-file round trips and BN folding.

use ndarray::{Array1, Array2, Array3, Array4, Array5, ArrayD, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

use super::ops::{self, ActParams};
use super::*;

pub(super) fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub(super) fn randn<D: ndarray::Dimension, Sh: ndarray::ShapeBuilder<Dim = D>>(
    r: &mut ChaCha20Rng,
    shape: Sh,
) -> ndarray::Array<f64, D> {
    ndarray::Array::from_shape_simple_fn(shape, || r.gen_range(-1.0..1.0))
}

/// Central finite differences of `f` at `x`.
pub(super) fn numeric_grad(x: &ArrayD<f64>, f: impl Fn(&ArrayD<f64>) -> f64) -> ArrayD<f64> {
    let h = 1e-6;
    let mut g = ArrayD::zeros(x.raw_dim());
    let mut xp = x.clone();
    for i in 0..x.len() {
        let orig = xp.as_slice().unwrap()[i];
        xp.as_slice_mut().unwrap()[i] = orig + h;
        let fp = f(&xp);
        xp.as_slice_mut().unwrap()[i] = orig - h;
        let fm = f(&xp);
        xp.as_slice_mut().unwrap()[i] = orig;
        g.as_slice_mut().unwrap()[i] = (fp - fm) / (2.0 * h);
    }
    g
}

pub(super) fn assert_grad_close(what: &str, analytic: &ArrayD<f64>, numeric: &ArrayD<f64>) {
    assert_eq!(analytic.shape(), numeric.shape(), "{what}: shapes");
    let scale = numeric.iter().fold(1e-3_f64, |m, x| m.max(x.abs()));
    for (i, (a, n)) in analytic.iter().zip(numeric.iter()).enumerate() {
        let err = (a - n).abs();
        assert!(
            err <= 1e-6 + 1e-5 * scale,
            "{what}[{i}]: analytic {a}, numeric {n} (scale {scale})"
        );
    }
}

pub(super) fn dot(a: &Array4<f64>, b: &Array4<f64>) -> f64 {
    (a * b).sum()
}

pub(super) fn to4(x: &ArrayD<f64>) -> Array4<f64> {
    x.clone().into_dimensionality().unwrap()
}

// ------------------------------------------------------------------ layer gradient checks

#[test]
fn grad_conv1x1_stride_1_and_2() {
    for (stride, t) in [(1, 5), (2, 5), (2, 6)] {
        let mut r = rng(1);
        let x = randn(&mut r, (2, 3, t, 4)).into_dyn();
        let w = randn(&mut r, (5, 3)).into_dyn();
        let b = randn(&mut r, 5).into_dyn();
        let to = ops::out_frames(t, stride);
        let up = randn(&mut r, (2, 5, to, 4));
        let f = |x: &ArrayD<f64>, w: &ArrayD<f64>, b: &ArrayD<f64>| {
            let y = ops::conv1x1_forward(
                &to4(x),
                w.view().into_dimensionality().unwrap(),
                b.view().into_dimensionality().unwrap(),
                stride,
            );
            dot(&y, &up)
        };
        let (dx, g) = ops::conv1x1_backward(
            &to4(&x),
            w.view().into_dimensionality().unwrap(),
            &up,
            stride,
        );
        let tag = format!("conv1x1 s{stride} T{t}");
        assert_grad_close(&tag, &dx.into_dyn(), &numeric_grad(&x, |x| f(x, &w, &b)));
        assert_grad_close(&tag, &g.w.into_dyn(), &numeric_grad(&w, |w| f(&x, w, &b)));
        assert_grad_close(&tag, &g.b.into_dyn(), &numeric_grad(&b, |b| f(&x, &w, b)));
    }
}

#[test]
fn grad_graph_aggregation_and_adjacency() {
    let mut r = rng(2);
    let (k, c, t, v) = (3, 2, 3, 4);
    let u = randn(&mut r, (2, k * c, t, v)).into_dyn();
    let a = randn(&mut r, (k, v, v)).into_dyn();
    let up = randn(&mut r, (2, c, t, v));
    // Support with structural zeros: gradients there must be zero, elsewhere exact.
    let support = Array3::from_shape_fn((k, v, v), |(ki, vi, wi)| {
        if (ki + vi + 2 * wi) % 3 == 0 {
            0.0
        } else {
            1.0
        }
    });
    let sparse = |a: &ArrayD<f64>| {
        ops::SparseAdjacency::new(&a.clone().into_dimensionality().unwrap(), &support)
    };
    let masked = |a: &ArrayD<f64>| a * &support.clone().into_dyn();
    let f = |u: &ArrayD<f64>, a: &ArrayD<f64>| {
        dot(&ops::aggregate_forward(&to4(u), &sparse(&masked(a))), &up)
    };
    // Against the dense definition.
    let y = ops::aggregate_forward(&to4(&u), &sparse(&a));
    let (u4, am) = (to4(&u), masked(&a));
    for ((b, ci, ti, wi), &yv) in y.indexed_iter() {
        let mut acc = 0.0;
        for ki in 0..k {
            for vi in 0..v {
                acc += u4[[b, ki * c + ci, ti, vi]] * am[[ki, vi, wi]];
            }
        }
        assert!((acc - yv).abs() < 1e-12);
    }
    let (du, da) = ops::aggregate_backward(&to4(&u), &sparse(&a), &up);
    assert_grad_close(
        "aggregate du",
        &du.into_dyn(),
        &numeric_grad(&u, |u| f(u, &a)),
    );
    assert_grad_close(
        "aggregate dA",
        &da.into_dyn(),
        &numeric_grad(&a, |a| f(&u, a)),
    );
}

#[test]
fn grad_temporal_conv_stride_1_and_2() {
    for (stride, t, ks) in [(1, 7, 9), (2, 7, 9), (2, 10, 9), (1, 4, 3)] {
        let mut r = rng(3);
        let x = randn(&mut r, (2, 2, t, 3)).into_dyn();
        let w = randn(&mut r, (3, 2, ks)).into_dyn();
        let b = randn(&mut r, 3).into_dyn();
        let to = ops::out_frames(t, stride);
        let up = randn(&mut r, (2, 3, to, 3));
        let f = |x: &ArrayD<f64>, w: &ArrayD<f64>, b: &ArrayD<f64>| {
            let y = ops::tconv_forward(
                &to4(x),
                w.view().into_dimensionality().unwrap(),
                b.view().into_dimensionality().unwrap(),
                stride,
            );
            dot(&y, &up)
        };
        let (dx, g) = ops::tconv_backward(
            &to4(&x),
            w.view().into_dimensionality().unwrap(),
            &up,
            stride,
        );
        let tag = format!("tconv s{stride} T{t} K{ks}");
        assert_grad_close(&tag, &dx.into_dyn(), &numeric_grad(&x, |x| f(x, &w, &b)));
        assert_grad_close(&tag, &g.w.into_dyn(), &numeric_grad(&w, |w| f(&x, w, &b)));
        assert_grad_close(&tag, &g.b.into_dyn(), &numeric_grad(&b, |b| f(&x, &w, b)));
    }
}

#[test]
fn temporal_conv_matches_direct_definition() {
    let mut r = rng(4);
    let (ci, co, t, v, ks, stride) = (2, 3, 7, 2, 9, 2);
    let x = randn(&mut r, (1, ci, t, v));
    let w = randn(&mut r, (co, ci, ks));
    let b = randn(&mut r, co);
    let y = ops::tconv_forward(&x, w.view(), b.view(), stride);
    let pad = ks / 2;
    for o in 0..ops::out_frames(t, stride) {
        for c in 0..co {
            for vi in 0..v {
                let mut acc = b[c];
                for cj in 0..ci {
                    for j in 0..ks {
                        let ti = (o * stride + j) as isize - pad as isize;
                        if ti >= 0 && (ti as usize) < t {
                            acc += w[[c, cj, j]] * x[[0, cj, ti as usize, vi]];
                        }
                    }
                }
                assert!((y[[0, c, o, vi]] - acc).abs() < 1e-12);
            }
        }
    }
}

#[test]
fn grad_batch_norm_train_mode() {
    let mut r = rng(5);
    let x = randn(&mut r, (3, 4, 3, 2)).into_dyn();
    let g = randn(&mut r, 4).into_dyn();
    let be = randn(&mut r, 4).into_dyn();
    let up = randn(&mut r, (3, 4, 3, 2));
    let f = |x: &ArrayD<f64>, g: &ArrayD<f64>, be: &ArrayD<f64>| {
        let (y, ..) = ops::bn_train_forward(
            &to4(x),
            g.view().into_dimensionality().unwrap(),
            be.view().into_dimensionality().unwrap(),
            1e-5,
        );
        dot(&y, &up)
    };
    let (_, cache, ..) = ops::bn_train_forward(
        &to4(&x),
        g.view().into_dimensionality().unwrap(),
        be.view().into_dimensionality().unwrap(),
        1e-5,
    );
    let (dx, dg, db) = ops::bn_backward(&up, &cache, g.view().into_dimensionality().unwrap());
    assert_grad_close(
        "bn dx",
        &dx.into_dyn(),
        &numeric_grad(&x, |x| f(x, &g, &be)),
    );
    assert_grad_close(
        "bn dgamma",
        &dg.into_dyn(),
        &numeric_grad(&g, |g| f(&x, g, &be)),
    );
    assert_grad_close(
        "bn dbeta",
        &db.into_dyn(),
        &numeric_grad(&be, |b| f(&x, &g, b)),
    );
}

#[test]
fn grad_activations_relu_square_poly_with_mask() {
    let keep = [true, false, true];
    for kind in [
        ActivationKind::Relu,
        ActivationKind::Square,
        ActivationKind::Poly,
    ] {
        let mut r = rng(6);
        // Keep ReLU inputs away from the kink so finite differences are meaningful.
        let x = randn(&mut r, (2, 2, 3, 3))
            .mapv(|e: f64| if e.abs() < 0.05 { e + 0.2 } else { e })
            .into_dyn();
        let coef = randn(&mut r, (3, 3)).into_dyn();
        let up = randn(&mut r, (2, 2, 3, 3));
        let f = |x: &ArrayD<f64>, coef: &ArrayD<f64>| {
            let c = coef.as_slice().unwrap();
            let p = ActParams {
                kind,
                poly: Some((&c[0..3], &c[3..6], &c[6..9])),
                keep: &keep,
                gate: None,
            };
            dot(&ops::act_forward(&to4(x), p), &up)
        };
        let c = coef.as_slice().unwrap();
        let p = ActParams {
            kind,
            poly: Some((&c[0..3], &c[3..6], &c[6..9])),
            keep: &keep,
            gate: None,
        };
        let (dx, dcoef) = ops::act_backward(&to4(&x), &up, p);
        let tag = format!("{kind:?}");
        assert_grad_close(&tag, &dx.into_dyn(), &numeric_grad(&x, |x| f(x, &coef)));
        assert_grad_close(&tag, &dcoef.into_dyn(), &numeric_grad(&coef, |c| f(&x, c)));
        // Pruned node 1 is the identity.
        let y = ops::act_forward(&to4(&x), p);
        let x4 = to4(&x);
        assert_eq!(y[[1, 1, 2, 1]], x4[[1, 1, 2, 1]]);
    }
}

#[test]
fn grad_pooling_dense_softmax_cross_entropy() {
    let mut r = rng(7);
    let persons = 2;
    let x = randn(&mut r, (4, 3, 2, 2)).into_dyn();
    let w = randn(&mut r, (4, 3)).into_dyn();
    let b = randn(&mut r, 4).into_dyn();
    let labels = [1, 3];
    let f = |x: &ArrayD<f64>, w: &ArrayD<f64>, b: &ArrayD<f64>| {
        let p = ops::pool_forward(&to4(x), persons);
        let l = ops::dense_forward(
            &p,
            w.view().into_dimensionality().unwrap(),
            b.view().into_dimensionality().unwrap(),
        );
        ops::softmax_cross_entropy(&l, &labels).0
    };
    let p = ops::pool_forward(&to4(&x), persons);
    let l = ops::dense_forward(
        &p,
        w.view().into_dimensionality().unwrap(),
        b.view().into_dimensionality().unwrap(),
    );
    let (_, dl) = ops::softmax_cross_entropy(&l, &labels);
    let (dp, dw, db) = ops::dense_backward(&p, w.view().into_dimensionality().unwrap(), &dl);
    let dx = ops::pool_backward(&dp, to4(&x).dim(), persons);
    assert_grad_close(
        "pool dx",
        &dx.into_dyn(),
        &numeric_grad(&x, |x| f(x, &w, &b)),
    );
    assert_grad_close(
        "dense dW",
        &dw.into_dyn(),
        &numeric_grad(&w, |w| f(&x, w, &b)),
    );
    assert_grad_close(
        "dense db",
        &db.into_dyn(),
        &numeric_grad(&b, |b| f(&x, &w, b)),
    );
    // Softmax CE on its own, against its logits.
    let ld = l.clone().into_dyn();
    let fl = |l: &ArrayD<f64>| {
        ops::softmax_cross_entropy(&l.clone().into_dimensionality().unwrap(), &labels).0
    };
    assert_grad_close("softmax-CE", &dl.into_dyn(), &numeric_grad(&ld, fl));
}

// ------------------------------------------------------------------ whole-model helpers

/// Chain-and-branch test skeleton with `v` nodes.
fn test_graph(v: usize) -> Array3<f64> {
    let mut edges: Vec<(usize, usize)> = (1..v).map(|i| (i - 1, i)).collect();
    if v > 4 {
        edges.push((1, v - 1));
    }
    spatial_partition(v, &edges, 1).unwrap()
}

/// Three small blocks: no residual, strided conv residual, identity residual.
pub(super) fn tiny_config(activation: ActivationKind, persons: usize, v: usize) -> StGcnConfig {
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 16, 3, 6, &test_graph(v), 3);
    cfg.blocks = vec![
        BlockSpec {
            in_channels: 3,
            out_channels: 3,
            stride: 1,
            residual: false,
        },
        BlockSpec {
            in_channels: 3,
            out_channels: 4,
            stride: 2,
            residual: true,
        },
        BlockSpec {
            in_channels: 4,
            out_channels: 4,
            stride: 1,
            residual: true,
        },
    ];
    cfg.architecture = None;
    cfg.activation = activation;
    cfg.num_persons = persons;
    cfg.prune(1, 0, &[2]).unwrap();
    cfg.prune(2, 1, &[0]).unwrap();
    assert_eq!(cfg.num_nonlinear_activations(), 6 * v - 2);
    assert!(cfg.prune(3, 0, &[0]).is_err() && cfg.prune(0, 2, &[0]).is_err());
    assert!(cfg.prune(0, 0, &[v]).is_err());
    cfg
}

pub(super) fn random_input(
    seed: u64,
    n: usize,
    c: usize,
    t: usize,
    v: usize,
    m: usize,
) -> Array5<f64> {
    let mut r = rng(seed);
    randn(&mut r, (n, c, t, v, m))
}

/// Randomises BN statistics and affine parameters, poly coefficients and edge importance so
/// that folding and loading are exercised on non-trivial values.
pub(super) fn perturb(model: &mut StGcn, seed: u64) {
    let mut r = rng(seed);
    let names: Vec<String> = model.tensors().iter().map(|t| t.name.clone()).collect();
    for name in names {
        let mut t = model.tensor(&name).unwrap().clone();
        let tweak = |x: &mut f64, r: &mut ChaCha20Rng, lo: f64, hi: f64| *x += r.gen_range(lo..hi);
        if name.ends_with("running_var") {
            t.mapv_inplace(|_| r.gen_range(0.5..2.0));
        } else if name.ends_with("running_mean") || name.ends_with(".bias") {
            t.iter_mut().for_each(|x| tweak(x, &mut r, -0.3, 0.3));
        } else if name.ends_with("edge_importance") || name.contains("bn") || name.contains(".act")
        {
            t.iter_mut().for_each(|x| tweak(x, &mut r, -0.2, 0.2));
        }
        model.set_tensor(&name, t).unwrap();
    }
}

#[test]
fn grad_whole_model_every_tensor() {
    for activation in [ActivationKind::Poly, ActivationKind::Square] {
        let (v, m) = (5, 2);
        let mut cfg = tiny_config(activation, m, v);
        let x = random_input(8, 2, 3, 6, v, m);
        cfg.input_norm = Some(InputNorm::fit(x.view()));
        let mut model = StGcn::new(cfg, 11).unwrap();
        perturb(&mut model, 12);
        let labels = [0, 2];
        let (_, _, grads) = model.clone().loss_and_gradients(x.view(), &labels).unwrap();
        for (i, t) in model.tensors().iter().enumerate() {
            if t.role == TensorRole::Buffer {
                assert!(grads.as_slice()[i].iter().all(|&g| g == 0.0));
                continue;
            }
            let numeric = numeric_grad(&t.value, |p| {
                let mut m2 = model.clone();
                m2.set_tensor(&t.name, p.clone()).unwrap();
                m2.loss_and_gradients(x.view(), &labels).unwrap().0
            });
            assert_grad_close(
                &format!("{activation:?} {}", t.name),
                &grads.as_slice()[i],
                &numeric,
            );
        }
    }
}

// ------------------------------------------------------------------ training

#[test]
fn tiny_model_overfits_tiny_set() {
    let v = 5;
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 16, 3, 8, &test_graph(v), 2);
    cfg.activation = ActivationKind::Poly;
    assert_eq!(
        cfg.blocks
            .iter()
            .map(|b| b.out_channels)
            .collect::<Vec<_>>(),
        vec![4, 8, 8]
    );
    let x = random_input(21, 8, 3, 8, v, 1);
    let labels = [0, 1, 0, 1, 1, 0, 0, 1];
    let mut model = StGcn::new(cfg, 3).unwrap();
    let before = evaluate(&model, x.view(), &labels).unwrap();
    let tc = TrainConfig {
        epochs: 40,
        batch_size: 8,
        learning_rate: 0.02,
        momentum: 0.9,
        weight_decay: 1e-4,
        schedule: LrSchedule::Cosine,
        seed: 5,
        clip_grad_norm: Some(1.0),
        warmup_epochs: 0,
    };
    let hist = train(&mut model, x.view(), &labels, &tc, |_| {}).unwrap();
    let after = evaluate(&model, x.view(), &labels).unwrap();
    assert_eq!(hist.len(), 40);
    assert!(
        hist.last().unwrap().loss < 0.2 * hist[0].loss,
        "loss {} -> {}",
        hist[0].loss,
        hist.last().unwrap().loss
    );
    assert_eq!(after.accuracy, 1.0, "before {before:?}, after {after:?}");
}

#[test]
fn training_is_reproducible_from_seeds() {
    let v = 4;
    let cfg = tiny_config(ActivationKind::Relu, 1, v);
    let x = random_input(31, 6, 3, 6, v, 1);
    let labels = [0, 1, 2, 0, 1, 2];
    let tc = TrainConfig {
        epochs: 2,
        batch_size: 4,
        learning_rate: 0.05,
        schedule: LrSchedule::Step {
            milestones: vec![1],
            gamma: 0.1,
        },
        ..TrainConfig::default()
    };
    let run = || {
        let mut model = StGcn::new(cfg.clone(), 9).unwrap();
        let h = train(&mut model, x.view(), &labels, &tc, |_| {}).unwrap();
        (model.forward(x.view()).unwrap(), h[1].learning_rate)
    };
    let (a, lr) = run();
    let (b, _) = run();
    assert_eq!(a, b);
    assert!((lr - 0.005).abs() < 1e-15);
    // Epoch-by-epoch training with evaluation in between gives the same model.
    let mut model = StGcn::new(cfg.clone(), 9).unwrap();
    let mut trainer = Trainer::new(&model, tc.clone()).unwrap();
    for e in 0..2 {
        let s = trainer.run_epoch(&mut model, x.view(), &labels).unwrap();
        assert_eq!(s.epoch, e);
        let _ = evaluate(&model, x.view(), &labels).unwrap();
    }
    assert_eq!(model.forward(x.view()).unwrap(), a);
    let bad = TrainConfig {
        batch_size: 0,
        ..tc.clone()
    };
    assert!(Trainer::new(&model, bad).is_err());
}

#[test]
fn warm_up_ramps_the_learning_rate_linearly() {
    let v = 4;
    let cfg = tiny_config(ActivationKind::Square, 1, v);
    let x = random_input(33, 4, 3, 6, v, 1);
    let labels = [0, 1, 2, 0];
    // Two batches per epoch, warm-up over two epochs: the last batch of epoch e uses
    // (2e + 2) / 4 of the rate, then the constant rate.
    let tc = TrainConfig {
        epochs: 3,
        batch_size: 2,
        learning_rate: 0.08,
        schedule: LrSchedule::Constant,
        warmup_epochs: 2,
        ..TrainConfig::default()
    };
    let mut model = StGcn::new(cfg, 4).unwrap();
    let h = train(&mut model, x.view(), &labels, &tc, |_| {}).unwrap();
    let lrs: Vec<f64> = h.iter().map(|s| s.learning_rate).collect();
    for (got, want) in lrs.iter().zip([0.04, 0.08, 0.08]) {
        assert!((got - want).abs() < 1e-15, "{lrs:?}");
    }
}

#[test]
fn activation_input_stats_and_pre_activation_bn_init() {
    let v = 5;
    let mut cfg = tiny_config(ActivationKind::Square, 1, v);
    let x = random_input(41, 6, 3, 8, v, 1);
    cfg.input_norm = Some(InputNorm::fit(x.view()));
    let mut model = StGcn::new(cfg, 2).unwrap();
    let before = model.clone();
    let st = model.activation_input_stats(x.view()).unwrap();
    assert_eq!(st.len(), 6);
    assert_eq!((st[3].block, st[3].site), (1, 1));
    // Site 0 sees a training-mode BN output with γ = 1, β = 0: zero mean, unit RMS per
    // channel (up to ε = 1e-5 in the variance).
    for a in st.iter().filter(|a| a.site == 0) {
        assert!(a.mean.abs() < 1e-12 && (a.rms - 1.0).abs() < 1e-4, "{a:?}");
        assert!(a.max_abs >= a.rms);
    }
    // The running statistics were left alone.
    for (a, b) in model.tensors().iter().zip(before.tensors()) {
        assert_eq!(a.value, b.value, "{}", a.name);
    }
    // γ = 0.1, β = 0.5 before every activation: site 0 has mean 0.5 and RMS √(0.25 + 0.01);
    // the first block (no residual) has the same at site 1.
    model.init_pre_activation_bn(0.1, 0.5);
    assert_eq!(model.tensor("blocks.1.residual.bn.weight").unwrap()[0], 0.1);
    assert_eq!(model.tensor("blocks.1.residual.bn.bias").unwrap()[0], 0.0);
    let st = model.activation_input_stats(x.view()).unwrap();
    let want = (0.25f64 + 0.01).sqrt();
    for a in st.iter().filter(|a| a.site == 0 || a.block == 0) {
        assert!(
            (a.mean - 0.5).abs() < 1e-9 && (a.rms - want).abs() < 1e-4,
            "{a:?}"
        );
    }
    // Still a model whose folded form computes the same function.
    let err = max_abs_diff(
        &model.forward(x.view()).unwrap(),
        &model.fold().forward(x.view()).unwrap(),
    );
    assert!(err < 1e-9, "max |diff| = {err}");
}

#[test]
fn input_validation_errors_name_the_problem() {
    let model = StGcn::new(tiny_config(ActivationKind::Square, 1, 4), 0).unwrap();
    let bad = random_input(1, 2, 2, 6, 4, 1);
    match model.forward(bad.view()) {
        Err(ModelError::InputShape {
            what,
            expected: 3,
            found: 2,
        }) => assert_eq!(what, "channels C"),
        other => panic!("unexpected {other:?}"),
    }
    let x = random_input(1, 2, 3, 6, 4, 1);
    let mut m2 = model.clone();
    assert!(matches!(
        m2.loss_and_gradients(x.view(), &[0, 7]),
        Err(ModelError::LabelOutOfRange { label: 7, .. })
    ));
}

// ------------------------------------------------------------------ model files

#[test]
fn save_load_round_trip_is_exact() {
    let v = 5;
    let mut cfg = tiny_config(ActivationKind::Poly, 2, v);
    cfg.class_names = vec!["wave".into(), "jump".into(), "sit".into()];
    let x = random_input(41, 3, 3, 6, v, 2);
    cfg.input_norm = Some(InputNorm::fit(x.view()));
    let mut model = StGcn::new(cfg, 4).unwrap();
    perturb(&mut model, 42);
    let json = model.config_json().unwrap();
    let bytes = model.to_safetensors_bytes().unwrap();
    let loaded = StGcn::from_json_and_safetensors(&json, &bytes).unwrap();
    assert_eq!(loaded.config(), model.config());
    for (a, b) in model.tensors().iter().zip(loaded.tensors()) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.value, b.value, "{}", a.name);
    }
    assert_eq!(
        model.forward(x.view()).unwrap(),
        loaded.forward(x.view()).unwrap()
    );
}

#[test]
fn load_with_wrong_shape_fails_naming_the_tensor() {
    let v = 4;
    let saved = StGcn::new(tiny_config(ActivationKind::Square, 1, v), 0).unwrap();
    let bytes = saved.to_safetensors_bytes().unwrap();
    let mut cfg = tiny_config(ActivationKind::Square, 1, v);
    cfg.num_classes = 2;
    let mut other = StGcn::new(cfg, 0).unwrap();
    let before = other.tensor("fc.weight").unwrap().clone();
    match other.load_safetensors_bytes(&bytes) {
        Err(ModelError::ShapeMismatch {
            tensor,
            expected,
            found,
        }) => {
            assert_eq!(tensor, "fc.weight");
            assert_eq!(expected, vec![2, 4]);
            assert_eq!(found, vec![3, 4]);
            let msg = ModelError::ShapeMismatch {
                tensor,
                expected,
                found,
            }
            .to_string();
            assert!(msg.contains("fc.weight") && msg.contains("[2, 4]") && msg.contains("[3, 4]"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        other.tensor("fc.weight").unwrap(),
        &before,
        "model unchanged"
    );

    // A model with a different activation lacks the poly tensors: named as unknown.
    let mut poly = StGcn::new(tiny_config(ActivationKind::Poly, 1, v), 0).unwrap();
    let poly_bytes = poly.to_safetensors_bytes().unwrap();
    let mut square = StGcn::new(tiny_config(ActivationKind::Square, 1, v), 0).unwrap();
    assert!(matches!(
        square.load_safetensors_bytes(&poly_bytes),
        Err(ModelError::UnknownTensor { tensor }) if tensor.contains(".act")
    ));
    assert!(matches!(
        poly.load_safetensors_bytes(&bytes),
        Err(ModelError::MissingTensor { tensor }) if tensor == "blocks.0.act1.a"
    ));
}

#[test]
fn load_accepts_pytorch_style_f32_kernels() {
    use safetensors::{tensor::TensorView, Dtype};
    let v = 4;
    let model = StGcn::new(tiny_config(ActivationKind::Square, 1, v), 1).unwrap();
    // Re-export as F32 with PyTorch's trailing (…, 1, 1) kernel dimensions on 2-D weights.
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = model
        .tensors()
        .iter()
        .map(|t| {
            let mut shape = t.value.shape().to_vec();
            if t.name.ends_with("weight") && shape.len() == 2 {
                shape.extend([1, 1]);
            }
            let bytes = t
                .value
                .iter()
                .flat_map(|&x| (x as f32).to_le_bytes())
                .collect();
            (t.name.clone(), shape, bytes)
        })
        .chain(std::iter::once((
            "blocks.0.bn1.num_batches_tracked".to_string(),
            vec![],
            vec![0u8; 4],
        )))
        .collect();
    let views: Vec<(String, TensorView<'_>)> = data
        .iter()
        .map(|(n, s, b)| {
            let dtype = if n.ends_with("tracked") {
                Dtype::I32
            } else {
                Dtype::F32
            };
            (n.clone(), TensorView::new(dtype, s.clone(), b).unwrap())
        })
        .collect();
    let bytes = safetensors::serialize(views, &None).unwrap();
    let mut loaded = StGcn::new(tiny_config(ActivationKind::Square, 1, v), 2).unwrap();
    loaded.load_safetensors_bytes(&bytes).unwrap();
    for (a, b) in model.tensors().iter().zip(loaded.tensors()) {
        let err = (&a.value - &b.value)
            .mapv(f64::abs)
            .fold(0.0_f64, |m, &x| m.max(x));
        assert!(err < 1e-6, "{}: {err}", a.name);
    }
}

#[test]
fn config_json_round_trip_and_validation() {
    let cfg = StGcnConfig::new(Architecture::Stgcn6x256, 1, 3, 64, &test_graph(7), 10);
    assert_eq!(
        cfg.blocks
            .iter()
            .map(|b| (b.out_channels, b.stride, b.residual_is_conv()))
            .collect::<Vec<_>>(),
        vec![
            (64, 1, false),
            (64, 1, false),
            (128, 2, true),
            (128, 1, false),
            (256, 2, true),
            (256, 1, false)
        ]
    );
    assert!(!cfg.blocks[0].residual && cfg.blocks[1].residual);
    assert_eq!(cfg.frames_after_blocks(64), vec![64, 64, 32, 32, 16, 16]);
    let json = cfg.to_json().unwrap();
    assert!(json.contains("STGCN-6-256"));
    assert_eq!(StGcnConfig::from_json(&json).unwrap(), cfg);
    let named = GraphSpec::from_edges("chain", 3, &[(0, 1), (1, 2)], 1).unwrap();
    assert_eq!(named.num_subsets(), 3);
    assert_eq!(named.num_nodes(), 3);
    assert_eq!(named.center, Some(1));
    assert_eq!(
        named.adjacency_array().unwrap(),
        spatial_partition(3, &[(0, 1), (1, 2)], 1).unwrap()
    );
    let mut bad = cfg.clone();
    bad.activation_mask[3][1].pop();
    assert!(matches!(
        bad.validate(),
        Err(ModelError::MaskLength {
            block: 3,
            site: 1,
            expected: 7,
            found: 6
        })
    ));
    let mut bad = cfg;
    bad.blocks[2].stride = 3;
    assert!(matches!(
        bad.validate(),
        Err(ModelError::InvalidBlock {
            block: 2,
            field: "stride",
            ..
        })
    ));
}

// ------------------------------------------------------------------ folding

pub(super) fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    (a - b).mapv(f64::abs).fold(0.0, |m: f64, &x| m.max(x))
}

#[test]
fn folded_forward_equals_eval_forward() {
    let v = 5;
    for (activation, persons) in [
        (ActivationKind::Poly, 2),
        (ActivationKind::Square, 1),
        (ActivationKind::Relu, 2),
    ] {
        let mut cfg = tiny_config(activation, persons, v);
        let x = random_input(51, 3, 3, 7, v, persons);
        cfg.input_norm = Some(InputNorm::fit(x.view()));
        let mut model = StGcn::new(cfg, 6).unwrap();
        perturb(&mut model, 52);
        let folded = model.fold();
        let json = serde_json::to_string(&folded).unwrap();
        assert_eq!(serde_json::from_str::<FoldedModel>(&json).unwrap(), folded);
        let a = model.forward(x.view()).unwrap();
        let b = folded.forward(x.view()).unwrap();
        // x² six times over makes logits of order 1e16: compare relative to their size.
        let scale = a.iter().fold(1.0_f64, |m, x| m.max(x.abs()));
        let err = max_abs_diff(&a, &b);
        assert!(
            err < 1e-9 * scale,
            "{activation:?}: max |diff| = {err}, scale {scale}"
        );
        assert_eq!(folded.blocks[0].residual, FoldedResidual::None);
        assert_eq!(folded.blocks[2].residual, FoldedResidual::Identity);
        assert!(matches!(
            folded.blocks[1].residual,
            FoldedResidual::Conv { .. }
        ));
        if activation != ActivationKind::Relu {
            // Pruned node 2 of block 1, site 0 is (0, 1, 0).
            match &folded.blocks[1].act1 {
                FoldedActivation::Poly { a, b, c } => {
                    assert_eq!((a[2], b[2], c[2]), (0.0, 1.0, 0.0));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

#[test]
fn folded_model_after_training_steps() {
    // Running statistics produced by real training (not set by hand) fold the same way.
    let v = 4;
    let cfg = tiny_config(ActivationKind::Poly, 1, v);
    let x = random_input(61, 6, 3, 6, v, 1);
    let labels = [0, 1, 2, 2, 1, 0];
    let mut model = StGcn::new(cfg, 7).unwrap();
    model.prune_activations(0, 1, &[1, 3]).unwrap();
    let tc = TrainConfig {
        epochs: 3,
        batch_size: 3,
        learning_rate: 0.02,
        ..TrainConfig::default()
    };
    train(&mut model, x.view(), &labels, &tc, |_| {}).unwrap();
    let err = max_abs_diff(
        &model.forward(x.view()).unwrap(),
        &model.fold().forward(x.view()).unwrap(),
    );
    assert!(err < 1e-9, "max |diff| = {err}");
    assert!(matches!(
        &model.fold().blocks[0].act2,
        FoldedActivation::Poly { a, b, .. } if a[1] == 0.0 && b[3] == 1.0 && a[0] != 0.0
    ));
}

// ------------------------------------------------------------------ timing (ignored)

/// One epoch of STGCN-3-128 (poly activations) on 256 random (3, 64, 15, 1) clips, batch 32.
/// Run under `/usr/bin/time` to see CPU time as well as wall time:
/// `cargo test -p ml --release -- --ignored --nocapture stgcn3_128_epoch_time`.
#[test]
#[ignore]
fn stgcn3_128_epoch_time() {
    let v = 15;
    let edges: Vec<(usize, usize)> = vec![
        (0, 1),
        (1, 2),
        (2, 3),
        (3, 4),
        (1, 5),
        (5, 6),
        (6, 7),
        (1, 8),
        (8, 9),
        (9, 10),
        (0, 11),
        (11, 12),
        (0, 13),
        (13, 14),
    ];
    let a = spatial_partition(v, &edges, 1).unwrap();
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 1, 3, 64, &a, 10);
    cfg.activation = ActivationKind::Poly;
    let n = 256;
    let x = random_input(71, n, 3, 64, v, 1);
    let labels: Vec<usize> = (0..n).map(|i| i % 10).collect();
    let mut model = StGcn::new(cfg, 1).unwrap();
    println!(
        "STGCN-3-128: {} trainable parameters, {} threads",
        model.num_trainable_parameters(),
        rayon::current_num_threads()
    );
    let tc = TrainConfig {
        epochs: 1,
        batch_size: 32,
        learning_rate: 0.01,
        ..TrainConfig::default()
    };
    let h = train(&mut model, x.view(), &labels, &tc, |_| {}).unwrap();
    println!(
        "one training epoch of {n} clips (batch 32): {:.2} s wall ({:.1} ms/clip)",
        h[0].seconds,
        1e3 * h[0].seconds / n as f64
    );
}

#[test]
fn input_norm_standardises_its_data() {
    // InputNorm::fit gives zero mean / unit std per (c, v) on its own data.
    let x = random_input(81, 4, 2, 5, 3, 2);
    let norm = InputNorm::fit(x.view());
    let (scale, shift) = norm.affine();
    for c in 0..2 {
        for v in 0..3 {
            let xs = x.index_axis(Axis(1), c);
            let xv = xs
                .index_axis(Axis(2), v)
                .mapv(|e| scale[[c, v]] * e + shift[[c, v]]);
            assert!(xv.mean().unwrap().abs() < 1e-12);
            let var = xv.mapv(|e| e * e).mean().unwrap();
            assert!((var - 1.0).abs() < 1e-9);
        }
    }
}

/// Per-op timings on STGCN-3-128 block-2 shapes (profiling aid).
#[test]
#[ignore]
fn op_profile() {
    use std::time::Instant;
    let mut r = rng(1);
    let (b, ci, co, t, v) = (16, 64, 128, 64, 15);
    let x = randn(&mut r, (b, ci, t, v));
    let wg = randn(&mut r, (3 * co, ci));
    let bg = randn(&mut r, 3 * co);
    let a = randn(&mut r, (3, v, v));
    let wt = randn(&mut r, (co, co, 9));
    let bt = randn(&mut r, co);
    let g = Array1::ones(co);
    let be = Array1::zeros(co);
    let keep = vec![true; v];
    let p = ActParams {
        kind: ActivationKind::Square,
        poly: None,
        keep: &keep,
        gate: None,
    };
    let time = |name: &str, f: &mut dyn FnMut()| {
        let t0 = Instant::now();
        f();
        println!("{name:>16}: {:8.1} ms", t0.elapsed().as_secs_f64() * 1e3);
    };
    let mut u = Array4::zeros((1, 1, 1, 1));
    time("conv1x1 fwd", &mut || {
        u = ops::conv1x1_forward(&x, wg.view(), bg.view(), 1)
    });
    let a = ops::SparseAdjacency::new(&a, &test_graph(v));
    let mut y = Array4::zeros((1, 1, 1, 1));
    time("aggregate fwd", &mut || y = ops::aggregate_forward(&u, &a));
    let mut z = Array4::zeros((1, 1, 1, 1));
    let mut cache = None;
    time("bn fwd", &mut || {
        let (zz, c, ..) = ops::bn_train_forward(&y, g.view(), be.view(), 1e-5);
        z = zz;
        cache = Some(c);
    });
    let mut h = Array4::zeros((1, 1, 1, 1));
    time("act fwd", &mut || h = ops::act_forward(&z, p));
    let mut o = Array4::zeros((1, 1, 1, 1));
    time("tconv s2 fwd", &mut || {
        o = ops::tconv_forward(&h, wt.view(), bt.view(), 2)
    });
    let d = o.clone();
    time("tconv s2 bwd", &mut || {
        let _ = ops::tconv_backward(&h, wt.view(), &d, 2);
    });
    time("act bwd", &mut || {
        let _ = ops::act_backward(&z, &h, p);
    });
    time("bn bwd", &mut || {
        let _ = ops::bn_backward(&z, cache.as_ref().unwrap(), g.view());
    });
    time("aggregate bwd", &mut || {
        let _ = ops::aggregate_backward(&u, &a, &y);
    });
    time("conv1x1 bwd", &mut || {
        let _ = ops::conv1x1_backward(&x, wg.view(), &u, 1);
    });
    let flops = 2.0 * (co * co * 9 * (t / 2) * v * b) as f64;
    let w2 = wt
        .view()
        .into_shape_with_order((co, co * 9))
        .unwrap()
        .to_owned();
    let col = randn(&mut r, (co * 9, (t / 2) * v));
    let mut out = Array2::zeros((co, (t / 2) * v));
    let t0 = Instant::now();
    for _ in 0..b {
        ndarray::linalg::general_mat_mul(1.0, &w2, &col, 0.0, &mut out);
    }
    let s = t0.elapsed().as_secs_f64();
    println!("single-thread GEMM: {:.1} GFLOP/s", flops / s / 1e9);
}

// ------------------------------------------------------------------ distillation, conversion

#[test]
fn distillation_loss_gradient_and_limits() {
    let mut r = rng(61);
    let labels = [2, 0, 1];
    let s = randn(&mut r, (3, 4)) * 3.0;
    let t = randn(&mut r, (3, 4)) * 3.0;
    for (temperature, weight) in [(4.0, 0.7), (1.0, 1.0), (2.5, 0.3)] {
        let (_, g) = ops::distillation_loss(&s, &labels, t.view(), temperature, weight);
        let f = |l: &ArrayD<f64>| {
            let l: Array2<f64> = l.clone().into_dimensionality().unwrap();
            ops::distillation_loss(&l, &labels, t.view(), temperature, weight).0
        };
        assert_grad_close(
            &format!("KD T={temperature} w={weight}"),
            &g.into_dyn(),
            &numeric_grad(&s.clone().into_dyn(), f),
        );
    }
    // Weight 0 is the cross-entropy; a student equal to its teacher has KL 0.
    let (ce, ce_g) = ops::softmax_cross_entropy(&s, &labels);
    let (kd, kd_g) = ops::distillation_loss(&s, &labels, t.view(), 4.0, 0.0);
    assert!((ce - kd).abs() < 1e-12 && max_abs_diff(&ce_g, &kd_g) < 1e-12);
    let (same, _) = ops::distillation_loss(&s, &labels, s.view(), 4.0, 0.6);
    assert!((same - 0.4 * ce).abs() < 1e-12, "{same} vs {}", 0.4 * ce);
    // The soft term is positive when the teacher differs.
    let (soft, _) = ops::distillation_loss(&s, &labels, t.view(), 4.0, 1.0);
    assert!(soft > 1e-3, "{soft}");
    assert!(Distillation {
        temperature: 0.0,
        weight: 0.5
    }
    .validate()
    .is_err());
    assert!(Distillation {
        temperature: 4.0,
        weight: 1.5
    }
    .validate()
    .is_err());
}

#[test]
fn distilled_training_moves_the_student_towards_its_teacher() {
    let v = 5;
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 16, 3, 8, &test_graph(v), 2);
    let x = random_input(71, 8, 3, 8, v, 1);
    cfg.input_norm = Some(InputNorm::fit(x.view()));
    let labels = [0, 1, 0, 1, 1, 0, 0, 1];
    let teacher = StGcn::new(cfg.clone(), 1).unwrap();
    let t_logits = evaluate(&teacher, x.view(), &labels).unwrap().logits;
    cfg.activation = ActivationKind::Square;
    let mut student = StGcn::new(cfg, 2).unwrap();
    student.init_pre_activation_bn(0.45, 0.56);
    let kl = |m: &StGcn| {
        let s = evaluate(m, x.view(), &labels).unwrap().logits;
        ops::distillation_loss(&s, &labels, t_logits.view(), 2.0, 1.0).0
    };
    let before = kl(&student);
    let tc = TrainConfig {
        epochs: 30,
        batch_size: 4,
        learning_rate: 0.02,
        clip_grad_norm: Some(1.0),
        ..TrainConfig::default()
    };
    let d = Distillation {
        temperature: 2.0,
        weight: 1.0,
    };
    let mut trainer = Trainer::new(&student, tc).unwrap();
    for _ in 0..30 {
        trainer
            .run_epoch_distilled(&mut student, x.view(), &labels, t_logits.view(), &d)
            .unwrap();
    }
    let after = kl(&student);
    assert!(after < 0.5 * before, "KL {before} -> {after}");
    let short = t_logits.slice(ndarray::s![..3, ..]);
    let e = trainer
        .run_epoch_distilled(&mut student, x.view(), &labels, short, &d)
        .unwrap_err();
    assert!(e.to_string().contains("teacher logits"), "{e}");
}

/// Relative RMS difference of two logit matrices.
fn rel_rms(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let d = (a - b).mapv(|x| x * x).sum();
    (d / b.mapv(|x| x * x).sum()).sqrt()
}

#[test]
fn relu_to_square_keeps_the_relu_function_closer_than_a_global_reset() {
    let v = 5;
    let blocks_with_conv_residual = tiny_config(ActivationKind::Relu, 1, v).blocks;
    // Two consecutive identity residuals exercise the rescaling of a block's output.
    let identity_chain = vec![
        BlockSpec {
            in_channels: 3,
            out_channels: 4,
            stride: 1,
            residual: false,
        },
        BlockSpec {
            in_channels: 4,
            out_channels: 4,
            stride: 1,
            residual: true,
        },
        BlockSpec {
            in_channels: 4,
            out_channels: 4,
            stride: 1,
            residual: true,
        },
    ];
    for (case, blocks) in [blocks_with_conv_residual, identity_chain]
        .into_iter()
        .enumerate()
    {
        let mut cfg = tiny_config(ActivationKind::Relu, 1, v);
        cfg.activation_mask = vec![[vec![true; v], vec![true; v]]; blocks.len()];
        cfg.blocks = blocks;
        let x = random_input(81, 32, 3, 40, v, 1);
        cfg.input_norm = Some(InputNorm::fit(x.view()));
        let mut relu = StGcn::new(cfg, 5).unwrap();
        perturb(&mut relu, 6 + case as u64);
        let want = relu.forward(x.view()).unwrap();
        let (square, cal) = relu_to_square(&relu, x.view()).unwrap();
        assert_eq!(square.config().activation, ActivationKind::Square);
        assert_eq!(cal.sites.len(), 6);
        for s in &cal.sites {
            for (c, e) in s.relative_rms_error.iter().enumerate() {
                // The quadratic fit of ReLU on a standard normal leaves 0.11·s.
                assert!((0.0..0.25).contains(e), "case {case} {s:?} channel {c}");
            }
        }
        let got = square.forward(x.view()).unwrap();
        let mut reset = relu.with_activation(ActivationKind::Square);
        reset.init_pre_activation_bn(0.45, 0.56);
        let global = reset.forward(x.view()).unwrap();
        let (e_cal, e_global) = (rel_rms(&got, &want), rel_rms(&global, &want));
        assert!(
            e_cal < 0.5 && e_cal < 0.5 * e_global,
            "case {case}: calibrated {e_cal}, global reset {e_global}"
        );
        // Same form as any model: BN folds, the activation is exactly x².
        let err = max_abs_diff(&got, &square.fold().forward(x.view()).unwrap());
        assert!(err < 1e-9 * got.mapv(f64::abs).sum(), "fold {err}");
    }
    // Errors: not a ReLU model; pruned nodes.
    let cfg = tiny_config(ActivationKind::Square, 1, v);
    let x = random_input(82, 2, 3, 6, v, 1);
    let m = StGcn::new(cfg, 1).unwrap();
    assert!(matches!(
        relu_to_square(&m, x.view()),
        Err(ModelError::WrongActivation { .. })
    ));
    let pruned = StGcn::new(tiny_config(ActivationKind::Relu, 1, v), 1).unwrap();
    assert!(matches!(
        relu_to_square(&pruned, x.view()),
        Err(ModelError::PrunedSite { block: 1, site: 0 })
    ));
}

#[test]
fn precise_bn_averages_the_batch_statistics() {
    let v = 5;
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 16, 3, 8, &test_graph(v), 2);
    let x = random_input(91, 6, 3, 8, v, 1);
    cfg.input_norm = Some(InputNorm::fit(x.view()));
    let mut model = StGcn::new(cfg, 4).unwrap();
    perturb(&mut model, 5);
    let before = model.clone();
    model.recompute_bn_statistics(x.view(), 4).unwrap();
    // Block 0's bn1 sees the graph convolution of the (normalised) input, which does not depend
    // on any running statistic: its new mean is the size-weighted mean of the two batches'
    // channel means (4 and 2 clips), which for the mean is the mean over all 6 clips.
    let mut pcfg = before.config().clone();
    pcfg.bn_momentum = 1.0;
    let mut probe = StGcn::new(pcfg, 0).unwrap();
    for t in before.tensors() {
        probe.set_tensor(&t.name, t.value.clone()).unwrap();
    }
    let mut means: Vec<Array1<f64>> = Vec::new();
    for (lo, hi) in [(0, 4), (4, 6)] {
        let xb = x.slice(ndarray::s![lo..hi, .., .., .., ..]).to_owned();
        probe
            .loss_and_gradients(xb.view(), &vec![0; hi - lo])
            .unwrap();
        means.push(
            probe
                .tensor("blocks.0.bn1.running_mean")
                .unwrap()
                .clone()
                .into_dimensionality()
                .unwrap(),
        );
    }
    let want = (&means[0] * 4.0 + &means[1] * 2.0) / 6.0;
    let got = model.tensor("blocks.0.bn1.running_mean").unwrap();
    for (g, w) in got.iter().zip(want.iter()) {
        assert!((g - w).abs() < 1e-12, "{g} vs {w}");
    }
    // Every running statistic changed, nothing else did; variances stay positive.
    for (a, b) in model.tensors().iter().zip(before.tensors()) {
        if a.name.contains("running") {
            assert_ne!(a.value, b.value, "{}", a.name);
        } else {
            assert_eq!(a.value, b.value, "{}", a.name);
        }
        if a.name.ends_with("running_var") {
            assert!(a.value.iter().all(|&x| x > 0.0), "{}", a.name);
        }
    }
    assert!(model.recompute_bn_statistics(x.view(), 0).is_err());
}
