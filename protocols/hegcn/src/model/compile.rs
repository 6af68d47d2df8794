//! Compilation of a [`FoldedModel`] into the program a [`HeStgcn`] evaluates: per block the
//! graph-convolution map and bias, the activation sites, the temporal map with its residual
//! branch and bias (after coefficient folding under AMA), then the head; and the copies of
//! independent samples side by side in every ciphertext ([`HeStgcn::compile_batched`]).

use ckks::{CkksParams, Encoder};
use ndarray::{Array1, Array2};
use stgcn::{FoldedBlock, FoldedModel, FoldedResidual};

use super::activation::ActMap;
use super::fold::fold_quadratic_coefficients;
use super::head::HeadProgram;
use super::maps::{bias_vectors, compile_gcn, compile_pointwise, compile_tcn};
use super::options::plan_map;
use super::replicas::Replicas;
use super::HeStgcn;
use crate::error::{HeGcnError, Result};
use crate::layout::{Layout, Packing};
use crate::linear::{LinearMap, PlaintextCache};
use crate::packing_plan::{BlockPacking, PackingPlan};
use crate::plan::{check_params, open_maps, LevelPlan};

/// The residual branch as a (rotation-free) pointwise map: an identity residual is the identity
/// matrix, so its plaintext product also brings the block input to the output's level and scale.
#[derive(Debug)]
pub(super) enum ResidualProgram {
    None,
    Map(LinearMap),
}

impl ResidualProgram {
    /// The branch, its map opened when `open` (beside an open temporal map).
    pub(super) fn open_if(self, open: bool) -> Self {
        match self {
            Self::Map(m) => Self::Map(open_if(m, open)),
            Self::None => Self::None,
        }
    }
}

/// One compiled ST-GCN block: layouts, maps, biases and activation sites of its stages.
#[derive(Debug)]
pub(super) struct BlockProgram {
    pub(super) in_layout: Layout,
    pub(super) mid_layout: Layout,
    pub(super) out_layout: Layout,
    pub(super) gcn: LinearMap,
    pub(super) gcn_bias: Vec<Vec<f64>>,
    pub(super) act1: Option<ActMap>,
    pub(super) tcn: LinearMap,
    pub(super) tcn_bias: Vec<Vec<f64>>,
    pub(super) residual: ResidualProgram,
    pub(super) act2: Option<ActMap>,
    /// Per node: factor of the graph-conv output (activation-1 input) against the plaintext
    /// stage (quadratic coefficients folded into the weights, see [`HeStgcn::stage_node_scales`]).
    pub(super) mid_scale: Vec<f64>,
    /// Per node: factor of the activation-1 and temporal outputs (activation-2 input).
    pub(super) out_scale: Vec<f64>,
}

impl HeStgcn {
    /// Compiles `model` for `packing` under `params` (checks depth and slots first).
    pub fn compile(model: &FoldedModel, packing: Packing, params: &CkksParams) -> Result<Self> {
        Self::compile_batched(model, packing, params, 1)
    }

    /// Compiles `model` with the packing of every stage boundary given by `plan` (a mixed plan
    /// fuses each conversion into the linear map that crosses it, see
    /// [`crate::packing_plan`]); one sample per pass.
    ///
    /// # Errors
    /// As [`Self::compile`]; [`HeGcnError::Shape`] if `plan` has not one entry per block.
    pub fn compile_plan(
        model: &FoldedModel,
        plan: &PackingPlan,
        params: &CkksParams,
    ) -> Result<Self> {
        Self::compile_inner(model, plan, params, 1)
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
        let plan = PackingPlan::uniform(packing, model.blocks.len());
        Self::compile_inner(model, &plan, params, clips)
    }

