//! The measurements of one public model: its accuracy on the private test clips before
//! fine-tuning, the plaintext twin (the same model code on [`Plain`], same start and batches),
//! the secure run with the configured triple source, optionally a short run with `he` triples
//! for the offline cost, and the test accuracy of both trained models. Returned as typed
//! results ([`ModelOutcome`]) for the report.

use super::data::PrivateData;
use super::secure::{self, SecureRun, Setting};
use anyhow::{Context, Result};
use ml::backend::Plain;
use ml::models::stgcn::{self as mst, StgcnState};
use ndarray::Array2;
use std::time::Instant;
use stgcn::{evaluate, StGcn};

/// The plaintext twin's result.
#[derive(Debug, Clone)]
pub(super) struct Twin {
    pub(super) params: Vec<Array2<f64>>,
    pub(super) model: StGcn,
    /// Training seconds of each epoch.
    pub(super) epoch_s: Vec<f64>,
    /// Mean training loss of the last epoch (`−mean ln p_true`).
    pub(super) last_loss: f64,
    /// The starting model after BN re-calibration (the public model when there is none).
    pub(super) calibrated: StGcn,
}

/// Everything measured for one public model.
pub(super) struct ModelOutcome {
    /// The model's activation (`poly`, `square`).
    pub(super) activation: &'static str,
    pub(super) stem: String,
    pub(super) public_accuracy: f64,
    /// Accuracy after the BN re-calibration, before any SGD step (twin).
    pub(super) calibrated_accuracy: f64,
    /// Clips the BNs were re-calibrated on (0: none).
    pub(super) calibration_clips: usize,
    pub(super) secure: SecureRun,
    pub(super) secure_model: StGcn,
    pub(super) secure_accuracy: f64,
    pub(super) twin: Twin,
    pub(super) twin_accuracy: f64,
    pub(super) max_weight_diff: f64,
    /// A run with `he` triples over the first steps (offline cost).
    pub(super) he: Option<SecureRun>,
    /// Full-epoch step count.
    pub(super) steps_per_epoch: usize,
    pub(super) trainable: usize,
}

/// Trains the twin on `Plain` over the same batches.
pub(super) async fn twin(
    shape: &mst::StgcnShape,
    base: &StGcn,
    data: &PrivateData,
    start: &[Array2<f64>],
    epochs: &[Vec<Vec<usize>>],
    hyper: &mst::StgcnHyper,
    calibration: &[usize],
) -> Result<Twin> {
    let mut b = Plain::new();
    let x = mst::prepare_inputs(&mut b, shape, &data.x).await?;
    let mut params = start.to_vec();
    if !calibration.is_empty() {
        mst::calibrate(&mut b, shape, &x, &mut params, calibration).await?;
    }
    let tensors = mst::export_tensors(&mut b, shape, &params).await?;
    let calibrated = mst::to_model(shape, base, &tensors).context("the calibrated model")?;
    let mut state = StgcnState {
        velocity: params.iter().map(|p| Array2::zeros(p.dim())).collect(),
        params,
    };
    let mut epoch_s = Vec::new();
    let mut last_loss = f64::NAN;
    for batches in epochs {
        let mut loss = 0.0;
        let t = Instant::now();
        let mut cb = |_: usize, o: &mst::StepOutputs<Array2<f64>>| {
            loss += o.p_true.iter().map(|p| -p.max(1e-12).ln()).sum::<f64>();
        };
        mst::train(
            &mut b, shape, &x, &data.y, &mut state, batches, hyper, &mut cb,
        )
        .await?;
        epoch_s.push(t.elapsed().as_secs_f64());
        last_loss = loss / (batches.len() * hyper.batch_size).max(1) as f64;
    }
    let tensors = mst::export_tensors(&mut b, shape, &state.params).await?;
    let model = mst::to_model(shape, base, &tensors).context("the twin's model")?;
    Ok(Twin {
        params: state.params,
        model,
        epoch_s,
        last_loss,
        calibrated,
    })
}

/// Test accuracy of `model` on the private test clips, as a fraction.
pub(super) fn accuracy(model: &StGcn, data: &PrivateData) -> Result<f64> {
    Ok(evaluate(model, data.xte.view(), &data.test.labels)?.accuracy)
}

/// max |a − b| over all entries of two parameter lists.
pub(super) fn max_diff(a: &[Array2<f64>], b: &[Array2<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.iter().zip(y.iter()).map(|(p, q)| (p - q).abs()))
        .fold(0.0, f64::max)
}

fn act_name(a: stgcn::ActivationKind) -> &'static str {
    match a {
        stgcn::ActivationKind::Relu => "relu",
        stgcn::ActivationKind::Square => "square",
        stgcn::ActivationKind::Poly => "poly",
    }
}

/// The inputs one model's measurement needs.
pub(super) struct ModelJob<'a> {
    pub(super) stem: &'a str,
    pub(super) base: &'a StGcn,
    pub(super) data: &'a PrivateData,
    pub(super) epochs: &'a [Vec<Vec<usize>>],
    pub(super) steps_per_epoch: usize,
    pub(super) setting: Setting,
    pub(super) he_steps: usize,
}

/// Runs the twin, the secure run and the optional `he` run of one public model.
pub(super) async fn measure_model(j: &ModelJob<'_>) -> Result<ModelOutcome> {
    let s = &j.setting;
    let start = mst::initial_params(&s.shape, j.base);
    let public_accuracy = accuracy(j.base, j.data)?;
    let cal = &s.calibration;
    let twin = twin(&s.shape, j.base, j.data, &start, j.epochs, &s.hyper, cal).await?;
    let twin_accuracy = accuracy(&twin.model, j.data)?;
    let calibrated_accuracy = accuracy(&twin.calibrated, j.data)?;
    let steps: usize = j.epochs.iter().map(Vec::len).sum();
    let pb = crate::common::progress(steps as u64, &format!("2PC fine-tune {}", j.stem));
    let secure = secure::run(s, &j.data.x, &j.data.y, &start, j.epochs, &pb).await?;
    pb.finish_and_clear();
    let secure_model =
        mst::to_model(&s.shape, j.base, &secure.tensors).context("the secure-trained model")?;
    let secure_accuracy = accuracy(&secure_model, j.data)?;
    let max_weight_diff = max_diff(&secure.params, &twin.params);
    let he = if j.he_steps > 0 {
        let first: Vec<Vec<usize>> = j.epochs[0].iter().take(j.he_steps).cloned().collect();
        // Measures the steps' offline cost only: no re-calibration (its triples would cost
        // more than the steps measured, and the plan of a step does not depend on it).
        let hs = Setting {
            source: "he".into(),
            calibration: Default::default(),
            ..s.clone()
        };
        let pb = crate::common::progress(first.len() as u64, "2PC steps, he triples");
        let r = secure::run(&hs, &j.data.x, &j.data.y, &start, &[first], &pb).await?;
        pb.finish_and_clear();
        Some(r)
    } else {
        None
    };
    Ok(ModelOutcome {
        activation: act_name(j.base.config().activation),
        stem: j.stem.to_string(),
        public_accuracy,
        calibrated_accuracy,
        calibration_clips: cal.len(),
        trainable: start.iter().map(Array2::len).sum(),
        secure,
        secure_model,
        secure_accuracy,
        twin,
        twin_accuracy,
        max_weight_diff,
        he,
        steps_per_epoch: j.steps_per_epoch,
    })
}
