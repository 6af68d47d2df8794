//! The packing planner of `hegcn`: per stage, AMA or channel-major, priced with this machine's
//! probed operation costs ([`ckks::cost::probe`]), the cheapest plan chosen and explained.
//!
//! * **Options** ([`HeStgcn::stage_options`]): every block under every combination of input,
//!   graph-convolution output and block output packing, and the head under either input
//!   packing, each stage as a [`ckks::cost::Stage`] (operations at its input level, products
//!   over `Q·P`) with the plaintexts it encodes. A conversion between packings is fused into
//!   the linear map that crosses it ([`crate::packing_plan`]): no extra level, its rotations
//!   and diagonals are the map's; each map keeps its own hoisted/BSGS choice (the
//!   baby-step split `n1`, per layer, see `linear`).
//! * **Plans** ([`Planner::rank`]): every [`PackingPlan`] (`2^(2·blocks+1)`: all-AMA,
//!   all-channel-major and every mix), priced as the sum of its stages' prices
//!   ([`ckks::cost::OpCosts::price`] at the stage's level, plus
//!   [`ckks::cost::OpKind::Encode`] per encoded plaintext: the weights are encoded on the fly
//!   unless a plaintext cache holds them), ranked cheapest first. Models of more than
//!   [`MAX_BLOCKS`] blocks are refused (the enumeration would exceed 2^17 plans).
//! * **Choice and explanation** ([`Planner::estimate`], [`PlanEstimate::table`],
//!   [`ranking_table`]): the chosen plan stage by stage (packing in → out, rotations, key
//!   switches, products, level, strategy, estimated seconds) and the ranking against the
//!   uniform packings.
//!
//! The priced counts are the compiled plan's: [`HeStgcn::compile_plan`] of the chosen plan has
//! [`HeStgcn::planned_op_counts`] equal to [`PlanEstimate::stages`] (tested, and a forward pass
//! counts them on the evaluator). What is not priced: the plaintext cache (a warm cache removes
//! encodings), memory traffic beyond what the probe's operands see, and thread imbalance.
//!
//! Cost: compiling the options (see [`HeStgcn::stage_options`]) and one probe
//! ([`probe_costs`], seconds); ranking is arithmetic. Security: the plan depends only on the
//! model's public shape and this machine's timings.

mod table;

use ckks::cost::probe::probe;
use ckks::cost::{OpCosts, OpKind, Stage};
use ckks::CkksParams;

pub use table::ranking_table;

use crate::error::{HeGcnError, Result};
use crate::layout::Packing;
use crate::linear::Strategy;
use crate::model::{BlockOption, HeStgcn, StageOptions, PACKINGS};
use crate::packing_plan::{BlockPacking, PackingPlan};

/// Every plan with its estimated seconds, cheapest first ([`Planner::rank`]).
pub type Ranking = Vec<(PackingPlan, f64)>;

/// The most blocks whose plans are enumerated (2^17 plans).
pub const MAX_BLOCKS: usize = 8;

/// One plan priced stage by stage.
#[derive(Clone, Debug)]
pub struct PlanEstimate {
    /// The plan.
    pub plan: PackingPlan,
    /// Its stages in evaluation order (the compiled plan's planned counts).
    pub stages: Vec<Stage>,
    /// Per stage: packing of its input and of its output.
    pub packings: Vec<(Packing, Packing)>,
    /// Per stage: the strategy of its main linear map (none for activations).
    pub strategies: Vec<Option<Strategy>>,
    /// Per stage: plaintexts encoded with no cache.
    pub encodes: Vec<u64>,
    /// Per stage: estimated seconds.
    pub stage_s: Vec<f64>,
    /// Estimated seconds of the forward pass.
    pub total_s: f64,
}

/// Prices plans of one model's options with one cost table.
#[derive(Debug)]
pub struct Planner<'a> {
    options: &'a StageOptions,
    costs: &'a OpCosts,
    /// Per block, per option: estimated seconds.
    block_s: Vec<Vec<f64>>,
    /// Per head option: estimated seconds.
    head_s: Vec<f64>,
}

impl<'a> Planner<'a> {
    /// A planner of `options` priced with `costs` (probed at the options' parameters).
    pub fn new(options: &'a StageOptions, costs: &'a OpCosts) -> Self {
        let price =
            |s: &Stage, enc: u64| s.price(costs) + enc as f64 * costs.at(OpKind::Encode, s.level);
        let block_s = options
            .blocks
            .iter()
            .map(|opts| {
                opts.iter()
                    .map(|o| {
                        o.stages
                            .iter()
                            .zip(o.encodes)
                            .map(|(s, e)| price(s, e))
                            .sum()
                    })
                    .collect()
            })
            .collect();
        let head_s = options
            .head
            .iter()
            .map(|h| price(&h.stage, h.encodes))
            .collect();
        Self {
            options,
            costs,
            block_s,
            head_s,
        }
    }

    /// The cost table.
    pub fn costs(&self) -> &OpCosts {
        self.costs
    }

    fn option(&self, i: usize, input: Packing, bp: BlockPacking) -> Option<usize> {
        self.options.blocks[i]
            .iter()
            .position(|o| o.input == input && o.packing == bp)
    }

    fn head(&self, input: Packing) -> Option<usize> {
        self.options.head.iter().position(|h| h.input == input)
    }

