//! Soft activation gates: finite-difference checks of the gated activation kernel and of the
//! whole model's gate gradients, the limits `g = 1` (the activation) and `g = 0` (pruned), the
//! exact fold of a gated model, and input validation.

use ndarray::{Array1, ArrayD};

use super::ops::{self, ActParams};
use super::tests::{
    assert_grad_close, dot, max_abs_diff, numeric_grad, perturb, randn, random_input, rng,
    tiny_config, to4,
};
use super::*;

#[test]
fn grad_gated_activation_kernel() {
    let keep = [true, false, true];
    for kind in [ActivationKind::Square, ActivationKind::Poly] {
        let mut r = rng(21);
        let x = randn(&mut r, (2, 2, 3, 3)).into_dyn();
        let coef = randn(&mut r, (3, 3)).into_dyn();
        let gate = ArrayD::from_shape_vec(vec![3], vec![0.3, 0.8, 0.6]).unwrap();
        let up = randn(&mut r, (2, 2, 3, 3));
        let f = |x: &ArrayD<f64>, coef: &ArrayD<f64>, g: &ArrayD<f64>| {
            let c = coef.as_slice().unwrap();
            let p = ActParams {
                kind,
                poly: Some((&c[0..3], &c[3..6], &c[6..9])),
                keep: &keep,
                gate: Some(g.as_slice().unwrap()),
            };
            dot(&ops::act_forward(&to4(x), p), &up)
        };
        let c = coef.as_slice().unwrap();
        let p = ActParams {
            kind,
            poly: Some((&c[0..3], &c[3..6], &c[6..9])),
            keep: &keep,
            gate: Some(gate.as_slice().unwrap()),
        };
        let (dx, dcoef) = ops::act_backward(&to4(&x), &up, p);
        let dg = ops::gate_backward(&to4(&x), &up, p).into_dyn();
        let tag = format!("{kind:?}");
        assert_grad_close(
            &tag,
            &dx.into_dyn(),
            &numeric_grad(&x, |x| f(x, &coef, &gate)),
        );
        if kind == ActivationKind::Poly {
            let n = numeric_grad(&coef, |c| f(&x, c, &gate));
            assert_grad_close(&tag, &dcoef.into_dyn(), &n);
        }
        // The pruned node's gate has no effect and a zero gradient.
        assert_grad_close(&tag, &dg, &numeric_grad(&gate, |g| f(&x, &coef, g)));
        assert_eq!(dg[1], 0.0);
    }
}

fn gated(v: usize, g: f64) -> SoftGates {
    vec![[vec![g; v], vec![g; v]]; 3]
}

#[test]
fn gates_one_is_the_activation_and_zero_the_identity() {
    let (v, m) = (5, 1);
    let mut cfg = tiny_config(ActivationKind::Poly, m, v);
    let x = random_input(3, 2, 3, 6, v, m);
    cfg.input_norm = Some(InputNorm::fit(x.view()));
    let mut model = StGcn::new(cfg, 4).unwrap();
    perturb(&mut model, 5);
    let plain = model.forward(x.view()).unwrap();
    let mut g1 = model.clone();
    g1.set_soft_gates(Some(gated(v, 1.0))).unwrap();
    // x + 1·(act(x) − x) equals act(x) up to rounding.
    let err = max_abs_diff(&g1.forward(x.view()).unwrap(), &plain);
    assert!(err < 1e-12, "g = 1 vs no gates: {err}");
    let mut g0 = model.clone();
    g0.set_soft_gates(Some(gated(v, 0.0))).unwrap();
    let mut pruned = model.clone();
    for b in 0..3 {
        for s in 0..2 {
            pruned
                .prune_activations(b, s, &(0..v).collect::<Vec<_>>())
                .unwrap();
        }
    }
    let err = max_abs_diff(
        &g0.forward(x.view()).unwrap(),
        &pruned.forward(x.view()).unwrap(),
    );
    assert!(err < 1e-12, "g = 0 vs pruned: {err}");
    g1.set_soft_gates(None).unwrap();
    assert!(g1.soft_gates().is_none());
}

