//! Renders a remote task's typed results ([`Measured`]) into the report: the `results.json`
//! metrics (`secure.job_s`, `secure.reveal_s`, the parties' own times and traffic, the quality
//! figures), the quality and phase tables of its `report.md` section, and its notes.

use super::measure::Measured;
use crate::config::supervised::Kind;
use crate::report::{fmt_bytes, fmt_num, Report};
use party::proto::{EntryInfo, TripleKind};

/// What the report says about a remote task besides its measurements.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The model.
    pub kind: Kind,
    /// Section title, e.g. `Linear regression`.
    pub title: String,
    /// The task's label (empty: none).
    pub label: String,
    /// P0's and P1's addresses.
    pub parties: [String; 2],
    /// The stored dataset trained on.
    pub entry: EntryInfo,
    /// Where the local data came from.
    pub data: String,
    /// SGD epochs.
    pub epochs: usize,
    /// Batch size.
    pub batch_size: usize,
    /// Learning rate.
    pub learning_rate: f64,
    /// Triple source as configured.
    pub source: String,
    /// Triple source of the job.
    pub triples: TripleKind,
}

impl RunInfo {
    /// A run's metric prefix: `base`, or `base_<label>`.
    fn run_name(&self, base: &str) -> String {
        if self.label.is_empty() {
            base.to_string()
        } else {
            format!("{base}_{}", self.label)
        }
    }
}

/// A row of the quality table: run, test figure, training figure.
type Row = (String, String, String);

/// Adds a remote task's metrics, section and notes to `report`.
pub fn render(report: &mut Report, info: &RunInfo, m: &Measured) {
    let rows = quality(report, info, m);
    cost_metrics(report, info, m);
    section(report, info, m, &rows);
    notes(report, info, m);
}

/// The quality metrics and table rows of the job's model and the twin.
fn quality(report: &mut Report, info: &RunInfo, m: &Measured) -> Vec<Row> {
    let (rs, rp) = (info.run_name("secure"), info.run_name("plain"));
    if let Some(t) = &m.twin {
        report.metric(format!("{rs}.max_weight_diff"), t.max_weight_diff);
        report.metric(format!("{rp}.train_s"), t.train_s);
    }
    let regression = info.kind == Kind::Linreg;
    let (q, fmt): (&str, fn(f64) -> String) = if regression {
        ("mse", fmt_num)
    } else {
        ("accuracy_pct", |a| format!("{a:.2} %"))
    };
    report.metric(format!("{rs}.test_{q}"), m.secure_test);
    if let Some(a) = m.secure_train {
        report.metric(format!("{rs}.train_{q}"), a);
    }
    let mut rows = vec![(
        "secure (remote 2PC)".to_string(),
        fmt(m.secure_test),
        m.secure_train.map_or_else(String::new, fmt),
    )];
    if let Some(t) = &m.twin {
        report.metric(format!("{rp}.test_{q}"), t.plain.test);
        report.metric(format!("{rp}.train_{q}"), t.plain.train);
        if regression {
            let rel = (m.secure_test - t.plain.test).abs() / t.plain.test.abs().max(1e-300);
            report.metric(format!("{rs}.test_mse_rel_diff"), rel);
        }
        if let Some(a) = t.agreement_pct {
            report.metric(format!("{rs}.agreement_pct"), a);
        }
        rows.push((
            "plaintext twin (local)".to_string(),
            fmt(t.plain.test),
            fmt(t.plain.train),
        ));
    }
    rows
}

/// Client-side times, and each party's own time, traffic and rounds.
fn cost_metrics(report: &mut Report, info: &RunInfo, m: &Measured) {
    let rs = info.run_name("secure");
    let mut put = |k: &str, v: f64| report.metric(format!("{rs}.{k}"), v);
    put("job_s", m.job_s);
    put("reveal_s", m.reveal_s);
    put("steps_count", m.steps as f64);
    let [s0, s1] = m.stats;
    put("offline_s", s0.offline_s);
    put("online_s", s0.online_s);
    put("offline_p1_s", s1.offline_s);
    put("online_p1_s", s1.online_s);
    for (i, s) in m.stats.iter().enumerate() {
        put(
            &format!("bytes_sent_p{i}_bytes"),
            s.online.bytes_sent as f64,
        );
        put(&format!("rounds_p{i}_count"), s.online.rounds as f64);
        let off = &s.offline;
        put(
            &format!("offline_bytes_sent_p{i}_bytes"),
            off.bytes_sent as f64,
        );
        put(
            &format!("offline_bytes_received_p{i}_bytes"),
            off.bytes_received as f64,
        );
    }
    put(
        "rounds_per_batch_count",
        s0.online.rounds as f64 / m.steps.max(1) as f64,
    );
}

