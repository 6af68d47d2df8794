//! Renders the `secure-stgcn` task's typed outcomes into the report: the fine-tuning table
//! (secure vs twin per public model, with per-epoch online and offline cost, bytes and rounds),
//! the CKKS serving table, the metrics and the security notes.

use super::measure::ModelOutcome;
use super::secure::SecureRun;
use super::SecureStgcnTask;
use crate::cryptogcn::accuracy::AccuracyFigures;
use crate::report::{fmt_bytes, fmt_num, Report};
use anyhow::Result;
use std::fmt::Write as _;

/// Per-epoch figures of a secure run: online s, offline s, bytes and rounds (both parties),
/// from its steps scaled to `per_epoch` steps.
struct PerEpoch {
    online_s: f64,
    offline_s: f64,
    online_bytes: f64,
    offline_bytes: f64,
    rounds: f64,
}

fn per_epoch(r: &SecureRun, per_epoch: usize) -> PerEpoch {
    let steps: usize = r.epoch_steps.iter().sum();
    let k = per_epoch as f64 / steps.max(1) as f64;
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let sent = |s: &[mpc::net::CommStats; 2]| (s[0].bytes_sent + s[1].bytes_sent) as f64;
    PerEpoch {
        online_s: sum(&r.epoch_online_s) * k,
        offline_s: sum(&r.epoch_offline_s) * k,
        online_bytes: sent(&r.step_stats) * k,
        offline_bytes: sent(&r.step_offline_stats) * k,
        rounds: r.step_stats[0].rounds.max(r.step_stats[1].rounds) as f64 * k,
    }
}

/// The description of the data and schedule.
pub(super) fn data_section(
    report: &mut Report,
    description: &str,
    epochs: &[Vec<Vec<usize>>],
    per_epoch: usize,
    t: &SecureStgcnTask,
) {
    let steps: usize = epochs.iter().map(Vec::len).sum();
    report.section(
        &format!("2PC fine-tuning of a public ST-GCN{}", suffix_title(t)),
        format!(
            "{description}.\n\nSchedule: {steps} SGD steps of {} clips ({} epoch(s) of at most {per_epoch} full batches, shuffled per epoch from the experiment seed, last partial batch dropped), learning rate {}, momentum {}, weight decay {}, exact truncation (no failure event), offline phase in chunks of at most {} steps.",
            t.batch_size,
            epochs.len(),
            fmt_num(t.learning_rate),
            fmt_num(t.momentum),
            fmt_num(t.weight_decay),
            t.chunk_steps,
        ),
    );
}

fn suffix_title(t: &SecureStgcnTask) -> String {
    if t.label.is_empty() {
        String::new()
    } else {
        format!(" ({})", t.label)
    }
}

/// The metric prefixes `(secure, plain, public)` of model `i`.
fn prefixes(t: &SecureStgcnTask, i: usize, o: &ModelOutcome) -> [String; 3] {
    let act = if i == 0 {
        String::new()
    } else {
        format!("_{}", o.activation)
    };
    ["secure_stgcn", "plain_stgcn", "public_stgcn"].map(|r| format!("{}{act}", t.prefix(r)))
}

