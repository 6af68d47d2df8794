//! Every way each stage of a model can be packed, with its planned operations, for the packing
//! planner ([`crate::planner`]): per block and per combination of input, graph-convolution
//! output and block output packing ([`BlockOption`]), and per packing of the head
//! ([`HeadOption`]). Each stage's counts come from the same lowering [`HeStgcn::compile_plan`]
//! runs (the maps compiled for that combination, then dropped), so the stages of a plan
//! assembled from options equal the compiled plan's [`HeStgcn::planned_op_counts`] (tested).
//!
//! Cost: each block's graph-convolution, temporal and residual maps are compiled once per pair
//! of packings they connect (four each, against two for compiling both whole-model packings);
//! only counts are kept. Options of a packing whose layout does not fit the slots are left out.

use ckks::cost::Stage;
use ckks::{CkksParams, OpCounts};
use stgcn::{FoldedBlock, FoldedModel, FoldedResidual};

use super::activation::ActMap;
use super::compile::{compile_residual, folds, open_if, ResidualProgram};
use super::counts::{bias_adds, gcn_stage_ops, head_ops, tcn_stage_ops};
use super::fold::fold_quadratic_coefficients;
use super::maps::{bias_vectors, compile_gcn, compile_tcn};
use super::replicas::Replicas;
use super::HeStgcn;
use crate::error::Result;
use crate::layout::{Layout, Packing};
use crate::linear::{LinearMap, Strategy, DEFAULT_LOCKSTEP_BYTES};
use crate::packing_plan::BlockPacking;
use crate::plan::{check_params, open_maps};

/// Both packings, in option order.
pub const PACKINGS: [Packing; 2] = [Packing::Ama, Packing::ChannelMajor];

/// One block under one packing combination.
#[derive(Clone, Debug)]
pub struct BlockOption {
    /// Packing of the block input.
    pub input: Packing,
    /// Packings of the graph-convolution output and of the block output.
    pub packing: BlockPacking,
    /// Graph convolution, activation 1, temporal convolution + residual, activation 2, each
    /// at its input level, with its products over `Q·P`.
    pub stages: [Stage; 4],
    /// Weight and bias plaintexts each stage encodes with no plaintext cache (see
    /// `LinearMap::planned_encodes`; activation coefficients counted as their products).
    pub encodes: [u64; 4],
    /// Strategies of the graph-convolution and temporal maps (BSGS split chosen per map).
    pub strategies: [Strategy; 2],
}

/// The head under one packing of its input.
#[derive(Clone, Debug)]
pub struct HeadOption {
    /// Packing of the head's input.
    pub input: Packing,
    /// The head's operations at its input level.
    pub stage: Stage,
    /// Plaintexts it encodes.
    pub encodes: u64,
}

/// Every option of every stage of a model at one parameter set.
#[derive(Clone, Debug)]
pub struct StageOptions {
    /// Per block: the options whose layouts fit (at most 8).
    pub blocks: Vec<Vec<BlockOption>>,
    /// The head's options.
    pub head: Vec<HeadOption>,
    /// The model's depth (the input level).
    pub depth: usize,
}

/// A compiled map's counts and encodings, the map itself dropped.
struct MapCost {
    ops: OpCounts,
    over_qp: u64,
    encodes: u64,
    strategy: Strategy,
}

impl MapCost {
    /// The costs of `m` at input `level`, its representation planned there first (as
    /// [`HeStgcn`]'s compilation plans it, [`plan_map`]).
    fn of(m: &mut LinearMap, level: usize, special: usize) -> Self {
        let threads = rayon::current_num_threads();
        plan_map(m, level, special);
        Self {
            ops: m.planned_ops(),
            over_qp: m.planned_over_qp(),
            encodes: m.planned_encodes(level, special, DEFAULT_LOCKSTEP_BYTES, threads),
            strategy: m.strategy(),
        }
    }
}

/// Plans `m`'s representation at input `level` ([`LinearMap::plan_representation`]) for the
/// default lockstep budget and this process's threads: what compilation and the options both
/// do, so their counts agree.
pub(super) fn plan_map(m: &mut LinearMap, level: usize, special: usize) {
    m.plan_representation(
        level,
        special,
        DEFAULT_LOCKSTEP_BYTES,
        rayon::current_num_threads(),
    );
}

impl HeStgcn {
    /// Every packing option of every stage of `model` at `params`, for the planner.
    ///
    /// # Errors
    /// The depth or the AMA layout does not fit `params`; a kept ReLU; shape errors.
    pub fn stage_options(model: &FoldedModel, params: &CkksParams) -> Result<StageOptions> {
        let plan = check_params(model, Packing::Ama, params)?;
        let base = Layout::input_of(model, Packing::Ama, params.slots())?;
        let special = params.p_primes().len();
        let mut lin = base;
        let mut blocks = Vec::new();
        let open = open_maps(model);
        for (i, blk) in model.blocks.iter().enumerate() {
            let lv = plan.block_levels(i);
            blocks.push(block_options(
                blk,
                (i, open[i]),
                &lin,
                lv,
                model.num_nodes,
                special,
            )?);
            lin = lin.with_channels(blk.out_channels).strided(blk.stride);
        }
        let level = plan.head_level();
        let mut head = Vec::new();
        for p in PACKINGS {
            let Ok(l) = lin.with_packing(p) else { continue };
            let mut h = Self::compile_head(model, &l, Replicas::ONE)?;
            let c = MapCost::of(&mut h.fc, level, special);
            let ops = head_ops(&h, &l);
            let over_qp = c.over_qp;
            let encodes = c.encodes + 2 * h.bias.len() as u64;
            head.push(HeadOption {
                input: p,
                stage: Stage::new("head", level, ops, over_qp),
                encodes,
            });
        }
        Ok(StageOptions {
            blocks,
            head,
            depth: plan.depth,
        })
    }
}

