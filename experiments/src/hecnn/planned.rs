//! The `planned` design: the packing planner ([`hecnn::planner`]) probes this machine's CKKS
//! operation costs, prices every candidate plan of the model (batch layout; single-image
//! layout with each baby-step/giant-step split of each dense layer; matrix layout; one thread
//! and all cores),
//! chooses the best for `objective` (and reports the other objective's choice beside it), runs
//! the chosen plan and checks its estimate against the measured time.
//!
//! The run of the chosen single-image plan: `planned_images` test images through the whole
//! protocol (accuracy, agreement), the server's forward pass and sanitizing of one image timed
//! on `lola_latency_runs` images (median) on one thread and on all cores, its operation counts
//! checked against the priced ones. `planned.estimate_error_pct` is
//! `100·(estimated − measured)/measured` on one thread (`planned.latency_s`), and
//! `.estimate_error_all_cores_pct` the same on all cores. A batch-layout choice is reported
//! with its estimate but not run here (the `cryptonets` design runs that layout).

use super::keys::ClientKeys;
use super::lola::{encrypted_logits, median_latency};
use super::report::{scores, Row};
use crate::config::hecnn::HecnnTask;
use crate::report::Report;
use anyhow::{bail, ensure, Result};
use datasets::mnist::{load_bundled, Split};
use hecnn::planner::{candidates, choose, probe_costs, Objective, Plan};
use hecnn::{CnnLayout, LayoutKind, LolaCnn};
use ml::models::cnn::CnnModel;
use std::time::Instant;

/// Probes, prices every candidate and ranks them for `objective` and the other objective.
fn plan(task: &HecnnTask, model: &CnnModel, report: &mut Report) -> Result<(Plan, Plan)> {
    let objective: Objective = task.objective.parse()?;
    let other = match objective {
        Objective::Latency => Objective::Throughput,
        Objective::Throughput => Objective::Latency,
    };
    // The layouts this design runs or compares (the `tile` design prices the tile shapes).
    let cands: Vec<_> = candidates(model)?
        .into_iter()
        .filter(|c| c.layout != LayoutKind::Tile)
        .collect();
    let all = rayon::current_num_threads();
    let threads: Vec<usize> = if all > 1 { vec![1, all] } else { vec![1] };
    let t = Instant::now();
    let costs = probe_costs(&cands, &threads, task.probe_reps)?;
    report.metric("planned.probe_s", t.elapsed().as_secs_f64());
    report.metric("planned.candidates", cands.len() as f64);
    let main = choose(&cands, &costs, objective)?;
    let side = choose(&cands, &costs, other)?;
    for p in [&main, &side] {
        report.section(
            &format!("Planner: the plan for {}", p.objective.name()),
            format!(
                "{}\nBest of each layout and thread count:\n\n{}",
                p.table(),
                p.ranking()
            ),
        );
    }
    Ok((main, side))
}

/// Runs the design and records its metrics under `planned.`.
///
/// # Errors
/// Data, model or CKKS errors; a chosen plan this design does not run (batch layout); measured
/// operation counts other than the priced ones.
pub fn run(task: &HecnnTask, model: &CnnModel, report: &mut Report) -> Result<Row> {
    let (main, side) = plan(task, model, report)?;
    let m = |k: &str, v: f64, r: &mut Report| r.metric(format!("planned.{k}"), v);
    let s = side.chosen();
    m(
        &format!("{}_choice_estimate_s", side.objective.name()),
        s.total_s,
        report,
    );
    m(
        &format!("{}_choice_images_per_h", side.objective.name()),
        s.images_per_hour(),
        report,
    );
    let chosen = main.chosen().candidate.clone();
    if chosen.layout != LayoutKind::Lola {
        bail!(
            "the planner chose {} for {}: the planned design runs single-image plans (run the \
             cryptonets design for the batch layout)",
            chosen.label(),
            main.objective.name()
        );
    }
    let est = |t: usize| main.chosen_on(t).map(|e| e.total_s);
    let all = rayon::current_num_threads();
    let (est_1, est_all) = (est(1), est(all));
    let [n1, n2] = [chosen.splits[0], chosen.splits[1]];
    let params = chosen.preset.build()?;
    let he = LolaCnn::with_splits(model, &params, [n1, n2])?;
    let keys = ClientKeys::generate(&params, &he.rotation_steps())?;
    let (sk, pk, eval) = (&keys.sk, &keys.pk, &keys.eval);
    let test = load_bundled(Split::Test)?.head(task.planned_images);
    let x = test.images_f64();
    let plain = model.logits(x.view())?;
    // Latency first, the closest in time to the probe (the load of a shared machine drifts).
    let runs = x
        .slice(ndarray::s![..task.lola_latency_runs.min(x.nrows()), ..])
        .to_owned();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let latency_1 = one.install(|| median_latency(&he, &he, eval, pk, &runs))?;
    let latency_all = median_latency(&he, &he, eval, pk, &runs)?;
    let he_logits = encrypted_logits(&he, &he, eval, pk, sk, &x)?;
    let sc = scores(
        &he_logits,
        &plain,
        test.labels.as_slice().expect("contiguous"),
    );
    let ct = he.encrypt_image(pk, x.row(0).as_slice().expect("contiguous"))?;
    eval.reset_counters();
    he.forward(eval, &ct)?;
    let ops = eval.counters();
    ensure!(
        ops == chosen.op_counts(),
        "planned op counts {:?} differ from the measured {ops:?}",
        chosen.op_counts()
    );
    let err = |e: f64, t: f64| 100.0 * (e - t) / t;
    m("test_accuracy_pct", sc.accuracy_pct, report);
    m("plaintext_accuracy_pct", sc.plaintext_accuracy_pct, report);
    m("agreement_pct", sc.agreement_pct, report);
    m("max_logit_error", sc.max_logit_error, report);
    m("images", x.nrows() as f64, report);
    m("latency_s", latency_1, report);
    m("latency_all_cores_s", latency_all, report);
    m("throughput_per_h", 3600.0 / latency_all, report);
    m("he_ops_count", hecnn::he_ops(&ops) as f64, report);
    m("baby_steps_fc1", n1 as f64, report);
    m("baby_steps_fc2", n2 as f64, report);
    if let Some(e) = est_1 {
        m("estimate_s", e, report);
        m("estimate_error_pct", err(e, latency_1), report);
    }
    if let (Some(e), true) = (est_all, all > 1) {
        m("estimate_all_cores_s", e, report);
        m("estimate_error_all_cores_pct", err(e, latency_all), report);
    }
    report.note(format!(
        "planned: {} for {} at {}: {} (fc1 {n1}, fc2 {n2} baby steps per giant step); latency \
         = server forward + sanitize of one image, median of {} images, 1 thread and {all}; \
         estimate = probed op costs × planned ops per stage; machine {}",
        model.spec.name,
        main.objective.name(),
        params.name(),
        chosen.label(),
        runs.nrows(),
        crate::report::machine()
    ));
    Ok(Row {
        design: format!("planned: {} (1 thread)", chosen.label()),
        preset: params.name().to_string(),
        accuracy_pct: sc.accuracy_pct,
        agreement_pct: sc.agreement_pct,
        latency_s: latency_1,
        throughput_per_h: 3600.0 / latency_all,
        he_ops: hecnn::he_ops(&ops),
    })
}
