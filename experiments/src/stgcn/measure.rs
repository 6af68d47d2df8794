//! Training of the `stgcn` task's runs, one per activation, returned as typed outcomes
//! (nothing here writes to the report): per-epoch curves, times, accuracies, activation
//! traces and the settings a run changed, beside the trained model.

use crate::common;
use crate::config::stgcn::{Activation, StgcnTask};
use crate::report::fmt_num;
use anyhow::{Context, Result};
use ndarray::{Array2, Array5, ArrayView5};
use stgcn::{
    evaluate, relu_to_square, ActivationInputStats, Distillation, ModelError, StGcn, StGcnConfig,
    TrainConfig, Trainer,
};

/// One epoch of one run.
#[derive(Debug, Clone)]
pub(super) struct EpochPoint {
    pub(super) epoch: usize,
    pub(super) learning_rate: f64,
    pub(super) train_loss: f64,
    pub(super) train_accuracy: f64,
    pub(super) test_accuracy: f64,
    pub(super) test_loss: f64,
    pub(super) train_s: f64,
}

/// What training one activation produced (the model aside).
#[derive(Debug, Clone)]
pub(super) struct RunOutcome {
    pub(super) act: Activation,
    pub(super) name: String,
    pub(super) curve: Vec<EpochPoint>,
    pub(super) params: usize,
    pub(super) train_s: f64,
    /// CPU seconds of the training epochs, if the platform reports them.
    pub(super) train_cpu_s: Option<f64>,
    pub(super) eval_s: f64,
    pub(super) test_accuracy: f64,
    pub(super) diverged_at: Option<usize>,
    /// `(epochs completed, statistics)`; epoch 0 is the initial model.
    pub(super) trace: Vec<(usize, Vec<ActivationInputStats>)>,
    /// Training settings that differ from the task's, for the report.
    pub(super) deviations: Vec<String>,
    /// Test accuracy before the first epoch (the `square` run started from the ReLU model).
    pub(super) initial_test_accuracy: Option<f64>,
}

/// A run's outcome and its trained model.
pub(super) struct TrainedRun {
    pub(super) outcome: RunOutcome,
    pub(super) model: StGcn,
}

/// Clips used by `trace_activations`.
pub(super) const TRACE_CLIPS: usize = 64;

/// The training data of one task.
pub(super) struct TrainData<'a> {
    pub(super) xtr: &'a Array5<f64>,
    pub(super) ytr: &'a [usize],
    pub(super) xte: &'a Array5<f64>,
    pub(super) yte: &'a [usize],
}

fn log_line(pb: &indicatif::ProgressBar, line: &str) {
    if pb.is_hidden() {
        tracing::info!("{line}");
    } else {
        pb.println(line);
    }
}

fn trace_line(name: &str, epoch: usize, stats: &[ActivationInputStats]) -> String {
    let parts: Vec<String> = stats
        .iter()
        .map(|a| format!("b{}s{} {:.3} ({:.1})", a.block, a.site, a.rms, a.max_abs))
        .collect();
    format!(
        "{name} after epoch {epoch}: activation inputs rms (max |x|): {}",
        parts.join(", ")
    )
}

/// The task's training settings.
fn train_config(t: &StgcnTask, seed: u64) -> TrainConfig {
    TrainConfig {
        epochs: t.epochs,
        batch_size: t.batch_size,
        learning_rate: t.learning_rate,
        momentum: t.momentum,
        weight_decay: t.weight_decay,
        schedule: t.schedule.to_lr(),
        seed,
        clip_grad_norm: t.clip_grad_norm,
        warmup_epochs: t.warmup_epochs,
    }
}

/// A distillation teacher: its logits on the training clips and the loss settings.
type Teacher = (Array2<f64>, Distillation);

/// Starts `model` from the trained ReLU model: its tensors copied, or with every `x²`
/// calibrated per channel (`calibrate`); returns the deviation the report names.
fn start_from_relu(
    calibrate: bool,
    relu: &StGcn,
    model: &mut StGcn,
    xtr: ArrayView5<'_, f64>,
) -> Result<String> {
    if !calibrate {
        for tensor in relu.tensors() {
            model.set_tensor(&tensor.name, tensor.value.clone())?;
        }
        return Ok("starts from the trained ReLU model's weights".into());
    }
    let (calibrated, cal) =
        relu_to_square(relu, xtr).context("calibrating the x² model from the ReLU model")?;
    *model = calibrated;
    let errs: Vec<String> = cal
        .sites
        .iter()
        .map(|s| {
            let n = s.relative_rms_error.len().max(1) as f64;
            format!(
                "b{}s{} {:.2}",
                s.block,
                s.site,
                s.relative_rms_error.iter().sum::<f64>() / n
            )
        })
        .collect();
    let floored: usize = cal.sites.iter().map(|s| s.floored).sum();
    Ok(format!(
        "starts from the trained ReLU model's weights with every x² calibrated per channel to the least-squares quadratic fit of ReLU on the ReLU model's pre-activations (mean relative RMS fit error per site: {}; {floored} channels at the curvature floor)",
        errs.join(", ")
    ))
}

