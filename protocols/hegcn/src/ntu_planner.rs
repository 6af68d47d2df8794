//! The packing planner on the NTU shape (ignored by default; run with `--ignored --nocapture`,
//! one thread per core of this machine): for STGCN-3-128, 3-256 and 6-256 (random weights,
//! V = 25, T = 256, M = 2, 60 classes) at their 128-bit presets, every per-stage packing plan
//! priced with this machine's probed costs, and the chosen plan, the uniform plans and the
//! cheapest mixed plan with their counts and estimates. Only counts and estimates: nothing is
//! encrypted (the `cryptogcn` experiment measures the chosen plan). Memory stays low: every
//! option's maps are compiled, counted and dropped one at a time.

use std::time::Instant;

use ckks::cost::sum_stages;
use datasets::skeleton::Graph;
use stgcn::{spatial_partition, Architecture, StGcn, StGcnConfig};

use crate::planner::{probe_costs, ranking_table, Planner};
use crate::{choose_preset, HeStgcn, Packing, PackingPlan, PlanEstimate};

fn summary(what: &str, e: &PlanEstimate) {
    let c = sum_stages(&e.stages);
    println!(
        "{what:>14}: {:>14} | {:>6} rotations | {:>6} key switches | {:>7} pt×ct | {:>7} HE ops | {:>7} encodes | {:8.1} s estimated",
        e.plan.label(),
        c.rotate,
        c.key_switch,
        c.mul_plain,
        crate::he_ops(&c),
        e.encodes.iter().sum::<u64>(),
        e.total_s
    );
}

#[test]
#[ignore = "compiles every packing option of the NTU-shaped models (minutes) and probes costs"]
fn ntu_planner_counts_and_estimates() {
    let g = Graph::ntu25();
    let a = spatial_partition(g.num_nodes, &g.edges, g.center).unwrap();
    let archs = std::env::var("HEGCN_PLANNER_ARCHS").unwrap_or_else(|_| "3-128,3-256,6-256".into());
    for arch in archs.split(',') {
        let architecture = match arch {
            "3-128" => Architecture::Stgcn3x128,
            "3-256" => Architecture::Stgcn3x256,
            _ => Architecture::Stgcn6x256,
        };
        let mut cfg = StGcnConfig::new(architecture, 1, 3, 256, &a, 60);
        cfg.num_persons = 2;
        let model = StGcn::new(cfg, 42).unwrap().fold();
        let (preset, _) = choose_preset(&model, Packing::Ama).unwrap();
        let params = preset.build().unwrap();
        let t0 = Instant::now();
        let options = HeStgcn::stage_options(&model, &params).unwrap();
        let options_s = t0.elapsed().as_secs_f64();
        let t0 = Instant::now();
        let costs = probe_costs(&params, &options, 5).unwrap();
        let probe_s = t0.elapsed().as_secs_f64();
        let planner = Planner::new(&options, &costs);
        let ranked = planner.rank().unwrap();
        let chosen = planner.estimate(&ranked[0].0).unwrap();
        println!(
            "\n## STGCN-{arch} at {} ({} threads; options {options_s:.0} s, probe {probe_s:.0} s)\n",
            preset.name,
            rayon::current_num_threads()
        );
        summary("chosen", &chosen);
        for p in [Packing::Ama, Packing::ChannelMajor] {
            let uni = PackingPlan::uniform(p, model.blocks.len());
            summary(p.name(), &planner.estimate(&uni).unwrap());
        }
        if let Some(m) = ranked.iter().find(|r| r.0.uniform_packing().is_none()) {
            summary("best mixed", &planner.estimate(&m.0).unwrap());
        }
        println!("\n{}\n{}", chosen.table(), ranking_table(&ranked, 5));
    }
}
