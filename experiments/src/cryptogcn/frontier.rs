//! The accuracy–latency frontier of learned structural linearisation (the `frontier` part of
//! the `cryptogcn` accuracy run), measured and returned as typed points: for each budget the
//! gates are learned and the model fine-tuned (`ml::models::stgcn_gates`), evaluated in
//! plaintext on the whole test set, and run under CKKS (AMA, tailored parameters) for a
//! **measured** per-sample latency and the encrypted top-1 agreement; the unpruned base model
//! is measured the same way and a ReLU twin in plaintext only.

use super::accuracy::{self, AccuracyFigures, AccuracyInputs};
use crate::common;
use crate::config::cryptogcn::{AccuracySpec, FrontierSpec};
use anyhow::{bail, Context, Result};
use ml::models::stgcn_gates::{learn_gates, GateConfig};
use stgcn::StGcn;

/// One model of the frontier.
#[derive(Debug, Clone)]
pub(super) struct FrontierPoint {
    /// Metric key part: the budget, or `x2` for the unpruned base model.
    pub(super) key: String,
    /// Non-linear `(site, node)` pairs and sites.
    pub(super) nodes: usize,
    pub(super) sites: usize,
    pub(super) test_accuracy_pct: f64,
    /// Measured server seconds per sample (median over warm passes, one clip per pass).
    pub(super) latency_s: f64,
    /// `(agreeing, compared)` clips, encrypted vs plaintext top-1.
    pub(super) agreement: (usize, usize),
    pub(super) max_logit_error: f64,
    /// Largest plaintext |logit| and smallest plaintext top-1 margin of the compared clips
    /// (an error below half the margin cannot change a top-1).
    pub(super) max_abs_logit: f64,
    pub(super) min_margin: f64,
    pub(super) depth: usize,
    pub(super) preset: String,
}

/// The frontier and the ReLU twin's plaintext accuracy.
pub(super) struct Frontier {
    pub(super) points: Vec<FrontierPoint>,
    pub(super) relu_accuracy_pct: Option<f64>,
}

fn encrypted(
    acc: &AccuracySpec,
    inputs: &AccuracyInputs,
    model: &StGcn,
    (samples, batch): (usize, bool),
    cache_mib: usize,
) -> Result<AccuracyFigures> {
    let spec = AccuracySpec {
        samples,
        batch,
        clips_per_pass: 0,
        stage_errors: false,
        tailored_params: true,
        pruning_levels: Vec::new(),
        frontier: None,
        throughput: None,
        ..acc.clone()
    };
    let inputs = AccuracyInputs {
        model: model.clone(),
        train: inputs.train.clone(),
        test: inputs.test.clone(),
        data_desc: inputs.data_desc.clone(),
    };
    accuracy::measure(&spec, &inputs, cache_mib)
}

/// Plaintext accuracy on the whole test set, then latency and agreement under CKKS.
fn point(
    (acc, f): (&AccuracySpec, &FrontierSpec),
    inputs: &AccuracyInputs,
    key: String,
    model: &StGcn,
    cache_mib: usize,
) -> Result<FrontierPoint> {
    let test = inputs.test.data_f64();
    let a = 100.0 * stgcn::evaluate(model, test.view(), &inputs.test.labels)?.accuracy;
    let lat = encrypted(acc, inputs, model, (f.latency_samples, false), cache_mib)?;
    let agr = encrypted(acc, inputs, model, (f.agreement_samples, true), cache_mib)?;
    let cfg = model.config();
    let masks = cfg.activation_mask.iter().flatten();
    Ok(FrontierPoint {
        key,
        nodes: cfg.num_nonlinear_activations(),
        sites: masks.filter(|m| m.iter().any(|&k| k)).count(),
        test_accuracy_pct: a,
        latency_s: lat.warm_pass_s(),
        agreement: (agr.agree, agr.samples),
        max_logit_error: agr.max_logit_error.max(lat.max_logit_error),
        max_abs_logit: agr.max_abs_logit.max(lat.max_abs_logit),
        min_margin: agr.min_logit_margin.min(lat.min_logit_margin),
        depth: lat.depth,
        preset: lat.preset,
    })
}

/// Runs the frontier of `f` on the base model of `inputs`.
pub(super) fn run(
    acc: &AccuracySpec,
    f: &FrontierSpec,
    inputs: &AccuracyInputs,
    cache_mib: usize,
) -> Result<Frontier> {
    let base = &inputs.model;
    let total = 2 * base.config().blocks.len() * base.config().num_nodes();
    if let Some(&k) = f.budgets.iter().find(|&&k| k > total) {
        bail!("accuracy.frontier.budgets entry {k}: the model has {total} (site, node) pairs");
    }
    if f.latency_samples == 0 || f.agreement_samples == 0 {
        bail!("accuracy.frontier: latency_samples and agreement_samples must be >= 1");
    }
    let relu_accuracy_pct = match &f.relu_model {
        Some(stem) => {
            let relu = accuracy::load_model(stem)?;
            let test = inputs.test.data_f64();
            let e = stgcn::evaluate(&relu, test.view(), &inputs.test.labels)
                .with_context(|| format!("evaluating the ReLU twin {stem}"))?;
            Some(100.0 * e.accuracy)
        }
        None => None,
    };
    let pb = common::progress(f.budgets.len() as u64 + 1, "frontier");
    let x2 = point((acc, f), inputs, "x2".into(), base, cache_mib)?;
    eprintln!("frontier point: {x2:?}");
    let mut points = vec![x2];
    pb.inc(1);
    let (tx, ty) = (inputs.train.data_f64(), &inputs.train.labels);
    for &k in &f.budgets {
        pb.set_message(format!("budget {k}"));
        let cfg = GateConfig::recipe(k, f.search_epochs, f.finetune_epochs, 42);
        let out = learn_gates(base, tx.view(), ty, &cfg)
            .with_context(|| format!("learning gates for budget {k}"))?;
        let p = point((acc, f), inputs, k.to_string(), &out.model, cache_mib)?;
        // One line per finished point on stderr: the figures survive an interrupted run.
        eprintln!("frontier point: {p:?}");
        points.push(p);
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(Frontier {
        points,
        relu_accuracy_pct,
    })
}
