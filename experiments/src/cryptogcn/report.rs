//! Rendering of the `cryptogcn` task's typed figures into the report: markdown sections and
//! tables, results.json metrics, and the accuracy–latency plot of the pruning sweep. Nothing
//! here measures; every function takes figures the measuring modules returned.

use super::accuracy::AccuracyFigures;
use super::engine::threads_suffix;
use super::measure::{Counts, Estimates, Latency, LatencyRun, NtuFigures, Sizes};
use super::pruning::SweepPoint;
use super::single::SingleFigures;
use crate::config::cryptogcn::{AccuracySpec, CryptogcnTask, PackingName};
use crate::report::{fmt_bytes, fmt_num, Report};
use anyhow::Result;
use ckks::OpCounts;
use hegcn::he_ops;
use std::fmt::Write as _;

/// Stage names as metric quantities (`block0.gcn` → `block0_gcn`).
fn key_of(stage: &str) -> String {
    stage.replace('.', "_")
}

pub(super) fn threads_text(t: usize) -> String {
    match t {
        0 => format!("all cores ({})", super::engine::num_cores()),
        1 => "1 thread".into(),
        n => format!("{n} threads"),
    }
}

fn total_metrics(report: &mut Report, run: &str, c: &OpCounts) {
    report.metric(format!("{run}.he_ops_count"), he_ops(c) as f64);
    report.metric(format!("{run}.rotations_count"), c.rotate as f64);
    report.metric(format!("{run}.keyswitch_count"), c.key_switch as f64);
    report.metric(format!("{run}.pt_ct_mul_count"), c.mul_plain as f64);
    report.metric(format!("{run}.ct_ct_mul_count"), c.mul as f64);
    report.metric(format!("{run}.rescale_count"), c.rescale as f64);
    report.metric(format!("{run}.add_count"), c.add as f64);
    report.metric(format!("{run}.relinearize_count"), c.relinearize as f64);
    report.metric(format!("{run}.decompose_count"), c.decompose as f64);
    report.metric(format!("{run}.mod_down_count"), c.mod_down as f64);
}

/// The sections and metrics of the NTU-shaped part, in the report's order: setup, counts,
/// AMA vs baseline, sizes, estimates (if run), measured latency.
pub(super) fn ntu(report: &mut Report, t: &CryptogcnTask, seed: u64, f: &NtuFigures) {
    let arch = t.architecture.name();
    let setup = setup(t, seed, f);
    report.metric("model.depth_count", f.depth as f64);
    report.metric("model.log_n", f64::from(f.preset.log_n));
    for (run, s) in &f.compile_s {
        report.metric(format!("{run}.compile_s"), *s);
    }
    let counts_md = counts(report, &f.counts);
    let ratio_md = ratios(report, &f.counts.totals());
    let sizes_md = sizes(report, &f.sizes);
    let est_md = f.estimates.as_ref().map(|e| estimates(report, e));
    let lat_md = latency(report, t, &f.latency);
    report.section(&format!("{arch} on the NTU shape: setup"), setup);
    report.section("HE operation counts per stage (AMA vs baseline)", counts_md);
    report.section("AMA vs baseline", ratio_md);
    report.section("Ciphertext and key sizes", sizes_md);
    if let Some(est_md) = est_md {
        report.section("Latency estimates from per-operation costs", est_md);
    }
    report.section("Measured latency, one sample", lat_md);
    if let Some(p) = &f.planner {
        super::planned::report(report, p, &f.latency.runs);
    }
}

/// The setup paragraph: model, shape, pruning, preset and depth.
fn setup(t: &CryptogcnTask, seed: u64, f: &NtuFigures) -> String {
    let preset = &f.preset;
    let shape = format!(
        "(C, T, V, M) = (3, {}, 25, {}), {} classes",
        t.frames, t.persons, t.classes
    );
    let mut setup = String::new();
    let _ = writeln!(
        setup,
        "{} (widths ÷ {}) on the NTU RGB+D shape {shape}, NTU 25-joint graph with K = 3 spatial partitions, x² activations{}; random weights (seed {seed}) and a random input in [−1, 1). CKKS preset `{}` (N = 2^{}, {} levels, Δ = 2^{}; 128-bit classical security per the HE standard), model depth {}.",
        t.architecture.name(),
        t.width_divisor,
        if t.pruned_sites.is_empty() {
            String::new()
        } else {
            format!(", sites pruned on every node: {:?}", t.pruned_sites)
        },
        preset.name,
        preset.log_n,
        preset.levels,
        preset.scale_bits,
        f.depth
    );
    setup
}

