//! Inference-facing view of a trained ST-GCN with every batch norm folded into the preceding
//! convolution and the edge importance folded into the aggregation matrices — the weights the
//! encrypted-inference crate (CryptoGCN, Ran et al. 2022, §3: BN folded, per-node aggregation
//! as plaintext-scalar products) consumes.
//!
//! Per block, for one sequence `x` of shape `(C_in, T, V)` (node index last):
//!
//! ```text
//! g[c, t, w]  = Σ_k Σ_v (gcn_weights[k] · x[:, t, v])[c] · aggregation[k, v, w] + gcn_bias[c, w]
//! h           = act1(g)                                  (per node w)
//! r[c, t', w] = tcn_bias[c] + Σ_{c', j} tcn_weight[c, c', j] · h[c', s·t' + j − pad, w]
//!               (zero outside 0..T, pad = (kernel − 1) / 2, s = stride)
//! r          += x (identity residual)  or  residual weight · x[:, s·t', :] + residual bias
//! out         = act2(r)
//! ```
//!
//! then `logits = fc_weight · mean_{t, v, m}(out) + fc_bias`. The 1/(T·V·M) of the average
//! pooling is not folded into `fc_weight`.
//!
//! The structs derive serde (ndarray's `{"v":1,"dim":[..],"data":[..]}` encoding), so a folded
//! model can be handed to another process as JSON.

use ndarray::{s, Array1, Array2, Array3, Array4, ArrayView5, Axis};
use serde::{Deserialize, Serialize};

use super::model::{ResIdx, StGcn};
use super::ops::{self, ActParams, SparseAdjacency};
use super::{ActivationKind, Result};

/// A folded activation site.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FoldedActivation {
    /// ReLU on nodes with `keep[v]`, identity on the others.
    Relu {
        /// Per-node mask.
        keep: Vec<bool>,
    },
    /// `a[v]·x² + b[v]·x + c[v]` per node v. `x²` is `(1, 0, 0)`; a pruned node is `(0, 1, 0)`.
    Poly {
        /// Quadratic coefficients `(V)`.
        a: Array1<f64>,
        /// Linear coefficients `(V)`.
        b: Array1<f64>,
        /// Constants `(V)`.
        c: Array1<f64>,
    },
}

impl FoldedActivation {
    fn params(&self) -> (ActParams<'_>, Vec<bool>) {
        match self {
            FoldedActivation::Relu { keep } => (
                ActParams {
                    kind: ActivationKind::Relu,
                    poly: None,
                    keep,
                    gate: None,
                },
                Vec::new(),
            ),
            FoldedActivation::Poly { a, b, c } => (
                ActParams {
                    kind: ActivationKind::Poly,
                    poly: Some((
                        a.as_slice().expect("owned 1-D array"),
                        b.as_slice().expect("owned 1-D array"),
                        c.as_slice().expect("owned 1-D array"),
                    )),
                    keep: &[],
                    gate: None,
                },
                vec![true; a.len()],
            ),
        }
    }

    fn apply(&self, x: &Array4<f64>) -> Array4<f64> {
        let (mut p, keep) = self.params();
        if !keep.is_empty() {
            p.keep = &keep;
        }
        ops::act_forward(x, p)
    }

    /// Whether the site is the identity on every node (fully pruned; costs no HE level).
    pub fn is_identity(&self) -> bool {
        match self {
            FoldedActivation::Relu { keep } => keep.iter().all(|k| !k),
            FoldedActivation::Poly { a, b, c } => {
                a.iter().all(|&x| x == 0.0)
                    && b.iter().all(|&x| x == 1.0)
                    && c.iter().all(|&x| x == 0.0)
            }
        }
    }
}

/// A folded residual branch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FoldedResidual {
    /// No residual (first block).
    None,
    /// `r += x`.
    Identity,
    /// `r += weight · x[:, s·t', :] + bias` (residual BN folded in).
    Conv {
        /// `(C_out, C_in)`.
        weight: Array2<f64>,
        /// `(C_out)`.
        bias: Array1<f64>,
    },
}

