//! The `secure-stgcn` task: one system from private skeletons to encrypted predictions. A
//! public ST-GCN (pretrained in plaintext on other data, e.g. `stgcn-mocap15-otherviews.toml`)
//! has its BNs re-calibrated on `calibration_clips` private clips in 2PC
//! ([`ml::models::stgcn::calibrate`]), then is fine-tuned in 2PC on secret-shared private
//! Mocap-15 cross-view clips beside its plaintext
//! twin ([`ml::models::stgcn`] on `Shared` and on `Plain`, same start, same batches); the owner
//! reconstructs the trained model, which is then served under CKKS (AMA packing, in process) on
//! the private test clips and compared with its own plaintext evaluation.
//!
//! Metrics (`<p>` = `secure_stgcn`, `plain_stgcn`, … with `_<label>` when the task has one;
//! the second and later models add `_<activation>`): `secure_stgcn.test_accuracy_pct`,
//! `plain_stgcn.test_accuracy_pct`, `public_stgcn.test_accuracy_pct` (before fine-tuning),
//! with a re-calibration `calibrated_stgcn.test_accuracy_pct` (after it, before any step),
//! `secure_stgcn.calibration_online_s` and `secure_stgcn.calibration_offline_s`,
//! `secure_stgcn.max_weight_diff`, `secure_stgcn.online_per_epoch_s`,
//! `secure_stgcn.offline_per_epoch_s`, `secure_stgcn.online_per_epoch_bytes` and
//! `…_rounds_per_epoch_count` (both parties), `plain_stgcn.train_per_epoch_s`,
//! `secure_stgcn.online_vs_plain` (ratio), with `he_steps`: `secure_stgcn_he.offline_per_epoch_s`
//! and `…_bytes` (extrapolated from the steps run); `he_served.agreement_pct`,
//! `he_served.max_logit_error`, `he_served.encrypted_accuracy_pct`, `he_served.clips_count`,
//! `he_served.per_clip_s`, `he_served.encode_cpu_s` (thread-time encoding weight plaintexts),
//! `he_served.cache_hits_count` and `…_misses_count` (the plaintext cache); with `summary = "<s>"` also `<s>.secure_test_accuracy_pct`,
//! `<s>.plain_test_accuracy_pct`, `<s>.he_agreement_pct`. Per-epoch figures of a run shorter
//! than an epoch are per step × the full epoch's steps.
//!
//! Security model: semi-honest two-server 2PC (triples from the configured source; exact
//! truncation, no failure event), then a semi-honest serving party under CKKS. Both parties,
//! the dealer and the HE client run in this process for measurement; the `seed` fixes only
//! public choices (batch order).
//!
//! `data` makes the private split and batches, `secure` the chunked 2PC run, `measure` the
//! twin and evaluations, `serve` the encrypted inference, `report` the tables and metrics.

mod data;
mod measure;
mod report;
mod secure;
mod serve;
#[cfg(test)]
mod tests;

pub use crate::config::secure_stgcn::SecureStgcnTask;

use crate::config::Config;
use crate::cryptogcn::accuracy::load_model;
use crate::report::Report;
use anyhow::{Context, Result};
use ml::models::stgcn::{StgcnHyper, StgcnShape};
use mpc::{FixedPoint, FracBits};
use std::sync::Arc;

/// Runs a `secure-stgcn` task and adds its metrics, sections and notes to `report`.
pub async fn run(t: &SecureStgcnTask, cfg: &Config, report: &mut Report) -> Result<()> {
    t.validate()?;
    let fp = FixedPoint::new(FracBits::new(cfg.mpc.frac_bits)?);
    let hyper = StgcnHyper {
        learning_rate: t.learning_rate,
        momentum: t.momentum,
        weight_decay: t.weight_decay,
        batch_size: t.batch_size,
    };
    let mut outcomes = Vec::new();
    let mut served = None;
    for (i, stem) in t.models.iter().enumerate() {
        let base = load_model(stem)?;
        let frames = base.config().num_frames;
        let data = data::load(t.train_per_class, t.test_per_class, frames, t.data_seed)?;
        let (epochs, per_epoch) = data::schedule(
            data.x.nrows(),
            t.batch_size,
            t.epochs,
            t.max_steps,
            cfg.experiment.seed,
        )?;
        let shape = StgcnShape::from_model(&base)
            .with_context(|| format!("{stem}: not trainable in 2PC"))?;
        let job = measure::ModelJob {
            stem,
            base: &base,
            data: &data,
            epochs: &epochs,
            steps_per_epoch: per_epoch,
            setting: secure::Setting {
                shape: Arc::new(shape),
                hyper,
                fp,
                source: cfg.mpc.triples.clone(),
                transport: cfg.transport.kind.clone(),
                chunk_steps: t.chunk_steps,
                calibration: Arc::new(ml::models::stgcn::calibration_rows(
                    data.x.nrows(),
                    t.calibration_clips,
                    cfg.experiment.seed,
                )),
            },
            he_steps: if i == 0 { t.he_steps } else { 0 },
        };
        let o = measure::measure_model(&job).await?;
        if i == 0 {
            let m = o.secure_model.clone();
            let (tr, te, desc) = (&data.train, &data.test, &data.description);
            let (clips, cache) = (t.he_clips, t.plaintext_cache_mib);
            if t.serve {
                served = Some(serve::serve(&m, tr, te, desc, clips, cache)?);
            }
            report::data_section(report, &data.description, &epochs, per_epoch, t);
        }
        outcomes.push(o);
    }
    report::render(report, t, &outcomes, served.as_ref())
}