/// One table row of AMA and baseline counts (rotations, key switches, pt×ct, ct×ct,
/// rescales, all operations), after the row's first cells.
fn counts_row(md: &mut String, head: &str, a: &OpCounts, b: &OpCounts) {
    let _ = writeln!(
        md,
        "| {head} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        a.rotate,
        a.key_switch,
        a.mul_plain,
        a.mul,
        a.rescale,
        he_ops(a),
        b.rotate,
        b.key_switch,
        b.mul_plain,
        b.mul,
        b.rescale,
        he_ops(b)
    );
}

/// The per-stage counts table (AMA vs baseline) and the per-stage and total count metrics.
pub(super) fn counts(report: &mut Report, c: &Counts) -> String {
    let mut md = String::from(
        "Counts derived from the compiled programs (`HeStgcn::planned_op_counts`; a latency run re-counts them on the evaluator and checks equality). `all ops` = additions + pt×ct + ct×ct + relinearizations + rotations + rescales + level drops.\n\n| stage | level in | AMA rot | AMA key sw. | AMA pt×ct | AMA ct×ct | AMA rescale | AMA all ops | base rot | base key sw. | base pt×ct | base ct×ct | base rescale | base all ops |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let (pa, pb) = (&c.planned[0].1, &c.planned[1].1);
    for (k, (name, level)) in c.levels.iter().enumerate() {
        counts_row(
            &mut md,
            &format!("{name} | {level}"),
            &pa[k].counts,
            &pb[k].counts,
        );
    }
    let totals = c.totals();
    for ((name, planned), total) in c.planned.iter().zip(&totals) {
        let run = name.run();
        for p in planned {
            let q = key_of(&p.name);
            report.metric(format!("{run}.{q}_rotations_count"), p.counts.rotate as f64);
            report.metric(
                format!("{run}.{q}_pt_ct_mul_count"),
                p.counts.mul_plain as f64,
            );
            report.metric(format!("{run}.{q}_he_ops_count"), he_ops(&p.counts) as f64);
        }
        total_metrics(report, run, total);
    }
    counts_row(&mut md, "**total** |", &totals[0], &totals[1]);
    md
}

/// The baseline / AMA ratios of the totals (AMA first in `totals`) and the reduction.
fn ratios(report: &mut Report, totals: &[OpCounts]) -> String {
    let (ta, tb) = (&totals[0], &totals[1]);
    let ratio = |b: u64, a: u64| {
        if a == 0 {
            f64::NAN
        } else {
            b as f64 / a as f64
        }
    };
    let mut md =
        String::from("| quantity | AMA | baseline | baseline / AMA |\n|---|---|---|---|\n");
    for (q, a, b) in [
        ("he_ops", he_ops(ta), he_ops(tb)),
        ("rotations", ta.rotate, tb.rotate),
        ("keyswitch", ta.key_switch, tb.key_switch),
        ("mod_down", ta.mod_down, tb.mod_down),
        ("pt_ct_mul", ta.mul_plain, tb.mul_plain),
        ("ct_ct_mul", ta.mul, tb.mul),
        ("rescale", ta.rescale, tb.rescale),
    ] {
        let r = ratio(b, a);
        report.metric(format!("ratio.{q}_baseline_over_ama"), r);
        let _ = writeln!(
            md,
            "| {q} | {a} | {b} | {} |",
            fmt_num((r * 1000.0).round() / 1000.0)
        );
    }
    let reduction = 100.0 * (1.0 - he_ops(ta) as f64 / he_ops(tb).max(1) as f64);
    report.metric("ama.he_ops_reduction_pct", reduction);
    let (amount, direction) = if reduction >= 0.0 {
        (reduction, "fewer")
    } else {
        // Narrow models: the baseline's few channel ciphertexts need fewer operations than
        // one AMA ciphertext per node; say "x % more" rather than "−x % fewer".
        (
            he_ops(ta) as f64 / he_ops(tb).max(1) as f64 * 100.0 - 100.0,
            "more",
        )
    };
    let _ = writeln!(
        md,
        "\nAMA performs {amount:.1} % {direction} HE operations than the baseline (CryptoGCN reports 77.4 % fewer on its setting); rotations (the expensive operations) are in the second row."
    );
    md
}

/// The key and ciphertext sizes table and the size metrics.
pub(super) fn sizes(report: &mut Report, s: &Sizes) -> String {
    let gk = s.galois_key_bytes;
    report.metric("keys.public_key_bytes", s.public_key_bytes as f64);
    report.metric("keys.relin_key_bytes", s.relin_key_bytes as f64);
    report.metric("keys.galois_key_bytes", gk as f64);
    let mut md = format!(
        "Serialized sizes at `{}`: public key {}, relinearization key {}, one Galois key {} (seed-compressed: the `a` halves are regenerated from a seed).\n\n| packing | input ciphertexts | one ciphertext (level {}) | one ciphertext (level 0) | input upload | Galois keys (steps) | Galois keys bytes |\n|---|---|---|---|---|---|---|\n",
        s.preset,
        fmt_bytes(s.public_key_bytes as f64),
        fmt_bytes(s.relin_key_bytes as f64),
        fmt_bytes(gk as f64),
        s.top_level
    );
    for p in &s.packings {
        let (run, n, top, low, steps) = (
            p.run,
            p.input_ciphertexts,
            p.ciphertext_bytes,
            p.level0_bytes,
            p.galois_steps,
        );
        report.metric(format!("{run}.input_ciphertexts_count"), n as f64);
        report.metric(format!("{run}.ciphertext_bytes"), top as f64);
        report.metric(format!("{run}.ciphertext_level0_bytes"), low as f64);
        report.metric(format!("{run}.input_bytes"), (n * top) as f64);
        report.metric(format!("{run}.galois_keys_count"), steps as f64);
        report.metric(format!("{run}.galois_keys_bytes"), (steps * gk) as f64);
        let _ = writeln!(
            md,
            "| {run} | {n} | {} | {} | {} | {steps} | {} |",
            fmt_bytes(top as f64),
            fmt_bytes(low as f64),
            fmt_bytes((n * top) as f64),
            fmt_bytes((steps * gk) as f64)
        );
    }
    let _ = writeln!(
        md,
        "\nGalois-key bytes are the number of steps × the size of one key (every key has the same size)."
    );
    md
}

/// The probed per-operation costs, the estimated latencies and their metrics.
fn estimates(report: &mut Report, e: &Estimates) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "Per-operation costs probed on one thread (medians of 2–5 runs), at the top and bottom levels used:\n\n| level | encode | pt×ct | add | rescale | ct×ct (tensor) | decomposition | key switch (inner product) | ModDown (one polynomial) |\n|---|---|---|---|---|---|---|---|---|"
    );
    for (l, c) in [e.costs.last(), e.costs.first()].into_iter().flatten() {
        let ms = |x: f64| format!("{:.2} ms", 1e3 * x);
        let _ = writeln!(
            md,
            "| {l} | {} | {} | {} | {} | {} | {} | {} | {} |",
            ms(c.encode),
            ms(c.mul_plain),
            ms(c.add),
            ms(c.rescale),
            ms(c.tensor),
            ms(c.decompose),
            ms(c.key_switch),
            ms(c.mod_down)
        );
    }
    let _ = writeln!(md, "\n| packing | estimated latency, 1 thread, pre-encoded weights | extra time to encode every weight on the fly (upper bound: AMA nodes share diagonals) |\n|---|---|---|");
    for &(run, secs, enc) in &e.packings {
        report.metric(format!("{run}.latency_1t_estimated_s"), secs);
        report.metric(format!("{run}.encode_1t_estimated_s"), enc);
        let _ = writeln!(md, "| {run} | {secs:.1} s | {enc:.1} s |");
    }
    let _ = writeln!(md, "\nThese are **estimates** (counts × probed per-op costs), not measurements; metrics `*_estimated_s`.");
    md
}

