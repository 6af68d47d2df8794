//! Operation counts of a compiled model: the per-stage [`StageReport`] a forward pass
//! measures, the counts [`HeStgcn::planned_counts`] and [`HeStgcn::planned_op_counts`]
//! predict from the compiled program without running it, and helpers on [`OpCounts`].
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
//!
//! # ModDowns (divisions by `P`, counted per polynomial)
//! Two per relinearization and per rotation outside the linear maps (the head's
//! rotate-and-sum). A linear map with rotations keeps its rotations and partial sums over
//! `Q·P` (lazy ModDown, see `linear`): one per giant step and two per output ciphertext with
//! terms, none per hoisted or baby-step rotation; a rotation-free map needs none. The
//! quickstart's served model (30 clips per pass, `ntu_bench::quickstart_planned_ops`):
//! 1,352 ModDowns for 1,844 key switches, where dividing every key switch would take 3,688.

use ckks::OpCounts;
use serde::{Deserialize, Serialize};

use super::activation::ActMap;
use super::compile::{BlockProgram, ResidualProgram};
use super::head::HeadProgram;
use super::HeStgcn;
use crate::layout::Layout;
use crate::linear::LinearMap;

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
        mod_down: b.mod_down - a.mod_down,
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
        s.mod_down += c.mod_down;
    }
    s
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

pub(super) fn bias_adds(bias: &[Vec<f64>]) -> u64 {
    bias.iter().filter(|b| b.iter().any(|&x| x != 0.0)).count() as u64
}

impl HeStgcn {
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
            out.extend(Self::block_planned_ops(i, b));
        }
        out.push(PlannedStage {
            name: "head".into(),
            counts: self.head_planned_ops(),
        });
        out
    }

    /// The planned operations of the four stages of block `i`.
    fn block_planned_ops(i: usize, b: &BlockProgram) -> [PlannedStage; 4] {
        let g = gcn_stage_ops(&b.gcn, &b.gcn_bias);
        let t = tcn_stage_ops(
            b.tcn.planned_ops(),
            &b.residual,
            &b.in_layout,
            &b.out_layout,
            &b.tcn_bias,
        );
        [
            PlannedStage {
                name: format!("block{i}.gcn"),
                counts: g,
            },
            PlannedStage {
                name: format!("block{i}.act1"),
                counts: b.act1.as_ref().map(ActMap::planned_ops).unwrap_or_default(),
            },
            PlannedStage {
                name: format!("block{i}.tcn"),
                counts: t,
            },
            PlannedStage {
                name: format!("block{i}.act2"),
                counts: b.act2.as_ref().map(ActMap::planned_ops).unwrap_or_default(),
            },
        ]
    }

    /// The planned operations of the head: node sum, dense layer, rotate-and-sum, bias and
    /// logit mask.
    fn head_planned_ops(&self) -> OpCounts {
        let last = self
            .blocks
            .last()
            .map_or(&self.input_layout, |b| &b.out_layout);
        head_ops(&self.head, last)
    }
}

/// The graph-convolution stage: the map and its bias additions.
pub(super) fn gcn_stage_ops(gcn: &LinearMap, bias: &[Vec<f64>]) -> OpCounts {
    let mut g = gcn.planned_ops();
    g.add += bias_adds(bias);
    g
}

/// The temporal stage: the temporal map's operations `tcn`, the residual branch on the block input (`lin`)
/// dropped to the temporal level, their sum into the outputs (`lout`) and the bias.
pub(super) fn tcn_stage_ops(
    tcn: OpCounts,
    residual: &ResidualProgram,
    lin: &Layout,
    lout: &Layout,
    bias: &[Vec<f64>],
) -> OpCounts {
    let mut t = tcn;
    if let ResidualProgram::Map(m) = residual {
        t.drop_level += lin.num_cts() as u64;
        add_counts(&mut t, &m.planned_ops());
        t.add += lout.num_cts() as u64;
    }
    t.add += bias_adds(bias);
    t
}

/// The head on the last layout `last`: node sum, dense layer, rotate-and-sum, bias and logit
/// mask.
pub(super) fn head_ops(h: &HeadProgram, last: &Layout) -> OpCounts {
    let mut c = h.fc.planned_ops();
    if h.node_sum {
        c.add += (last.cts_per_node() * (last.nodes - 1)) as u64;
    }
    let k = (h.sum_steps.len() * h.bias.len()) as u64;
    c.rotate += k;
    c.key_switch += k;
    c.decompose += k;
    c.mod_down += 2 * k;
    c.add += k + bias_adds(&h.bias);
    // The logit mask: one product and one rescale per logit ciphertext.
    c.mul_plain += h.bias.len() as u64;
    c.rescale += h.bias.len() as u64;
    c
}
