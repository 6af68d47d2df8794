//! Level planning: the multiplicative depth of a folded ST-GCN under the packings of this crate
//! and the choice of the smallest 128-bit CKKS preset that holds it.
//!
//! Every plaintext product or squaring spends exactly one level (one rescale):
//!
//! | stage | levels |
//! |---|---|
//! | graph convolution (1×1 conv and aggregation fused, bias) | 1 (0 when open, below) |
//! | activation site with at least one non-linear node | 1 (`a·x²+b·x+c` included) |
//! | activation site pruned on every node | 0 |
//! | temporal convolution (+ residual, which runs beside it on a lower level) | 1 (0 when open) |
//! | average pooling + dense head, then the 0/1 logit mask | 1 + [`HEAD_MASK_LEVELS`] |
//!
//! so a block costs 2–4 levels and STGCN-3-128 without pruning needs `3·4 + 2 = 14`. The input
//! is encrypted at exactly that level and the logits arrive at level 0. The mask (see
//! `HeStgcn::head`) keeps only the logit slots of the returned ciphertexts: without it the
//! rotate-and-sum of the head leaves partial sums of the dense layer in every other slot.
//!
//! **Linear maps fused across pruned sites** ([`level_plan`], the packed layouts of
//! [`crate::HeStgcn`]). Between two linear maps whose activation site is pruned on every node
//! nothing needs a rescale: the first map is *open* (its diagonals encoded at `ρ·√q_ℓ`, its
//! outputs left at the input level and scale `Δ·ρ·√q_ℓ`) and the next one closes it
//! (diagonals at `q_ℓ·Δ/(Δ·ρ·√q_ℓ) = √q_ℓ/ρ`, one rescale), so the pair spends one level; the
//! split `ρ = √(rms of the second map's weights / rms of the first's)` gives both the same
//! relative encoding error. In a run of maps between kept sites they pair up from the first
//! (open, close, open, close, …); the last temporal convolution may be opened by a pruned last
//! site, the head's dense layer closes it.
//! A linearised model thus needs about one level per two linear maps and one per kept site:
//! LinGCN's point that structural linearisation shrinks the parameters, here down to
//! `N = 2^14` where the depth allows. The price is precision: both maps of a pair carry
//! `log2 q_ℓ / 2 ≈ 20` bits of weight precision instead of 40. The dense single-pose program
//! keeps one level per map ([`level_plan_unfused`]).

use ckks::{presets, CkksParams, Preset};
use serde::{Deserialize, Serialize};
use stgcn::{FoldedActivation, FoldedModel};

use crate::error::{HeGcnError, Result};
use crate::layout::{Layout, Packing};

/// Levels spent by one stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePlan {
    /// Stage name, e.g. `"block1.gcn"`.
    pub name: String,
    /// Levels consumed (0 to 2: the head includes the logit mask; 0 for an open map, see
    /// [`open_maps`]).
    pub levels: usize,
    /// Ciphertext level after the stage.
    pub level_after: usize,
}

/// The level budget of a whole model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelPlan {
    /// Stages in evaluation order.
    pub stages: Vec<StagePlan>,
    /// Total multiplicative depth (= the level at which the input is encrypted).
    pub depth: usize,
}

impl LevelPlan {
    /// Input level of block `i` (the model's depth for the first).
    fn block_input(&self, i: usize) -> usize {
        i.checked_sub(1)
            .map_or(self.depth, |p| self.stages[4 * p + 3].level_after)
    }

    /// Input levels of the four stages of block `i`: graph convolution, activation 1, temporal
    /// convolution (and the residual beside it), activation 2.
    pub fn block_levels(&self, i: usize) -> [usize; 4] {
        let st = &self.stages[4 * i..4 * i + 4];
        [
            self.block_input(i),
            st[0].level_after,
            st[1].level_after,
            st[2].level_after,
        ]
    }

    /// Input level of the head (after the last block).
    pub fn head_level(&self) -> usize {
        self.block_input(self.stages.len() / 4)
    }
}

/// Levels of the 0/1 mask applied to the head's output (one plaintext product and rescale).
pub const HEAD_MASK_LEVELS: usize = 1;

/// Whether an activation site spends a level; errors on a ReLU node that is kept.
pub(crate) fn site_levels(act: &FoldedActivation, block: usize, site: usize) -> Result<usize> {
    if act.is_identity() {
        return Ok(0);
    }
    match act {
        FoldedActivation::Relu { .. } => Err(HeGcnError::UnsupportedActivation {
            block,
            site,
            reason: "ReLU has no CKKS evaluation; train with x² or polynomial activations",
        }),
        _ => Ok(1),
    }
}

