//! The comparison table of the `hecnn` task: each measured design beside the published
//! figures of the papers it reproduces.

use crate::report::fmt_num;
use ml::models::cnn::CnnModel;
use ndarray::Array2;

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

/// Published figures (design, latency, throughput, accuracy).
const PUBLISHED: [(&str, &str, &str, &str); 2] = [
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
