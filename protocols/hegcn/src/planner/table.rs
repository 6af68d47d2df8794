//! The planner's explanations as markdown tables: a plan stage by stage
//! ([`PlanEstimate::table`]) and the ranking of plans ([`ranking_table`]).

use ckks::cost::sum_stages;

use super::PlanEstimate;
use crate::layout::Packing;
use crate::linear::Strategy;
use crate::packing_plan::PackingPlan;

fn short(p: Packing) -> &'static str {
    match p {
        Packing::Ama => "AMA",
        Packing::ChannelMajor => "CM",
    }
}

fn strategy(s: Option<Strategy>) -> String {
    match s {
        None => String::new(),
        Some(Strategy::Hoisted) => "hoisted".into(),
        Some(Strategy::Bsgs { baby_blocks }) => format!("BSGS n1 = {baby_blocks}"),
    }
}

impl PlanEstimate {
    /// The plan stage by stage: packing in → out (a fused conversion where they differ),
    /// rotations, key switches, plaintext products, input level, linear-map strategy,
    /// plaintexts encoded and estimated seconds; then the totals.
    pub fn table(&self) -> String {
        let mut t = format!(
            "Plan `{}` ({} fused conversion(s)):\n\n| stage | packing | rotations | key switches | products | level | strategy | encodes | estimated s |\n|---|---|---|---|---|---|---|---|---|\n",
            self.plan.label(),
            self.plan.conversions()
        );
        for (k, s) in self.stages.iter().enumerate() {
            let (a, b) = self.packings[k];
            let pk = if a == b {
                short(a).to_string()
            } else {
                format!("{} → {}", short(a), short(b))
            };
            t.push_str(&format!(
                "| {} | {pk} | {} | {} | {} | {} | {} | {} | {:.2} |\n",
                s.layer,
                s.ops.rotate,
                s.ops.key_switch,
                s.ops.mul_plain,
                s.level,
                strategy(self.strategies[k]),
                self.encodes[k],
                self.stage_s[k]
            ));
        }
        let c = sum_stages(&self.stages);
        t.push_str(&format!(
            "| **total** | | {} | {} | {} | | | {} | **{:.2}** |\n",
            c.rotate,
            c.key_switch,
            c.mul_plain,
            self.encodes.iter().sum::<u64>(),
            self.total_s
        ));
        t
    }
}

/// The first `top` plans of `ranked` and the uniform ones wherever they rank: rank, label,
/// fused conversions, estimated seconds and the ratio to the best.
pub fn ranking_table(ranked: &[(PackingPlan, f64)], top: usize) -> String {
    let best = ranked.first().map_or(1.0, |r| r.1);
    let mut t = String::from(
        "| rank | plan | fused conversions | estimated s | vs best |\n|---|---|---|---|---|\n",
    );
    for (k, (plan, s)) in ranked.iter().enumerate() {
        if k >= top && plan.uniform_packing().is_none() {
            continue;
        }
        t.push_str(&format!(
            "| {} | {} | {} | {s:.2} | {:.3}× |\n",
            k + 1,
            plan.label(),
            plan.conversions(),
            s / best
        ));
    }
    t.push_str(&format!("\n{} plans priced.\n", ranked.len()));
    t
}
