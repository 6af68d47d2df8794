//! Renders a training task's typed results ([`Measured`]) into the report: the `results.json`
//! metrics (`secure.…`, `plain.…`, `plain_perturbed.…`, `plain_<sigmoid>.…`), the quality and
//! phase tables of its `report.md` section, and its security and method notes.

use super::measure::Measured;
use super::quality::{Classification, Quality, Score};
use crate::report::{fmt_bytes, fmt_num, Report};
use ml::backend::SoftmaxKind;
use ml::models::Model;
use mpc::trunc::{self, Truncation};

/// What the report says about a task besides its measurements.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The model.
    pub model: Model,
    /// Section title, e.g. `Linear regression`.
    pub title: String,
    /// The task's label (empty: none).
    pub label: String,
    /// The twins' label where it differs from `label` (`Some("")`: the twins are `plain.…`).
    pub twin_label: Option<String>,
    /// Where the data came from.
    pub data: String,
    /// SGD epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Learning rate.
    pub learning_rate: f64,
    /// Fixed-point fractional bits.
    pub frac_bits: u32,
    /// Triple source.
    pub source: String,
    /// Transport.
    pub transport: String,
    /// Truncation of shared products.
    pub truncation: Truncation,
}

impl RunInfo {
    /// A run's metric prefix: `base`, or `base_<label>`.
    pub fn run_name(&self, base: &str) -> String {
        labelled(base, &self.label)
    }

    /// A plaintext twin's metric prefix: `base`, or `base_<twin label>` (the twin label
    /// defaults to the label).
    pub fn twin_name(&self, base: &str) -> String {
        labelled(base, self.twin_label.as_deref().unwrap_or(&self.label))
    }
}

/// `base`, or `base_<label>` for a non-empty label.
fn labelled(base: &str, label: &str) -> String {
    if label.is_empty() {
        base.to_string()
    } else {
        format!("{base}_{label}")
    }
}

/// A row of the quality table: run, test figure, training figure.
type Row = (String, String, String);

/// Adds a task's metrics, section and notes to `report`.
pub fn render(report: &mut Report, info: &RunInfo, m: &Measured) {
    let rs = info.run_name("secure");
    report.metric(format!("{rs}.max_weight_diff"), m.max_weight_diff);
    let rows = match &m.quality {
        Quality::Regression { secure, plain } => regression(report, info, *secure, *plain),
        Quality::Classification(c) => classification(report, info, c),
    };
    cost_metrics(report, info, m);
    report_truncation(
        report,
        &rs,
        info.truncation,
        m.secure.truncations,
        info.frac_bits,
    );
    section(report, info, m, &rows);
    notes(report, info, m);
}

fn regression(report: &mut Report, info: &RunInfo, s: Score, p: Score) -> Vec<Row> {
    let (rs, rp) = (info.run_name("secure"), info.twin_name("plain"));
    report.metric(format!("{rs}.test_mse"), s.test);
    report.metric(format!("{rp}.test_mse"), p.test);
    report.metric(format!("{rs}.train_mse"), s.train);
    report.metric(format!("{rp}.train_mse"), p.train);
    report.metric(
        format!("{rs}.test_mse_rel_diff"),
        (s.test - p.test).abs() / p.test.abs().max(1e-300),
    );
    vec![
        (
            "secure (2PC)".to_string(),
            fmt_num(s.test),
            fmt_num(s.train),
        ),
        (
            "plaintext twin".to_string(),
            fmt_num(p.test),
            fmt_num(p.train),
        ),
    ]
}

fn classification(report: &mut Report, info: &RunInfo, c: &Classification) -> Vec<Row> {
    let (rs, rp) = (info.run_name("secure"), info.twin_name("plain"));
    report.metric(format!("{rs}.test_accuracy_pct"), c.secure.test);
    report.metric(format!("{rp}.test_accuracy_pct"), c.plain.test);
    report.metric(format!("{rs}.train_accuracy_pct"), c.secure.train);
    report.metric(format!("{rp}.train_accuracy_pct"), c.plain.train);
    report.metric(format!("{rs}.agreement_pct"), c.agreement_pct);
    let pct = |s: Score| (format!("{:.2} %", s.test), format!("{:.2} %", s.train));
    let ((a, b), (d, e)) = (pct(c.secure), pct(c.plain));
    let mut rows = vec![
        ("secure (2PC)".to_string(), a, b),
        ("plaintext twin".to_string(), d, e),
    ];
    if !c.perturbed_pct.is_empty() {
        rows.push(perturbed(report, info, &c.perturbed_pct));
    }
    rows.push((
        "(majority class)".to_string(),
        format!("{:.2} %", c.majority_pct),
        String::new(),
    ));
    for s in &c.sigmoids {
        // `plain_sigmoid` is the real logistic function, whatever it was called in the config.
        let key = if s.logistic {
            "sigmoid"
        } else {
            s.name.as_str()
        };
        let acc = s.test_accuracy_pct;
        report.metric(format!("plain_{key}.test_accuracy_pct"), acc);
        rows.push((
            format!("plaintext, {} activation", s.name),
            format!("{acc:.2} %"),
            String::new(),
        ));
    }
    rows
}