/// The measured latency section: every run, the baseline / AMA ratios, the packings not run.
fn latency(report: &mut Report, t: &CryptogcnTask, l: &Latency) -> String {
    let mut md = String::new();
    report.metric("plain.ntu_max_abs_logit", l.plain_max_abs_logit);
    if t.latency_packings.is_empty() {
        let _ = writeln!(md, "Latency not run (`latency_packings = []`).");
    }
    for r in &l.runs {
        latency_run(report, &mut md, r, l.plain_max_abs_logit);
    }
    for &threads in &t.latency_threads {
        let total = |run: &str| {
            l.runs
                .iter()
                .find(|r| r.run == run && r.threads == threads)
                .map(LatencyRun::total_s)
        };
        if let (Some(a), Some(b)) = (total("ama"), total("baseline")) {
            let r = b / a;
            report.metric(
                format!("ratio.latency{}_baseline_over_ama", threads_suffix(threads)),
                r,
            );
            let _ = writeln!(
                md,
                "Measured latency ratio baseline / AMA, {}: **{r:.2}×** (CryptoGCN: 3.10×).\n",
                threads_text(threads)
            );
        }
    }
    for name in [
        PackingName::Ama,
        PackingName::Baseline,
        PackingName::Planned,
    ] {
        if name == PackingName::Planned && !t.planner {
            continue;
        }
        if !t.latency_packings.contains(&name) {
            let _ = writeln!(
                md,
                "{}: latency **not run** (not in `latency_packings`).\n",
                name.run()
            );
        }
    }
    md
}

