//! The `planned` run of the `cryptogcn` task: `hegcn`'s packing planner on the NTU-shaped
//! model (every per-stage packing plan priced with this machine's probed operation costs, the
//! cheapest compiled), its report section, and the per-run peak resident memory.
//!
//! Metrics (`planner = true`): `planned.estimated_s` (the chosen plan's estimate on the probed
//! thread count), `ama.planner_estimated_s` / `baseline.planner_estimated_s` (the uniform plans
//! priced the same way), `planned.best_mixed_estimated_s` (the cheapest plan with a
//! conversion), `planned.conversions_count`, `planned.plans_count`, `planned.options_s` (compiling
//! every option), `planned.probe_s`; after a latency run of a run `r` on that thread count,
//! `r.planner_estimate_error_pct` = 100·(estimate − measured)/measured, and for the chosen
//! plan `planned.estimate_error_pct`; `r.peak_rss_bytes` (peak resident memory of the process
//! during that run, Linux) and `planned.max_logit_error`.

use std::fmt::Write as _;
use std::time::Instant;

use super::engine::{in_pool, threads_suffix};
use super::measure::LatencyRun;
use crate::report::Report;
use anyhow::{Context, Result};
use ckks::CkksParams;
use hegcn::planner::{probe_costs, ranking_table, Ranking};
use hegcn::{HeStgcn, Packing, PackingPlan, PlanEstimate, Planner};
use stgcn::FoldedModel;

/// What the planner chose and why.
pub(super) struct PlannerFigures {
    /// Threads the costs were probed on (0 = all cores).
    pub(super) threads: usize,
    pub(super) options_s: f64,
    pub(super) probe_s: f64,
    pub(super) chosen: PlanEstimate,
    /// The uniform plans priced the same way (run name, estimate).
    pub(super) uniform: Vec<(&'static str, PlanEstimate)>,
    /// The cheapest plan with at least one conversion.
    pub(super) best_mixed: Option<PlanEstimate>,
    pub(super) ranked: Ranking,
}

/// Plans `model` at `params` on `threads` threads (0 = all cores) and compiles the choice.
pub(super) fn plan(
    model: &FoldedModel,
    params: &CkksParams,
    threads: usize,
) -> Result<(HeStgcn, PlannerFigures)> {
    let t0 = Instant::now();
    let options = in_pool(threads, || HeStgcn::stage_options(model, params))??;
    let options_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let costs = in_pool(threads, || probe_costs(params, &options, 5))??;
    let probe_s = t0.elapsed().as_secs_f64();
    let planner = Planner::new(&options, &costs);
    let ranked = planner.rank()?;
    let best = &ranked.first().context("no packing plan fits")?.0;
    let chosen = planner.estimate(best)?;
    let mut uniform = Vec::new();
    for (run, p) in [("ama", Packing::Ama), ("baseline", Packing::ChannelMajor)] {
        let plan = PackingPlan::uniform(p, model.blocks.len());
        if planner.total(&plan).is_some() {
            uniform.push((run, planner.estimate(&plan)?));
        }
    }
    let best_mixed = match ranked.iter().find(|r| r.0.uniform_packing().is_none()) {
        Some(r) => Some(planner.estimate(&r.0)?),
        None => None,
    };
    let he = HeStgcn::compile_plan(model, best, params)?;
    Ok((
        he,
        PlannerFigures {
            threads,
            options_s,
            probe_s,
            chosen,
            uniform,
            best_mixed,
            ranked,
        },
    ))
}

/// The planner's section: the chosen plan stage by stage, the ranking, the uniform and best
/// mixed estimates, and each measured run against its estimate.
pub(super) fn report(report: &mut Report, f: &PlannerFigures, runs: &[LatencyRun]) {
    let c = &f.chosen;
    report.metric("planned.estimated_s", c.total_s);
    report.metric("planned.conversions_count", c.plan.conversions() as f64);
    report.metric("planned.plans_count", f.ranked.len() as f64);
    report.metric("planned.options_s", f.options_s);
    report.metric("planned.probe_s", f.probe_s);
    let mut md = format!(
        "`hegcn::planner` priced {} packing plans (every boundary AMA or channel-major; conversions fused into the linear map that crosses them, no extra level) with operation costs probed on {} ({:.1} s; options compiled in {:.1} s) and chose `{}`.\n\n",
        f.ranked.len(),
        super::report::threads_text(f.threads),
        f.probe_s,
        f.options_s,
        c.plan.label()
    );
    for (run, e) in &f.uniform {
        report.metric(format!("{run}.planner_estimated_s"), e.total_s);
        let _ = writeln!(md, "- uniform {run}: **{:.1} s** estimated", e.total_s);
    }
    if let Some(m) = &f.best_mixed {
        report.metric("planned.best_mixed_estimated_s", m.total_s);
        let _ = writeln!(
            md,
            "- cheapest mixed plan `{}` ({} conversions): **{:.1} s** estimated ({:+.1} % vs the choice)",
            m.plan.label(),
            m.plan.conversions(),
            m.total_s,
            100.0 * (m.total_s / c.total_s - 1.0)
        );
    }
    let _ = writeln!(md, "\n{}\n{}", c.table(), ranking_table(&f.ranked, 5));
    for r in runs.iter().filter(|r| r.threads == f.threads) {
        let est = match r.run {
            "planned" => Some(c.total_s),
            run => f.uniform.iter().find(|u| u.0 == run).map(|u| u.1.total_s),
        };
        let Some(est) = est else { continue };
        let measured = r.total_s();
        let err = 100.0 * (est - measured) / measured;
        let key = if r.run == "planned" {
            "planned.estimate_error_pct".to_string()
        } else {
            format!("{}.planner_estimate_error_pct", r.run)
        };
        report.metric(key, err);
        let _ = writeln!(
            md,
            "Measured {}{}: {measured:.1} s against {est:.1} s estimated ({err:+.1} %).\n",
            r.run,
            threads_suffix(r.threads)
        );
    }
    report.section("Packing planner (per-stage AMA / channel-major)", md);
}
