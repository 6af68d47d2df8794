//! Compiled encrypted ST-GCN: every stage of a [`FoldedModel`] as block-diagonal linear maps
//! (the `linear` module) and per-node polynomial activations, for either packing.
//!
//! Stages (CryptoGCN, Ran et al. 2022, §3; LinGCN, Peng et al. 2023, §3.3 for the node-wise
//! polynomial):
//!
//! 1. **Graph convolution** — `out_w = Σ_v Σ_k A_k[v,w]·(W_k x_v) + b_w` fused into one map with
//!    plaintext weights `Σ_k A_k[v,w]·W_k`: the rotations of each source ciphertext are hoisted
//!    once and shared by all `K` partitions and all output nodes; aggregation itself is pure
//!    plaintext products and additions under AMA (one level).
//! 2. **Activation** — `a_v·x² + b_v·x + c_v` with node constants as slot plaintexts (one
//!    level; pruned nodes are `b = 1`). Pure `x²` sites square directly. Under AMA (one node
//!    per ciphertext) the magnitudes `√|a_v|` are folded into the preceding graph-conv
//!    columns, residual and biases at compile time (`fold_quadratic_coefficients`), so every
//!    site is `±y² + b'⊙y + c'` at full scale; the intermediate tensors then differ from the
//!    plaintext stages by known per-node factors ([`HeStgcn::stage_node_scales`]). Otherwise
//!    (channel-major, nodes of mixed sign in one ciphertext) a general `a_v` is evaluated as
//!    `x·(a⊙x) + (b⊙x)` with `a` encoded at scale `2^20`: `a` is quantised to ~6 decimal
//!    digits and the next layer's weights, which absorb the larger output scale, to ~2^-20.
//!    Fully pruned sites cost nothing.
//! 3. **Temporal convolution** — 9 taps × channel mixing as one map; tap `j` is a shift by
//!    `d·(j−4)` inside the block, zero padding lives in the masked plaintext diagonals, and the
//!    map is evaluated by BSGS (taps = baby steps, channel-block distances = giant steps) when
//!    that needs fewer rotations. Stride 2 dilates the layout ([`crate::layout`]).
//! 4. **Residual** — a 1×1 strided convolution, or the identity as the identity matrix (one
//!    plaintext product per ciphertext, no rotation, which also re-targets the input's scale
//!    to the output's), evaluated on the block input dropped to the temporal conv's input
//!    level: it costs no extra level.
//! 5. **Head** — node sum (AMA: ciphertext additions), dense layer with the `1/(T·V·M)` pooling
//!    factor and the frame mask folded into its diagonals, then a log-step rotate-and-sum inside
//!    each block; logits land at the first slot of their class block. A 0/1 plaintext mask
//!    (one more level) then zeroes every other slot, which held partial sums of the dense
//!    layer; [`HeStgcn::sanitize_logits`] re-randomizes and floods the result before it is
//!    returned (see [`crate::sanitize`]).
//!
//! # Rotation counts (formulas, tested in `op_counts_match_formulas`)
//! Notation: `B` blocks per ciphertext, `bs` slots per block, `V` nodes, `K_t` temporal taps
//! (all taps reach a valid frame), one ciphertext per node under AMA (`C_in + C_out − 1 ≤ B`),
//! `n1` ranging over powers of two ≤ `B` (the plan keeps the cheapest, see `linear`).
//! For an AMA map `C_in → C_out` with `τ` in-block shifts, block distances
//! `R = [−(C_out−1), C_in−1]` and `G(n1) = ⌊(C_in−1)/n1⌋ + ⌈(C_out−1)/n1⌉ + 1` giant windows:
//!
//! `rot(C_in, C_out, τ) = min(|R|·τ − 1, min_{n1} (min(n1, |R|)·τ − 1 + G(n1) − 1))` per node.
//!
//! * AMA graph conv: `V · rot(C_in, C_out, 1)` rotations, `nnz(Σ_k A_k) · (C_in + C_out − 1)`
//!   plaintext products (`nnz` = nonzero (source, target) pairs), one rescale per output
//!   ciphertext. The hoisted variant alone is `V·(C_in + C_out − 2)`.
//! * AMA temporal conv: `V · rot(C, C, K_t)` (BSGS: taps and `n1` channel blocks as baby steps),
//!   plus `V · rot(C_in, C_out, 1)` for a convolutional residual (the identity residual is
//!   rotation-free). With `n = C/B ≥ 1` ciphertexts per node every block distance occurs and
//!   the count per node is `min(n·(B·K_t − 1), min_{n1} n·(n1·K_t − 1) + n·(B/n1 − 1))`
//!   (tested in `multi_ciphertext_temporal_rotations_match_formula`). Baby steps are hoisted
//!   per input ciphertext and shared by all output ciphertexts of the node; since any split
//!   needs `|baby|·|giant| ≥ B·K_t`, this is at least `2n·√(B·K_t) − 2n` per node — for the NTU
//!   shape (`B = 32`, `K_t = 9`, `n = 4`) 128 rotations per node, 3,200 per layer, against the
//!   channel-major `C·(K_t − 1) = 1,024`: AMA saves plaintext products in the aggregation,
//!   not rotations in the temporal convolution.
//! * AMA head: `rot(C, Q, 1) + log2(bs)` rotations (node sum by additions).
//! * Channel-major graph conv: with `D = {(v − w) mod B : Σ_k A_k[v,w] ≠ 0}` (the diagonals of
//!   the V×V matrices), `min(C_in·(|D| − 1), min_{n1} C_in·(|D mod n1| − 1) +
//!   C_out·(|D − D mod n1| − 1))` rotations and `C_in·C_out·|D|` products.
//! * Channel-major temporal conv: `C_in·(K_t − 1)` rotations, `C_in·C_out·K_t` products.
//! * Channel-major head: `Q · log2(bs · V')` rotations (`V'` = V rounded up to a power of two).

use std::collections::BTreeSet;
use std::time::Instant;

use ckks::{Ciphertext, CkksParams, Encoder, Evaluator, OpCounts, Plaintext, PublicKey, SecretKey};
use ndarray::{Array1, Array2, Array4, ArrayView4};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use stgcn::{FoldedActivation, FoldedBlock, FoldedModel, FoldedResidual};