/// One latency run's metrics, paragraph and per-stage table.
fn latency_run(report: &mut Report, md: &mut String, r: &LatencyRun, want_max: f64) {
    let (run, sfx) = (r.run, threads_suffix(r.threads));
    let (c0, c1) = (&r.cache_before, &r.cache_after);
    let total_s = r.total_s();
    let measured = hegcn::counts_sum(r.stages.iter().map(|s| &s.2));
    for s in &r.stages {
        report.metric(format!("{run}.{}_s{sfx}", key_of(&s.0)), s.1);
    }
    for (s, m) in r.stages.iter().zip(&r.stage_memory) {
        if let Some(b) = m.peak_rss_bytes {
            report.metric(format!("{run}.{}_peak_rss{sfx}_bytes", key_of(&s.0)), b);
        }
    }
    let encode_s = (c1.encode_ns - c0.encode_ns) as f64 * 1e-9;
    let lookups = (c1.hits + c1.misses - c0.hits - c0.misses).max(1);
    let hit_pct = 100.0 * (c1.hits - c0.hits) as f64 / lookups as f64;
    let err = r.max_logit_error;
    report.metric(format!("{run}.latency{sfx}_s"), total_s);
    report.metric(format!("{run}.encrypt{sfx}_s"), r.encrypt_s);
    report.metric(format!("{run}.decrypt{sfx}_s"), r.decrypt_s);
    report.metric(format!("{run}.keygen{sfx}_s"), r.keygen_s);
    report.metric(format!("{run}.encode_thread{sfx}_s"), encode_s);
    report.metric(format!("{run}.plaintext_cache_bytes"), c1.bytes as f64);
    report.metric(
        format!("{run}.encoded_plaintexts{sfx}_count"),
        (c1.misses - c0.misses) as f64,
    );
    report.metric(format!("{run}.plaintext_cache_hit{sfx}_pct"), hit_pct);
    report.metric(format!("{run}.ntu_max_logit_error"), err);
    if run == "planned" {
        report.metric(format!("planned.max_logit_error{sfx}"), err);
    }
    if let Some(b) = r.peak_rss_bytes {
        report.metric(format!("{run}.peak_rss{sfx}_bytes"), b);
    }
    if let Some(b) = r.start_rss_bytes {
        report.metric(format!("{run}.start_rss{sfx}_bytes"), b);
    }
    let _ = writeln!(
        md,
        "**{run}, {}**: {total_s:.2} s server latency for one sample (sum of the stages below; {}); client encryption {:.2} s, decryption {:.3} s; Galois keys for {} steps made stage by stage in {:.1} s (not in the latency); weight encoding took {encode_s:.1} s of thread time for {} plaintexts (pt×ct products: {}; AMA nodes share the temporal kernel's diagonals, lockstep budget {}); plaintext cache at most {} of {} in a stage (released after each stage, whose level no other stage shares; {hit_pct:.1} % of lookups hit); resident memory {} at the start, peak {}; max |logit error| vs the plaintext model {err:.2e} (max |logit| {want_max:.3e}); counts equal the plan ({} HE ops).\n",
        threads_text(r.threads),
        if r.warm_cache { "second pass, plaintext cache warm" } else { "one pass, cache cold: weights encoded on the fly except repeats" },
        r.encrypt_s,
        r.decrypt_s,
        r.galois_keys,
        r.keygen_s,
        c1.misses - c0.misses,
        measured.mul_plain,
        fmt_bytes(r.lockstep_bytes as f64),
        fmt_bytes(c1.bytes as f64),
        fmt_bytes(c1.budget_bytes as f64),
        r.start_rss_bytes.map_or("–".into(), fmt_bytes),
        r.peak_rss_bytes.map_or("–".into(), fmt_bytes),
        he_ops(&measured)
    );
    let _ = writeln!(
        md,
        "| stage | seconds | rotations | pt×ct | Galois keys | peak RSS | RSS after |\n|---|---|---|---|---|---|---|"
    );
    let gb = |b: Option<f64>| b.map_or("–".into(), fmt_bytes);
    for (k, s) in r.stages.iter().enumerate() {
        let m = r.stage_memory.get(k).copied().unwrap_or_default();
        let _ = writeln!(
            md,
            "| {} | {:.3} | {} | {} | {} | {} | {} |",
            s.0,
            s.1,
            s.2.rotate,
            s.2.mul_plain,
            m.galois_keys,
            gb(m.peak_rss_bytes),
            gb(m.end_rss_bytes)
        );
    }
    md.push('\n');
}

