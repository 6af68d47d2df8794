//! Checks a linear-regression, logistic-regression or MLP job against its dataset's manifest,
//! one function per model kind. Each party runs them on its own copy of the job (P1 does not rely
//! on P0's) before any message to the peer and before any offline work, so that a job that cannot
//! run is refused at once with an error naming the parameter, its value and the limit, instead of
//! failing later as a peer error.
//!
//! What the manifest tells: the table's shape (rows, columns, the label column) and, for skeleton
//! datasets, the class names. The label values themselves are secret: a class count is checked
//! against the class names when the dataset has them; otherwise the owner promises labels in
//! `0..classes` (`0/1` for logistic regression). Security model: none needed — everything checked
//! here is public (shapes, names and hyper-parameters).

use super::{JobError, Result};
use crate::proto::{JobSpec, MlpSpec};
use crate::store::Manifest;
use ml::models::linreg::LinRegHyper;

/// Widest MLP layer a job may ask for.
pub const MAX_MLP_WIDTH: u32 = 1 << 14;
/// Most MLP weights a job may ask for (all layers together).
pub const MAX_MLP_PARAMS: u64 = 1 << 24;
/// Most epochs a linear-model or MLP job may run.
pub const MAX_EPOCHS: u64 = 1_000;
/// Most SGD steps (batches over all epochs) of a linear-model or MLP job: the job's
/// preprocessing is made in one piece, so its size grows with the steps.
pub const MAX_STEPS: u64 = 1 << 20;

/// A checked linear-model or MLP job.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearJob {
    /// Feature columns (every column but the label).
    pub features: usize,
    /// Learning rate and batch size.
    pub hyper: LinRegHyper,
    /// SGD steps over all epochs.
    pub steps: u64,
    /// Whether the model has an intercept / biases (one more weight row per weight matrix).
    pub intercept: bool,
}

/// The refusal of `parameter = value`, with the limit it breaks.
pub(super) fn refuse<T>(
    parameter: impl Into<String>,
    value: impl ToString,
    limit: impl Into<String>,
) -> Result<T> {
    Err(JobError::Param {
        parameter: parameter.into(),
        value: value.to_string(),
        limit: limit.into(),
    })
}

/// Checks a linear-regression job on `m`.
///
/// # Errors
/// [`JobError::Param`] or [`JobError::Ml`], naming the parameter, its value and the limit.
pub fn validate_linreg(spec: &JobSpec, m: &Manifest) -> Result<LinearJob> {
    common(spec, m)
}

/// Checks a logistic-regression job on `m`: labels `0/1`, so a dataset with class names must
/// have exactly two.
///
/// # Errors
/// As [`validate_linreg`].
pub fn validate_logreg(spec: &JobSpec, m: &Manifest) -> Result<LinearJob> {
    check_classes("logreg classes", 2, m)?;
    common(spec, m)
}

/// Checks an MLP job with architecture `mlp` on `m`: the architecture ([`validate_mlp`]), the
/// input width against the dataset's feature columns, the output width against its classes.
///
/// # Errors
/// As [`validate_linreg`]; a wrong input width names both widths.
pub fn validate_mlp_job(spec: &JobSpec, mlp: &MlpSpec, m: &Manifest) -> Result<LinearJob> {
    validate_mlp(mlp)?;
    let job = common(spec, m)?;
    check_mlp_input(mlp.layers[0] as usize, job.features, m)?;
    let k = *mlp.layers.last().expect("validate_mlp: two layers");
    check_classes("mlp layers[last] (classes)", k as usize, m)?;
    Ok(job)
}

/// Checks an MLP architecture: at least an input and an output layer, every width in
/// `1..=MAX_MLP_WIDTH`, at least two classes, at most [`MAX_MLP_PARAMS`] weights.
///
/// # Errors
/// [`JobError::Param`] naming the offending layer, its width and the limit.
pub fn validate_mlp(m: &MlpSpec) -> Result<()> {
    if m.layers.len() < 2 {
        return refuse(
            "mlp layers",
            format!("{:?}", m.layers),
            "at least 2 widths: [inputs, …, classes]",
        );
    }
    if let Some((i, w)) = m
        .layers
        .iter()
        .enumerate()
        .find(|(_, w)| !(1..=MAX_MLP_WIDTH).contains(*w))
    {
        return refuse(
            format!("mlp layers[{i}]"),
            w,
            format!("1..={MAX_MLP_WIDTH} (MAX_MLP_WIDTH)"),
        );
    }
    let k = *m.layers.last().expect("two layers");
    if k < 2 {
        return refuse("mlp layers[last] (classes)", k, "at least 2: a classifier");
    }
    let params: u64 = m
        .layers
        .windows(2)
        .map(|w| u64::from(w[0]) * u64::from(w[1]))
        .sum();
    if params > MAX_MLP_PARAMS {
        return refuse(
            "mlp weights",
            params,
            format!("at most {MAX_MLP_PARAMS} (MAX_MLP_PARAMS)"),
        );
    }
    Ok(())
}

/// The MLP's input width `width` against the `features` feature columns of `m`.
///
/// # Errors
/// [`JobError::Param`] naming both widths.
pub fn check_mlp_input(width: usize, features: usize, m: &Manifest) -> Result<()> {
    if width == features {
        return Ok(());
    }
    refuse(
        "mlp layers[0] (input width)",
        width,
        format!(
            "must equal the {features} feature columns of dataset {:?} ({} columns less the label)",
            m.name, m.cols
        ),
    )
}

/// A class count `k` against the class names of a skeleton dataset (none known for tables).
fn check_classes(parameter: &str, k: usize, m: &Manifest) -> Result<()> {
    let names = m.tensor.as_ref().map_or(0, |t| t.class_names.len());
    if names == 0 || names == k {
        return Ok(());
    }
    refuse(
        parameter,
        k,
        format!("must equal the {names} class names of dataset {:?}", m.name),
    )
}

/// What every SecureML job needs: a table with a label and at least one feature, a learning
/// rate and batch size `ml` accepts, a batch no larger than the rows, bounded epochs and steps.
fn common(spec: &JobSpec, m: &Manifest) -> Result<LinearJob> {
    if m.cols < 2 || m.label_column >= m.cols {
        return refuse(
            format!("dataset {:?} columns", m.name),
            m.cols,
            format!(
                "at least 2 (a feature and the label), label column {} among them",
                m.label_column
            ),
        );
    }
    if spec.batch_size == 0 || spec.batch_size > m.rows {
        return refuse(
            "batch_size",
            spec.batch_size,
            format!("1..={} (the rows of dataset {:?})", m.rows, m.name),
        );
    }
    if !(1..=MAX_EPOCHS).contains(&spec.epochs) {
        return refuse(
            "epochs",
            spec.epochs,
            format!("1..={MAX_EPOCHS} (MAX_EPOCHS)"),
        );
    }
    let steps = (m.rows / spec.batch_size).saturating_mul(spec.epochs);
    if steps > MAX_STEPS {
        return refuse(
            "steps (rows / batch_size × epochs)",
            format!(
                "{} / {} × {} = {steps}",
                m.rows, spec.batch_size, spec.epochs
            ),
            format!("at most {MAX_STEPS} (MAX_STEPS)"),
        );
    }
    let hyper = LinRegHyper::new(spec.learning_rate, spec.batch_size as usize)?;
    Ok(LinearJob {
        features: (m.cols - 1) as usize,
        hyper,
        steps,
        intercept: spec.intercept,
    })
}

#[cfg(test)]
#[path = "linear_spec_tests.rs"]
pub(super) mod tests;
