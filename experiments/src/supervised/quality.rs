//! Model quality of a training task's runs as typed results: test and training MSE of a
//! regression, or accuracies of a classifier with the twin's agreement, the perturbed twins'
//! spread, the majority class and the plaintext runs with other logistic functions.

use super::{plain_train, Inputs};
use anyhow::{Context, Result};
use ml::backend::{Plain, SigmoidKind};
use ml::models::{mlp, Model};
use ndarray::{Array1, Array2};

/// A model's figure on the test and the training set (MSE, or accuracy in %).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// On the test set.
    pub test: f64,
    /// On the training set.
    pub train: f64,
}

/// A plaintext run with another logistic function (`plain_sigmoids`).
#[derive(Debug, Clone, PartialEq)]
pub struct SigmoidRun {
    /// The entry as the config names it.
    pub name: String,
    /// It names the real logistic function (reported as `plain_sigmoid`).
    pub logistic: bool,
    /// Test accuracy in %.
    pub test_accuracy_pct: f64,
}

/// The quality figures of a classifier's runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Classification {
    /// The secure run's accuracies (%).
    pub secure: Score,
    /// The plaintext twin's accuracies (%).
    pub plain: Score,
    /// Test predictions on which the secure run and the twin agree (%).
    pub agreement_pct: f64,
    /// Test accuracy of each perturbed twin (%), the first one rounded to the grid.
    pub perturbed_pct: Vec<f64>,
    /// Test accuracy of always answering the majority class (%).
    pub majority_pct: f64,
    /// Plaintext runs with other logistic functions.
    pub sigmoids: Vec<SigmoidRun>,
}

/// The quality of a task's runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Quality {
    /// Linear regression: MSE of the secure run and the twin (unscaled targets).
    Regression {
        /// The secure run.
        secure: Score,
        /// The plaintext twin.
        plain: Score,
    },
    /// Logistic regression and the MLP.
    Classification(Classification),
}

/// Percentage of `pred` equal to `truth`.
pub fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    let ok = pred.iter().zip(truth).filter(|(a, b)| a == b).count();
    100.0 * ok as f64 / truth.len().max(1) as f64
}

/// `x·w` of a regression's weights on the features `x` (with the intercept when `w` has one
/// more row than `x` has columns: `ml::models::linreg::predict`).
///
/// # Panics
/// Weights that fit neither `d` nor `d + 1` features (a bug: the runners build both).
pub fn glm_output(w: &Array2<f64>, x: &Array2<f64>) -> Array2<f64> {
    ml::models::linreg::predict(w, x).expect("regression weights fit the features")
}

/// Class predictions of a single-column linear classifier (`x · w ≥ 0`).
pub fn binary_predict(w: &Array2<f64>, x: &Array2<f64>) -> Vec<usize> {
    glm_output(w, x)
        .column(0)
        .iter()
        .map(|&v| usize::from(v >= 0.0))
        .collect()
}

/// Evaluates the secure weights, the twin's and the perturbed twins' (and trains the
/// `plain_sigmoids` runs).
pub(super) async fn evaluate(
    inp: &Inputs<'_>,
    secure: &[Array2<f64>],
    plain: &[Array2<f64>],
    perturbed: &[Vec<Array2<f64>>],
) -> Result<Quality> {
    if inp.model == Model::Linreg {
        return Ok(regression(inp, &secure[0], &plain[0]));
    }
    Ok(Quality::Classification(
        classification(inp, secure, plain, perturbed).await?,
    ))
}

fn regression(inp: &Inputs<'_>, secure: &Array2<f64>, plain: &Array2<f64>) -> Quality {
    let (y_mean, y_std) = inp.y_scale;
    let mse = |w: &Array2<f64>, x: &Array2<f64>, y: &Array1<f64>| {
        let p = glm_output(w, x).column(0).mapv(|v| v * y_std + y_mean);
        (&p - y).mapv(|e| e * e).mean().unwrap_or(f64::NAN)
    };
    let (test, train) = (&inp.split.test, &inp.split.train);
    let score = |w| Score {
        test: mse(w, &inp.xte, &test.y),
        train: mse(w, &inp.xtr, &train.y),
    };
    Quality::Regression {
        secure: score(secure),
        plain: score(plain),
    }
}

fn predict(model: Model, ws: &[Array2<f64>], x: &Array2<f64>) -> Vec<usize> {
    match model {
        Model::Logreg => binary_predict(&ws[0], x),
        _ => mlp::predict(ws, x),
    }
}

async fn classification(
    inp: &Inputs<'_>,
    secure: &[Array2<f64>],
    plain: &[Array2<f64>],
    perturbed: &[Vec<Array2<f64>>],
) -> Result<Classification> {
    let (yte, ytrl) = (inp.split.test.labels()?, inp.split.train.labels()?);
    let test_acc = |ws: &[Array2<f64>]| accuracy(&predict(inp.model, ws, &inp.xte), &yte);
    let score = |ws: &[Array2<f64>]| Score {
        test: test_acc(ws),
        train: accuracy(&predict(inp.model, ws, &inp.xtr), &ytrl),
    };
    let (ps, pp) = (
        predict(inp.model, secure, &inp.xte),
        predict(inp.model, plain, &inp.xte),
    );
    let counts = inp.split.test.class_counts()?;
    let majority_pct = 100.0 * *counts.iter().max().unwrap_or(&0) as f64 / yte.len().max(1) as f64;
    let mut sigmoids = Vec::new();
    for name in inp.plain_sigmoids {
        let sk = crate::sigmoid::sigmoid_kind(name).context("plain_sigmoids")?;
        let logistic = matches!(sk, SigmoidKind::Logistic);
        let w = plain_train(inp, &mut Plain::with_sigmoid(sk), inp.w_init.clone()).await?;
        sigmoids.push(SigmoidRun {
            name: name.clone(),
            logistic,
            test_accuracy_pct: test_acc(&w),
        });
    }
    Ok(Classification {
        secure: score(secure),
        plain: score(plain),
        agreement_pct: accuracy(&ps, &pp),
        perturbed_pct: perturbed.iter().map(|w| test_acc(w)).collect(),
        majority_pct,
        sigmoids,
    })
}