/// The accuracy-under-encryption section and its metrics.
pub(super) fn accuracy(report: &mut Report, acc: &AccuracySpec, f: &AccuracyFigures) {
    let n = f.samples;
    let per_ct = f.clips_per_pass;
    let warm = f.warm_pass_s();
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    let ds = acc.dataset.metric_key();
    report.metric("ama.agreement_pct", pct(f.agree));
    report.metric("ama.max_logit_error", f.max_logit_error);
    report.metric("ama.encrypted_accuracy_pct", pct(f.correct_encrypted));
    report.metric("plain.accuracy_pct", pct(f.correct_plain));
    report.metric("plain.min_logit_margin", f.min_logit_margin);
    report.metric("plain.max_abs_logit", f.max_abs_logit);
    report.metric("ama.samples_count", n as f64);
    report.metric(format!("ama.{ds}_pass_latency_s"), warm);
    report.metric(format!("ama.{ds}_latency_per_clip_s"), warm / per_ct as f64);
    report.metric(format!("ama.{ds}_clips_per_pass_count"), per_ct as f64);
    report.metric(format!("ama.{ds}_first_pass_s"), f.pass_s[0]);
    report.metric(
        format!("ama.{ds}_plaintext_cache_bytes"),
        f.cache.bytes as f64,
    );
    let mut md = accuracy_table(f);
    if !f.stage_errors.is_empty() {
        let _ = writeln!(
            md,
            "\nError of every stage for the first clip (decrypted after the stage, divided by the per-node factors of the coefficient folding, against `hegcn::reference` on the same clip; the error compounds from stage to stage):\n\n| stage | level after | log2 scale | max \\|x\\| | max \\|error\\| | relative |\n|---|---|---|---|---|---|"
        );
        for e in &f.stage_errors {
            let rel = e.max_err / e.max_abs.max(f64::MIN_POSITIVE);
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.3e} | {:.3e} | {rel:.2e} |",
                e.name, e.level, e.log_scale, e.max_abs, e.max_err
            );
            let k = key_of(&e.name);
            report.metric(format!("ama.{k}_max_abs"), e.max_abs);
            report.metric(format!("ama.{k}_max_error"), e.max_err);
        }
    }
    report.section(
        &format!(
            "Accuracy under encryption: {} test set",
            acc.dataset.title()
        ),
        md,
    );
}

