//! Rendering of the `stgcn` task's typed outcomes into the report: the metrics, the section
//! with its settings paragraph, results table, targets and file list, the notes, and the
//! files (training curves as SVG and CSV, activation traces, trained models). Nothing here
//! trains; every function takes outcomes the training returned.

use super::measure::{EpochPoint, RunOutcome, TaskSetup, TRACE_CLIPS};
use crate::config::stgcn::{Activation, ScheduleSpec, StgcnTask};
use crate::report::{fmt_num, Report};
use anyhow::Result;
use std::fmt::Write as _;
use stgcn::StGcn;

/// Everything the task reports about its runs: metrics, the section, notes and files (the
/// trained models aside, see [`model_files`]).
pub(super) fn render(
    report: &mut Report,
    t: &StgcnTask,
    setup: &TaskSetup,
    runs: &[RunOutcome],
) -> Result<()> {
    metrics(report, runs, setup.n_train);
    let title = title(t, setup);
    report.section(&title, section(t, setup, runs));
    report.note(
        "ST-GCN inputs are normalised per (coordinate, joint) by the mean and standard deviation of the training set only (stgcn::InputNorm). The map is stored in the model's JSON config, not learned; under encryption the client applies it to its own plaintext before encrypting.",
    );
    report.note(setup.protocol_note.clone());
    report.note("ST-GCN training is plaintext (f64); square and poly are the HE-friendly activations for CKKS inference (CryptoGCN x², LinGCN per-node a·x² + b·x + c), ReLU the plaintext baseline.");
    let suffix = t.file_suffix();
    report.files.push((
        format!("curves{suffix}.svg"),
        plot_curves(runs, &title)?.into_bytes(),
    ));
    report
        .files
        .push((format!("curves{suffix}.csv"), curves_csv(runs).into_bytes()));
    if t.trace_activations {
        report.files.push((
            format!("activations{suffix}.csv"),
            trace_csv(runs).into_bytes(),
        ));
    }
    Ok(())
}

/// The trained models as `<run>.safetensors` + `<run>.json`, in the order of `runs`.
pub(super) fn model_files(
    report: &mut Report,
    runs: &[RunOutcome],
    models: &[StGcn],
) -> Result<()> {
    for (r, model) in runs.iter().zip(models) {
        report.files.push((
            format!("{}.safetensors", r.name),
            model.to_safetensors_bytes()?,
        ));
        report.files.push((
            format!("{}.json", r.name),
            model.config_json()?.into_bytes(),
        ));
    }
    Ok(())
}

fn title(t: &StgcnTask, setup: &TaskSetup) -> String {
    if t.label.is_empty() {
        format!("ST-GCN on {}", setup.short_name)
    } else {
        format!("ST-GCN on {} ({})", setup.short_name, t.label)
    }
}

/// The ReLU run's test accuracy (fraction), if it was trained.
fn relu_accuracy(runs: &[RunOutcome]) -> Option<f64> {
    runs.iter()
        .find(|r| r.act == Activation::Relu)
        .map(|r| r.test_accuracy)
}

/// The metrics of every run (`<run>.<quantity>_<unit>`).
pub(super) fn metrics(report: &mut Report, runs: &[RunOutcome], n_train: usize) {
    let relu_acc = relu_accuracy(runs);
    for r in runs {
        let last = r.curve.last();
        report.metric(
            format!("{}.test_accuracy_pct", r.name),
            100.0 * r.test_accuracy,
        );
        if let Some(p) = last {
            report.metric(
                format!("{}.train_accuracy_pct", r.name),
                100.0 * p.train_accuracy,
            );
            report.metric(format!("{}.final_train_loss", r.name), p.train_loss);
        }
        if let Some(a) = r.initial_test_accuracy {
            report.metric(format!("{}.initial_test_accuracy_pct", r.name), 100.0 * a);
        }
        report.metric(format!("{}.train_s", r.name), r.train_s);
        if !r.curve.is_empty() && n_train > 0 {
            let clip_epochs = (r.curve.len() * n_train) as f64;
            report.metric(
                format!("{}.train_per_clip_epoch_s", r.name),
                r.train_s / clip_epochs,
            );
            if let Some(cpu) = r.train_cpu_s {
                report.metric(
                    format!("{}.train_cpu_per_clip_epoch_s", r.name),
                    cpu / clip_epochs,
                );
            }
        }
        report.metric(format!("{}.params_count", r.name), r.params as f64);
        if let (Some(base_acc), true) = (relu_acc, r.act != Activation::Relu) {
            report.metric(
                format!("{}.accuracy_drop_pp", r.name),
                100.0 * (base_acc - r.test_accuracy),
            );
        }
    }
}