/// The options of block `i` on the input layout `lin` (any packing), stage input levels `lv`,
/// its maps open as `open` says ([`open_maps`]).
fn block_options(
    blk: &FoldedBlock,
    (i, open): (usize, [bool; 2]),
    lin: &Layout,
    lv: [usize; 4],
    nodes: usize,
    special: usize,
) -> Result<Vec<BlockOption>> {
    let mid = lin.with_channels(blk.out_channels);
    let out = mid.strided(blk.stride);
    let at = |l: &Layout, p: Packing| l.with_packing(p).ok();
    let ones = vec![1.0; nodes];
    let mut gcn = Vec::new();
    let mut tcn = Vec::new();
    for a in PACKINGS {
        for b in PACKINGS {
            if let (Some(x), Some(m)) = (at(lin, a), at(&mid, b)) {
                let mut map = open_if(compile_gcn(blk, &x, &m), open[0]);
                let bias = bias_vectors(&m, Replicas::ONE, |c, v| blk.gcn_bias[[c, v]]);
                let mut c = MapCost::of(&mut map, lv[0], special);
                c.ops = gcn_stage_ops(&map, &bias);
                c.encodes += bias_adds(&bias);
                gcn.push(((a, b), c));
            }
            if let (Some(m), Some(o)) = (at(&mid, a), at(&out, b)) {
                let mut map = open_if(compile_tcn(blk, &m, &o), open[1]);
                tcn.push(((a, b), MapCost::of(&mut map, lv[2], special)));
            }
        }
    }
    let mut opts = Vec::new();
    for ((pi, pm), g) in &gcn {
        let (pi, pm) = (*pi, *pm);
        for ((pm2, po), t) in &tcn {
            let (pm2, po) = (*pm2, *po);
            if pm2 != pm {
                continue;
            }
            let bp = BlockPacking { mid: pm, out: po };
            let (x, m, o) = (at(lin, pi), at(&mid, pm), at(&out, po));
            let (Some(x), Some(m), Some(o)) = (x, m, o) else {
                continue;
            };
            let folded = folds(bp)
                .then(|| fold_quadratic_coefficients(blk, nodes))
                .flatten();
            let fb = folded.as_ref().map_or(blk, |f| &f.0);
            let (t_ops, t_qp, t_enc) =
                temporal_stage(blk, (&x, &o), t, &ones, (lv[2], special), open[1])?;
            let a1 = ActMap::new(&fb.act1, &m, i, 0, Replicas::ONE)?;
            let a2 = ActMap::new(&fb.act2, &o, i, 1, Replicas::ONE)?;
            let act = |a: &Option<ActMap>| a.as_ref().map(ActMap::planned_ops).unwrap_or_default();
            let (a1, a2) = (act(&a1), act(&a2));
            opts.push(BlockOption {
                input: pi,
                packing: bp,
                stages: [
                    Stage::new(format!("block{i}.gcn"), lv[0], g.ops, g.over_qp),
                    Stage::new(format!("block{i}.act1"), lv[1], a1, 0),
                    Stage::new(format!("block{i}.tcn"), lv[2], t_ops, t_qp),
                    Stage::new(format!("block{i}.act2"), lv[3], a2, 0),
                ],
                encodes: [g.encodes, a1.mul_plain, t_enc, a2.mul_plain],
                strategies: [g.strategy, t.strategy],
            });
        }
    }
    Ok(opts)
}

/// The temporal stage from the block input `x` to the output `o`: the temporal map's costs
/// `t`, the residual branch compiled for these layouts, and the bias additions.
fn temporal_stage(
    blk: &FoldedBlock,
    (x, o): (&Layout, &Layout),
    t: &MapCost,
    ones: &[f64],
    (level, special): (usize, usize),
    open: bool,
) -> Result<(OpCounts, u64, u64)> {
    let res_bias = |c: usize| match &blk.residual {
        FoldedResidual::Conv { bias, .. } => bias[c],
        _ => 0.0,
    };
    let bias = bias_vectors(o, Replicas::ONE, |c, _| blk.tcn_bias[c] + res_bias(c));
    let mut residual = compile_residual(blk, x, o, ones, Replicas::ONE)?.open_if(open);
    let (mut qp, mut enc) = (t.over_qp, t.encodes + bias_adds(&bias));
    if let ResidualProgram::Map(m) = &mut residual {
        let r = MapCost::of(m, level, special);
        qp += r.over_qp;
        enc += r.encodes;
    }
    let ops = tcn_stage_ops(t.ops, &residual, x, o, &bias);
    Ok((ops, qp, enc))
}
