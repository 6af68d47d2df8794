//! The `tile` design: the CNN on HElayers-style tile tensors ([`hecnn::tile`]) with the tile
//! shape chosen by the packing planner. The planner probes this machine's CKKS op costs and
//! prices every candidate (batch, LoLa splits, every tiling `[t_f, t_h, t_b]` of the slots) for
//! `objective`; its tables (the chosen plan, the best of each layout, the best tile shapes) go
//! in the report. The tile shape run is `tile_shape` when set, else the best tiling for the
//! objective on one thread. `tile_images` test images go through the whole protocol in passes
//! of `t_b` images (client packing and encryption, server forward pass and sanitizing, client
//! decryption); the latency is the server's forward pass and sanitizing of one pass, median of
//! `lola_latency_runs` passes, on one thread (`tile.latency_s`) and on all cores, checked
//! against the planner's estimate; the op counts are checked against the priced ones. The
//! tile shape is a string and results.json holds numbers: it is in the report's notes and as
//! `tile.tile_features`, `tile.tile_hidden`, `tile.tile_batch`.

use super::keys::ClientKeys;
use super::report::{scores, Row};
use crate::config::hecnn::HecnnTask;
use crate::report::Report;
use anyhow::{ensure, Context, Result};
use ckks::{Evaluator, PublicKey};
use datasets::mnist::{load_bundled, Split};
use hecnn::planner::{candidates, choose, probe_costs, Candidate, Objective, Plan};
use hecnn::{CnnLayout, CnnTiling, FloodConfig, LayoutKind, TileCnn};
use ml::models::cnn::CnnModel;
use ndarray::{s, Array2};
use rayon::prelude::*;
use std::time::Instant;

/// Probes, prices every candidate for the task's objective and writes the tables.
fn plan(task: &HecnnTask, model: &CnnModel, report: &mut Report) -> Result<Plan> {
    let objective: Objective = task.objective.parse()?;
    let cands = candidates(model)?;
    let all = rayon::current_num_threads();
    let threads: Vec<usize> = if all > 1 { vec![1, all] } else { vec![1] };
    let t = Instant::now();
    let costs = probe_costs(&cands, &threads, task.probe_reps)?;
    report.metric("tile.probe_s", t.elapsed().as_secs_f64());
    let tiles = cands
        .iter()
        .filter(|c| c.layout == LayoutKind::Tile)
        .count();
    report.metric("tile.candidates", tiles as f64);
    let p = choose(&cands, &costs, objective)?;
    let only: Vec<Candidate> = cands
        .into_iter()
        .filter(|c| c.layout == LayoutKind::Tile)
        .collect();
    let best_tile = choose(&only, &costs, objective)?;
    let title = format!(
        "Planner with tile shapes: the plan for {}",
        p.objective.name()
    );
    let body = format!(
        "{}\nBest of each layout and thread count:\n\n{}\nBest tile shapes `t_f×t_h×t_b` \
         (features × hidden × images per tile) on 1 thread, of {tiles}:\n\n{}\nThe best tile \
         plan stage by stage (among the tile candidates only):\n\n{}",
        p.table(),
        p.ranking(),
        p.variants(LayoutKind::Tile, 1, 12),
        best_tile.table()
    );
    report.section(&title, body);
    Ok(p)
}

/// The tile candidate to run: `tile_shape`, or the best tiling on one thread.
fn pick(task: &HecnnTask, p: &Plan) -> Result<Candidate> {
    let is_tile = |c: &Candidate| c.layout == LayoutKind::Tile;
    let found = match task.tile_shape {
        Some(shape) => p
            .ranked
            .iter()
            .find(|e| is_tile(&e.candidate) && e.candidate.splits == shape),
        None => p
            .ranked
            .iter()
            .find(|e| is_tile(&e.candidate) && e.threads == 1),
    };
    Ok(found
        .with_context(|| format!("no tile candidate {:?}", task.tile_shape))?
        .candidate
        .clone())
}

/// The server's time of one pass (forward + sanitize), median over the passes of `x`.
fn median_latency(he: &TileCnn, eval: &Evaluator, pk: &PublicKey, x: &Array2<f64>) -> Result<f64> {
    let pk0 = pk.at_level(he.output_level())?;
    let tb = he.plan().images();
    let mut t = Vec::new();
    for start in (0..x.nrows()).step_by(tb) {
        let rows = x.slice(s![start..(start + tb).min(x.nrows()), ..]);
        let ct = he.encrypt_images(pk, rows)?;
        let t0 = Instant::now();
        let out = he.forward(eval, &ct)?;
        he.sanitize_logits(eval, &out, &pk0, &FloodConfig::default())?;
        t.push(t0.elapsed().as_secs_f64());
    }
    Ok(crate::common::median(&t))
}

