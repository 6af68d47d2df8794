//! The settings of the training tasks (`linreg`, `logreg`, `mlp`): [`TrainTask`], the stored
//! dataset of a remote run ([`RemoteTask`]), which model a task trains ([`Kind`]) and the
//! validation of those settings. Config types only: the runners import these, never the reverse.

use super::{Config, DataSource, Task};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Which model a training task trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Linear regression.
    Linreg,
    /// Logistic regression.
    Logreg,
    /// Multi-layer perceptron.
    Mlp,
}

impl Kind {
    /// The task's `kind` in a config.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Linreg => "linreg",
            Kind::Logreg => "logreg",
            Kind::Mlp => "mlp",
        }
    }
}

impl Config {
    /// Cuts every training task after `steps` SGD steps (`experiment run --steps`).
    pub fn set_steps(&mut self, steps: usize) {
        for t in &mut self.tasks {
            if let Task::Linreg(t) | Task::Logreg(t) | Task::Mlp(t) = t {
                t.steps = Some(steps);
            }
        }
    }
}

impl Task {
    /// The model and settings of a training task; `None` for the other tasks.
    pub fn training(&self) -> Option<(Kind, &TrainTask)> {
        match self {
            Task::Linreg(t) => Some((Kind::Linreg, t)),
            Task::Logreg(t) => Some((Kind::Logreg, t)),
            Task::Mlp(t) => Some((Kind::Mlp, t)),
            _ => None,
        }
    }
}

/// Settings of a training task (linear / logistic regression, MLP).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainTask {
    /// Label for the runs' metric names (`secure_<label>.…`); empty for `secure.…`.
    #[serde(default)]
    pub label: String,
    /// Label for the plaintext twins' metric names (`plain_<twin_label>.…`,
    /// `plain_perturbed_<twin_label>.…`) where it differs from `label`; `""` for `plain.…`.
    /// For labels that describe the secure run only (e.g. its triple source): the twin does not
    /// depend on them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub twin_label: Option<String>,
    /// The data.
    pub data: DataSource,
    /// Epochs.
    pub epochs: usize,
    /// Stop after this many SGD steps in all (a quick check of a long run: the first steps of
    /// the epochs' schedule, for the secure run and its twins alike). Unset: every epoch.
    /// In-process runs only (`experiment run` without `--remote`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Batch size.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Learning rate (any value in 2^-30 ..= 64: the power of two of α/|B| is a truncation, the
    /// rest one public fixed-point multiply per update).
    pub learning_rate: f64,
    /// Standardize features with the training set's mean and deviation.
    #[serde(default = "yes")]
    pub standardize: bool,
    /// Fit an intercept (linreg, logreg) or a bias in every layer (mlp): a public column of
    /// ones appended to the features (`ml::models::bias`). On by default, as scikit-learn's
    /// `fit_intercept`; SecureML's networks have none (`intercept = false`).
    #[serde(default = "yes")]
    pub intercept: bool,
    /// Triple source for this task, overriding `[mpc] triples`.
    #[serde(default)]
    pub triples: Option<String>,
    /// Truncation for this task, overriding `[mpc] truncation` (`local` or `exact`).
    #[serde(default)]
    pub truncation: Option<mpc::trunc::Truncation>,
    /// MLP layer sizes, input first (e.g. `[784, 128, 128, 10]`).
    #[serde(default)]
    pub layers: Vec<usize>,
    /// MLP output normalization: `relu` (SecureML) or `exp`.
    #[serde(default)]
    pub softmax: Option<ml::backend::SoftmaxKind>,
    /// Logistic regression: extra plaintext-only runs with other logistic functions
    /// (`logistic`, `poly2`, `poly5`, `poly10`, … least-squares fits on [-8, 8]).
    #[serde(default)]
    pub plain_sigmoids: Vec<String>,
    /// Seed of the initial weights (defaults to the experiment seed).
    #[serde(default)]
    pub init_seed: Option<u64>,
    /// MLP: extra plaintext twins whose initial weights are moved by at most half an ulp of the
    /// fixed-point encoding (the first one: the weights rounded to the fixed-point grid, i.e.
    /// exactly the secure run's start; the others: uniform noise of ±half an ulp), reported as
    /// the twin's accuracy spread (`plain_perturbed.test_accuracy_{min,max}_pct`). Where the
    /// training dynamics amplify rounding (SecureML's ReLU softmax at this learning rate), the
    /// secure run can only be compared with that spread, not with one twin. 0: none.
    #[serde(default)]
    pub twin_perturbations: usize,
    /// Where the data lives for `experiment run --remote`: a dataset stored at the parties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<RemoteTask>,
}

/// The stored data of a task run as a job on live parties (`experiment run --remote`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteTask {
    /// The dataset to train on: its name or its id, as `party list` prints them. It must hold
    /// exactly the training data the task's `data` describes after preprocessing (what
    /// `experiment export` writes), so that the local twin and test set fit it.
    pub dataset: String,
}

fn default_batch() -> usize {
    128
}

fn yes() -> bool {
    true
}

impl TrainTask {
    /// Checks the settings of a `kind` task; errors start with `at` (file and task number).
    /// `sources` are the triple sources a task may name.
    pub(super) fn validate(&self, kind: Kind, at: &str, sources: &[&str]) -> Result<()> {
        if kind == Kind::Mlp && self.layers.len() < 2 {
            bail!("{at}: an mlp needs layers = [inputs, …, outputs]");
        }
        for s in &self.plain_sigmoids {
            if crate::sigmoid::sigmoid_kind(s).is_none() {
                bail!("{at}: plain_sigmoids entry {s:?} is not logistic or polyN (N in 1..=15)");
            }
        }
        if let Some(src) = &self.triples {
            if !sources.contains(&src.as_str()) {
                bail!(
                    "{at}: triples = {src:?} is not one of {}",
                    sources.join(", ")
                );
            }
        }
        ml::models::linreg::LinRegHyper::new(self.learning_rate, self.batch_size)
            .with_context(|| at.to_string())?;
        if self.epochs == 0 {
            bail!("{at}: epochs must be at least 1");
        }
        if self.steps == Some(0) {
            bail!("{at}: steps = 0: must be at least 1 (or left out for every epoch)");
        }
        self.validate_data(kind, at)
    }

    /// Checks the data source against the task's kind.
    fn validate_data(&self, kind: Kind, at: &str) -> Result<()> {
        if let DataSource::Csv { regression, .. } = &self.data {
            if *regression != (kind == Kind::Linreg) {
                bail!("{at}: a csv source has regression = true exactly for linreg tasks");
            }
        }
        if let DataSource::Bundled { test_fraction, .. } = &self.data {
            if !(0.0..1.0).contains(test_fraction) {
                bail!("{at}: test_fraction {test_fraction} must be in [0, 1)");
            }
        }
        Ok(())
    }
}
