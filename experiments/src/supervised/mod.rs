//! Training tasks — `linreg`, `logreg`, `mlp` — each a secure run beside its plaintext twin.
//!
//! The data owner prepares the training set (standardized features where configured; for linear
//! regression a centred and scaled target; for classifiers 0/1 labels or one-hot rows), encodes it
//! in fixed point and secret-shares it (seed-compressed: P0 receives a 32-byte seed, P1 the masked
//! matrix). The plan of the training run — the same model code on shapes — lists the triples; the
//! configured source makes them (offline phase); the two parties train over the configured
//! transport (online phase) and the owner reconstructs the model from the two shares. The plaintext
//! twin runs the same code on `f64` from the same initial weights with the same batches.
//!
//! With the task's `intercept` (the default) the features get a column of ones (the owner's
//! data in this in-process run; at the parties a public column, `ml::models::bias`): the
//! regressions' last weight is the intercept, every MLP layer gets a bias row.

use crate::common;
use crate::config::{Config, TrainTask};
use crate::report::Report;
use anyhow::{Context, Result};
use ml::backend::Plain;
use ml::backend::SoftmaxKind;
use ml::models::linreg::LinRegHyper;
use ml::models::{self, mlp, Model};
use ml::Schedule;
use mpc::triples::TripleRequest;
use mpc::trunc::Truncation;
use mpc::{FixedPoint, FracBits};
use ndarray::{Array2, Axis};
use std::sync::Arc;

pub mod measure;
pub mod quality;
pub mod report;
#[cfg(test)]
mod tests;

pub use crate::config::supervised::Kind;

/// Mean and standard deviation of the training targets (linear regression trains on the
/// standardized target).
fn target_scale(split: &common::Split) -> (f64, f64) {
    (
        split.train.y.mean().unwrap_or(0.0),
        split.train.y.std(0.0).max(1e-12),
    )
}

/// A task's model, training targets and initial weights, and a title.
struct Setup {
    model: Model,
    ytr: Array2<f64>,
    w_init: Vec<Array2<f64>>,
    title: String,
}

/// The [`Setup`] of a task, from its data.
fn model_setup(kind: Kind, task: &TrainTask, split: &common::Split, seed: u64) -> Result<Setup> {
    let d = split.train.x.ncols();
    let rows = d + usize::from(task.intercept);
    let (y_mean, y_std) = target_scale(split);
    let (model, ytr, w_init, title) = match kind {
        Kind::Linreg => (
            Model::Linreg,
            split
                .train
                .y
                .mapv(|v| (v - y_mean) / y_std)
                .insert_axis(Axis(1)),
            vec![Array2::zeros((rows, 1))],
            "Linear regression".to_string(),
        ),
        Kind::Logreg => (
            Model::Logreg,
            split.train.y.clone().insert_axis(Axis(1)),
            vec![Array2::zeros((rows, 1))],
            "Logistic regression (piecewise sigmoid)".to_string(),
        ),
        Kind::Mlp => {
            let k = split
                .train
                .n_classes()
                .context("an mlp needs a classification dataset")?;
            anyhow::ensure!(
                task.layers.first() == Some(&d) && task.layers.last() == Some(&k),
                "layers {:?} must start with the {d} features and end with the {k} classes",
                task.layers
            );
            let sm = task.softmax.unwrap_or(SoftmaxKind::Relu);
            (
                Model::Mlp(sm),
                split.train.one_hot()?,
                mlp::init_weights_with_bias(
                    &task.layers,
                    task.init_seed.unwrap_or(seed),
                    task.intercept,
                ),
                format!("MLP {:?}, ReLU, {sm:?} softmax", task.layers),
            )
        }
    };
    let title = match (task.intercept, kind) {
        (false, _) => title,
        (true, Kind::Mlp) => format!("{title}, with biases"),
        (true, _) => format!("{title}, with intercept"),
    };
    Ok(Setup {
        model,
        ytr,
        w_init,
        title,
    })
}