/// Which linear maps of `model` are open (see the module docs), per block `[graph conv,
/// temporal conv]`: a map is open when the activation site after it is pruned on every node
/// and the map before it is not open (the next map, or the head after the last block, closes
/// it).
pub fn open_maps(model: &FoldedModel) -> Vec<[bool; 2]> {
    let mut prev = false;
    model
        .blocks
        .iter()
        .map(|b| {
            let gcn = !prev && b.act1.is_identity();
            let tcn = !gcn && b.act2.is_identity();
            prev = tcn;
            [gcn, tcn]
        })
        .collect()
}

/// The level plan of `model` under the packed layouts (independent of the packing: both spend
/// the same levels), linear maps fused across pruned sites ([`open_maps`]).
///
/// # Errors
/// [`HeGcnError::UnsupportedActivation`] for a kept ReLU node.
pub fn level_plan(model: &FoldedModel) -> Result<LevelPlan> {
    plan_with(model, &open_maps(model))
}

/// The level plan with one level per linear map, as the dense single-pose program spends
/// them ([`crate::DenseStgcn`]).
///
/// # Errors
/// [`HeGcnError::UnsupportedActivation`] for a kept ReLU node.
pub fn level_plan_unfused(model: &FoldedModel) -> Result<LevelPlan> {
    plan_with(model, &vec![[false; 2]; model.blocks.len()])
}

fn plan_with(model: &FoldedModel, open: &[[bool; 2]]) -> Result<LevelPlan> {
    let mut raw = Vec::new();
    for (i, b) in model.blocks.iter().enumerate() {
        let [g, t] = open[i];
        raw.push((format!("block{i}.gcn"), usize::from(!g)));
        raw.push((format!("block{i}.act1"), site_levels(&b.act1, i, 0)?));
        raw.push((format!("block{i}.tcn"), usize::from(!t)));
        raw.push((format!("block{i}.act2"), site_levels(&b.act2, i, 1)?));
    }
    raw.push(("head".to_string(), 1 + HEAD_MASK_LEVELS));
    let depth = raw.iter().map(|r| r.1).sum();
    let mut level = depth;
    let stages = raw
        .into_iter()
        .map(|(name, levels)| {
            level -= levels;
            StagePlan {
                name,
                levels,
                level_after: level,
            }
        })
        .collect();
    Ok(LevelPlan { stages, depth })
}

/// Slots a ciphertext needs for `model` under `packing`.
pub fn slots_needed(model: &FoldedModel, packing: Packing) -> usize {
    let frame_stride = model.num_frames.max(1).next_power_of_two();
    let block = (model.num_persons.max(1) * frame_stride).next_power_of_two();
    Layout::slots_needed(packing, model.num_nodes, block)
}

/// Checks that `params` hold the model: depth ≤ `max_level` and the layout fits the slots.
pub fn check_params(
    model: &FoldedModel,
    packing: Packing,
    params: &CkksParams,
) -> Result<LevelPlan> {
    let plan = level_plan(model)?;
    if plan.depth > params.max_level() {
        return Err(HeGcnError::DepthExceeded {
            needed: plan.depth,
            available: params.max_level(),
        });
    }
    let needed = slots_needed(model, packing);
    if needed > params.slots() {
        return Err(HeGcnError::LayoutTooLarge {
            packing: packing.name(),
            needed,
            available: params.slots(),
        });
    }
    Ok(plan)
}

/// The smallest preset of [`presets::ALL_128BIT`] whose depth and slot count hold the model,
/// with the model's level plan. Refuses a model deeper than the largest preset with
/// [`HeGcnError::DepthExceeded`] and one whose block does not fit with
/// [`HeGcnError::LayoutTooLarge`].
pub fn choose_preset(model: &FoldedModel, packing: Packing) -> Result<(Preset, LevelPlan)> {
    let plan = level_plan(model)?;
    let needed = slots_needed(model, packing);
    let all = presets::ALL_128BIT;
    if let Some(p) = all
        .iter()
        .find(|p| p.levels >= plan.depth && (1usize << (p.log_n - 1)) >= needed)
    {
        return Ok((*p, plan));
    }
    let deepest = all.iter().map(|p| p.levels).max().unwrap_or(0);
    if plan.depth > deepest {
        return Err(HeGcnError::DepthExceeded {
            needed: plan.depth,
            available: deepest,
        });
    }
    Err(HeGcnError::LayoutTooLarge {
        packing: packing.name(),
        needed,
        available: all
            .iter()
            .map(|p| 1usize << (p.log_n - 1))
            .max()
            .unwrap_or(0),
    })
}