/// The `square` run's changes to the task's training: its own learning rate, warm-up and
/// epochs, a start from the ReLU model, a distillation teacher and the initial BNs. Returns
/// the deviations for the report and the teacher.
fn prepare_square(
    t: &StgcnTask,
    tc: &mut TrainConfig,
    model: &mut StGcn,
    data: &TrainData<'_>,
    relu_model: Option<&StGcn>,
) -> Result<(Vec<String>, Option<Teacher>)> {
    let sq = &t.square;
    let mut deviations = Vec::new();
    if let Some(lr) = sq.learning_rate {
        tc.learning_rate = lr;
        deviations.push(format!("learning rate {lr}"));
    }
    if let Some(w) = sq.warmup_epochs {
        tc.warmup_epochs = w;
        deviations.push(format!("{w} warm-up epochs"));
    }
    if let Some(e) = sq.epochs {
        tc.epochs = e;
        deviations.push(format!("{e} epochs"));
    }
    if sq.from_relu {
        let relu = relu_model.context("square.from_relu: no trained ReLU model")?;
        deviations.push(start_from_relu(sq.calibrate, relu, model, data.xtr.view())?);
    }
    let mut teacher = None;
    if let Some(d) = &sq.distill {
        let relu = relu_model.context("square.distill: no trained ReLU model")?;
        let logits = evaluate(relu, data.xtr.view(), data.ytr)
            .context("the ReLU teacher's logits")?
            .logits;
        let distillation = Distillation {
            temperature: d.temperature,
            weight: d.weight,
        };
        teacher = Some((logits, distillation));
        deviations.push(format!(
            "knowledge distillation from the ReLU model (temperature {}, soft-target weight {})",
            fmt_num(d.temperature),
            fmt_num(d.weight)
        ));
    }
    if let Some([g, b]) = sq.bn_init {
        model.init_pre_activation_bn(g, b);
        deviations.push(format!(
            "the BNs feeding activations start at γ = {}, β = {}",
            fmt_num(g),
            fmt_num(b)
        ));
    }
    Ok((deviations, teacher))
}

/// Trains run `act` of the task from `base` (the `square` run with its own settings, possibly
/// from `relu_model`), evaluating on the test clips after every epoch.
pub(super) fn train_one(
    t: &StgcnTask,
    act: Activation,
    name: &str,
    base: &StGcnConfig,
    seed: u64,
    data: &TrainData<'_>,
    relu_model: Option<&StGcn>,
) -> Result<TrainedRun> {
    let mut mcfg = base.clone();
    mcfg.activation = act.kind();
    let mut model = StGcn::new(mcfg, seed)?;
    let params = model.num_trainable_parameters();
    let mut tc = train_config(t, seed);
    let (deviations, teacher) = if act == Activation::Square {
        prepare_square(t, &mut tc, &mut model, data, relu_model)?
    } else {
        (Vec::new(), None)
    };
    // The replaced model before fine-tuning, to show what the conversion itself costs.
    let initial_test_accuracy = if act == Activation::Square && t.square.from_relu {
        Some(
            evaluate(&model, data.xte.view(), data.yte)
                .with_context(|| format!("evaluating {name} before training"))?
                .accuracy,
        )
    } else {
        None
    };
    let mut run = RunOutcome {
        act,
        name: name.to_string(),
        curve: Vec::new(),
        params,
        train_s: 0.0,
        train_cpu_s: Some(0.0),
        eval_s: 0.0,
        test_accuracy: 0.0,
        diverged_at: None,
        trace: Vec::new(),
        deviations,
        initial_test_accuracy,
    };
    let model = train_epochs(t, tc, model, data, teacher.as_ref(), &mut run)?;
    run.train_s = run.curve.iter().fold(0.0, |acc, p| acc + p.train_s);
    run.test_accuracy = match run.curve.last() {
        Some(p) => p.test_accuracy,
        None => evaluate(&model, data.xte.view(), data.yte)?.accuracy,
    };
    Ok(TrainedRun {
        outcome: run,
        model,
    })
}

/// Logs a warning beside the progress bar (through tracing when the bar is hidden).
fn warn_line(pb: &indicatif::ProgressBar, msg: &str) {
    if pb.is_hidden() {
        tracing::warn!("{msg}");
    } else {
        pb.println(msg);
    }
}

