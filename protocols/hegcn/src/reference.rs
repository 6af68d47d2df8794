//! Plaintext (f64) twin of every encrypted stage, on one sample `(C, T, V, M)`, following the
//! equations of [`stgcn::FoldedModel`]; the tests check that chaining these stages
//! reproduces `FoldedModel::forward`, and that each encrypted stage matches its twin.

use ndarray::{Array1, Array4, ArrayView4};
use stgcn::{FoldedActivation, FoldedBlock, FoldedModel, FoldedResidual};

/// The client-side input map `x ↦ scale[c, v]·x + shift[c, v]` (identity if the model has none).
pub fn input_affine(model: &FoldedModel, x: ArrayView4<'_, f64>) -> Array4<f64> {
    let mut y = x.to_owned();
    if let Some((scale, shift)) = &model.input_affine {
        for ((c, _, v, _), e) in y.indexed_iter_mut() {
            *e = scale[[c, v]] * *e + shift[[c, v]];
        }
    }
    y
}

/// Graph convolution with bias: `g[o,t,w,m] = Σ_k Σ_v (W_k x[:,t,v,m])[o]·A_k[v,w] + bias[o,w]`.
pub fn gcn(blk: &FoldedBlock, x: ArrayView4<'_, f64>) -> Array4<f64> {
    let (ci, t, v, m) = x.dim();
    let (k, co, _) = blk.gcn_weights.dim();
    let mut g = Array4::zeros((co, t, v, m));
    for o in 0..co {
        for w in 0..v {
            for ti in 0..t {
                for mi in 0..m {
                    let mut acc = blk.gcn_bias[[o, w]];
                    for ki in 0..k {
                        for u in 0..v {
                            let a = blk.aggregation[[ki, u, w]];
                            if a == 0.0 {
                                continue;
                            }
                            let mut s = 0.0;
                            for c in 0..ci {
                                s += blk.gcn_weights[[ki, o, c]] * x[[c, ti, u, mi]];
                            }
                            acc += a * s;
                        }
                    }
                    g[[o, ti, w, mi]] = acc;
                }
            }
        }
    }
    g
}

/// An activation site (per node `v`); ReLU sites apply ReLU on kept nodes.
pub fn activation(act: &FoldedActivation, x: ArrayView4<'_, f64>) -> Array4<f64> {
    let mut y = x.to_owned();
    for ((_, _, v, _), e) in y.indexed_iter_mut() {
        *e = match act {
            FoldedActivation::Relu { keep } => {
                if keep[v] {
                    e.max(0.0)
                } else {
                    *e
                }
            }
            FoldedActivation::Poly { a, b, c } => a[v] * *e * *e + b[v] * *e + c[v],
        };
    }
    y
}

/// Temporal convolution (stride, zero padding) plus the residual branch of the block input `x`.
pub fn temporal(blk: &FoldedBlock, h: ArrayView4<'_, f64>, x: ArrayView4<'_, f64>) -> Array4<f64> {
    let (ci, t, v, m) = h.dim();
    let (co, _, ks) = blk.tcn_weight.dim();
    let pad = (ks - 1) / 2;
    let s = blk.stride;
    let to = (t.max(1) - 1) / s + 1;
    let mut r = Array4::zeros((co, to, v, m));
    for o in 0..co {
        for tp in 0..to {
            for w in 0..v {
                for mi in 0..m {
                    let mut acc = blk.tcn_bias[o];
                    for j in 0..ks {
                        let ti = (s * tp + j) as isize - pad as isize;
                        if ti < 0 || ti >= t as isize {
                            continue;
                        }
                        for c in 0..ci {
                            acc += blk.tcn_weight[[o, c, j]] * h[[c, ti as usize, w, mi]];
                        }
                    }
                    acc += match &blk.residual {
                        FoldedResidual::None => 0.0,
                        FoldedResidual::Identity => x[[o, s * tp, w, mi]],
                        FoldedResidual::Conv { weight, bias } => {
                            let mut z = bias[o];
                            for c in 0..x.dim().0 {
                                z += weight[[o, c]] * x[[c, s * tp, w, mi]];
                            }
                            z
                        }
                    };
                    r[[o, tp, w, mi]] = acc;
                }
            }
        }
    }
    r
}

/// One whole block.
pub fn block(blk: &FoldedBlock, x: ArrayView4<'_, f64>) -> Array4<f64> {
    let g = gcn(blk, x);
    let h = activation(&blk.act1, g.view());
    let r = temporal(blk, h.view(), x);
    activation(&blk.act2, r.view())
}

/// Global average pooling over `(t, v, m)` and the dense head.
pub fn head(model: &FoldedModel, x: ArrayView4<'_, f64>) -> Array1<f64> {
    let (c, t, v, m) = x.dim();
    let norm = 1.0 / (t * v * m) as f64;
    let pooled: Vec<f64> = (0..c)
        .map(|ci| x.index_axis(ndarray::Axis(0), ci).sum() * norm)
        .collect();
    Array1::from_shape_fn(model.num_classes, |q| {
        model.fc_bias[q]
            + (0..c)
                .map(|ci| model.fc_weight[[q, ci]] * pooled[ci])
                .sum::<f64>()
    })
}

/// Logits of one sample `(C, T, V, M)` (input affine map included).
pub fn forward(model: &FoldedModel, x: ArrayView4<'_, f64>) -> Array1<f64> {
    let mut h = input_affine(model, x);
    for blk in &model.blocks {
        h = block(blk, h.view());
    }
    head(model, h.view())
}