use crate::error::{HeGcnError, Result};
use crate::layout::{Layout, Packing};
use crate::linear::{
    check_aligned, LinearMap, PlaintextCache, PlaintextCacheStats, Strategy, Term,
};
use crate::plan::{check_params, site_levels, LevelPlan};

/// Bits of the scale at which general polynomial coefficients `a_v` are encoded.
pub const ACT_COEFF_SCALE_BITS: u32 = 20;

/// A packed, encrypted activation tensor.
#[derive(Clone, Debug)]
pub struct PackedTensor {
    /// Ciphertexts in layout order.
    pub cts: Vec<Ciphertext>,
    /// Where every entry lives.
    pub layout: Layout,
}

/// Encrypted class scores.
#[derive(Clone, Debug)]
pub struct EncryptedLogits {
    /// Ciphertexts holding the scores.
    pub cts: Vec<Ciphertext>,
    /// `(ciphertext, slot)` of each class.
    pub positions: Vec<(usize, usize)>,
}

/// Operation counts and wall time of one stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// Stage name, e.g. `"block0.tcn"`.
    pub name: String,
    /// Operations the stage performed.
    pub counts: OpCounts,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Counts, per stage of a compiled model, predicted from its plan (without running it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedCounts {
    /// Stage name.
    pub name: String,
    /// Rotations.
    pub rotations: usize,
    /// Plaintext × ciphertext products of the linear maps (and of the head's logit mask, one
    /// per logit ciphertext).
    pub products: usize,
}

/// `b − a` field by field.
pub fn counts_diff(a: &OpCounts, b: &OpCounts) -> OpCounts {
    OpCounts {
        add: b.add - a.add,
        mul_plain: b.mul_plain - a.mul_plain,
        mul_const: b.mul_const - a.mul_const,
        mul: b.mul - a.mul,
        relinearize: b.relinearize - a.relinearize,
        rotate: b.rotate - a.rotate,
        key_switch: b.key_switch - a.key_switch,
        decompose: b.decompose - a.decompose,
        rescale: b.rescale - a.rescale,
        drop_level: b.drop_level - a.drop_level,
    }
}

/// Sum of counts.
pub fn counts_sum<'a>(it: impl IntoIterator<Item = &'a OpCounts>) -> OpCounts {
    let mut s = OpCounts::default();
    for c in it {
        s.add += c.add;
        s.mul_plain += c.mul_plain;
        s.mul_const += c.mul_const;
        s.mul += c.mul;
        s.relinearize += c.relinearize;
        s.rotate += c.rotate;
        s.key_switch += c.key_switch;
        s.decompose += c.decompose;
        s.rescale += c.rescale;
        s.drop_level += c.drop_level;
    }
    s
}

/// The quadratic coefficients `a` of one activation ciphertext (over its used blocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuadKind {
    /// All `a = 0`: `b·x + c` only.
    Linear,
    /// All `a = 1`: a plain square.
    Square,
    /// All `a = −1`: a negated square.
    NegSquare,
    /// Any other `a`: `x·(a⊙x)` with `a` encoded at a reduced scale.
    General,
}

/// Independent samples side by side in every ciphertext (AMA): copy `r` of channel block
/// `blk` sits at block `blk + r·stride_blocks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Replicas {
    clips: usize,
    stride_blocks: usize,
}

impl Replicas {
    const ONE: Replicas = Replicas {
        clips: 1,
        stride_blocks: 0,
    };

    /// Block indices of every copy of block `blk`.
    fn blocks(self, blk: usize) -> impl Iterator<Item = usize> {
        (0..self.clips).map(move |r| blk + r * self.stride_blocks)
    }

    fn map(self, m: LinearMap, block: usize) -> LinearMap {
        m.with_replicas(self.clips, self.stride_blocks * block)
    }
}

/// Per-ciphertext, per-block coefficients of one activation site.
#[derive(Debug)]
struct ActMap {
    a: Vec<Vec<f64>>,
    b: Vec<Vec<f64>>,
    c: Vec<Vec<f64>>,
    /// Per ciphertext: which evaluation its quadratic coefficients allow.
    kind: Vec<QuadKind>,
    valid: Vec<f64>,
    block: usize,
    slots: usize,
}

impl ActMap {
    fn new(
        act: &FoldedActivation,
        layout: &Layout,
        block_idx: usize,
        site: usize,
        reps: Replicas,
    ) -> Result<Option<Self>> {
        if site_levels(act, block_idx, site)? == 0 {
            return Ok(None);
        }
        let FoldedActivation::Poly { a, b, c } = act else {
            unreachable!("site_levels refuses kept ReLU nodes")
        };
        let n = layout.num_cts();
        let nb = layout.blocks_per_ct();
        let mut am = vec![vec![0.0; nb]; n];
        let mut bm = am.clone();
        let mut cm = am.clone();
        let mut used = vec![vec![false; nb]; n];
        for ch in 0..layout.channels {
            for v in 0..layout.nodes {
                let (ct, blk0) = layout.position(ch, v);
                for blk in reps.blocks(blk0) {
                    am[ct][blk] = a[v];
                    bm[ct][blk] = b[v];
                    cm[ct][blk] = c[v];
                    used[ct][blk] = true;
                }
            }
        }
        let kind = (0..n)
            .map(|ct| {
                let vals: Vec<f64> = (0..nb)
                    .filter(|&k| used[ct][k])
                    .map(|k| am[ct][k])
                    .collect();
                if vals.iter().all(|&x| x == 1.0) {
                    QuadKind::Square
                } else if vals.iter().all(|&x| x == -1.0) {
                    QuadKind::NegSquare
                } else if vals.iter().all(|&x| x == 0.0) {
                    QuadKind::Linear
                } else {
                    QuadKind::General
                }
            })
            .collect();
        Ok(Some(Self {
            a: am,
            b: bm,
            c: cm,
            kind,
            valid: layout.valid_mask(),
            block: layout.block,
            slots: layout.slots,
        }))
    }

    fn slot_vec(&self, per_block: &[f64]) -> Vec<f64> {
        let mut v = vec![0.0; self.slots];
        for (blk, &x) in per_block.iter().enumerate() {
            if x != 0.0 {
                for (u, &m) in self.valid.iter().enumerate() {
                    v[blk * self.block + u] = x * m;
                }
            }
        }
        v
    }