/// Evaluates `model` on the test clips after an epoch (adding the time to `eval_s`) and
/// returns the epoch's point.
fn epoch_point(
    model: &StGcn,
    st: &stgcn::EpochStats,
    data: &TrainData<'_>,
    name: &str,
    eval_s: &mut f64,
) -> Result<EpochPoint> {
    let t0 = std::time::Instant::now();
    let ev =
        evaluate(model, data.xte.view(), data.yte).with_context(|| format!("evaluating {name}"))?;
    *eval_s += t0.elapsed().as_secs_f64();
    Ok(EpochPoint {
        epoch: st.epoch,
        learning_rate: st.learning_rate,
        train_loss: st.loss,
        train_accuracy: st.train_accuracy,
        test_accuracy: ev.accuracy,
        test_loss: ev.loss,
        train_s: st.seconds,
    })
}

fn epoch_line(name: &str, epochs: usize, p: &EpochPoint) -> String {
    format!(
        "{name} epoch {:>3}/{}: lr {:.4}, train loss {:.4}, train acc {:.2} %, test acc {:.2} % ({:.1} s)",
        p.epoch + 1,
        epochs,
        p.learning_rate,
        p.train_loss,
        100.0 * p.train_accuracy,
        100.0 * p.test_accuracy,
        p.train_s
    )
}

/// Runs the epochs of `tc` on `model`, recording the curve, CPU time, traces and a divergence
/// in `run`; returns the trained model (after a non-finite loss: the last finite one).
fn train_epochs(
    t: &StgcnTask,
    tc: TrainConfig,
    mut model: StGcn,
    data: &TrainData<'_>,
    teacher: Option<&Teacher>,
    run: &mut RunOutcome,
) -> Result<StGcn> {
    let name = run.name.clone();
    let epochs = tc.epochs;
    let mut trainer = Trainer::new(&model, tc)?;
    let pb = common::progress(epochs as u64, &name);
    let n_trace = data.xtr.dim().0.min(TRACE_CLIPS);
    let trace_x = data.xtr.slice(ndarray::s![..n_trace, .., .., .., ..]);
    if t.trace_activations {
        let st = model.activation_input_stats(trace_x)?;
        log_line(&pb, &trace_line(&name, 0, &st));
        run.trace.push((0, st));
    }
    let mut last_good = model.clone();
    for _ in 0..epochs {
        let cpu0 = procstat::cpu_seconds();
        let result = match teacher {
            None => trainer.run_epoch(&mut model, data.xtr.view(), data.ytr),
            Some((logits, d)) => {
                trainer.run_epoch_distilled(&mut model, data.xtr.view(), data.ytr, logits.view(), d)
            }
        };
        run.train_cpu_s = match (run.train_cpu_s, cpu0, procstat::cpu_seconds()) {
            (Some(acc), Some(a), Some(b)) => Some(acc + (b - a)),
            _ => None,
        };
        let st = match result {
            Ok(st) => st,
            Err(ModelError::NonFiniteLoss { epoch, batch }) => {
                // Keep the model of the last completed epoch and say so in the report.
                let msg = format!(
                    "{name}: loss not finite in epoch {} (batch {}); keeping the model from before that epoch",
                    epoch + 1,
                    batch + 1
                );
                warn_line(&pb, &msg);
                run.diverged_at = Some(epoch);
                model = last_good;
                break;
            }
            Err(e) => return Err(e).with_context(|| format!("training {name}")),
        };
        let p = epoch_point(&model, &st, data, &name, &mut run.eval_s)?;
        log_line(&pb, &epoch_line(&name, epochs, &p));
        if t.trace_activations {
            let st = model.activation_input_stats(trace_x)?;
            log_line(&pb, &trace_line(&name, p.epoch + 1, &st));
            run.trace.push((p.epoch + 1, st));
        }
        pb.set_message(format!("{name} test {:.1}%", 100.0 * p.test_accuracy));
        pb.inc(1);
        run.curve.push(p);
        last_good = model.clone();
    }
    pb.finish_and_clear();
    Ok(model)
}

/// What the report says about the task besides its runs: the data, the model's blocks and the
/// seed.
#[derive(Debug, Clone)]
pub(super) struct TaskSetup {
    /// The data set, for the report.
    pub(super) description: String,
    /// The data set's protocol note.
    pub(super) protocol_note: String,
    pub(super) short_name: &'static str,
    /// Training clips.
    pub(super) n_train: usize,
    /// `(in channels, out channels, stride)` of every block.
    pub(super) blocks: Vec<(usize, usize, usize)>,
    /// Initial `[a, b, c]` of the poly activations.
    pub(super) poly_init: [f64; 3],
    pub(super) seed: u64,
}