/// The task's section: data and settings, the results table, the targets and the files.
fn section(t: &StgcnTask, setup: &TaskSetup, runs: &[RunOutcome]) -> String {
    let relu_acc = relu_accuracy(runs);
    let mut s = settings(t, setup, runs);
    results_table(&mut s, runs, relu_acc);
    for r in runs {
        if let Some(a) = r.initial_test_accuracy {
            let _ = writeln!(
                s,
                "\n{}: {:.2} % test accuracy right after the activation replacement, before its training.",
                r.name,
                100.0 * a
            );
        }
    }
    let _ = writeln!(
        s,
        "\nThe headline accuracy is that of the model after the last epoch (for a diverged run: after the last epoch with a finite loss); the best epoch is selected on the test set and shown for information only."
    );
    let verdicts = verdicts(t, runs, relu_acc);
    if !verdicts.is_empty() {
        let _ = writeln!(s, "\nTargets: {}.", verdicts.join("; "));
    }
    files_text(&mut s, t, runs, setup.n_train);
    s
}

/// The data and model/training paragraphs.
fn settings(t: &StgcnTask, setup: &TaskSetup, runs: &[RunOutcome]) -> String {
    let widths: Vec<String> = setup
        .blocks
        .iter()
        .map(|&(cin, cout, stride)| {
            format!(
                "{cin}→{cout}{}",
                if stride == 2 { " (stride 2)" } else { "" }
            )
        })
        .collect();
    let deviations: Vec<String> = runs
        .iter()
        .filter(|r| !r.deviations.is_empty())
        .map(|r| format!("{}: {}", r.name, r.deviations.join(", ")))
        .collect();
    let mut s = String::new();
    let _ = writeln!(s, "Data: {}.\n", setup.description);
    let _ = writeln!(
        s,
        "Model: {} with widths divided by {} (blocks {}), 9-frame temporal kernels, K = 3 spatial partitions, learnable edge importance, global average pooling and a dense classifier; poly activations start at a·x² + b·x + c with [a, b, c] = {:?}. Training: {} epochs, batch {}, SGD lr {} ({}), momentum {}, weight decay {}{}{}, seed {}; every activation starts from the same seed and sees the same batches{}.\n",
        t.architecture.name(),
        t.width_divisor,
        widths.join(", "),
        setup.poly_init,
        t.epochs,
        t.batch_size,
        t.learning_rate,
        schedule_text(&t.schedule),
        t.momentum,
        t.weight_decay,
        t.clip_grad_norm
            .map_or(String::new(), |c| format!(", gradient norm clipped at {}", fmt_num(c))),
        if t.warmup_epochs > 0 {
            format!(", linear learning-rate warm-up over {} epochs", t.warmup_epochs)
        } else {
            String::new()
        },
        setup.seed,
        if deviations.is_empty() {
            String::new()
        } else {
            format!(", except ({})", deviations.join("; "))
        },
    );
    s
}

/// The results table, one row per run.
fn results_table(s: &mut String, runs: &[RunOutcome], relu_acc: Option<f64>) {
    let _ = writeln!(
        s,
        "| activation | parameters | test accuracy | best epoch (test) | drop vs ReLU | train accuracy | final train loss | train time | eval time |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in runs {
        let best = r
            .curve
            .iter()
            .max_by(|a, b| a.test_accuracy.total_cmp(&b.test_accuracy));
        let last = r.curve.last();
        let drop = match (relu_acc, r.act) {
            (Some(b), a) if a != Activation::Relu => {
                format!("{:+.2} pp", 100.0 * (b - r.test_accuracy))
            }
            _ => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {}{} | {} | **{:.2} %** | {} | {drop} | {} | {} | {:.1} s | {:.1} s |",
            r.name,
            r.diverged_at
                .map_or(String::new(), |e| format!(" (diverged in epoch {})", e + 1)),
            r.params,
            100.0 * r.test_accuracy,
            best.map_or("—".into(), |p| format!(
                "{:.2} % (epoch {})",
                100.0 * p.test_accuracy,
                p.epoch + 1
            )),
            last.map_or("—".into(), |p| format!(
                "{:.2} %",
                100.0 * p.train_accuracy
            )),
            last.map_or("—".into(), |p| format!("{:.4}", p.train_loss)),
            r.train_s,
            r.eval_s,
        );
    }
}

/// The targets the task sets (ReLU accuracy, largest drop), each met or not.
fn verdicts(t: &StgcnTask, runs: &[RunOutcome], relu_acc: Option<f64>) -> Vec<String> {
    let mut verdicts = Vec::new();
    if let (Some(target), Some(b)) = (t.target_accuracy_pct, relu_acc) {
        verdicts.push(format!(
            "ReLU {:.2} % against the target of ≥ {target} %: {}",
            100.0 * b,
            if 100.0 * b >= target {
                "met"
            } else {
                "not met"
            }
        ));
    }
    if let (Some(max), Some(b)) = (t.max_drop_pp, relu_acc) {
        for r in runs.iter().filter(|r| r.act != Activation::Relu) {
            let d = 100.0 * (b - r.test_accuracy);
            let diff = if d >= 0.0 {
                format!("{d:.2} pp below")
            } else {
                format!("{:.2} pp above", -d)
            };
            verdicts.push(format!(
                "{} is {diff} ReLU against the target of at most {max} pp below: {}",
                r.name,
                if d <= max { "met" } else { "not met" }
            ));
        }
    }
    verdicts
}