/// The perturbed twins' spread: metrics and the table row.
fn perturbed(report: &mut Report, info: &RunInfo, accs: &[f64]) -> Row {
    let (lo, hi) = accs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let rq = info.twin_name("plain_perturbed");
    report.metric(format!("{rq}.test_accuracy_min_pct"), lo);
    report.metric(format!("{rq}.test_accuracy_max_pct"), hi);
    report.metric(format!("{rq}.runs_count"), accs.len() as f64);
    let list: Vec<String> = accs.iter().map(|a| format!("{a:.2}")).collect();
    (
        format!(
            "plaintext twins from initial weights moved ≤ ½ ulp ({} runs; first: rounded to the grid)",
            accs.len()
        ),
        format!("{lo:.2}–{hi:.2} % ({} %)", list.join(", ")),
        String::new(),
    )
}

/// Time, traffic and round metrics of the secure run and the twin.
fn cost_metrics(report: &mut Report, info: &RunInfo, m: &Measured) {
    let (rs, rp) = (info.run_name("secure"), info.twin_name("plain"));
    let out = &m.secure;
    let (s0, s1) = (out.stats[0], out.stats[1]);
    let mut put = |k: &str, v: f64| report.metric(format!("{rs}.{k}"), v);
    put("online_s", out.online_s);
    put("online_mask_open_s", out.setup_s);
    put("online_train_s", out.train_s);
    put("online_per_epoch_s", out.train_s / info.epochs as f64);
    put("offline_s", out.offline_s);
    put("total_s", out.total_s);
    put("bytes_sent_p0_bytes", s0.bytes_sent as f64);
    put("bytes_sent_p1_bytes", s1.bytes_sent as f64);
    put("rounds_p0_count", s0.rounds as f64);
    put("rounds_p1_count", s1.rounds as f64);
    put("rounds_per_batch_count", s0.rounds as f64 / m.steps as f64);
    for (i, s) in out.offline_stats.iter().enumerate() {
        put(
            &format!("offline_bytes_sent_p{i}_bytes"),
            s.bytes_sent as f64,
        );
        let r = s.bytes_received as f64;
        put(&format!("offline_bytes_received_p{i}_bytes"), r);
    }
    put("upload_bytes", m.upload_bytes);
    put("steps_count", m.steps as f64);
    report.metric(format!("{rp}.train_s"), m.plain_s);
}

/// The quality table in markdown.
fn quality_table(info: &RunInfo, rows: &[Row]) -> String {
    let quality = if info.model == Model::Linreg {
        "MSE"
    } else {
        "accuracy"
    };
    let mut table = format!("| run | test {quality} | train {quality} |\n|---|---|---|\n");
    for (a, b, c) in rows {
        table.push_str(&format!("| {a} | {b} | {c} |\n"));
    }
    table
}