/// The model paragraph and the quantity/value table of the accuracy section.
fn accuracy_table(f: &AccuracyFigures) -> String {
    let (n, per_ct, agree) = (f.samples, f.clips_per_pass, f.agree);
    let (max_err, min_margin, max_abs_logit) =
        (f.max_logit_error, f.min_logit_margin, f.max_abs_logit);
    let [c, frames, v, m] = f.shape;
    let warm = f.warm_pass_s();
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    format!(
        "Model `{}` ({}, widths ÷ {}, {:?} activations), (C, T, V, M) = ({c}, {frames}, {v}, {m}); AMA packing at `{}` (depth {}). Test set: {}; **{n} evaluated under encryption** (the first {n}), {per_ct} clips per forward pass ({} passes; clip i of a pass owns the channel blocks i·w .. i·w+w of every node ciphertext, `HeStgcn::compile_batched`).\n\n| quantity | value |\n|---|---|\n| encrypted top-1 = plaintext top-1 | {agree}/{n} ({:.2} %) |\n| max \\|logit error\\| | {max_err:.3e} |\n| smallest plaintext top-1 margin (top-1 − top-2 logit) | {min_margin:.3e} |\n| max \\|logit\\| | {max_abs_logit:.3e} |\n| encrypted accuracy | {:.2} % |\n| plaintext accuracy (same clips) | {:.2} % |\n| server latency of one pass of {per_ct} clips (median after the first pass; all cores) | {warm:.2} s |\n| per clip (pass / {per_ct}) | {:.3} s |\n| first pass (cold plaintext cache) | {:.2} s |\n| plaintext cache | {} ({} entries, budget {}) |\n",
        f.model,
        f.architecture,
        f.width_divisor,
        f.activation,
        f.preset,
        f.depth,
        f.data_desc,
        f.pass_s.len(),
        pct(agree),
        pct(f.correct_encrypted),
        pct(f.correct_plain),
        warm / per_ct as f64,
        f.pass_s[0],
        fmt_bytes(f.cache.bytes as f64),
        f.cache.entries,
        fmt_bytes(f.cache.budget_bytes as f64),
    )
}

/// The pruning sweep's table, metrics and plot (`accuracy_latency.svg`).
pub(super) fn sweep(
    report: &mut Report,
    acc: &AccuracySpec,
    points: &[SweepPoint],
    (train_clips, test_clips): (usize, usize),
) -> Result<()> {
    let mut md = format!(
        "Activation pruning (CryptoGCN's AP / LinGCN's node-wise linearisation): the deepest activation sites are replaced by the identity on every node, each pruned model is fine-tuned in plaintext for {} epochs on the {} training clips (SGD lr 0.01 cosine, momentum 0.9, batch 16, gradient norm clipped at 1) and evaluated on all {} test clips. Latency is **estimated** (counts × per-op costs probed on one thread at the model's preset), not measured.\n\n| sites pruned | depth | preset | HE ops | test accuracy | latency (1 thread, estimated) |\n|---|---|---|---|---|---|\n",
        acc.pruning_epochs, train_clips, test_clips
    );
    for p in points {
        let (k, a, secs) = (p.sites, p.test_accuracy_pct, p.latency_1t_estimated_s);
        report.metric(format!("prune{k}.test_accuracy_pct"), a);
        report.metric(format!("prune{k}.latency_1t_estimated_s"), secs);
        report.metric(format!("prune{k}.he_ops_count"), p.he_ops as f64);
        report.metric(format!("prune{k}.depth_count"), p.depth as f64);
        let _ = writeln!(
            md,
            "| {k} | {} | `{}` | {} | {a:.2} % | {secs:.1} s |",
            p.depth, p.preset, p.he_ops
        );
    }
    let _ = writeln!(
        md,
        "\nPlot: [`accuracy_latency.svg`](accuracy_latency.svg)."
    );
    let xy: Vec<(String, f64, f64)> = points
        .iter()
        .map(|p| {
            let label = format!("{} pruned", p.sites);
            (label, p.latency_1t_estimated_s, p.test_accuracy_pct)
        })
        .collect();
    let caption = format!(
        "{}: accuracy vs estimated encrypted latency (AMA)",
        acc.dataset.title()
    );
    let svg = plot_points(&xy, &caption, "estimated latency, 1 thread (s)")?;
    report
        .files
        .push(("accuracy_latency.svg".into(), svg.into_bytes()));
    report.section(
        &format!(
            "Accuracy–latency trade-off of activation pruning ({})",
            acc.dataset.title()
        ),
        md,
    );
    Ok(())
}

/// The task's security and method notes.
pub(super) fn notes(report: &mut Report) {
    report.note("CKKS parameters are 128-bit presets (HE standard v1.1, ternary secret); the server never holds the secret key. Semi-honest server; CKKS decryption results are approximate and IND-CPA^D attacks on shared decryptions are out of scope (the client keeps its decrypted logits).");
    report.note("Latency is wall-clock time of the server's evaluation only; key generation, client encryption and decryption are reported separately. The machine is shared with other jobs (load not controlled), so timings are indicative.");
}

