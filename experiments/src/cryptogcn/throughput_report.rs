//! Rendering of the throughput figures ([`super::throughput`]) into a markdown section and
//! results.json metrics; nothing here measures.

use super::engine::threads_suffix;
use super::throughput::{ThroughputFigures, ThroughputRun};
use crate::config::cryptogcn::AccuracySpec;
use crate::report::Report;
use std::fmt::Write as _;

/// The throughput metrics of one thread count.
fn run_metrics(report: &mut Report, r: &ThroughputRun, per_ct: usize) {
    let sfx = threads_suffix(r.threads);
    let per_sample = r.s_per_sample(per_ct);
    report.metric(format!("ama.latency{sfx}_s"), r.latency_s);
    report.metric(format!("ama.pass{sfx}_s"), r.pass_s);
    report.metric(format!("ama.throughput{sfx}_s_per_sample"), per_sample);
    report.metric(format!("ama.throughput{sfx}_per_h"), 3600.0 / per_sample);
}

/// One table row per thread count: one clip, a full pass, per sample, per hour, the gain.
fn rows(md: &mut String, f: &ThroughputFigures) {
    let per_ct = f.clips_per_pass;
    for r in &f.runs {
        let per_sample = r.s_per_sample(per_ct);
        let _ = writeln!(
            md,
            "| {} | {:.2} s | {:.2} s | {per_sample:.3} s | {:.0} | {:.1}× |",
            super::report::threads_text(r.threads),
            r.latency_s,
            r.pass_s,
            3600.0 / per_sample,
            r.latency_s / per_sample,
        );
    }
}

/// The throughput section and its metrics.
pub(super) fn throughput(
    report: &mut Report,
    acc: &AccuracySpec,
    data_desc: &str,
    f: &ThroughputFigures,
) {
    let per_ct = f.clips_per_pass;
    for r in &f.runs {
        run_metrics(report, r, per_ct);
    }
    report.metric("ama.clips_per_pass", per_ct as f64);
    report.metric(
        "ama.throughput_agreement_pct",
        100.0 * f.agree as f64 / per_ct as f64,
    );
    report.metric("ama.throughput_max_logit_error", f.max_logit_error);
    report.metric("ama.batch_vs_single_max_logit_diff", f.max_batch_vs_single);
    let batching = if per_ct == 1 {
        "**One clip fills the slots of a node's ciphertexts (`HeStgcn::max_clips` = 1): nothing to batch, the throughput is the latency.**".to_string()
    } else {
        format!(
            "{per_ct} clips per pass (`HeStgcn::max_clips`; clip i owns the channel blocks i·w .. i·w+w of every node ciphertext), the first {} test clips{}; the first clip's logits batched and alone differ by at most {:.3e}.",
            f.distinct_clips,
            if f.distinct_clips < per_ct { " repeated in order" } else { "" },
            f.max_batch_vs_single
        )
    };
    let mut md = format!(
        "Model `{}` under AMA at `{}`; test set: {data_desc}. One pass of one clip against one full pass (server seconds, the sum of the stages{}); {batching} Clips whose encrypted top-1 equals the plaintext top-1 in every run: {}/{per_ct}; max \\|logit error\\| {:.3e}.\n\n| threads | one clip (latency) | one pass of {per_ct} clips | per sample (amortized) | samples per hour | latency / per sample |\n|---|---|---|---|---|---|\n",
        acc.model,
        f.preset,
        if f.warm_cache { ", each stage's second evaluation: plaintext cache warm" } else { ", plaintext cache cold" },
        f.agree,
        f.max_logit_error,
    );
    rows(&mut md, f);
    report.section(&format!("Throughput: {} clips per pass", per_ct), md);
}