    /// Operations of [`Self::apply`], call by call.
    fn planned_ops(&self) -> OpCounts {
        let mut c = OpCounts::default();
        let needs_pa = self.kind.contains(&QuadKind::General);
        for ct in 0..self.kind.len() {
            let has_b = self.b[ct].iter().any(|&v| v != 0.0);
            let square = |c: &mut OpCounts| {
                c.mul += 1;
                c.relinearize += 1;
                c.key_switch += 1;
                c.decompose += 1;
            };
            match (self.kind[ct], needs_pa) {
                (QuadKind::Linear, _) => c.mul_plain += 1,
                (QuadKind::Square, false) => square(&mut c),
                (QuadKind::NegSquare, false) => {
                    square(&mut c);
                    c.add += 1;
                }
                _ => {
                    c.mul_plain += 1;
                    square(&mut c);
                }
            }
            if has_b && self.kind[ct] != QuadKind::Linear {
                c.mul_plain += 1;
                c.add += 1;
            }
            c.rescale += 1;
            if self.c[ct].iter().any(|&v| v != 0.0) {
                c.add += 1;
            }
        }
        c
    }

    fn apply(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        x: &[Ciphertext],
    ) -> Result<Vec<Ciphertext>> {
        check_aligned(x)?;
        let params = eval.params();
        let level = x[0].level();
        let s = x[0].scale();
        let needs_pa = self.kind.contains(&QuadKind::General);
        let pa = if needs_pa {
            let log_q: f64 = params.q_primes()[..=level]
                .iter()
                .map(|&q| (q as f64).log2())
                .sum();
            let bits = (log_q - 2.0 * s.log2() - 3.0)
                .floor()
                .min(ACT_COEFF_SCALE_BITS as f64);
            if bits < 8.0 {
                return Err(HeGcnError::LevelTooLow {
                    stage: "polynomial activation (room for a·x²)".into(),
                    level,
                    needed: level + 1,
                });
            }
            bits.exp2()
        } else {
            1.0
        };
        x.par_iter()
            .enumerate()
            .map(|(ct, xi)| -> Result<Ciphertext> {
                let has_b = self.b[ct].iter().any(|&v| v != 0.0);
                let b_term = |z: Option<Ciphertext>| -> Result<Ciphertext> {
                    let pt = encoder.encode(&self.slot_vec(&self.b[ct]), level, s * pa)?;
                    let bx = eval.mul_plain(xi, &pt)?;
                    Ok(match z {
                        None => bx,
                        Some(z) => eval.add(&z, &bx)?,
                    })
                };
                let mut z = match (self.kind[ct], needs_pa) {
                    (QuadKind::Linear, _) => b_term(None)?,
                    (QuadKind::Square, false) | (QuadKind::NegSquare, false) => {
                        let mut sq = eval.square(xi)?;
                        if self.kind[ct] == QuadKind::NegSquare {
                            sq = eval.neg(&sq)?;
                        }
                        if has_b {
                            b_term(Some(sq))?
                        } else {
                            sq
                        }
                    }
                    _ => {
                        let pt = encoder.encode(&self.slot_vec(&self.a[ct]), level, pa)?;
                        let y = eval.mul_plain(xi, &pt)?;
                        let sq = eval.mul(xi, &y)?;
                        if has_b {
                            b_term(Some(sq))?
                        } else {
                            sq
                        }
                    }
                };
                z = eval.rescale(&z)?;
                if self.c[ct].iter().any(|&v| v != 0.0) {
                    let pt = encoder.encode(&self.slot_vec(&self.c[ct]), z.level(), z.scale())?;
                    z = eval.add_plain(&z, &pt)?;
                }
                Ok(z)
            })
            .collect()
    }
}

/// The residual branch as a (rotation-free) pointwise map: an identity residual is the identity
/// matrix, so its plaintext product also brings the block input to the output's level and scale.
#[derive(Debug)]
enum ResidualProgram {
    None,
    Map(LinearMap),
}

#[derive(Debug)]
struct BlockProgram {
    in_layout: Layout,
    mid_layout: Layout,
    out_layout: Layout,
    gcn: LinearMap,
    gcn_bias: Vec<Vec<f64>>,
    act1: Option<ActMap>,
    tcn: LinearMap,
    tcn_bias: Vec<Vec<f64>>,
    residual: ResidualProgram,
    act2: Option<ActMap>,
    /// Per node: factor of the graph-conv output (activation-1 input) against the plaintext
    /// stage (quadratic coefficients folded into the weights, see [`HeStgcn::stage_node_scales`]).
    mid_scale: Vec<f64>,
    /// Per node: factor of the activation-1 and temporal outputs (activation-2 input).
    out_scale: Vec<f64>,
}

#[derive(Debug)]
struct HeadProgram {
    /// Sum the node ciphertext groups before the dense layer (AMA).
    node_sum: bool,
    fc: LinearMap,
    sum_steps: Vec<usize>,
    bias: Vec<Vec<f64>>,
    positions: Vec<(usize, usize)>,
}

/// A folded ST-GCN compiled for CKKS evaluation under one packing and parameter set.
#[derive(Debug)]
pub struct HeStgcn {
    params: CkksParams,
    encoder: Encoder,
    packing: Packing,
    plan: LevelPlan,
    input_layout: Layout,
    input_affine: Option<(Array2<f64>, Array2<f64>)>,
    blocks: Vec<BlockProgram>,
    head: HeadProgram,
    cache: PlaintextCache,
    /// Samples per pass ([`HeStgcn::compile_batched`]) and the slot distance between them.
    clips: usize,
    clip_stride: usize,
}

/// Planned evaluator operations of one stage (see [`HeStgcn::planned_op_counts`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStage {
    /// Stage name, as in [`StageReport::name`].
    pub name: String,
    /// Operations the stage performs.
    pub counts: OpCounts,
}

/// All evaluator operations of `c`: additions, plaintext, constant and ciphertext products,
/// relinearizations, rotations, rescales and level drops. Key switches and decompositions
/// are parts of relinearizations and rotations and are not added again.
pub fn he_ops(c: &OpCounts) -> u64 {
    c.add + c.mul_plain + c.mul_const + c.mul + c.relinearize + c.rotate + c.rescale + c.drop_level
}