fn model_metrics(report: &mut Report, t: &SecureStgcnTask, i: usize, o: &ModelOutcome) {
    let [s, p, q] = prefixes(t, i, o);
    let e = per_epoch(&o.secure, o.steps_per_epoch);
    let plain_epoch = o.twin.epoch_s.iter().sum::<f64>() * o.steps_per_epoch as f64
        / o.secure.epoch_steps.iter().sum::<usize>().max(1) as f64;
    report.metric(format!("{q}.test_accuracy_pct"), 100.0 * o.public_accuracy);
    if o.calibration_clips > 0 {
        let c = q.replacen("public", "calibrated", 1);
        report.metric(
            format!("{c}.test_accuracy_pct"),
            100.0 * o.calibrated_accuracy,
        );
        report.metric(
            format!("{s}.calibration_online_s"),
            o.secure.calibration_online_s,
        );
        report.metric(
            format!("{s}.calibration_offline_s"),
            o.secure.calibration_offline_s,
        );
    }
    report.metric(format!("{s}.test_accuracy_pct"), 100.0 * o.secure_accuracy);
    report.metric(format!("{p}.test_accuracy_pct"), 100.0 * o.twin_accuracy);
    report.metric(format!("{s}.max_weight_diff"), o.max_weight_diff);
    report.metric(format!("{s}.online_per_epoch_s"), e.online_s);
    report.metric(format!("{s}.offline_per_epoch_s"), e.offline_s);
    report.metric(format!("{s}.online_per_epoch_bytes"), e.online_bytes);
    report.metric(format!("{s}.offline_per_epoch_bytes"), e.offline_bytes);
    report.metric(format!("{s}.rounds_per_epoch_count"), e.rounds);
    report.metric(format!("{s}.online_vs_plain"), e.online_s / plain_epoch);
    report.metric(format!("{p}.train_per_epoch_s"), plain_epoch);
    report.metric(format!("{p}.final_train_loss"), o.twin.last_loss);
    let steps: usize = o.secure.epoch_steps.iter().sum();
    report.metric(format!("{s}.steps_count"), steps as f64);
    report.metric(
        format!("{s}.truncations_count"),
        o.secure.truncations as f64,
    );
    if let Some(h) = &o.he {
        let he = per_epoch(h, o.steps_per_epoch);
        report.metric(format!("{s}_he.offline_per_epoch_s"), he.offline_s);
        report.metric(format!("{s}_he.offline_per_epoch_bytes"), he.offline_bytes);
        report.metric(format!("{s}_he.online_per_epoch_s"), he.online_s);
        report.metric(
            format!("{s}_he.steps_count"),
            h.epoch_steps.iter().sum::<usize>() as f64,
        );
        if let Some(f) = h.flooding {
            f.report(report, &format!("{s}_he"));
        }
    }
}

fn row(out: &mut String, name: &str, acc: f64, dw: &str, e: Option<&PerEpoch>, plain_s: f64) {
    let (on, off, b, ob, r) = match e {
        Some(e) => (
            fmt_num(e.online_s),
            fmt_num(e.offline_s),
            fmt_bytes(e.online_bytes),
            fmt_bytes(e.offline_bytes),
            fmt_num(e.rounds.round()),
        ),
        None => (
            fmt_num(plain_s),
            "—".into(),
            "—".into(),
            "—".into(),
            "—".into(),
        ),
    };
    let acc = if acc.is_nan() {
        "—".to_string()
    } else {
        format!("{:.2} %", 100.0 * acc)
    };
    let _ = writeln!(
        out,
        "| {name} | {acc} | {dw} | {on} | {off} | {b} | {ob} | {r} |"
    );
}

fn calibration_note(o: &ModelOutcome) -> String {
    if o.calibration_clips == 0 {
        return String::new();
    }
    format!(
        ", {:.2} % after re-calibrating its BNs on {} private training clips in 2PC ({:.1} s online, {:.1} s offline)",
        100.0 * o.calibrated_accuracy,
        o.calibration_clips,
        o.secure.calibration_online_s,
        o.secure.calibration_offline_s
    )
}