/// Test accuracy against latency, one labelled point per `(label, seconds, accuracy %)`,
/// joined in the given order.
pub(crate) fn plot_points(
    points: &[(String, f64, f64)],
    caption: &str,
    x_desc: &str,
) -> Result<String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Debug| anyhow::anyhow!("drawing the plot {caption}: {e:?}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let xmax = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.1;
        let ymin = points.iter().map(|p| p.2).fold(100.0f64, f64::min);
        let y0 = ((ymin - 5.0) / 10.0).floor().max(0.0) * 10.0;
        let mut chart = ChartBuilder::on(&root)
            .margin(16)
            .caption(caption, ("sans-serif", 18))
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..xmax, y0..100.0)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("test accuracy (%)")
            .draw()
            .map_err(|e| err(&e))?;
        let blue = RGBColor(31, 119, 180);
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.1, p.2)),
                blue.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(points.iter().map(|p| {
                EmptyElement::at((p.1, p.2))
                    + Circle::new((0, 0), 4, blue.filled())
                    + Text::new(p.0.clone(), (6, -14), ("sans-serif", 13).into_font())
            }))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

/// The single-sample sessions through the party's service: metrics `<run>.*` per session and
/// one table comparing them.
pub(super) fn single(report: &mut Report, data: &str, index: usize, runs: &[SingleFigures]) {
    let mut md = format!(
        "Test sample {index} of {data} through the party's inference service in process (`party::server::infer::InferenceService` answering `party::infer::client::InferClient` over an in-memory channel: the code `party serve` and `he-infer` run, without TLS), one session, {} requests on the same sample. Server seconds are the party's forward pass and sanitization (`eval_seconds`); keys are the session's whole upload (relinearization key, one Galois key per announced rotation, public key at the logits' level).\n\n| run | parameters | Galois keys | key upload | keys made + sent | server s per request | plaintext cache hits / misses per request | weights of one request, encoded | max \\|logit error\\| | top-1 agrees |\n|---|---|---|---|---|---|---|---|---|---|\n",
        runs.first().map_or(0, |r| r.server_s.len())
    );
    for r in runs {
        let k = &r.run;
        report.metric(format!("{k}.server_s"), r.warm_server_s());
        report.metric(format!("{k}.first_server_s"), r.server_s[0]);
        report.metric(format!("{k}.key_bytes"), r.key_bytes as f64);
        report.metric(format!("{k}.keys_s"), r.keys_s);
        report.metric(format!("{k}.galois_keys_count"), r.galois_keys as f64);
        report.metric(format!("{k}.ring_degree_log2"), f64::from(r.log_n));
        report.metric(format!("{k}.levels_count"), r.levels as f64);
        report.metric(format!("{k}.max_logit_error"), r.max_logit_error);
        report.metric(format!("{k}.flood_sd"), r.flood_sd);
        let agree = 100.0 * r.agree as f64 / r.server_s.len() as f64;
        report.metric(format!("{k}.agreement_pct"), agree);
        report.metric(format!("{k}.plaintext_need_bytes"), r.cache_need_bytes());
        if let Some(&(hits, misses)) = r.cache.last() {
            report.metric(format!("{k}.cache_hits_count"), hits as f64);
            report.metric(format!("{k}.cache_misses_count"), misses as f64);
        }
        let secs: Vec<String> = r.server_s.iter().map(|s| format!("{s:.2}")).collect();
        let cache: Vec<String> = r.cache.iter().map(|(h, m)| format!("{h} / {m}")).collect();
        let _ = writeln!(
            md,
            "| `{k}` | `{}` (N = 2^{}, L = {}) | {} | {} | {:.1} s | {} | {} | ≤ {} | {:.2e} (flood sd {:.1e}) | {}/{} |",
            r.params,
            r.log_n,
            r.levels,
            r.galois_keys,
            fmt_bytes(r.key_bytes as f64),
            r.keys_s,
            secs.join(", "),
            cache.join(", "),
            fmt_bytes(r.cache_need_bytes()),
            r.max_logit_error,
            r.flood_sd,
            r.agree,
            r.server_s.len()
        );
    }
    report.section("One sample through the party's inference service", md);
}
