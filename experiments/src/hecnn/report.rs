//! The comparison table of the `hecnn` task: each measured design beside the published
//! figures of the papers it reproduces.

use crate::report::{fmt_num, Report};
use anyhow::Result;
use ml::models::cnn::CnnModel;
use ndarray::Array2;
use std::fmt::Write as _;

/// How encrypted logits score against the labels and the plaintext model's logits.
#[derive(Debug, Clone, Copy)]
pub struct Scores {
    /// Accuracy under encryption, %.
    pub accuracy_pct: f64,
    /// Accuracy of the plaintext model on the same images, %.
    pub plaintext_accuracy_pct: f64,
    /// Predictions equal to the plaintext model's, %.
    pub agreement_pct: f64,
    /// Largest |encrypted − plaintext| logit.
    pub max_logit_error: f64,
}

/// The scores of `he` (encrypted logits, one row per image) against `plain` and `labels`.
pub fn scores(he: &Array2<f64>, plain: &Array2<f64>, labels: &[u8]) -> Scores {
    let hp = CnnModel::predictions(he.view());
    let pp = CnnModel::predictions(plain.view());
    let pct = |k: usize| 100.0 * k as f64 / labels.len() as f64;
    let right = |p: &[usize]| {
        p.iter()
            .zip(labels)
            .filter(|(p, &l)| **p == usize::from(l))
            .count()
    };
    Scores {
        accuracy_pct: pct(right(&hp)),
        plaintext_accuracy_pct: pct(right(&pp)),
        agreement_pct: pct(hp.iter().zip(&pp).filter(|(a, b)| a == b).count()),
        max_logit_error: (he - plain).iter().fold(0.0f64, |m, v| m.max(v.abs())),
    }
}

/// One measured design.
#[derive(Debug, Clone)]
pub struct Row {
    /// Design name.
    pub design: String,
    /// CKKS preset.
    pub preset: String,
    /// Accuracy under encryption, %.
    pub accuracy_pct: f64,
    /// Agreement with the plaintext model, %.
    pub agreement_pct: f64,
    /// Server time of one batch (or one image), s.
    pub latency_s: f64,
    /// Predictions per hour.
    pub throughput_per_h: f64,
    /// HE operations of one forward pass.
    pub he_ops: u64,
}

/// The pruning table and the accuracy–latency plot (`pruning_accuracy_latency.svg`) of
/// `points` (the unpruned model first when it ran).
///
/// # Errors
/// A drawing error of the plot.
pub fn pruning(report: &mut Report, points: &[Row]) -> Result<()> {
    let base = points.first().map(|p| p.he_ops as f64);
    let mut md = String::from(
        "Structured pruning for the single-image layout (`hecnn::prune`): whole kernel taps and whole diagonals of the dense layers' diagonal products, lowest sum of squares first, then plaintext fine-tuning with the mask fixed (`prune_cnn`). Latency: server forward + sanitize of one image, 1 thread, median.\n\n| model | accuracy | agreement | latency (1 thread) | HE ops | ops removed |\n|---|---|---|---|---|---|\n",
    );
    for p in points {
        let removed = base.map_or(0.0, |b| 100.0 * (1.0 - p.he_ops as f64 / b));
        let _ = writeln!(
            md,
            "| {} | {:.2} % | {:.2} % | {:.3} s | {} | {removed:.1} % |",
            p.design, p.accuracy_pct, p.agreement_pct, p.latency_s, p.he_ops
        );
    }
    md.push_str("\nPlot: [`pruning_accuracy_latency.svg`](pruning_accuracy_latency.svg).\n");
    let xy: Vec<(String, f64, f64)> = points
        .iter()
        .map(|p| {
            (
                format!("{} ({} ops)", p.design, p.he_ops),
                p.latency_s,
                p.accuracy_pct,
            )
        })
        .collect();
    let svg = crate::cryptogcn::report::plot_points(
        &xy,
        "MNIST CNN: accuracy under encryption vs latency per pruning level",
        "latency of one image, 1 thread (s)",
    )?;
    report
        .files
        .push(("pruning_accuracy_latency.svg".into(), svg.into_bytes()));
    report.section("Pruning under HE (single-image layout)", md);
    Ok(())
}

/// Published figures (design, latency, throughput, accuracy).
const PUBLISHED: [(&str, &str, &str, &str); 4] = [
    (
        "CryptoNets (Dowlin et al. 2016, SEAL, 1 core)",
        "~250 s per batch of 8,192",
        "~59,000",
        "99 %",
    ),
    (
        "LoLa (Brutzkus et al. 2019), one image",
        "~2.2 s",
        "—",
        "98.95 %",
    ),
    (
        "FFConv (Lu et al. 2021), one image",
        "−88 % vs LoLa",
        "—",
        "comparable to LoLa",
    ),
    (
        "Matrix encoding (Chiang 2022, E2DM line), 32 images in one 19.8 MB ciphertext, 40 vCPUs",
        "~287 s per 32 images",
        "~401",
        "—",
    ),
];

/// The markdown table: measured rows, then the published ones.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| design | preset | accuracy | agreement | latency | predictions/h | HE ops |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        t.push_str(&format!(
            "| {} (measured) | {} | {:.2} % | {:.2} % | {:.2} s | {} | {} |\n",
            r.design,
            r.preset,
            r.accuracy_pct,
            r.agreement_pct,
            r.latency_s,
            fmt_num(r.throughput_per_h),
            fmt_num(r.he_ops as f64)
        ));
    }
    for (d, lat, thr, acc) in PUBLISHED {
        t.push_str(&format!(
            "| {d} (published) | — | {acc} | — | {lat} | {thr} | — |\n"
        ));
    }
    t
}