/// Runs the design and records its metrics under `tile.`.
///
/// # Errors
/// Data, model or CKKS errors; a `tile_shape` that is not a tiling of the slots; measured
/// operation counts other than the priced ones.
pub fn run(task: &HecnnTask, model: &CnnModel, report: &mut Report) -> Result<Row> {
    let p = plan(task, model, report)?;
    let chosen = pick(task, &p)?;
    let est = |threads: usize| {
        p.ranked
            .iter()
            .find(|e| {
                e.threads == threads
                    && e.candidate.layout == LayoutKind::Tile
                    && e.candidate.splits == chosen.splits
            })
            .map(|e| e.total_s)
    };
    let tiling = CnnTiling::from_array([chosen.splits[0], chosen.splits[1], chosen.splits[2]]);
    let params = chosen.preset.build()?;
    let t = Instant::now();
    let he = TileCnn::new(model, &params, tiling)?;
    let compile_s = t.elapsed().as_secs_f64();
    let keys = ClientKeys::generate(&params, &he.rotation_steps())?;
    let (sk, pk, eval) = (&keys.sk, &keys.pk, &keys.eval);
    let galois_keys = keys.galois_keys;
    let tb = tiling.batch;
    let test = load_bundled(Split::Test)?.head(task.tile_images);
    let x = test.images_f64();
    let plain = model.logits(x.view())?;

    // Latency first, the closest in time to the probe.
    let runs = x
        .slice(s![..(task.lola_latency_runs * tb).min(x.nrows()), ..])
        .to_owned();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let latency_1 = one.install(|| median_latency(&he, eval, pk, &runs))?;
    let latency_all = median_latency(&he, eval, pk, &runs)?;

    // Accuracy: every pass through the whole protocol, passes in parallel.
    let t = Instant::now();
    let pk0 = pk.at_level(he.output_level())?;
    let starts: Vec<usize> = (0..x.nrows()).step_by(tb).collect();
    let parts: Vec<Array2<f64>> = starts
        .par_iter()
        .map(|&start| {
            let rows = x.slice(s![start..(start + tb).min(x.nrows()), ..]);
            let out = he.forward(eval, &he.encrypt_images(pk, rows)?)?;
            let out = he.sanitize_logits(eval, &out, &pk0, &FloodConfig::default())?;
            Ok(he.decrypt_logits(sk, &out, rows.nrows())?)
        })
        .collect::<Result<_>>()?;
    let all_s = t.elapsed().as_secs_f64();
    let views: Vec<_> = parts.iter().map(Array2::view).collect();
    let he_logits = ndarray::concatenate(ndarray::Axis(0), &views)?;

    let first = x.slice(s![..tb.min(x.nrows()), ..]);
    let ct = he.encrypt_images(pk, first)?;
    eval.reset_counters();
    he.forward(eval, &ct)?;
    let ops = eval.counters();
    ensure!(
        ops == chosen.op_counts(),
        "tile op counts {ops:?} differ from the priced {:?}",
        chosen.op_counts()
    );
    let seeded = he.encrypt_images_symmetric(sk, first)?;
    let in_ct = seeded.tiles[0].to_bytes(&params)?.len() * seeded.tiles.len();

    let sc = scores(
        &he_logits,
        &plain,
        test.labels.as_slice().expect("contiguous"),
    );
    let he_ops = hecnn::he_ops(&ops);
    let all = rayon::current_num_threads();
    let m = |k: &str, v: f64, r: &mut Report| r.metric(format!("tile.{k}"), v);
    m("test_accuracy_pct", sc.accuracy_pct, report);
    m("plaintext_accuracy_pct", sc.plaintext_accuracy_pct, report);
    m("agreement_pct", sc.agreement_pct, report);
    m("max_logit_error", sc.max_logit_error, report);
    m("images", x.nrows() as f64, report);
    m("latency_s", latency_1, report);
    m("latency_all_cores_s", latency_all, report);
    m("throughput_per_h", 3600.0 * tb as f64 / latency_all, report);
    m("accuracy_run_s", all_s, report);
    m("he_ops_count", he_ops as f64, report);
    m("rotate", ops.rotate as f64, report);
    m("mul_plain", ops.mul_plain as f64, report);
    m("ct_mul", ops.mul as f64, report);
    m("depth", he.depth() as f64, report);
    m("tile_features", tiling.features as f64, report);
    m("tile_hidden", tiling.hidden as f64, report);
    m("tile_batch", tb as f64, report);
    m("input_cts", he.plan().input_cts() as f64, report);
    m("output_cts", he.plan().output_cts() as f64, report);
    m("galois_keys", galois_keys as f64, report);
    m("upload_bytes_per_pass", in_ct as f64, report);
    m("compile_s", compile_s, report);
    let err = |e: f64, t: f64| 100.0 * (e - t) / t;
    if let Some(e) = est(1) {
        m("estimate_s", e, report);
        m("estimate_error_pct", err(e, latency_1), report);
    }
    if let (Some(e), true) = (est(all), all > 1) {
        m("estimate_all_cores_s", e, report);
        m("estimate_error_all_cores_pct", err(e, latency_all), report);
    }
    let [input, conv, fc1, out] = he.plan().shape_labels();
    report.note(format!(
        "tile: {} at {}, tile.shape = {} (t_f×t_h×t_b, {} by the planner for {}), depth {}; \
         shapes: input {input} ({} ciphertexts, {} MB seeded), conv {conv}, fc1 (stacked) \
         {fc1}, logits {out}; latency = server forward + sanitize of one pass of {tb} \
         image(s), median of {} passes, 1 thread and {all}; machine {}",
        model.spec.name,
        params.name(),
        tiling.label(),
        if task.tile_shape.is_some() {
            "set, priced"
        } else {
            "chosen"
        },
        p.objective.name(),
        he.depth(),
        he.plan().input_cts(),
        in_ct / 1_000_000,
        runs.nrows().div_ceil(tb),
        crate::report::machine()
    ));
    Ok(Row {
        design: format!("tile {} (1 thread)", tiling.label()),
        preset: params.name().to_string(),
        accuracy_pct: sc.accuracy_pct,
        agreement_pct: sc.agreement_pct,
        latency_s: latency_1,
        throughput_per_h: 3600.0 * tb as f64 / latency_all,
        he_ops,
    })
}
