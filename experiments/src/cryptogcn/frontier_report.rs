//! The learned-linearisation frontier's table, metrics (`frontier.<k>.*`, `frontier.x2.*`,
//! `frontier.relu.test_accuracy_pct`) and plot (`frontier.svg`).

use super::frontier::Frontier;
use super::report::plot_points;
use crate::config::cryptogcn::{AccuracySpec, FrontierSpec};
use crate::report::Report;
use anyhow::Result;
use std::fmt::Write as _;

/// Renders `fr` into `report`.
pub(super) fn frontier(
    report: &mut Report,
    (acc, f): (&AccuracySpec, &FrontierSpec),
    fr: &Frontier,
    (train_clips, test_clips): (usize, usize),
) -> Result<()> {
    let mut md = format!(
        "Learned structural linearisation (`ml::models::stgcn_gates`, LinGCN-style) of `{}`: for each budget k of non-linear (site, node) pairs, sigmoid gates are trained jointly with the weights for {} epochs (budget and expected-level penalty), projected onto the ⌈k / V⌉ sites of largest gate mass (every other site the identity on all nodes, so it spends no level), and the model fine-tuned for {} epochs on the {} training clips (SGD lr 0.01 cosine, momentum 0.9, batch 16, clipping 1). Test accuracy: plaintext, all {} test clips. Latency: **measured** server seconds per sample under CKKS (AMA, tailored parameters, all cores), one clip per pass, median of the passes after the first of {} clips. Agreement: encrypted vs plaintext top-1 on the first {} test clips (batched passes); the logit error is the largest over those clips and the latency passes, beside the largest plaintext \\|logit\\| and the smallest plaintext top-1 margin among them (an error below half the margin cannot change a top-1). Linear maps on either side of a pruned site share one level (`hegcn::open_maps`), at about 20 bits of weight precision each instead of 40: the larger logit error of the linearised models.\n\n| model | non-linear nodes | sites | depth | parameters | test accuracy | latency per sample | latency / x² | agreement | max \\|logit error\\| | max \\|logit\\| | min margin |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        acc.model, f.search_epochs, f.finetune_epochs, train_clips, test_clips, f.latency_samples, f.agreement_samples
    );
    let base_s = fr
        .points
        .iter()
        .find(|p| p.key == "x2")
        .map(|p| p.latency_s);
    for p in &fr.points {
        let k = &p.key;
        let ratio = base_s.map_or(f64::NAN, |b| p.latency_s / b);
        report.metric(format!("frontier.{k}.latency_ratio"), ratio);
        report.metric(
            format!("frontier.{k}.test_accuracy_pct"),
            p.test_accuracy_pct,
        );
        report.metric(format!("frontier.{k}.latency_s"), p.latency_s);
        let (agree, n) = p.agreement;
        report.metric(
            format!("frontier.{k}.agreement_pct"),
            100.0 * agree as f64 / n.max(1) as f64,
        );
        report.metric(format!("frontier.{k}.depth_count"), p.depth as f64);
        report.metric(
            format!("frontier.{k}.nonlinear_nodes_count"),
            p.nodes as f64,
        );
        report.metric(format!("frontier.{k}.max_logit_error"), p.max_logit_error);
        let name = if k == "x2" {
            "unpruned base".to_string()
        } else {
            format!("k = {k}")
        };
        let _ = writeln!(
            md,
            "| {name} | {} | {} | {} | `{}` | {:.2} % | {:.2} s | {ratio:.3} | {agree}/{n} | {:.1e} | {:.2} | {:.3} |",
            p.nodes,
            p.sites,
            p.depth,
            p.preset,
            p.test_accuracy_pct,
            p.latency_s,
            p.max_logit_error,
            p.max_abs_logit,
            p.min_margin
        );
    }
    if let Some(a) = fr.relu_accuracy_pct {
        report.metric("frontier.relu.test_accuracy_pct", a);
        let _ = writeln!(
            md,
            "| ReLU twin (plaintext only: no CKKS evaluation) | — | — | — | — | {a:.2} % | — | — | — | — | — | — |"
        );
    }
    let _ = writeln!(md, "\nPlot: [`frontier.svg`](frontier.svg).");
    let xy: Vec<(String, f64, f64)> = fr
        .points
        .iter()
        .map(|p| {
            let label = if p.key == "x2" {
                "x²".into()
            } else {
                format!("k={}", p.key)
            };
            (label, p.latency_s, p.test_accuracy_pct)
        })
        .collect();
    let caption = format!(
        "{}: learned linearisation, accuracy vs measured latency",
        acc.dataset.title()
    );
    let svg = plot_points(&xy, &caption, "measured latency per sample (s)")?;
    report.files.push(("frontier.svg".into(), svg.into_bytes()));
    report.section(
        &format!("Learned linearisation frontier ({})", acc.dataset.title()),
        md,
    );
    Ok(())
}
