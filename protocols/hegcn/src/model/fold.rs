//! Coefficient folding under AMA (LinGCN-style operator fusion): the magnitudes of the
//! quadratic activation coefficients of a block move into its graph-convolution weights and
//! biases, so every activation ciphertext is `±y² + b'·y + c'` at full scale; the per-node
//! factors it leaves on the intermediate tensors are reported by
//! [`HeStgcn::stage_node_scales`](super::HeStgcn::stage_node_scales).

use ndarray::Array1;
use stgcn::{FoldedActivation, FoldedBlock};

/// Per-node `(a, b, c)` of an activation site (`None` for a ReLU site with a kept node).
fn poly_coeffs(act: &FoldedActivation, nodes: usize) -> Option<[Vec<f64>; 3]> {
    match act {
        FoldedActivation::Poly { a, b, c } => Some([a.to_vec(), b.to_vec(), c.to_vec()]),
        FoldedActivation::Relu { .. } if act.is_identity() => {
            Some([vec![0.0; nodes], vec![1.0; nodes], vec![0.0; nodes]])
        }
        FoldedActivation::Relu { .. } => None,
    }
}

/// Folds the magnitudes of the quadratic coefficients of both activation sites of a block into
/// the preceding linear maps, so that every AMA activation ciphertext (one node) is `±y² + b'·y
/// + c'` and no coefficient needs a reduced-scale plaintext (LinGCN-style operator fusion).
///
/// With `f_v = √|a2_v|` (1 where `a2_v = 0`) and `g_v = √(f_v·|a1_v|)` (`f_v` where
/// `a1_v = 0`): the graph conv's column `v` of every `A_k` and its bias are multiplied by
/// `g_v`; activation 1 becomes `(sgn a1, f·b1/g, f·c1)`, whose output is `f_v` times the
/// plaintext one (the temporal conv is per node, so its output is too); the residual and the
/// temporal bias are multiplied by `f_v`; activation 2 becomes `(sgn a2, b2/f, c2)` and
/// returns the plaintext value. Returns the block and the node factors `(g, f)`; `None` if a
/// site is a kept ReLU (refused by the planner) or nothing changes.
///
/// Why: a general `a_v` is otherwise encoded at scale 2^20 and the product's output carries
/// scale 2^60, so the next map's weights are quantised at 2^-20; at N = 2^15 that rounding
/// noise (~5e-5 per slot) dominated the logit error of the trained Mocap-15 poly model.
pub(super) fn fold_quadratic_coefficients(
    blk: &FoldedBlock,
    nodes: usize,
) -> Option<(FoldedBlock, Vec<f64>, Vec<f64>)> {
    let [a1, b1, c1] = poly_coeffs(&blk.act1, nodes)?;
    let [a2, b2, c2] = poly_coeffs(&blk.act2, nodes)?;
    let unit = |a: &[f64]| a.iter().all(|&x| x == 0.0 || x.abs() == 1.0);
    if unit(&a1) && unit(&a2) {
        return None;
    }
    let f: Vec<f64> = a2
        .iter()
        .map(|&a| if a != 0.0 { a.abs().sqrt() } else { 1.0 })
        .collect();
    let g: Vec<f64> = (0..nodes)
        .map(|v| {
            if a1[v] != 0.0 {
                (f[v] * a1[v].abs()).sqrt()
            } else {
                f[v]
            }
        })
        .collect();
    if f.iter().chain(&g).any(|x| !x.is_finite() || *x <= 0.0) {
        return None;
    }
    let sgn = |a: &[f64]| -> Array1<f64> {
        a.iter()
            .map(|&x| if x == 0.0 { 0.0 } else { x.signum() })
            .collect()
    };
    let mut out = blk.clone();
    for ((_, _, w), x) in out.aggregation.indexed_iter_mut() {
        *x *= g[w];
    }
    for ((_, w), x) in out.gcn_bias.indexed_iter_mut() {
        *x *= g[w];
    }
    out.act1 = FoldedActivation::Poly {
        a: sgn(&a1),
        b: (0..nodes).map(|v| f[v] * b1[v] / g[v]).collect(),
        c: (0..nodes).map(|v| f[v] * c1[v]).collect(),
    };
    out.act2 = FoldedActivation::Poly {
        a: sgn(&a2),
        b: (0..nodes).map(|v| b2[v] / f[v]).collect(),
        c: Array1::from(c2),
    };
    Some((out, g, f))
}