fn model_table(out: &mut String, o: &ModelOutcome) {
    let e = per_epoch(&o.secure, o.steps_per_epoch);
    let steps: usize = o.secure.epoch_steps.iter().sum();
    let plain_s =
        o.twin.epoch_s.iter().sum::<f64>() * o.steps_per_epoch as f64 / steps.max(1) as f64;
    let _ = writeln!(
        out,
        "**{}** (`{}`, {} trainable values; {:.2} % on the private test clips before fine-tuning{})\n",
        o.activation,
        o.stem,
        o.trainable,
        100.0 * o.public_accuracy,
        calibration_note(o)
    );
    let _ = writeln!(out, "| run | test accuracy | max \\|ΔW\\| | online s / epoch | offline s / epoch | online bytes / epoch | offline bytes / epoch | rounds / epoch |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    let dw = format!("{:.3e}", o.max_weight_diff);
    row(
        out,
        &format!("secure ({})", o.secure.trust_short()),
        o.secure_accuracy,
        &dw,
        Some(&e),
        0.0,
    );
    if let Some(h) = &o.he {
        let he = per_epoch(h, o.steps_per_epoch);
        let n: usize = h.epoch_steps.iter().sum();
        let name = format!(
            "secure, `he` triples ({n} steps, per epoch ×{})",
            o.steps_per_epoch
        );
        row(out, &name, f64::NAN, "—", Some(&he), 0.0);
    }
    row(out, "plaintext twin", o.twin_accuracy, "0", None, plain_s);
    let _ = writeln!(
        out,
        "\nOnline time per epoch is {:.1}× the twin's training time (same run, same machine). Bytes: both parties together; rounds: the larger party's count.\n",
        e.online_s / plain_s
    );
}

fn served_table(out: &mut String, f: &AccuracyFigures) {
    let per_clip = f.pass_s.iter().sum::<f64>() / f.samples.max(1) as f64;
    let _ = writeln!(out, "| clips | preset | clips / pass | agreement | encrypted accuracy | plaintext accuracy | max \\|logit error\\| | server s / clip |");
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
    let pct = |k: usize| 100.0 * k as f64 / f.samples.max(1) as f64;
    let _ = writeln!(
        out,
        "| {} | {} | {} | {:.2} % ({}/{}) | {:.2} % | {:.2} % | {:.3e} | {:.2} |",
        f.samples,
        f.preset,
        f.clips_per_pass,
        pct(f.agree),
        f.agree,
        f.samples,
        pct(f.correct_encrypted),
        pct(f.correct_plain),
        f.max_logit_error,
        per_clip
    );
}

fn served_metrics(report: &mut Report, t: &SecureStgcnTask, f: &AccuracyFigures) {
    let p = t.prefix("he_served");
    let n = f.samples.max(1) as f64;
    report.metric(format!("{p}.agreement_pct"), 100.0 * f.agree as f64 / n);
    report.metric(format!("{p}.max_logit_error"), f.max_logit_error);
    report.metric(
        format!("{p}.encrypted_accuracy_pct"),
        100.0 * f.correct_encrypted as f64 / n,
    );
    report.metric(format!("{p}.clips_count"), f.samples as f64);
    report.metric(format!("{p}.per_clip_s"), f.pass_s.iter().sum::<f64>() / n);
    report.metric(format!("{p}.encode_cpu_s"), f.cache.encode_ns as f64 * 1e-9);
    report.metric(format!("{p}.cache_hits_count"), f.cache.hits as f64);
    report.metric(format!("{p}.cache_misses_count"), f.cache.misses as f64);
}

/// Adds the tables, metrics and notes of the task.
pub(super) fn render(
    report: &mut Report,
    t: &SecureStgcnTask,
    outcomes: &[ModelOutcome],
    served: Option<&AccuracyFigures>,
) -> Result<()> {
    let mut body = String::new();
    for (i, o) in outcomes.iter().enumerate() {
        model_metrics(report, t, i, o);
        model_table(&mut body, o);
    }
    report.section(
        &format!("Secure fine-tuning vs plaintext twin{}", suffix_title(t)),
        body,
    );
    if let Some(f) = served {
        let mut body = format!(
            "The secure-trained {} model, reconstructed by its owner, BN-folded and evaluated on encrypted test clips (CKKS, AMA packing, in process), against the plaintext evaluation of the same weights.\n\n",
            outcomes[0].activation
        );
        served_table(&mut body, f);
        report.section(&format!("Served under CKKS{}", suffix_title(t)), body);
        served_metrics(report, t, f);
    }
    if let (Some(s), Some(o)) = (&t.summary, outcomes.first()) {
        report.metric(
            format!("{s}.secure_test_accuracy_pct"),
            100.0 * o.secure_accuracy,
        );
        report.metric(
            format!("{s}.plain_test_accuracy_pct"),
            100.0 * o.twin_accuracy,
        );
        if let Some(f) = served {
            report.metric(
                format!("{s}.he_agreement_pct"),
                100.0 * f.agree as f64 / f.samples.max(1) as f64,
            );
        }
    }
    report.note("Secure ST-GCN fine-tuning: semi-honest, non-colluding servers; the starting model is public (pretrained on other data), its frozen parts (graph, edge importance, input normalisation; BN statistics unless re-calibrated on shares) are public, every trainable parameter, clip, label and intermediate value stays secret-shared; truncation is exact (no failure event). The owner reconstructs the trained model, then serves it under CKKS.");
    Ok(())
}
