//! The accuracy–latency sweep of activation pruning (part of the `cryptogcn` accuracy run),
//! measured and returned as typed points: each pruned model is fine-tuned in plaintext,
//! evaluated on the whole test set, and its one-thread latency under AMA estimated from
//! counts × probed per-operation costs.

use super::costs::{cost_at, probe_costs, OpCosts};
use super::engine::{stage_levels, ClientKeys};
use crate::common;
use crate::config::cryptogcn::AccuracySpec;
use anyhow::{bail, Context, Result};
use datasets::skeleton::SkeletonSet;
use hegcn::{choose_preset, counts_sum, he_ops, HeStgcn, Packing};
use ndarray::ArrayView5;
use stgcn::{FoldedModel, StGcn};

/// One pruned model of the sweep.
#[derive(Debug, Clone)]
pub(super) struct SweepPoint {
    /// Activation sites pruned on every node (deepest first).
    pub(super) sites: usize,
    pub(super) depth: usize,
    pub(super) preset: &'static str,
    pub(super) he_ops: u64,
    pub(super) test_accuracy_pct: f64,
    /// Estimated one-thread latency (counts × probed costs), seconds.
    pub(super) latency_1t_estimated_s: f64,
}

/// Probed op costs, cached per preset.
type Probes = Vec<(&'static str, Vec<(usize, OpCosts)>)>;

/// Estimated one-thread latency of `folded` under AMA at its preset (counts × probed costs;
/// probes are cached per preset).
fn estimate_latency(
    folded: &FoldedModel,
    probes: &mut Probes,
) -> Result<(f64, u64, usize, &'static str)> {
    let (preset, plan) = choose_preset(folded, Packing::Ama)?;
    let params = preset.build()?;
    let he = HeStgcn::compile(folded, Packing::Ama, &params)?;
    let levels = stage_levels(&he);
    if !probes.iter().any(|p| p.0 == preset.name) {
        let mut keys = ClientKeys::new(&params)?;
        let mut lv: Vec<usize> = (1..=plan.depth).collect();
        lv.dedup();
        probes.push((preset.name, probe_costs(&params, &mut keys, &lv)?));
    }
    let costs = &probes
        .iter()
        .find(|p| p.0 == preset.name)
        .context("probe")?
        .1;
    let planned = he.planned_op_counts();
    let mut secs = 0.0;
    for (k, (_, level)) in levels.iter().enumerate() {
        secs += cost_at(costs, *level).seconds(&planned[k].counts);
    }
    let ops = he_ops(&counts_sum(planned.iter().map(|p| &p.counts)));
    Ok((secs, ops, plan.depth, preset.name))
}

/// Fine-tunes `m` in plaintext on the training clips (the sweep's fixed recipe).
fn fine_tune(m: &mut StGcn, epochs: usize, x: ArrayView5<'_, f64>, y: &[usize]) -> Result<()> {
    let cfg = stgcn::TrainConfig {
        epochs,
        batch_size: 16,
        learning_rate: 0.01,
        momentum: 0.9,
        weight_decay: 1e-4,
        schedule: stgcn::LrSchedule::Cosine,
        seed: 42,
        clip_grad_norm: Some(1.0),
        warmup_epochs: 0,
    };
    stgcn::train(m, x, y, &cfg, |_| {})?;
    Ok(())
}

/// Prunes 0, k1, k2, … activation sites (deepest first), fine-tunes each model in plaintext,
/// evaluates it on `test` and estimates its encrypted latency.
pub(super) fn sweep(
    acc: &AccuracySpec,
    base: &StGcn,
    train: &SkeletonSet,
    test: &SkeletonSet,
) -> Result<Vec<SweepPoint>> {
    let blocks = base.config().blocks.len();
    let order: Vec<(usize, usize)> = (0..blocks).rev().flat_map(|b| [(b, 1), (b, 0)]).collect();
    if let Some(&k) = acc.pruning_levels.iter().find(|&&k| k > order.len()) {
        bail!(
            "accuracy.pruning_levels entry {k}: the model has {} activation sites",
            order.len()
        );
    }
    let nodes: Vec<usize> = (0..base.config().num_nodes()).collect();
    let (tx, ty) = (train.data_f64(), &train.labels);
    let (ex, ey) = (test.data_f64(), &test.labels);
    let mut probes = Vec::new();
    let mut points = Vec::new();
    let mut levels = vec![0];
    levels.extend(acc.pruning_levels.iter().copied());
    let pb = common::progress(levels.len() as u64, "pruning sweep");
    for &k in &levels {
        pb.set_message(format!("pruning {k} sites"));
        let mut m = base.clone();
        for &(b, s) in &order[..k] {
            m.prune_activations(b, s, &nodes)?;
        }
        if k > 0 {
            fine_tune(&mut m, acc.pruning_epochs, tx.view(), ty)?;
        }
        let a = 100.0 * stgcn::evaluate(&m, ex.view(), ey)?.accuracy;
        let (secs, ops, depth, preset) = estimate_latency(&m.fold(), &mut probes)?;
        points.push(SweepPoint {
            sites: k,
            depth,
            preset,
            he_ops: ops,
            test_accuracy_pct: a,
            latency_1t_estimated_s: secs,
        });
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(points)
}