/// The task's section: data, SGD settings, the quality table and the phase table.
fn section(report: &mut Report, info: &RunInfo, m: &Measured, rows: &[Row]) {
    let table = quality_table(info, rows);
    let (out, steps, source) = (&m.secure, m.steps, &info.source);
    let (s0, s1) = (out.stats[0], out.stats[1]);
    let title = if info.label.is_empty() {
        info.title.clone()
    } else {
        format!("{} — {}", info.title, info.label)
    };
    report.section(
        &title,
        format!(
            "Data: {}.\nSGD: {} epochs, batch {}, learning rate {} ({steps} steps); fixed point f = {}; triples `{source}`; transport `{}`.\n\n\
             {table}\nmax |w_secure − w_plain| = {:.3e}.\n\n\
             | phase | time | P0 sent | P1 sent | rounds (P0) |\n|---|---|---|---|---|\n\
             | offline (`{source}`) | {:.3} s | {} | {} | |\n\
             | online: open E = X − U | {:.3} s | | | |\n\
             | online: SGD | {:.3} s ({:.3} s / epoch) | | | |\n\
             | online total | {:.3} s | {} | {} | {} ({:.1} per step) |\n\
             | offline and online, wall (they overlap when the offline phase is streamed) | {:.3} s | | | |\n\
             | plaintext twin | {:.3} s | | | |\n",
            info.data,
            info.epochs,
            info.batch_size,
            info.learning_rate,
            info.frac_bits,
            info.transport,
            m.max_weight_diff,
            out.offline_s,
            fmt_bytes(out.offline_stats[0].bytes_sent as f64),
            fmt_bytes(out.offline_stats[1].bytes_sent as f64),
            out.setup_s,
            out.train_s,
            out.train_s / info.epochs as f64,
            out.online_s,
            fmt_bytes(s0.bytes_sent as f64),
            fmt_bytes(s1.bytes_sent as f64),
            s0.rounds,
            s0.rounds as f64 / steps as f64,
            out.total_s,
            m.plain_s,
        ),
    );
}

/// The task's notes: triple source (and flooding), parties, comparisons, exp softmax.
fn notes(report: &mut Report, info: &RunInfo, m: &Measured) {
    report.note(format!("Triples (`{}`): {}.", info.source, m.secure.trust));
    if let Some(f) = &m.secure.flooding {
        f.report(report, &info.run_name("secure"));
    }
    report.note(
        "Parties: semi-honest and non-colluding; the data matrix is masked once by a random U shared by the triple source and E = X − U is opened (SecureML §IV). The model is reconstructed only by its owner (here: this process, from both parties' shares).",
    );
    if info.model != Model::Linreg {
        report.note("Comparisons (ReLU, piecewise sigmoid) are exact: the millionaires' protocol on the arithmetic shares (1-out-of-16 leaf OTs on 4-bit digits, a tree of AND gates; `mpc::nonlinear::msb_millionaire`); shared-bit products by the OT multiplexer.");
    }
    if info.model == Model::Mlp(SoftmaxKind::Exp) {
        report.note("Exp softmax: e^x by the limit approximation (1 + x/2^8)^(2^8) with inputs clamped to [-256, 6], and a Newton reciprocal; the twin uses the exact exp.");
    }
}

/// The truncation metrics and note of a secure run: the count of truncated values, and for local
/// truncation the per-value bound and the whole-run union bound (count × per-value).
fn report_truncation(report: &mut Report, rs: &str, mode: Truncation, count: u64, f: u32) {
    report.metric(format!("{rs}.truncations_count"), count as f64);
    let l_x = 2 * f + 12;
    match mode {
        Truncation::Local => {
            let p = trunc::failure_probability(l_x);
            // The union bound before capping at 1: above 0 it says nothing about the run.
            let run_log2 = (count as f64).log2() + p.log2();
            let run = trunc::run_failure_bound(count, l_x);
            report.metric(format!("{rs}.truncation_failure_value_log2"), p.log2());
            report.metric(format!("{rs}.truncation_failure_run_log2"), run_log2);
            let verdict = if run_log2 >= 0.0 {
                "≥ 1: the bound guarantees nothing for this run"
            } else {
                "union bound"
            };
            report.note(format!(
                "Truncation (`{rs}`): SecureML's local truncation (`truncation = \"local\"`, the default); a product below 2^l_x in magnitude (encoded) fails with probability ≤ 2^(l_x+1−64): with f = {f} a real product below 4096 has l_x = {l_x}, i.e. {p:.1e} per value. The run truncated {count} values, so it failed anywhere with probability ≤ min(1, {count} · {p:.1e}) = {run:.1e} (count × p = 2^{run_log2:.1}, {verdict}). `truncation = \"exact\"` removes the failure event at one elementwise triple and one round per truncation."
            ));
        }
        Truncation::Exact => report.note(format!(
            "Truncation (`{rs}`): exact (`truncation = \"exact\"`): each truncation computes the wrap bit of the two shares from one Beaver product of the parties' private top bits, so every one of the {count} truncated values is ⌊x/2^d⌋ or +1 for |x| < 2^62 (encoded), with no failure event; cost: one elementwise triple, one round and 16 bytes per party per value."
        )),
    }
}