/// One block with BN folded; see the module docs for the equations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldedBlock {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Temporal stride (1 or 2).
    pub stride: usize,
    /// `(K, C_out, C_in)`: 1×1 convolution per partition, BN1 scale folded in.
    pub gcn_weights: Array3<f64>,
    /// `(K, V, V)`: `A_k ⊙ edge_importance_k`; entry `[k, v, w]` carries node v to node w.
    pub aggregation: Array3<f64>,
    /// `(C_out, V)`: bias after aggregation (conv bias pushed through the aggregation, BN1
    /// shift); it depends on the node through the column sums of the aggregation matrices.
    pub gcn_bias: Array2<f64>,
    /// Activation after the graph convolution.
    pub act1: FoldedActivation,
    /// `(C_out, C_out, kernel)`: temporal kernel, BN2 scale folded in.
    pub tcn_weight: Array3<f64>,
    /// `(C_out)`: temporal bias with BN2 shift folded in.
    pub tcn_bias: Array1<f64>,
    /// Residual branch.
    pub residual: FoldedResidual,
    /// Activation after the residual sum.
    pub act2: FoldedActivation,
}

/// A BN-folded ST-GCN for inference; [`FoldedModel::forward`] equals [`StGcn::forward`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FoldedModel {
    /// Input channels C.
    pub in_channels: usize,
    /// Graph nodes V.
    pub num_nodes: usize,
    /// Frames T the model was configured for.
    pub num_frames: usize,
    /// Persons M.
    pub num_persons: usize,
    /// Number of classes.
    pub num_classes: usize,
    /// Temporal kernel length (odd), zero padding `(kernel − 1) / 2`.
    pub temporal_kernel: usize,
    /// Optional client-side input affine map `x ↦ scale[c, v]·x + shift[c, v]` (`(C, V)` each),
    /// applied before encryption.
    pub input_affine: Option<(Array2<f64>, Array2<f64>)>,
    /// Blocks in order.
    pub blocks: Vec<FoldedBlock>,
    /// `(classes, C_last)`.
    pub fc_weight: Array2<f64>,
    /// `(classes)`.
    pub fc_bias: Array1<f64>,
}

impl StGcn {
    /// Folds every batch norm (evaluation mode, running statistics) into the preceding
    /// convolution and the edge importance into the adjacency.
    pub fn fold(&self) -> FoldedModel {
        let cfg = self.config();
        let layout = self.layout();
        let v = cfg.num_nodes();
        let blocks = layout
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let spec = &cfg.blocks[i];
                let (co, ci) = (spec.out_channels, spec.in_channels);
                let agg = self.effective_adjacency(i);
                let k = agg.dim().0;
                let (s1, t1) = self.bn_affine(&b.bn1);
                let w = self.v2(b.gcn_w);
                let bias = self.v1(b.gcn_b);
                let mut gcn_weights = Array3::zeros((k, co, ci));
                let mut gcn_bias = Array2::zeros((co, v));
                for ki in 0..k {
                    let col_sums = agg.index_axis(Axis(0), ki).sum_axis(Axis(0));
                    for c in 0..co {
                        let row = ki * co + c;
                        gcn_weights
                            .slice_mut(s![ki, c, ..])
                            .assign(&(&w.row(row) * s1[c]));
                        for wn in 0..v {
                            gcn_bias[[c, wn]] += s1[c] * bias[row] * col_sums[wn];
                        }
                    }
                }
                for c in 0..co {
                    for wn in 0..v {
                        gcn_bias[[c, wn]] += t1[c];
                    }
                }
                let (s2, t2) = self.bn_affine(&b.bn2);
                let tcn_weight =
                    &self.v3(b.tcn_w) * &s2.view().insert_axis(Axis(1)).insert_axis(Axis(2));
                let tcn_bias = &self.v1(b.tcn_b) * &s2 + &t2;
                let residual = match &b.res {
                    ResIdx::None => FoldedResidual::None,
                    ResIdx::Identity => FoldedResidual::Identity,
                    ResIdx::Conv { weight, bias, bn } => {
                        let (sr, tr) = self.bn_affine(bn);
                        FoldedResidual::Conv {
                            weight: &self.v2(*weight) * &sr.view().insert_axis(Axis(1)),
                            bias: &self.v1(*bias) * &sr + &tr,
                        }
                    }
                };
                FoldedBlock {
                    in_channels: ci,
                    out_channels: co,
                    stride: spec.stride,
                    gcn_weights,
                    aggregation: agg,
                    gcn_bias,
                    act1: self.fold_activation(i, 0),
                    tcn_weight,
                    tcn_bias,
                    residual,
                    act2: self.fold_activation(i, 1),
                }
            })
            .collect();
        FoldedModel {
            in_channels: cfg.in_channels,
            num_nodes: v,
            num_frames: cfg.num_frames,
            num_persons: cfg.num_persons,
            num_classes: cfg.num_classes,
            temporal_kernel: cfg.temporal_kernel,
            input_affine: cfg.input_norm.as_ref().map(|n| n.affine()),
            blocks,
            fc_weight: self.v2(layout.fc_w).to_owned(),
            fc_bias: self.v1(layout.fc_b).to_owned(),
        }
    }

    fn fold_activation(&self, block: usize, site: usize) -> FoldedActivation {
        let p = self.act_params(block, site);
        let keep = p.keep;
        let v = keep.len();
        match p.kind {
            ActivationKind::Relu => FoldedActivation::Relu {
                keep: keep.to_vec(),
            },
            kind => {
                let (mut a, mut b, mut c) = match (kind, p.poly) {
                    (ActivationKind::Poly, Some((a, b, c))) => (
                        Array1::from(a.to_vec()),
                        Array1::from(b.to_vec()),
                        Array1::from(c.to_vec()),
                    ),
                    _ => (Array1::ones(v), Array1::zeros(v), Array1::zeros(v)),
                };
                for (vi, &k) in keep.iter().enumerate() {
                    // Pruned: the identity; soft gate g: x + g·(act(x) − x).
                    let g = if k {
                        p.gate.map_or(1.0, |g| g[vi])
                    } else {
                        0.0
                    };
                    a[vi] *= g;
                    b[vi] = g * b[vi] + 1.0 - g;
                    c[vi] *= g;
                }
                FoldedActivation::Poly { a, b, c }
            }
        }
    }
}