fn add_counts(a: &mut OpCounts, b: &OpCounts) {
    *a = counts_sum([&*a, b]);
}

fn bias_adds(bias: &[Vec<f64>]) -> u64 {
    bias.iter().filter(|b| b.iter().any(|&x| x != 0.0)).count() as u64
}

fn bias_vectors(
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

fn compile_gcn(blk: &FoldedBlock, lin: &Layout, lout: &Layout) -> LinearMap {
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

fn compile_tcn(blk: &FoldedBlock, lin: &Layout, lout: &Layout) -> LinearMap {
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

fn compile_pointwise(
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
fn fold_quadratic_coefficients(
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

impl HeStgcn {
    /// Compiles `model` for `packing` under `params` (checks depth and slots first).
    pub fn compile(model: &FoldedModel, packing: Packing, params: &CkksParams) -> Result<Self> {
        Self::compile_batched(model, packing, params, 1)
    }

    /// Compiles `model` to evaluate `clips` independent samples in one forward pass (AMA only):
    /// sample `r` owns the channel blocks `r·w .. r·w + w` of every node ciphertext, `w` the
    /// largest channel count of any layer (input, blocks, classes). Every weight diagonal, bias
    /// and activation coefficient repeats with that period, so the pass costs the rotations
    /// and products of one sample. Needs one ciphertext per node and `clips·w` blocks per
    /// ciphertext ([`Self::max_clips`]); encrypt with [`Self::encrypt_clips`], and
    /// [`Self::decrypt_logits`] returns the `clips × classes` scores sample-major.
    ///
    /// # Errors
    /// As [`Self::compile`]; [`HeGcnError::LayoutTooLarge`] if the copies do not fit.
    pub fn compile_batched(
        model: &FoldedModel,
        packing: Packing,
        params: &CkksParams,
        clips: usize,
    ) -> Result<Self> {
        let plan = check_params(model, packing, params)?;
        let input_layout = Layout::new(
            packing,
            model.in_channels,
            model.num_nodes,
            model.num_persons,
            model.num_frames,
            params.slots(),
        )?;
        let clips = clips.max(1);
        let width = Self::sample_width(model);
        let reps = if clips == 1 {
            Replicas::ONE
        } else {
            let fits = packing == Packing::Ama && clips * width <= input_layout.blocks_per_ct();
            if !fits {
                return Err(HeGcnError::LayoutTooLarge {
                    packing: packing.name(),
                    needed: clips * width * input_layout.block,
                    available: params.slots(),
                });
            }
            Replicas {
                clips,
                stride_blocks: width,
            }
        };
        let block = input_layout.block;
        let mut lin = input_layout.clone();
        let mut blocks = Vec::with_capacity(model.blocks.len());
        for (i, blk) in model.blocks.iter().enumerate() {
            let ones = vec![1.0; model.num_nodes];
            let folded = match packing {
                Packing::Ama => fold_quadratic_coefficients(blk, model.num_nodes),
                Packing::ChannelMajor => None,
            };
            let (blk, mid_scale, out_scale) = match &folded {
                Some((b, g, f)) => (b, g.clone(), f.clone()),
                None => (blk, ones.clone(), ones),
            };
            if blk.in_channels != lin.channels {
                return Err(HeGcnError::Shape {
                    what: "block input channels",
                    expected: lin.channels,
                    found: blk.in_channels,
                });
            }
            let mid = lin.with_channels(blk.out_channels);
            let out = mid.strided(blk.stride);
            let gcn = reps.map(compile_gcn(blk, &lin, &mid), block);
            let gcn_bias = bias_vectors(&mid, reps, |c, v| blk.gcn_bias[[c, v]]);
            let act1 = ActMap::new(&blk.act1, &mid, i, 0, reps)?;
            let tcn = reps.map(compile_tcn(blk, &mid, &out), block);
            let res_bias = match &blk.residual {
                FoldedResidual::Conv { bias, .. } => bias.clone(),
                _ => Array1::zeros(blk.out_channels),
            };
            let tcn_bias = bias_vectors(&out, reps, |c, v| {
                (blk.tcn_bias[c] + res_bias[c]) * out_scale[v]
            });
            let residual = match &blk.residual {
                FoldedResidual::None => ResidualProgram::None,
                FoldedResidual::Identity => {
                    if blk.stride != 1 || blk.in_channels != blk.out_channels {
                        return Err(HeGcnError::Shape {
                            what: "identity residual channels (stride must be 1)",
                            expected: blk.in_channels,
                            found: blk.out_channels,
                        });
                    }
                    let eye = Array2::eye(blk.out_channels);
                    ResidualProgram::Map(reps.map(
                        compile_pointwise(&eye, &out_scale, &lin, &out, out.valid_mask()),
                        block,
                    ))
                }
                FoldedResidual::Conv { weight, .. } => ResidualProgram::Map(reps.map(
                    compile_pointwise(weight, &out_scale, &lin, &out, out.valid_mask()),
                    block,
                )),
            };
            let act2 = ActMap::new(&blk.act2, &out, i, 1, reps)?;
            blocks.push(BlockProgram {
                in_layout: lin.clone(),
                mid_layout: mid,
                out_layout: out.clone(),
                gcn,
                gcn_bias,
                act1,
                tcn,
                tcn_bias,
                residual,
                act2,
                mid_scale,
                out_scale,
            });
            lin = out;
        }
        if reps.clips > 1 {
            // Copies may not spill into another ciphertext (checked against the input block
            // count above; every layer has at most `width` channels and the same block).
            debug_assert!(blocks.iter().all(|b: &BlockProgram| {
                [&b.in_layout, &b.mid_layout, &b.out_layout]
                    .iter()
                    .all(|l| l.cts_per_node() == 1 && l.block == block)
            }));
        }
        let head = Self::compile_head(model, &lin, reps)?;
        Ok(Self {
            params: params.clone(),
            encoder: Encoder::new(params),
            packing,
            plan,
            input_layout,
            input_affine: model.input_affine.clone(),
            blocks,
            head,
            cache: PlaintextCache::default(),
            clips: reps.clips,
            clip_stride: reps.stride_blocks * block,
        })
    }

    /// Channel blocks one sample occupies under [`Self::compile_batched`]: the largest channel
    /// count of any layer.
    fn sample_width(model: &FoldedModel) -> usize {
        model
            .blocks
            .iter()
            .map(|b| b.in_channels.max(b.out_channels))
            .chain([model.in_channels, model.num_classes])
            .max()
            .unwrap_or(1)
    }

    /// The most samples [`Self::compile_batched`] packs into one pass of `model` under AMA at
    /// `slots` slots (1 if one sample needs more than one ciphertext per node).
    pub fn max_clips(model: &FoldedModel, slots: usize) -> usize {
        let frame_stride = model.num_frames.max(1).next_power_of_two();
        let block = (model.num_persons.max(1) * frame_stride).next_power_of_two();
        (slots / block / Self::sample_width(model)).max(1)
    }

    /// Samples evaluated per forward pass.
    pub fn clips(&self) -> usize {
        self.clips
    }

    fn compile_head(model: &FoldedModel, lin: &Layout, reps: Replicas) -> Result<HeadProgram> {
        let (nq, c) = model.fc_weight.dim();
        if c != lin.channels {
            return Err(HeGcnError::Shape {
                what: "dense layer input channels",
                expected: lin.channels,
                found: c,
            });
        }
        let norm = 1.0 / (lin.frames * lin.nodes * lin.persons) as f64;
        let mask: Vec<f64> = lin.valid_mask().iter().map(|m| m * norm).collect();
        let (fc, sum_span, fc_in, node_sum) = match lin.packing {
            Packing::Ama => {
                let summed = Layout {
                    nodes: 1,
                    ..lin.clone()
                };
                let classes = summed.with_channels(nq);
                let fc = reps.map(
                    compile_pointwise(&model.fc_weight, &[1.0], &summed, &classes, mask),
                    lin.block,
                );
                (fc, lin.block, classes, true)
            }
            Packing::ChannelMajor => {
                let classes = lin.with_channels(nq);
                let ones = vec![1.0; lin.nodes];
                let fc = compile_pointwise(&model.fc_weight, &ones, lin, &classes, mask);
                let span = (lin.block * lin.nodes.next_power_of_two()).min(lin.slots);
                (fc, span, classes, false)
            }
        };
        let sum_steps: Vec<usize> = (0..sum_span.trailing_zeros())
            .map(|i| 1usize << i)
            .collect();
        let fc_ref = &fc_in;
        let positions: Vec<(usize, usize)> = (0..reps.clips)
            .flat_map(|r| {
                (0..nq).map(move |q| {
                    let fc_in = fc_ref;
                    let (ct, blk) = fc_in.position(q, 0);
                    (ct, (blk + r * reps.stride_blocks) * fc_in.block)
                })
            })
            .collect();
        let mut bias = vec![vec![0.0; lin.slots]; fc_in.num_cts()];
        for (i, &(ct, slot)) in positions.iter().enumerate() {
            bias[ct][slot] = model.fc_bias[i % nq];
        }
        Ok(HeadProgram {
            node_sum,
            fc,
            sum_steps,
            bias,
            positions,
        })
    }

    /// The packing.
    pub fn packing(&self) -> Packing {
        self.packing
    }

    /// The parameters the model was compiled for.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    /// The level plan (the input is encrypted at level `plan().depth`).
    pub fn plan(&self) -> &LevelPlan {
        &self.plan
    }

    /// Layout of the encrypted input.
    pub fn input_layout(&self) -> &Layout {
        &self.input_layout
    }

    /// Layout after block `i` (its output).
    pub fn block_output_layout(&self, i: usize) -> Option<&Layout> {
        self.blocks.get(i).map(|b| &b.out_layout)
    }

    /// Number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Every rotation step the model uses (left rotations, `0 < step < slots`): generate Galois
    /// keys for exactly these.
    pub fn rotation_steps(&self) -> Vec<i64> {
        let mut s = BTreeSet::new();
        for b in &self.blocks {
            b.gcn.steps(&mut s);
            b.tcn.steps(&mut s);
            if let ResidualProgram::Map(m) = &b.residual {
                m.steps(&mut s);
            }
        }
        self.head.fc.steps(&mut s);
        s.extend(self.head.sum_steps.iter().copied());
        s.into_iter().map(|x| x as i64).collect()
    }

    /// Rotation steps of the graph convolution (`stage = 0`) or the temporal convolution with
    /// its residual (`stage = 1`) of block `i` — for keys of a single stage (benchmarks).
    pub fn block_rotation_steps(&self, i: usize, stage: usize) -> Vec<i64> {
        let mut s = BTreeSet::new();
        if let Some(b) = self.blocks.get(i) {
            if stage == 0 {
                b.gcn.steps(&mut s);
            } else {
                b.tcn.steps(&mut s);
                if let ResidualProgram::Map(m) = &b.residual {
                    m.steps(&mut s);
                }
            }
        }
        s.into_iter().map(|x| x as i64).collect()
    }

    /// Rotation steps of the pooling and dense head — with [`Self::block_rotation_steps`], the
    /// Galois keys of one stage at a time (for memory-bounded runs and benchmarks).
    pub fn head_rotation_steps(&self) -> Vec<i64> {
        let mut s = BTreeSet::new();
        self.head.fc.steps(&mut s);
        s.extend(self.head.sum_steps.iter().copied());
        s.into_iter().map(|x| x as i64).collect()
    }

    /// Layout of the graph-convolution output (activation and temporal input) of block `i`.
    pub fn block_mid_layout(&self, i: usize) -> Option<&Layout> {
        self.blocks.get(i).map(|b| &b.mid_layout)
    }

    /// Layout of the input of block `i`.
    pub fn block_input_layout(&self, i: usize) -> Option<&Layout> {
        self.blocks.get(i).map(|b| &b.in_layout)
    }

    /// Rotations and products per stage predicted from the compiled maps.
    pub fn planned_counts(&self) -> Vec<PlannedCounts> {
        let mut out = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            out.push(PlannedCounts {
                name: format!("block{i}.gcn"),
                rotations: b.gcn.rotations(),
                products: b.gcn.products(),
            });
            let (rr, rp) = match &b.residual {
                ResidualProgram::Map(m) => (m.rotations(), m.products()),
                ResidualProgram::None => (0, 0),
            };
            out.push(PlannedCounts {
                name: format!("block{i}.tcn"),
                rotations: b.tcn.rotations() + rr,
                products: b.tcn.products() + rp,
            });
        }
        out.push(PlannedCounts {
            name: "head".into(),
            rotations: self.head.fc.rotations() + self.head.sum_steps.len() * self.head.bias.len(),
            products: self.head.fc.products() + self.head.bias.len(),
        });
        out
    }

    /// Every evaluator operation of [`Self::forward`], per stage (same names and order as its
    /// [`StageReport`]s), derived from the compiled program without running it: the counts a
    /// forward pass will show (tested to be equal in `planned_op_counts_equal_measured`).
    pub fn planned_op_counts(&self) -> Vec<PlannedStage> {
        let mut out = Vec::new();
        for (i, b) in self.blocks.iter().enumerate() {
            let mut g = b.gcn.planned_ops();
            g.add += bias_adds(&b.gcn_bias);
            out.push(PlannedStage {
                name: format!("block{i}.gcn"),
                counts: g,
            });
            out.push(PlannedStage {
                name: format!("block{i}.act1"),
                counts: b.act1.as_ref().map(ActMap::planned_ops).unwrap_or_default(),
            });
            let mut t = b.tcn.planned_ops();
            if let ResidualProgram::Map(m) = &b.residual {
                t.drop_level += b.in_layout.num_cts() as u64;
                add_counts(&mut t, &m.planned_ops());
                t.add += b.out_layout.num_cts() as u64;
            }
            t.add += bias_adds(&b.tcn_bias);
            out.push(PlannedStage {
                name: format!("block{i}.tcn"),
                counts: t,
            });
            out.push(PlannedStage {
                name: format!("block{i}.act2"),
                counts: b.act2.as_ref().map(ActMap::planned_ops).unwrap_or_default(),
            });
        }
        let h = &self.head;
        let last = self
            .blocks
            .last()
            .map_or(&self.input_layout, |b| &b.out_layout);
        let mut c = h.fc.planned_ops();
        if h.node_sum {
            c.add += (last.cts_per_node() * (last.nodes - 1)) as u64;
        }
        let k = (h.sum_steps.len() * h.bias.len()) as u64;
        c.rotate += k;
        c.key_switch += k;
        c.decompose += k;
        c.add += k + bias_adds(&h.bias);
        // The logit mask: one product and one rescale per logit ciphertext.
        c.mul_plain += h.bias.len() as u64;
        c.rescale += h.bias.len() as u64;
        out.push(PlannedStage {
            name: "head".into(),
            counts: c,
        });
        out
    }

    /// Sets the memory bound of the plaintext cache (bytes; default 0 = off). With a bound,
    /// every weight plaintext a linear map encodes is memoised by content, level and scale
    /// until the bound is reached (the first forward pass fills it, later ones reuse it);
    /// beyond the bound plaintexts are encoded on the fly. `0` frees the cache.
    pub fn set_plaintext_cache_budget(&self, bytes: usize) {
        self.cache.set_budget(bytes);
    }

    /// Bounds the baby-step rotations a BSGS linear map holds at once while it evaluates
    /// isomorphic groups in lockstep (AMA temporal convolution: the nodes share the kernel,
    /// so each weight diagonal is encoded once per chunk of nodes instead of once per node);
    /// bytes, `0` = [`DEFAULT_LOCKSTEP_BYTES`](crate::DEFAULT_LOCKSTEP_BYTES). At least one group per worker
    /// thread runs at once whatever the bound.
    pub fn set_lockstep_budget(&self, bytes: usize) {
        self.cache.set_lockstep_budget(bytes);
    }

    /// Size, bound and hit counts of the plaintext cache.
    pub fn plaintext_cache_stats(&self) -> PlaintextCacheStats {
        self.cache.stats()
    }

    /// Per-node factors `(g, f)` by which the encrypted intermediate tensors of block `i` differ
    /// from the plaintext stages of [`crate::reference`]: the graph-conv output is `g_v` times
    /// the plaintext one, the activation-1 and temporal-conv outputs are `f_v` times theirs, the
    /// block output is exact. All ones except under AMA with quadratic coefficients other than
    /// 0 and ±1, whose magnitudes are folded into the weights (`√|a|` per node) so that every
    /// activation is a plain (possibly negated) square at full scale.
    pub fn stage_node_scales(&self, i: usize) -> Option<(&[f64], &[f64])> {
        self.blocks
            .get(i)
            .map(|b| (b.mid_scale.as_slice(), b.out_scale.as_slice()))
    }

    /// The strategy chosen for the temporal convolution of block `i` (`None` if no such block).
    pub fn temporal_strategy(&self, i: usize) -> Option<Strategy> {
        self.blocks.get(i).map(|b| b.tcn.strategy())
    }

    fn encode_slots(&self, v: &[f64], like: &Ciphertext) -> Result<Plaintext> {
        Ok(self.encoder.encode(v, like.level(), like.scale())?)
    }

    fn add_bias(&self, eval: &Evaluator, cts: &mut [Ciphertext], bias: &[Vec<f64>]) -> Result<()> {
        cts.par_iter_mut()
            .zip(bias)
            .try_for_each(|(ct, b)| -> Result<()> {
                if b.iter().any(|&x| x != 0.0) {
                    let pt = self.encode_slots(b, ct)?;
                    *ct = eval.add_plain(ct, &pt)?;
                }
                Ok(())
            })
    }

    fn block_ref(&self, i: usize) -> Result<&BlockProgram> {
        self.blocks.get(i).ok_or(HeGcnError::Shape {
            what: "block index (exclusive bound)",
            expected: self.blocks.len(),
            found: i,
        })
    }

    fn check_layout(x: &PackedTensor, expected: &Layout, what: &'static str) -> Result<()> {
        if &x.layout != expected || x.cts.len() != expected.num_cts() {
            return Err(HeGcnError::Shape {
                what,
                expected: expected.num_cts(),
                found: x.cts.len(),
            });
        }
        Ok(())
    }

    /// Stage 1 of block `i`: graph convolution + bias (one level).
    pub fn gcn(&self, eval: &Evaluator, i: usize, x: &PackedTensor) -> Result<PackedTensor> {
        let b = self.block_ref(i)?;
        Self::check_layout(x, &b.in_layout, "graph convolution input")?;
        let target = self.params.default_scale();
        let mut cts = b
            .gcn
            .apply(eval, &self.encoder, &self.cache, &x.cts, target)?;
        self.add_bias(eval, &mut cts, &b.gcn_bias)?;
        Ok(PackedTensor {
            cts,
            layout: b.mid_layout.clone(),
        })
    }

    /// Activation site `site` (0: after the graph conv, 1: after the residual sum) of block `i`;
    /// a fully pruned site returns its input unchanged.
    pub fn activation(
        &self,
        eval: &Evaluator,
        i: usize,
        site: usize,
        x: &PackedTensor,
    ) -> Result<PackedTensor> {
        let b = self.block_ref(i)?;
        let (act, layout) = match site {
            0 => (&b.act1, &b.mid_layout),
            _ => (&b.act2, &b.out_layout),
        };
        Self::check_layout(x, layout, "activation input")?;
        match act {
            None => Ok(x.clone()),
            Some(a) => Ok(PackedTensor {
                cts: a.apply(eval, &self.encoder, &x.cts)?,
                layout: layout.clone(),
            }),
        }
    }

    /// Temporal convolution of `h` (the activated graph-conv output) plus the residual branch
    /// of the block input `x` (one level).
    pub fn temporal(
        &self,
        eval: &Evaluator,
        i: usize,
        h: &PackedTensor,
        x: &PackedTensor,
    ) -> Result<PackedTensor> {
        let b = self.block_ref(i)?;
        Self::check_layout(h, &b.mid_layout, "temporal convolution input")?;
        Self::check_layout(x, &b.in_layout, "residual input")?;
        let target = self.params.default_scale();
        let mut r = b
            .tcn
            .apply(eval, &self.encoder, &self.cache, &h.cts, target)?;
        match &b.residual {
            ResidualProgram::None => {}
            ResidualProgram::Map(m) => {
                let level = h.cts[0].level();
                let xd: Vec<Ciphertext> = x
                    .cts
                    .par_iter()
                    .map(|c| eval.drop_to_level(c, level))
                    .collect::<ckks::Result<_>>()?;
                let res = m.apply(eval, &self.encoder, &self.cache, &xd, target)?;
                r.par_iter_mut()
                    .zip(&res)
                    .try_for_each(|(ri, si)| -> Result<()> {
                        eval.add_assign(ri, si)?;
                        Ok(())
                    })?;
            }
        }
        self.add_bias(eval, &mut r, &b.tcn_bias)?;
        Ok(PackedTensor {
            cts: r,
            layout: b.out_layout.clone(),
        })
    }

    /// Average pooling, the dense head (one level) and the logit mask (one level: a 0/1
    /// plaintext product and a rescale): the returned ciphertexts hold the logits at `positions` and zeros
    /// (up to noise) in every other slot.
    pub fn head(&self, eval: &Evaluator, x: &PackedTensor) -> Result<EncryptedLogits> {
        let mut out = self.head_unmasked(eval, x)?;
        self.mask_logits(eval, &mut out)?;
        Ok(EncryptedLogits {
            cts: out,
            positions: self.head.positions.clone(),
        })
    }

    /// Multiplies each logit ciphertext by the 0/1 mask of its logit slots, encoded at scale
    /// `q_ℓ` (the prime the rescale removes, so the scale comes back exactly), and rescales.
    /// Without it the log-step rotate-and-sum leaves partial sums of the dense layer (weights
    /// times activations) in every other slot of a class block, which the client would decrypt.
    pub(crate) fn mask_logits(&self, eval: &Evaluator, cts: &mut [Ciphertext]) -> Result<()> {
        let positions = &self.head.positions;
        cts.par_iter_mut()
            .enumerate()
            .try_for_each(|(i, ct)| -> Result<()> {
                let mut mask = vec![0.0; self.params.slots()];
                for &(_, slot) in positions.iter().filter(|p| p.0 == i) {
                    mask[slot] = 1.0;
                }
                let level = ct.level();
                let q = self.params.q_primes()[level] as f64;
                let pt = self.encoder.encode(&mask, level, q)?;
                eval.mul_plain_assign(ct, &pt)?;
                eval.rescale_assign(ct)?;
                Ok(())
            })
    }

    /// The head without the logit mask: partial sums of the dense layer in every slot of a
    /// class block (what the returned ciphertexts held before the mask; tests compare).
    pub(crate) fn head_unmasked(
        &self,
        eval: &Evaluator,
        x: &PackedTensor,
    ) -> Result<Vec<Ciphertext>> {
        let expected = self
            .blocks
            .last()
            .map_or(&self.input_layout, |b| &b.out_layout);
        Self::check_layout(x, expected, "head input")?;
        let h = &self.head;
        let fc_in: Vec<Ciphertext> = if h.node_sum {
            let per = x.layout.cts_per_node();
            (0..per)
                .into_par_iter()
                .map(|j| -> Result<Ciphertext> {
                    let mut acc = x.cts[j].clone();
                    for v in 1..x.layout.nodes {
                        eval.add_assign(&mut acc, &x.cts[v * per + j])?;
                    }
                    Ok(acc)
                })
                .collect::<Result<_>>()?
        } else {
            x.cts.clone()
        };
        let target = self.params.default_scale();
        let mut out =
            h.fc.apply(eval, &self.encoder, &self.cache, &fc_in, target)?;
        out.par_iter_mut().try_for_each(|ct| -> Result<()> {
            for &s in &h.sum_steps {
                let r = eval.rotate(ct, s as i64)?;
                eval.add_assign(ct, &r)?;
            }
            Ok(())
        })?;
        self.add_bias(eval, &mut out, &h.bias)?;
        Ok(out)
    }

    /// Runs block `i` (graph conv, activation, temporal conv + residual, activation).
    pub fn block(&self, eval: &Evaluator, i: usize, x: &PackedTensor) -> Result<PackedTensor> {
        let g = self.gcn(eval, i, x)?;
        let h = self.activation(eval, i, 0, &g)?;
        let r = self.temporal(eval, i, &h, x)?;
        self.activation(eval, i, 1, &r)
    }

    /// The whole network with per-stage operation counts and wall time.
    pub fn forward(
        &self,
        eval: &Evaluator,
        x: &PackedTensor,
    ) -> Result<(EncryptedLogits, Vec<StageReport>)> {
        let mut reports = Vec::new();
        let mut stage = |name: String, t0: Instant, c0: OpCounts| {
            reports.push(StageReport {
                name,
                counts: counts_diff(&c0, &eval.counters()),
                seconds: t0.elapsed().as_secs_f64(),
            })
        };
        let mut cur = x.clone();
        for i in 0..self.blocks.len() {
            let (t0, c0) = (Instant::now(), eval.counters());
            let g = self.gcn(eval, i, &cur)?;
            stage(format!("block{i}.gcn"), t0, c0);
            let (t0, c0) = (Instant::now(), eval.counters());
            let h = self.activation(eval, i, 0, &g)?;
            stage(format!("block{i}.act1"), t0, c0);
            let (t0, c0) = (Instant::now(), eval.counters());
            let r = self.temporal(eval, i, &h, &cur)?;
            stage(format!("block{i}.tcn"), t0, c0);
            let (t0, c0) = (Instant::now(), eval.counters());
            cur = self.activation(eval, i, 1, &r)?;
            stage(format!("block{i}.act2"), t0, c0);
        }
        let (t0, c0) = (Instant::now(), eval.counters());
        let logits = self.head(eval, &cur)?;
        stage("head".into(), t0, c0);
        Ok((logits, reports))
    }

    // ---- client side ----

    /// Client: applies the model's input affine map to one sample `(C, T, V, M)`, packs it and
    /// encrypts it at level `plan().depth` with the public key (as sample 0 of a batched model).
    pub fn encrypt_input(&self, pk: &PublicKey, x: ArrayView4<'_, f64>) -> Result<PackedTensor> {
        self.encrypt_clips(pk, &[x])
    }

    /// Client: packs up to [`Self::clips`] samples `(C, T, V, M)` (sample `r` in copy `r`, see
    /// [`Self::compile_batched`]) after the input affine map and encrypts them at level
    /// `plan().depth`; missing samples are zeros.
    ///
    /// # Errors
    /// [`HeGcnError::Shape`] for a sample of the wrong shape or more samples than clips.
    pub fn encrypt_clips(
        &self,
        pk: &PublicKey,
        xs: &[ArrayView4<'_, f64>],
    ) -> Result<PackedTensor> {
        let l = &self.input_layout;
        if xs.len() > self.clips {
            return Err(HeGcnError::Shape {
                what: "samples per pass",
                expected: self.clips,
                found: xs.len(),
            });
        }
        let mut slots = vec![vec![0.0; l.slots]; l.num_cts()];
        for (r, x) in xs.iter().enumerate() {
            for (what, expected, found) in [
                ("input channels C", l.channels, x.dim().0),
                ("input frames T", l.frames, x.dim().1),
                ("input nodes V", l.nodes, x.dim().2),
                ("input persons M", l.persons, x.dim().3),
            ] {
                if expected != found {
                    return Err(HeGcnError::Shape {
                        what,
                        expected,
                        found,
                    });
                }
            }
            for ((c, t, v, m), &e) in x.indexed_iter() {
                let y = match &self.input_affine {
                    Some((scale, shift)) => scale[[c, v]] * e + shift[[c, v]],
                    None => e,
                };
                let (ct, slot) = l.slot(c, t, v, m);
                slots[ct][slot + r * self.clip_stride] = y;
            }
        }
        let level = self.plan.depth;
        let scale = self.params.default_scale();
        let cts = slots
            .par_iter()
            .map(|s| -> Result<Ciphertext> {
                pk.encrypt(&self.encoder.encode(s, level, scale)?)
                    .map_err(Into::into)
            })
            .collect::<Result<_>>()?;
        Ok(PackedTensor {
            cts,
            layout: l.clone(),
        })
    }

    /// Packs and encrypts a logical tensor `(C, T, V, M)` (no input map) in `layout` at
    /// `level` with the default scale — to feed a single stage (tests, benchmarks).
    pub fn encrypt_packed(
        &self,
        pk: &PublicKey,
        layout: &Layout,
        x: ArrayView4<'_, f64>,
        level: usize,
    ) -> Result<PackedTensor> {
        let dims = (layout.channels, layout.frames, layout.nodes, layout.persons);
        if x.dim() != dims {
            return Err(HeGcnError::Shape {
                what: "tensor entries (C·T·V·M)",
                expected: dims.0 * dims.1 * dims.2 * dims.3,
                found: x.len(),
            });
        }
        let mut slots = vec![vec![0.0; layout.slots]; layout.num_cts()];
        for ((c, t, v, m), &e) in x.indexed_iter() {
            let (ct, slot) = layout.slot(c, t, v, m);
            slots[ct][slot] = e;
        }
        let scale = self.params.default_scale();
        let cts = slots
            .par_iter()
            .map(|s| -> Result<Ciphertext> {
                pk.encrypt(&self.encoder.encode(s, level, scale)?)
                    .map_err(Into::into)
            })
            .collect::<Result<_>>()?;
        Ok(PackedTensor {
            cts,
            layout: layout.clone(),
        })
    }

    /// Client (or tests): decrypts a packed tensor back to `(C, T, V, M)` (sample 0 of a batched
    /// model).
    pub fn decrypt_tensor(&self, sk: &SecretKey, x: &PackedTensor) -> Result<Array4<f64>> {
        let l = &x.layout;
        let dec: Vec<Vec<f64>> = x
            .cts
            .iter()
            .map(|ct| Ok(self.encoder.decode(&sk.decrypt(ct)?)))
            .collect::<Result<_>>()?;
        Ok(Array4::from_shape_fn(
            (l.channels, l.frames, l.nodes, l.persons),
            |(c, t, v, m)| {
                let (ct, slot) = l.slot(c, t, v, m);
                dec[ct][slot]
            },
        ))
    }

    /// Client: decrypts the class scores (`clips × classes`, sample-major).
    pub fn decrypt_logits(&self, sk: &SecretKey, logits: &EncryptedLogits) -> Result<Vec<f64>> {
        let dec: Vec<Vec<f64>> = logits
            .cts
            .iter()
            .map(|ct| Ok(self.encoder.decode(&sk.decrypt(ct)?)))
            .collect::<Result<_>>()?;
        Ok(logits
            .positions
            .iter()
            .map(|&(ct, slot)| dec[ct][slot])
            .collect())
    }
}