/// The quality table in markdown.
fn quality_table(info: &RunInfo, rows: &[Row]) -> String {
    let quality = if info.kind == Kind::Linreg {
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

/// The task's section: parties, stored dataset, SGD settings, the quality and phase tables.
fn section(report: &mut Report, info: &RunInfo, m: &Measured, rows: &[Row]) {
    let table = quality_table(info, rows);
    let twin_line = match &m.twin {
        Some(t) => format!("| plaintext twin (local) | {:.3} s |\n", t.train_s),
        None => String::new(),
    };
    let (e, steps, source, [s0, s1]) = (&info.entry, m.steps, &info.source, m.stats);
    let title = if info.label.is_empty() {
        format!("{} — remote job", info.title)
    } else {
        format!("{} — remote job ({})", info.title, info.label)
    };
    report.section(
        &title,
        format!(
            "Parties: P0 at {}, P1 at {}. Stored dataset `{}` (id {}, {} rows × {} columns). Job {}.\n\
             Local data: {}.\n\
             SGD: {} epochs, batch {}, learning rate {} ({steps} steps); triples `{source}`.\n\n\
             {table}\n\
             | phase (measured at the client) | time |\n|---|---|\n\
             | job: offline and online phases on the parties | {:.3} s |\n\
             | reveal to the owner | {:.3} s |\n{twin_line}\n\
             | phase (measured by the parties) | time P0 / P1 | P0 sent | P1 sent | rounds (P0) |\n|---|---|---|---|---|\n\
             | offline (`{source}`) | {:.3} s / {:.3} s | {} | {} | |\n\
             | online | {:.3} s / {:.3} s | {} | {} | {} ({:.1} per step) |\n",
            info.parties[0],
            info.parties[1],
            e.name,
            e.id,
            e.rows,
            e.cols,
            m.job,
            info.data,
            info.epochs,
            info.batch_size,
            info.learning_rate,
            m.job_s,
            m.reveal_s,
            s0.offline_s,
            s1.offline_s,
            fmt_bytes(s0.offline.bytes_sent as f64),
            fmt_bytes(s1.offline.bytes_sent as f64),
            s0.online_s,
            s1.online_s,
            fmt_bytes(s0.online.bytes_sent as f64),
            fmt_bytes(s1.online.bytes_sent as f64),
            s0.online.rounds,
            s0.online.rounds as f64 / steps.max(1) as f64,
        ),
    );
}

/// The task's notes: remote jobs, the triple source, MLP jobs, a missing twin.
fn notes(report: &mut Report, info: &RunInfo, m: &Measured) {
    report.note(
        "Remote jobs: two `party serve` processes, semi-honest and non-colluding, train on the shares in their stores over their mutually authenticated peer link; the trained model stays secret-shared in both stores and is revealed only to its owner (this client), each party sending its share to the owner alone. Each party reports its time, bytes and rounds of both phases to the client at the end of the job (counted at the framing layer, as in-process runs count them; `secure.offline_s`/`secure.online_s` are P0's, `secure.offline_p1_s`/`secure.online_p1_s` P1's); the offline traffic is with the dealer for `dealer` triples.",
    );
    if info.triples == TripleKind::Dealer {
        report.note("Triples (`dealer`): made by the dealer the parties are configured with, a trusted third party that must not collude with either party.");
    } else {
        report.note("Triples (`ot`): made by the two parties alone (base OT and OT extension, Gilboa multiplication; SecureML §IV-B).");
    }
    if info.kind == Kind::Mlp {
        report.note("MLP jobs: the parties turn the shared class indices into one-hot rows by secure comparisons; the initial weights are public (He-uniform from the job's seed), only the trained weights are secret.");
    }
    if m.twin.is_none() {
        report.note("No plaintext twin: the config gives no local copy of the training data.");
    }
}