/// The curves, the training time per clip and epoch, the trace file and the model files.
fn files_text(s: &mut String, t: &StgcnTask, runs: &[RunOutcome], n_train: usize) {
    let suffix = t.file_suffix();
    let _ = writeln!(
        s,
        "\nTraining curves: [`curves{suffix}.svg`](curves{suffix}.svg) (per-epoch numbers in `curves{suffix}.csv`)."
    );
    let per_clip: Vec<String> = runs
        .iter()
        .filter(|r| !r.curve.is_empty())
        .map(|r| {
            let clip_epochs = (r.curve.len() * n_train.max(1)) as f64;
            format!(
                "{} {:.4} s{}",
                r.name,
                r.train_s / clip_epochs,
                r.train_cpu_s.map_or(String::new(), |c| format!(
                    " ({:.4} CPU-s)",
                    c / clip_epochs
                ))
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "\nTraining time per clip and epoch, wall clock ({} threads; CPU seconds of all threads in parentheses, which do not grow when other processes share the cores): {}.",
        rayon::current_num_threads(),
        per_clip.join(", ")
    );
    if t.trace_activations {
        let _ = writeln!(
            s,
            "\nActivation-input statistics (RMS, mean and largest magnitude per block and site, on the first {TRACE_CLIPS} training clips after every epoch): `activations{suffix}.csv`."
        );
    }
    if t.save_models {
        let files: Vec<String> = runs
            .iter()
            .map(|r| format!("`{0}.safetensors` + `{0}.json`", r.name))
            .collect();
        let _ = writeln!(
            s,
            "\nModels: {} (F64 safetensors and the JSON config with graph, input normalisation and class names; `stgcn::StGcn::from_json_and_safetensors` reads them).",
            files.join(", ")
        );
    }
}

fn schedule_text(s: &ScheduleSpec) -> String {
    match s {
        ScheduleSpec::Constant => "constant".into(),
        ScheduleSpec::Cosine => "cosine annealing".into(),
        ScheduleSpec::Step { milestones, gamma } => {
            format!("×{} at epochs {milestones:?}", fmt_num(*gamma))
        }
    }
}

fn curves_csv(runs: &[RunOutcome]) -> String {
    let mut s = String::from(
        "run,epoch,learning_rate,train_loss,train_accuracy,test_loss,test_accuracy,train_s\n",
    );
    for r in runs {
        for p in &r.curve {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{}",
                r.name,
                p.epoch + 1,
                p.learning_rate,
                p.train_loss,
                p.train_accuracy,
                p.test_loss,
                p.test_accuracy,
                p.train_s
            );
        }
    }
    s
}

fn trace_csv(runs: &[RunOutcome]) -> String {
    let mut s = String::from("run,epoch,block,site,mean,rms,max_abs\n");
    for r in runs {
        for (epoch, stats) in &r.trace {
            for a in stats {
                let _ = writeln!(
                    s,
                    "{},{epoch},{},{},{},{},{}",
                    r.name, a.block, a.site, a.mean, a.rms, a.max_abs
                );
            }
        }
    }
    s
}

/// Two panels side by side: test accuracy (%) and training loss per epoch, one line per run.
fn plot_curves(runs: &[RunOutcome], title: &str) -> Result<String> {
    use plotters::prelude::*;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(plot_err)?;
        let panels = root.split_evenly((1, 2));
        let epochs = runs.iter().map(|r| r.curve.len()).max().unwrap_or(1).max(1);
        let colors = [
            RGBColor(31, 119, 180),
            RGBColor(214, 39, 40),
            RGBColor(44, 160, 44),
        ];
        let acc_min = runs
            .iter()
            .flat_map(|r| r.curve.iter().map(|p| 100.0 * p.test_accuracy))
            .fold(100.0f64, f64::min);
        let y0 = (acc_min / 10.0).floor() * 10.0;
        let losses: Vec<f64> = runs
            .iter()
            .flat_map(|r| r.curve.iter().map(|p| p.train_loss))
            .filter(|l| l.is_finite())
            .collect();
        let loss_max = losses.iter().copied().fold(0.0f64, f64::max).max(1e-3) * 1.05;
        type Pick = fn(&EpochPoint) -> f64;
        let specs: [(&str, f64, f64, Pick); 2] = [
            ("test accuracy (%)", y0.min(90.0), 100.0, |p| {
                100.0 * p.test_accuracy
            }),
            ("training loss", 0.0, loss_max, |p| p.train_loss),
        ];
        for (area, (label, lo, hi, pick)) in panels.iter().zip(specs) {
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(52)
                .caption(label, ("sans-serif", 16))
                .build_cartesian_2d(1f64..epochs as f64, lo..hi)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(label)
                .draw()
                .map_err(plot_err)?;
            for (i, r) in runs.iter().enumerate() {
                let color = colors[i % colors.len()];
                chart
                    .draw_series(LineSeries::new(
                        r.curve.iter().map(|p| ((p.epoch + 1) as f64, pick(p))),
                        color.stroke_width(2),
                    ))
                    .map_err(plot_err)?
                    .label(r.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the training curves: {e:?}")
}