#[test]
fn grad_whole_model_soft_gates() {
    for activation in [ActivationKind::Poly, ActivationKind::Square] {
        let (v, m) = (5, 1);
        let mut cfg = tiny_config(activation, m, v);
        let x = random_input(8, 2, 3, 6, v, m);
        cfg.input_norm = Some(InputNorm::fit(x.view()));
        let mut model = StGcn::new(cfg, 11).unwrap();
        perturb(&mut model, 12);
        let mut r = rng(13);
        let gates: SoftGates = (0..3)
            .map(|_| [0, 1].map(|_| (0..v).map(|_| rng_gate(&mut r)).collect()))
            .collect();
        model.set_soft_gates(Some(gates.clone())).unwrap();
        let labels = [0, 2];
        let (_, _, grads) = model.clone().loss_and_gradients(x.view(), &labels).unwrap();
        let dg = grads.gates().expect("gate gradients");
        for (b, sites) in gates.iter().enumerate() {
            for (s, g) in sites.iter().enumerate() {
                let numeric = numeric_grad(&Array1::from(g.clone()).into_dyn(), |p| {
                    let mut m2 = model.clone();
                    let mut gg = gates.clone();
                    gg[b][s] = p.iter().copied().collect();
                    m2.set_soft_gates(Some(gg)).unwrap();
                    m2.loss_and_gradients(x.view(), &labels).unwrap().0
                });
                let analytic = Array1::from(dg[b][s].clone()).into_dyn();
                assert_grad_close(&format!("{activation:?} gate {b}.{s}"), &analytic, &numeric);
            }
        }
        // Weight gradients are still exact under gates (one tensor as a spot check).
        let t = &model.tensors()[0];
        let numeric = numeric_grad(&t.value, |p| {
            let mut m2 = model.clone();
            m2.set_tensor(&t.name, p.clone()).unwrap();
            m2.loss_and_gradients(x.view(), &labels).unwrap().0
        });
        assert_grad_close(&t.name, &grads.as_slice()[0], &numeric);
    }
}

fn rng_gate(r: &mut rand_chacha::ChaCha20Rng) -> f64 {
    use rand::Rng;
    r.gen_range(0.1..0.9)
}

#[test]
fn gated_model_folds_exactly() {
    for activation in [ActivationKind::Poly, ActivationKind::Square] {
        let (v, m) = (5, 2);
        let mut cfg = tiny_config(activation, m, v);
        let x = random_input(31, 3, 3, 7, v, m);
        cfg.input_norm = Some(InputNorm::fit(x.view()));
        let mut model = StGcn::new(cfg, 6).unwrap();
        perturb(&mut model, 32);
        let mut r = rng(33);
        let gates: SoftGates = (0..3)
            .map(|_| [0, 1].map(|_| (0..v).map(|_| rng_gate(&mut r)).collect()))
            .collect();
        model.set_soft_gates(Some(gates)).unwrap();
        let a = model.forward(x.view()).unwrap();
        let b = model.fold().forward(x.view()).unwrap();
        let scale = a.iter().fold(1.0_f64, |m, x| m.max(x.abs()));
        let err = max_abs_diff(&a, &b);
        assert!(err < 1e-9 * scale, "{activation:?}: {err} (scale {scale})");
    }
}

#[test]
fn soft_gate_validation_names_the_problem() {
    let v = 5;
    let relu = StGcn::new(tiny_config(ActivationKind::Relu, 1, v), 1).unwrap();
    assert!(matches!(
        relu.clone().set_soft_gates(Some(gated(v, 0.5))),
        Err(ModelError::WrongActivation { .. })
    ));
    let mut sq = StGcn::new(tiny_config(ActivationKind::Square, 1, v), 1).unwrap();
    let mut short = gated(v, 0.5);
    short[1][0].pop();
    let e = sq.set_soft_gates(Some(short)).unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::MaskLength {
                block: 1,
                site: 0,
                ..
            }
        ),
        "{e}"
    );
    let mut big = gated(v, 0.5);
    big[2][1][3] = 1.5;
    let e = sq.set_soft_gates(Some(big)).unwrap_err().to_string();
    assert!(e.contains("soft gate") && e.contains("1.5"), "{e}");
    let e = sq
        .set_soft_gates(Some(gated(v, 0.5)[..2].to_vec()))
        .unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::InputShape {
                expected: 3,
                found: 2,
                ..
            }
        ),
        "{e}"
    );
}
