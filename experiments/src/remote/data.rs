//! The data side of remote runs: a training task's data after the in-process run's
//! preprocessing ([`prepare`]), and `experiment export` ([`export`]), which writes the training
//! data the parties' jobs expect (tables here, skeleton clips in [`super::skeleton`]).

use super::training_tasks;
use crate::common;
use crate::config::supervised::Kind;
use crate::config::{Config, DataSource, TrainTask};
use anyhow::{Context, Result};
use ndarray::{Array1, Array2, Axis};
use std::path::{Path, PathBuf};

/// A training task's data after the in-process run's preprocessing.
#[derive(Debug)]
pub struct Prepared {
    /// Training features and targets as trained on (class indices, or the scaled target for
    /// linreg), when the owner's copy is available.
    pub train: Option<(Array2<f64>, Array1<f64>)>,
    /// Test features (preprocessed like the training features).
    pub test_x: Array2<f64>,
    /// Test targets, unscaled (class indices or real targets).
    pub test_y: Array1<f64>,
    /// Target mean and deviation of linreg's scaling (0 and 1 otherwise).
    pub y_scale: (f64, f64),
    /// Where the data came from, for the report.
    pub description: String,
}

/// A csv source without a training file: only the test set is local (no twin, no statistics
/// to standardize with).
fn prepare_test_only(task: &TrainTask, test: &Path, regression: bool) -> Result<Prepared> {
    anyhow::ensure!(
        !task.standardize,
        "a csv source without `train` cannot be standardized (the statistics come from the \
         training set): set standardize = false and upload standardized data"
    );
    let te = common::load_csv(test, regression)?;
    Ok(Prepared {
        train: None,
        description: format!(
            "test set {} ({} rows × {} features); no local training copy (no twin)",
            test.display(),
            te.n_samples(),
            te.n_features()
        ),
        test_x: te.x,
        test_y: te.y,
        y_scale: (0.0, 1.0),
    })
}

/// Loads and preprocesses a task's data exactly as the in-process run does (split with the
/// experiment seed, standardization fitted on the training set, linreg's target scaling).
pub fn prepare(kind: Kind, task: &TrainTask, seed: u64) -> Result<Prepared> {
    if let DataSource::Csv {
        train: None,
        test,
        regression,
    } = &task.data
    {
        return prepare_test_only(task, test, *regression);
    }
    let split = common::load(&task.data, seed)?;
    let (xtr, xte) = common::features(&split, task.standardize)?;
    let (ytr, y_scale) = match kind {
        Kind::Linreg => {
            let (m, s) = (
                split.train.y.mean().unwrap_or(0.0),
                split.train.y.std(0.0).max(1e-12),
            );
            (split.train.y.mapv(|v| (v - m) / s), (m, s))
        }
        _ => (split.train.y.clone(), (0.0, 1.0)),
    };
    Ok(Prepared {
        train: Some((xtr, ytr)),
        test_x: xte,
        test_y: split.test.y.clone(),
        y_scale,
        description: split.description,
    })
}

fn with_label(x: &Array2<f64>, y: &Array1<f64>) -> Array2<f64> {
    ndarray::concatenate![Axis(1), x.view(), y.view().insert_axis(Axis(1))]
}

/// Writes, for every training task of `cfg`, the data its remote job trains on —
/// `<out>/<name>-task<i>-train.csv` (preprocessed features, then the target as trained: the class
/// index, or linreg's scaled target) — and the preprocessed test set `…-test.csv` (features, then
/// the unscaled target); for every task on skeleton clips (`stgcn`), the splits as `.npy` files
/// with their labels and a `…-skeleton.json` ([`super::skeleton::export`]). Returns the files
/// written.
///
/// # Errors
/// Data loading or writing errors.
pub fn export(cfg: &Config, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut files = Vec::new();
    for (i, kind, task) in training_tasks(cfg) {
        let p = prepare(kind, task, cfg.experiment.seed)
            .with_context(|| format!("task #{i} ({})", kind.name()))?;
        let stem = format!("{}-task{i}", cfg.experiment.name);
        if let Some((x, y)) = &p.train {
            let f = out.join(format!("{stem}-train.csv"));
            datasets::csv::write_csv(&f, None, &with_label(x, y))?;
            files.push(f);
        }
        let f = out.join(format!("{stem}-test.csv"));
        datasets::csv::write_csv(&f, None, &with_label(&p.test_x, &p.test_y))?;
        files.push(f);
    }
    for (i, task) in cfg.tasks.iter().enumerate() {
        if let Some((d, seed)) = task.skeleton() {
            let stem = format!("{}-task{}", cfg.experiment.name, i + 1);
            let seed = seed.unwrap_or(cfg.experiment.seed);
            files.extend(
                super::skeleton::export(d, seed, &stem, out)
                    .with_context(|| format!("task #{} (skeleton clips)", i + 1))?,
            );
        }
    }
    anyhow::ensure!(
        !files.is_empty(),
        "the config has no linreg, logreg, mlp or stgcn task"
    );
    Ok(files)
}
