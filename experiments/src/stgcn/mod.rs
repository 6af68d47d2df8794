//! The `stgcn` task: plaintext ST-GCN training on skeleton data with ReLU, `x²` and trainable
//! polynomial activations side by side, the accuracy cost of the HE-friendly activations, and
//! model files for the encrypted-inference work.
//!
//! Models are the ST-GCN of Yan, Xiong and Lin (AAAI 2018) in the published sizes used by
//! CryptoGCN (Ran et al., NeurIPS 2022) and LinGCN (Peng et al., NeurIPS 2023), optionally with
//! every width divided ([`stgcn::Architecture::blocks`]). Data:
//! - **Mocap-15 cross-view** ([`datasets::skeleton::Mocap15`]): the NTU RGB+D cross-view protocol
//!   (Shahroudy et al., CVPR 2016, §4) on clips rendered from the bundled DeepMimic motions —
//!   training cameras at ±45° yaw, test camera at 0°;
//! - **BodyPose** ([`datasets::skeleton::BodyPoseSet`]): 2-D OpenPose BODY_25 poses, one frame
//!   each, with a stratified train/test split.
//!
//! For every configured activation the same architecture is trained from the same seed on the
//! same batches (SGD with momentum, [`stgcn::Trainer`]) and evaluated on the test set after
//! every epoch. The `x²` run can instead start from the trained ReLU model (activation
//! replacement and fine-tuning, `square.from_relu`), with the batch norms that feed every `x²`
//! either reset to one global `(γ, β)` (`square.bn_init`) or calibrated per channel on the ReLU
//! model's own pre-activations (`square.calibrate`, [`stgcn::relu_to_square`]), and can be
//! distilled from the ReLU model (`square.distill`, [`stgcn::Distillation`]). Metrics are `<run>.test_accuracy_pct`, `<run>.train_accuracy_pct`,
//! `<run>.final_train_loss`, `<run>.train_s`, `<run>.train_per_clip_epoch_s` (training time
//! divided by epochs and training clips), `<run>.train_cpu_per_clip_epoch_s` (the same in CPU
//! seconds of all threads, on Linux), `<run>.params_count`, for `square` / `poly`
//! when `relu` is also trained, `<run>.accuracy_drop_pp` (ReLU accuracy minus this one, in
//! percentage points) and, for a `square` run started from the ReLU model (`square.from_relu`),
//! `<run>.initial_test_accuracy_pct` (the replaced model before fine-tuning); `<run>` is the
//! activation name, followed by `_<label>` when the task has
//! a label. Files: `curves[_<label>].svg` (test accuracy and training loss per epoch),
//! `curves[_<label>].csv`, and with `save_models` the trained models as `<run>.safetensors` +
//! `<run>.json` ([`stgcn::StGcn::from_json_and_safetensors`] reads them back).
//!
//! The runner measures, then reports: `data` loads the clips, `measure` trains every run and
//! returns typed outcomes, `report` renders them into the section, metrics, notes and files.
//! The task's settings live in [`crate::config::stgcn`].

pub(crate) mod data;
mod measure;
mod report;
#[cfg(test)]
mod tests;

pub use crate::config::stgcn::{
    Activation, BodyPoseNorm, DistillSpec, OtherViews, ScheduleSpec, SkeletonData, SquareSettings,
    StgcnTask,
};

use crate::config::Config;
use crate::report::Report;
use anyhow::Result;
use measure::{TaskSetup, TrainData, TrainedRun};
use stgcn::{InputNorm, StGcnConfig};

/// Runs an `stgcn` task and adds its metrics, sections, notes and files to `report`.
pub fn run(t: &StgcnTask, cfg: &Config, report: &mut Report) -> Result<()> {
    t.validate()?;
    let seed = t.seed.unwrap_or(cfg.experiment.seed);
    let data = data::load(&t.dataset, seed)?;
    let [_, c, frames, _, m] = data.train.shape();
    let q = data.train.num_classes();
    let xtr = data.train.data_f64();
    let xte = data.test.data_f64();
    let adjacency = data.graph.adjacency_array()?;
    let mut base = StGcnConfig::new(t.architecture, t.width_divisor, c, frames, &adjacency, q);
    base.graph = data.graph.clone();
    base.num_persons = m;
    base.class_names = data.train.class_names.clone();
    base.input_norm = Some(InputNorm::fit(xtr.view()));
    if let Some(p) = t.poly_init {
        base.poly_init = p;
    }
    base.validate()?;

    let train_data = TrainData {
        xtr: &xtr,
        ytr: &data.train.labels,
        xte: &xte,
        yte: &data.test.labels,
    };
    let mut runs: Vec<TrainedRun> = Vec::new();
    for &act in &t.activations {
        let name = t.run_name(act);
        let relu = runs
            .iter()
            .find(|r| r.outcome.act == Activation::Relu)
            .map(|r| &r.model);
        let run = measure::train_one(t, act, &name, &base, seed, &train_data, relu)?;
        runs.push(run);
    }
    let setup = TaskSetup {
        description: data.description.clone(),
        protocol_note: data.protocol_note.clone(),
        short_name: data.short_name,
        n_train: data.train.len(),
        blocks: base
            .blocks
            .iter()
            .map(|b| (b.in_channels, b.out_channels, b.stride))
            .collect(),
        poly_init: base.poly_init,
        seed,
    };
    let (outcomes, models): (Vec<_>, Vec<_>) =
        runs.into_iter().map(|r| (r.outcome, r.model)).unzip();
    report::render(report, t, &setup, &outcomes)?;
    if t.save_models {
        report::model_files(report, &outcomes, &models)?;
    }
    Ok(())
}
