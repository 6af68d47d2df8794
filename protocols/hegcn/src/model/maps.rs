//! Lowering of the folded layers to block-diagonal linear maps: the fused graph convolution,
//! the temporal convolution (taps as in-block shifts, zero padding in the masks), pointwise
//! (1×1) maps for residuals and the dense head, and the slot vectors of per-channel, per-node
//! biases.

use ndarray::Array2;
use stgcn::FoldedBlock;

use super::replicas::Replicas;
use crate::layout::Layout;
use crate::linear::{LinearMap, Term};

/// Per-ciphertext slot vectors of the bias `value(c, v)`, on the valid slots of every copy.
pub(super) fn bias_vectors(
    layout: &Layout,
    reps: Replicas,
    value: impl Fn(usize, usize) -> f64,
) -> Vec<Vec<f64>> {
    let mut out = vec![vec![0.0; layout.slots]; layout.num_cts()];
    let mask = layout.valid_mask();
    for c in 0..layout.channels {
        for v in 0..layout.nodes {
            let (ct, blk0) = layout.position(c, v);
            let x = value(c, v);
            for blk in reps.blocks(blk0) {
                for (u, &m) in mask.iter().enumerate() {
                    out[ct][blk * layout.block + u] = x * m;
                }
            }
        }
    }
    out
}

/// The graph convolution `out_w = Σ_v Σ_k A_k[v,w]·W_k x_v` as one map whose weights are
/// `Σ_k A_k[v,w]·W_k[o,c]` (pairs of nodes with no edge in any partition produce no term).
pub(super) fn compile_gcn(blk: &FoldedBlock, lin: &Layout, lout: &Layout) -> LinearMap {
    let (k, co, ci) = blk.gcn_weights.dim();
    let v = lin.nodes;
    let mut terms = Vec::new();
    for src in 0..v {
        for dst in 0..v {
            if (0..k).all(|ki| blk.aggregation[[ki, src, dst]] == 0.0) {
                continue;
            }
            for o in 0..co {
                for c in 0..ci {
                    let w: f64 = (0..k)
                        .map(|ki| blk.aggregation[[ki, src, dst]] * blk.gcn_weights[[ki, o, c]])
                        .sum();
                    if w == 0.0 {
                        continue;
                    }
                    let (j, pin) = lin.position(c, src);
                    let (q, pout) = lout.position(o, dst);
                    terms.push(Term {
                        q: q as u32,
                        j: j as u32,
                        in_block: pin as u32,
                        out_block: pout as u32,
                        delta: 0,
                        weight: w,
                        mask: 0,
                    });
                }
            }
        }
    }
    LinearMap::new(
        lin.slots,
        lin.block,
        lin.num_cts(),
        lout.num_cts(),
        vec![lout.valid_mask()],
        terms,
    )
}

/// The temporal convolution: tap `j` is an in-block shift by `d·(j − pad)` under mask `j`,
/// which keeps the output frames whose input frame exists (zero padding costs nothing).
pub(super) fn compile_tcn(blk: &FoldedBlock, lin: &Layout, lout: &Layout) -> LinearMap {
    let (co, ci, ks) = blk.tcn_weight.dim();
    let pad = (ks - 1) / 2;
    let s = blk.stride;
    let masks: Vec<Vec<f64>> = (0..ks)
        .map(|j| {
            let mut m = vec![0.0; lout.block];
            for p in 0..lout.persons {
                for tau in 0..lout.frames {
                    let ti = (s * tau + j) as isize - pad as isize;
                    if ti >= 0 && (ti as usize) < lin.frames {
                        m[lout.offset(p, tau)] = 1.0;
                    }
                }
            }
            m
        })
        .collect();
    let mut terms = Vec::new();
    for v in 0..lin.nodes {
        for o in 0..co {
            for c in 0..ci {
                for j in 0..ks {
                    if blk.tcn_weight[[o, c, j]] == 0.0 {
                        continue;
                    }
                    let (jin, pin) = lin.position(c, v);
                    let (q, pout) = lout.position(o, v);
                    terms.push(Term {
                        q: q as u32,
                        j: jin as u32,
                        in_block: pin as u32,
                        out_block: pout as u32,
                        delta: (lin.dilation as i64 * (j as i64 - pad as i64)) as i32,
                        weight: blk.tcn_weight[[o, c, j]],
                        mask: j as u16,
                    });
                }
            }
        }
    }
    LinearMap::new(
        lin.slots,
        lin.block,
        lin.num_cts(),
        lout.num_cts(),
        masks,
        terms,
    )
}

/// A 1×1 map `weight` applied to every node, node `v` scaled by `node_scale[v]`, its output
/// slots masked by `mask`.
pub(super) fn compile_pointwise(
    weight: &Array2<f64>,
    node_scale: &[f64],
    lin: &Layout,
    lout: &Layout,
    mask: Vec<f64>,
) -> LinearMap {
    let (co, ci) = weight.dim();
    debug_assert_eq!(node_scale.len(), lin.nodes, "one scale per node");
    let mut terms = Vec::new();
    for (v, &ns) in node_scale.iter().enumerate().take(lin.nodes) {
        for o in 0..co {
            for c in 0..ci {
                if weight[[o, c]] == 0.0 {
                    continue;
                }
                let (j, pin) = lin.position(c, v);
                let (q, pout) = lout.position(o, v);
                terms.push(Term {
                    q: q as u32,
                    j: j as u32,
                    in_block: pin as u32,
                    out_block: pout as u32,
                    delta: 0,
                    weight: weight[[o, c]] * ns,
                    mask: 0,
                });
            }
        }
    }
    LinearMap::new(
        lin.slots,
        lin.block,
        lin.num_cts(),
        lout.num_cts(),
        vec![mask],
        terms,
    )
}