/// The triple requests a config's training task makes, planned exactly as its run plans them
/// (the data are loaded for their shapes).
pub async fn task_requests(
    kind: Kind,
    task: &TrainTask,
    cfg: &Config,
) -> Result<Vec<TripleRequest>> {
    let seed = cfg.experiment.seed;
    let split = common::load(&task.data, seed)?;
    let Setup {
        model, ytr, w_init, ..
    } = model_setup(kind, task, &split, seed)?;
    let hyper = LinRegHyper::new(task.learning_rate, task.batch_size)?;
    let sched = schedule(task, split.train.x.nrows(), seed)?;
    let w_dims: Vec<_> = w_init.iter().map(|w| w.dim()).collect();
    let truncation = task.truncation.unwrap_or(cfg.mpc.truncation);
    let (n, d) = split.train.x.dim();
    let (requests, _) = measure::plan_requests(
        model,
        (n, d + usize::from(task.intercept)),
        ytr.dim(),
        &w_dims,
        &sched,
        &hyper,
        truncation,
    )
    .await?;
    Ok(requests)
}

/// The batch schedule of a task over `n` training samples: its epochs, cut after the task's
/// `steps` where set.
pub(crate) fn schedule(task: &TrainTask, n: usize, seed: u64) -> Result<Schedule> {
    let mut sched = Schedule::shuffled(n, task.batch_size, task.epochs, seed ^ 0x5eed)?;
    if let Some(steps) = task.steps {
        sched.truncate(steps);
    }
    Ok(sched)
}

/// A task's prepared data and settings: what every stage of its run reads.
pub(crate) struct Inputs<'a> {
    model: Model,
    split: &'a common::Split,
    /// Training and test features (standardized where configured).
    xtr: Array2<f64>,
    xte: Array2<f64>,
    /// Training targets as trained on (scaled target, 0/1 column or one-hot rows).
    ytr: Array2<f64>,
    /// Mean and deviation of linreg's target scaling.
    y_scale: (f64, f64),
    w_init: Vec<Array2<f64>>,
    sched: Arc<Schedule>,
    hyper: LinRegHyper,
    fp: FixedPoint,
    truncation: Truncation,
    source: &'a str,
    transport: &'a str,
    seed: u64,
    twin_perturbations: usize,
    plain_sigmoids: &'a [String],
}

/// Runs a training task and adds its results to `report`.
pub async fn run(kind: Kind, task: &TrainTask, cfg: &Config, report: &mut Report) -> Result<()> {
    let seed = cfg.experiment.seed;
    let split = common::load(&task.data, seed)?;
    let (xtr, xte) = common::features(&split, task.standardize)?;
    let (xtr, xte) = if task.intercept {
        let ones = ml::models::bias::append_ones_plain;
        (ones(&xtr), ones(&xte))
    } else {
        (xtr, xte)
    };
    let setup = model_setup(kind, task, &split, seed)?;
    let inputs = Inputs {
        model: setup.model,
        split: &split,
        sched: Arc::new(schedule(task, xtr.nrows(), seed)?),
        xtr,
        xte,
        ytr: setup.ytr,
        y_scale: target_scale(&split),
        w_init: setup.w_init,
        hyper: LinRegHyper::new(task.learning_rate, task.batch_size)?,
        fp: FixedPoint::new(FracBits::new(cfg.mpc.frac_bits)?),
        truncation: task.truncation.unwrap_or(cfg.mpc.truncation),
        source: task.triples.as_deref().unwrap_or(&cfg.mpc.triples),
        transport: cfg.transport.kind.as_str(),
        seed,
        twin_perturbations: task.twin_perturbations,
        plain_sigmoids: &task.plain_sigmoids,
    };
    let what = format!(
        "secure {}",
        setup
            .title
            .split(' ')
            .next()
            .unwrap_or("run")
            .to_lowercase()
    );
    let measured = measure::measure(&inputs, &what).await?;
    let info = report::RunInfo {
        model: inputs.model,
        title: setup.title,
        label: task.label.clone(),
        twin_label: task.twin_label.clone(),
        data: split.description.clone(),
        // The epochs run (a `steps` cut may end inside one).
        epochs: inputs.sched.epochs.len(),
        batch_size: task.batch_size,
        learning_rate: task.learning_rate,
        frac_bits: cfg.mpc.frac_bits,
        source: inputs.source.to_string(),
        transport: inputs.transport.to_string(),
        truncation: inputs.truncation,
    };
    report::render(report, &info, &measured);
    Ok(())
}

/// Trains the task's model in plaintext on backend `b` from `w`.
pub(super) async fn plain_train(
    inp: &Inputs<'_>,
    b: &mut Plain,
    w: Vec<Array2<f64>>,
) -> Result<Vec<Array2<f64>>> {
    let (x, y) = (&inp.xtr, &inp.ytr);
    Ok(models::train(b, inp.model, x, y, w, &inp.sched, &inp.hyper, &|_| {}).await?)
}