    fn compile_inner(
        model: &FoldedModel,
        packings: &PackingPlan,
        params: &CkksParams,
        clips: usize,
    ) -> Result<Self> {
        let plan = check_plan(model, packings, params)?;
        let packing = packings.input;
        let input_layout = Layout::input_of(model, packing, params.slots())?;
        let batch_packing = packings.uniform_packing().unwrap_or(Packing::ChannelMajor);
        let reps = Self::replicas(model, batch_packing, params, &input_layout, clips)?;
        let block = input_layout.block;
        let mut lin = input_layout.clone();
        let mut blocks = Vec::with_capacity(model.blocks.len());
        let open = open_maps(model);
        for (i, blk) in model.blocks.iter().enumerate() {
            let bp = packings.blocks[i];
            let program = compile_block(blk, (i, open[i]), &lin, bp, model.num_nodes, reps)?;
            lin = program.out_layout.clone();
            blocks.push(program);
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
        let mut head = Self::compile_head(model, &lin, reps)?;
        balance_open_maps(&mut blocks, &head.fc);
        plan_representations(&mut blocks, &mut head, &plan, params.p_primes().len());
        Ok(Self {
            params: params.clone(),
            encoder: Encoder::new(params),
            packing,
            packings: packings.clone(),
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

    /// The copies for `clips` samples (at least one) of `model` in `input_layout`.
    ///
    /// # Errors
    /// [`HeGcnError::LayoutTooLarge`] for several samples under channel-major or more than
    /// fit the blocks of a ciphertext.
    fn replicas(
        model: &FoldedModel,
        packing: Packing,
        params: &CkksParams,
        input_layout: &Layout,
        clips: usize,
    ) -> Result<Replicas> {
        let clips = clips.max(1);
        if clips == 1 {
            return Ok(Replicas::ONE);
        }
        let width = Self::sample_width(model);
        let fits = packing == Packing::Ama && clips * width <= input_layout.blocks_per_ct();
        if !fits {
            return Err(HeGcnError::LayoutTooLarge {
                packing: packing.name(),
                needed: clips * width * input_layout.block,
                available: params.slots(),
            });
        }
        Ok(Replicas {
            clips,
            stride_blocks: width,
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
}

/// Checks `params` against `model` under every packing `packings` uses, and that `packings`
/// has one entry per block; returns the level plan (the same for every packing plan).
fn check_plan(
    model: &FoldedModel,
    packings: &PackingPlan,
    params: &CkksParams,
) -> Result<LevelPlan> {
    if packings.blocks.len() != model.blocks.len() {
        return Err(HeGcnError::Shape {
            what: "packing plan blocks",
            expected: model.blocks.len(),
            found: packings.blocks.len(),
        });
    }
    let plan = check_params(model, packings.input, params)?;
    for p in [Packing::Ama, Packing::ChannelMajor] {
        if packings.uses(p) {
            check_params(model, p, params)?;
        }
    }
    Ok(plan)
}

/// Whether block coefficients are folded (`fold_quadratic_coefficients`): when an activation
/// site of the block runs under AMA (one node per ciphertext, where the folded `±y²` sites
/// need no reduced-scale coefficients). Folding is exact under either packing; a uniform
/// channel-major model keeps its general sites.
pub(super) fn folds(bp: BlockPacking) -> bool {
    bp.mid == Packing::Ama || bp.out == Packing::Ama
}

/// Compiles block `i` of a model with `nodes` nodes on the input layout `lin`, its graph
/// convolution writing `bp.mid` and its temporal convolution and residual `bp.out`: folds the
/// quadratic coefficients when a site runs under AMA, then lowers every stage; `open` says
/// which of its two maps are open (`[graph conv, temporal conv]`, [`open_maps`]; the residual
/// is open with the temporal map).
pub(super) fn compile_block(
    blk: &FoldedBlock,
    (i, open): (usize, [bool; 2]),
    lin: &Layout,
    bp: BlockPacking,
    nodes: usize,
    reps: Replicas,
) -> Result<BlockProgram> {
    let block = lin.block;
    let ones = vec![1.0; nodes];
    let folded = if folds(bp) {
        fold_quadratic_coefficients(blk, nodes)
    } else {
        None
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
    let mid = lin.with_channels(blk.out_channels).with_packing(bp.mid)?;
    let out = mid.strided(blk.stride).with_packing(bp.out)?;
    let gcn = open_if(reps.map(compile_gcn(blk, lin, &mid), block), open[0]);
    let gcn_bias = bias_vectors(&mid, reps, |c, v| blk.gcn_bias[[c, v]]);
    let act1 = ActMap::new(&blk.act1, &mid, i, 0, reps)?;
    let tcn = open_if(reps.map(compile_tcn(blk, &mid, &out), block), open[1]);
    let res_bias = match &blk.residual {
        FoldedResidual::Conv { bias, .. } => bias.clone(),
        _ => Array1::zeros(blk.out_channels),
    };
    let tcn_bias = bias_vectors(&out, reps, |c, v| {
        (blk.tcn_bias[c] + res_bias[c]) * out_scale[v]
    });
    let residual = compile_residual(blk, lin, &out, &out_scale, reps)?.open_if(open[1]);
    let act2 = ActMap::new(&blk.act2, &out, i, 1, reps)?;
    Ok(BlockProgram {
        in_layout: lin.clone(),
        mid_layout: mid,
        out_layout: out,
        gcn,
        gcn_bias,
        act1,
        tcn,
        tcn_bias,
        residual,
        act2,
        mid_scale,
        out_scale,
    })
}

/// Plans every map's representation at the level its stage runs at ([`plan_map`]): a
/// block's graph map at its input level, its temporal map and residual at the temporal
/// stage's, the head's dense layer at the head's ([`HeStgcn::stage_options`] does the same).
fn plan_representations(
    blocks: &mut [BlockProgram],
    head: &mut HeadProgram,
    plan: &LevelPlan,
    special: usize,
) {
    for (i, b) in blocks.iter_mut().enumerate() {
        let lv = plan.block_levels(i);
        plan_map(&mut b.gcn, lv[0], special);
        plan_map(&mut b.tcn, lv[2], special);
        if let ResidualProgram::Map(m) = &mut b.residual {
            plan_map(m, lv[2], special);
        }
    }
    plan_map(&mut head.fc, plan.head_level(), special);
}

/// Sets the split of every open map from its weights and those of the map that closes it
/// ([`LinearMap::balance_with`]): a graph map is closed by its block's temporal map, a temporal
/// map by the next block's graph map or, in the last block, by the head's dense layer; the
/// residual beside an open temporal map takes the temporal map's split.
fn balance_open_maps(blocks: &mut [BlockProgram], head_fc: &LinearMap) {
    for i in 0..blocks.len() {
        let (this, rest) = blocks[i..].split_at_mut(1);
        let b = &mut this[0];
        b.gcn.balance_with(&b.tcn);
        b.tcn.balance_with(rest.first().map_or(head_fc, |n| &n.gcn));
        if let ResidualProgram::Map(m) = &mut b.residual {
            m.set_split(b.tcn.open_split());
        }
    }
}

/// `m`, opened when `open` ([`LinearMap::opened`]).
pub(super) fn open_if(m: LinearMap, open: bool) -> LinearMap {
    if open {
        m.opened()
    } else {
        m
    }
}

/// The residual branch of `blk` from its input layout `lin` to its output layout `out`,
/// node `v` scaled by `out_scale[v]`.
pub(super) fn compile_residual(
    blk: &FoldedBlock,
    lin: &Layout,
    out: &Layout,
    out_scale: &[f64],
    reps: Replicas,
) -> Result<ResidualProgram> {
    let block = lin.block;
    Ok(match &blk.residual {
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
                compile_pointwise(&eye, out_scale, lin, out, out.valid_mask()),
                block,
            ))
        }
        FoldedResidual::Conv { weight, .. } => ResidualProgram::Map(reps.map(
            compile_pointwise(weight, out_scale, lin, out, out.valid_mask()),
            block,
        )),
    })
}