impl FoldedModel {
    /// Logits `(N, classes)` for an `(N, C, T, V, M)` input, computed from the folded weights
    /// only (the plaintext reference for the encrypted evaluation).
    pub fn forward(&self, x: ArrayView5<'_, f64>) -> Result<Array2<f64>> {
        let (n, c, t, v, m) = x.dim();
        for (what, expected, found) in [
            ("channels C", self.in_channels, c),
            ("nodes V", self.num_nodes, v),
            ("persons M", self.num_persons, m),
        ] {
            if expected != found {
                return Err(super::ModelError::InputShape {
                    what,
                    expected,
                    found,
                });
            }
        }
        let mut h = Array4::zeros((n * m, c, t, v));
        for ni in 0..n {
            for mi in 0..m {
                h.index_axis_mut(Axis(0), ni * m + mi)
                    .assign(&x.index_axis(Axis(0), ni).index_axis(Axis(3), mi));
            }
        }
        if let Some((scale, shift)) = &self.input_affine {
            for mut sample in h.outer_iter_mut() {
                for ((ci, _, vi), e) in sample.indexed_iter_mut() {
                    *e = scale[[ci, vi]] * *e + shift[[ci, vi]];
                }
            }
        }
        for blk in &self.blocks {
            let (k, co, ci) = blk.gcn_weights.dim();
            let w = blk
                .gcn_weights
                .view()
                .into_shape_with_order((k * co, ci))
                .expect("owned array is contiguous");
            let u = ops::conv1x1_forward(&h, w, Array1::zeros(k * co).view(), 1);
            let agg = SparseAdjacency::new(&blk.aggregation, &blk.aggregation);
            let mut g = ops::aggregate_forward(&u, &agg);
            drop(u);
            for mut sample in g.outer_iter_mut() {
                for ((cc, _, wn), e) in sample.indexed_iter_mut() {
                    *e += blk.gcn_bias[[cc, wn]];
                }
            }
            let a1 = blk.act1.apply(&g);
            drop(g);
            let mut r =
                ops::tconv_forward(&a1, blk.tcn_weight.view(), blk.tcn_bias.view(), blk.stride);
            match &blk.residual {
                FoldedResidual::None => {}
                FoldedResidual::Identity => r += &h,
                FoldedResidual::Conv { weight, bias } => {
                    r += &ops::conv1x1_forward(&h, weight.view(), bias.view(), blk.stride)
                }
            }
            h = blk.act2.apply(&r);
        }
        let pooled = ops::pool_forward(&h, self.num_persons);
        Ok(ops::dense_forward(
            &pooled,
            self.fc_weight.view(),
            self.fc_bias.view(),
        ))
    }
}
