//! `packing = "planned"`: an ST-GCN served under the packing planner's per-stage plan
//! (`hegcn::planner`): every block's input, graph-convolution output and block output AMA or
//! channel-major, conversions fused into the linear maps that cross them, the plan priced with
//! this machine's operation costs probed when the model is compiled and the cheapest compiled.
//!
//! Nothing new travels: the client packs its input in the plan's input packing (announced in
//! `ModelInfo::input_layout`, as for a uniform packing), uploads the Galois keys of the plan's
//! rotations and reads the logits at the positions of the reply. The plan depends only on the
//! model's public shape and on timings of this machine, so announcing it reveals nothing about
//! the weights or any request.
//!
//! Cost: the options of every block (`HeStgcn::stage_options`: each block compiled under its
//! eight packings), one probe of the operation costs at three levels (a few seconds at
//! `N = 2^15`) and the chosen plan's compilation, once per model at load or deployment.

use super::error::{InferenceError, Result};
use hegcn::planner::{probe_costs, Planner};
use hegcn::{HeStgcn, PackingPlan};
use stgcn::FoldedModel;

/// Probe repetitions per operation and level: enough for a stable ranking, a few seconds.
const PROBE_REPS: usize = 3;

/// `folded` compiled under the cheapest packing plan at `params`, with the plan and its
/// estimated seconds per sample (priced on this machine, all of its cores).
///
/// # Errors
/// [`InferenceError::Model`] when the options, the probe or the compilation fail, or no plan
/// fits the parameters' slots.
pub(super) fn compile(
    name: &str,
    folded: &FoldedModel,
    params: &ckks::CkksParams,
) -> Result<(HeStgcn, PackingPlan, f64)> {
    let what = |step: &str| format!("planning model {name:?}: {step}");
    let options = HeStgcn::stage_options(folded, params)
        .map_err(|e| InferenceError::model(what("stage options"), e))?;
    let costs = probe_costs(params, &options, PROBE_REPS)
        .map_err(|e| InferenceError::model(what("probing operation costs"), e))?;
    let planner = Planner::new(&options, &costs);
    let ranked = planner
        .rank()
        .map_err(|e| InferenceError::model(what("ranking plans"), e))?;
    let (plan, secs) = ranked.into_iter().next().ok_or_else(|| {
        InferenceError::Config(format!(
            "model {name:?}: no packing plan fits {} slots",
            params.slots()
        ))
    })?;
    let he = HeStgcn::compile_plan(folded, &plan, params)
        .map_err(|e| InferenceError::model(what("compiling the chosen plan"), e))?;
    Ok((he, plan, secs))
}