    /// Every plan whose layouts fit, with its estimated seconds, cheapest first (ties keep
    /// enumeration order: all-AMA first).
    ///
    /// # Errors
    /// [`HeGcnError::Shape`] for more than [`MAX_BLOCKS`] blocks.
    pub fn rank(&self) -> Result<Ranking> {
        let n = self.options.blocks.len();
        if n > MAX_BLOCKS {
            return Err(HeGcnError::Shape {
                what: "blocks of a model whose packing plans are enumerated (at most)",
                expected: MAX_BLOCKS,
                found: n,
            });
        }
        let mut out = Vec::new();
        for code in 0u32..(1 << (2 * n + 1)) {
            let p = |bit: usize| PACKINGS[(code >> bit) as usize & 1];
            let plan = PackingPlan {
                input: p(0),
                blocks: (0..n)
                    .map(|i| BlockPacking {
                        mid: p(2 * i + 1),
                        out: p(2 * i + 2),
                    })
                    .collect(),
            };
            if let Some(s) = self.total(&plan) {
                out.push((plan, s));
            }
        }
        out.sort_by(|a, b| a.1.total_cmp(&b.1));
        Ok(out)
    }

    /// Estimated seconds of `plan`, `None` if a stage's layout does not fit.
    pub fn total(&self, plan: &PackingPlan) -> Option<f64> {
        let mut s = 0.0;
        let mut input = plan.input;
        for (i, bp) in plan.blocks.iter().enumerate() {
            s += self.block_s[i][self.option(i, input, *bp)?];
            input = bp.out;
        }
        Some(s + self.head_s[self.head(input)?])
    }

    /// `plan` priced stage by stage.
    ///
    /// # Errors
    /// [`HeGcnError::Shape`] for a plan of another block count; [`HeGcnError::LayoutTooLarge`]
    /// for a stage whose layout does not fit.
    pub fn estimate(&self, plan: &PackingPlan) -> Result<PlanEstimate> {
        let n = self.options.blocks.len();
        if plan.blocks.len() != n {
            return Err(HeGcnError::Shape {
                what: "packing plan blocks",
                expected: n,
                found: plan.blocks.len(),
            });
        }
        let misfit = |p: Packing| HeGcnError::LayoutTooLarge {
            packing: p.name(),
            needed: 0,
            available: 0,
        };
        let mut e = PlanEstimate {
            plan: plan.clone(),
            stages: Vec::new(),
            packings: Vec::new(),
            strategies: Vec::new(),
            encodes: Vec::new(),
            stage_s: Vec::new(),
            total_s: 0.0,
        };
        let mut input = plan.input;
        for (i, bp) in plan.blocks.iter().enumerate() {
            let k = self.option(i, input, *bp).ok_or_else(|| misfit(bp.out))?;
            self.push_block(&mut e, &self.options.blocks[i][k]);
            input = bp.out;
        }
        let h = &self.options.head[self.head(input).ok_or_else(|| misfit(input))?];
        self.push(&mut e, h.stage.clone(), (input, input), None, h.encodes);
        e.total_s = e.stage_s.iter().sum();
        Ok(e)
    }

    fn push_block(&self, e: &mut PlanEstimate, o: &BlockOption) {
        let (pi, m, out) = (o.input, o.packing.mid, o.packing.out);
        let io = [(pi, m), (m, m), (m, out), (out, out)];
        let strat = [Some(o.strategies[0]), None, Some(o.strategies[1]), None];
        for k in 0..4 {
            self.push(e, o.stages[k].clone(), io[k], strat[k], o.encodes[k]);
        }
    }

    fn push(
        &self,
        e: &mut PlanEstimate,
        s: Stage,
        io: (Packing, Packing),
        strategy: Option<Strategy>,
        encodes: u64,
    ) {
        let secs = s.price(self.costs) + encodes as f64 * self.costs.at(OpKind::Encode, s.level);
        e.stages.push(s);
        e.packings.push(io);
        e.strategies.push(strategy);
        e.encodes.push(encodes);
        e.stage_s.push(secs);
    }
}

/// Probes the costs of `params` in the calling rayon pool at the lowest, middle and highest
/// level ≥ 1 the options' stages run at, `reps` runs each ([`ckks::cost::probe::probe`]).
///
/// # Errors
/// CKKS errors.
pub fn probe_costs(params: &CkksParams, options: &StageOptions, reps: usize) -> Result<OpCosts> {
    let levels: Vec<usize> = options
        .blocks
        .iter()
        .flat_map(|o| {
            o.iter()
                .flat_map(|b| b.stages.iter().map(|s| s.level.max(1)))
        })
        .chain(options.head.iter().map(|h| h.stage.level.max(1)))
        .collect();
    let lo = levels.iter().copied().min().unwrap_or(1);
    let hi = levels.iter().copied().max().unwrap_or(1);
    Ok(probe(params, &[lo, (lo + hi) / 2, hi], reps)?)
}

impl HeStgcn {
    /// Plans `model` at `params` with `costs`: the options, every plan ranked, the cheapest
    /// compiled. Returns the compiled model, the chosen plan's estimate and the ranking.
    ///
    /// # Errors
    /// As [`HeStgcn::stage_options`], [`Planner::rank`] and [`HeStgcn::compile_plan`].
    pub fn compile_planned(
        model: &stgcn::FoldedModel,
        params: &CkksParams,
        costs: &OpCosts,
    ) -> Result<(Self, PlanEstimate, Ranking)> {
        let options = Self::stage_options(model, params)?;
        let planner = Planner::new(&options, costs);
        let ranked = planner.rank()?;
        let best = ranked.first().ok_or(HeGcnError::Shape {
            what: "packing plans that fit (at least)",
            expected: 1,
            found: 0,
        })?;
        let est = planner.estimate(&best.0)?;
        let he = Self::compile_plan(model, &best.0, params)?;
        Ok((he, est, ranked))
    }
}
