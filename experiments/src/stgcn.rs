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

use crate::common;
use crate::config::Config;
use crate::report::{fmt_num, Report};
use anyhow::{bail, Context, Result};
use datasets::skeleton::{
    BodyPoseNormalization, BodyPoseSet, Graph, Mocap15, Mocap15Config, SkeletonSet,
};
use ndarray::Array5;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use stgcn::{
    evaluate, relu_to_square, ActivationInputStats, ActivationKind, Architecture, Distillation,
    GraphSpec, InputNorm, LrSchedule, ModelError, StGcn, StGcnConfig, TrainConfig, Trainer,
};

/// Settings of an `stgcn` task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StgcnTask {
    /// Label appended to the runs' metric and file names (`relu_<label>.…`); empty for `relu.…`.
    #[serde(default)]
    pub label: String,
    /// The skeleton data.
    pub dataset: SkeletonData,
    /// Published variant (`"STGCN-3-128"`, `"STGCN-3-256"`, `"STGCN-6-256"`).
    #[serde(default = "default_architecture")]
    pub architecture: Architecture,
    /// Every published width is divided by this (1 = published size).
    #[serde(default = "one")]
    pub width_divisor: usize,
    /// Activations to train and compare, in order.
    #[serde(default = "default_activations")]
    pub activations: Vec<Activation>,
    /// Epochs.
    pub epochs: usize,
    /// Clips per mini-batch.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Base learning rate.
    pub learning_rate: f64,
    /// SGD momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// L2 weight decay on convolution and dense weights.
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Learning-rate schedule: `"constant"`, `"cosine"` or
    /// `{ step = { milestones = [..], gamma = 0.1 } }`.
    #[serde(default)]
    pub schedule: ScheduleSpec,
    /// Rescale gradients to at most this global L2 norm.
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
    /// Seed of the initial weights, the batch order and the BodyPose split (defaults to the
    /// experiment seed).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Initial `[a, b, c]` of the `poly` activations `a·x² + b·x + c` (default: the library's
    /// ReLU fit `[0.2, 0.5, 0.2]`).
    #[serde(default)]
    pub poly_init: Option<[f64; 3]>,
    /// Put every trained model into the report folder as `<run>.safetensors` + `<run>.json`.
    #[serde(default)]
    pub save_models: bool,
    /// Accuracy the report compares the ReLU run against (informational, never an error).
    #[serde(default)]
    pub target_accuracy_pct: Option<f64>,
    /// Largest accuracy drop of `square` / `poly` against ReLU the report calls on target.
    #[serde(default)]
    pub max_drop_pp: Option<f64>,
    /// Linear learning-rate warm-up epochs of every run ([`TrainConfig::warmup_epochs`]).
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Settings that apply to the `square` run only.
    #[serde(default)]
    pub square: SquareSettings,
    /// After every epoch, log the RMS and largest magnitude of the inputs of every activation
    /// site ([`StGcn::activation_input_stats`] on the first 64 training clips) and write them
    /// to `activations[_<label>].csv`.
    #[serde(default)]
    pub trace_activations: bool,
}

/// Training settings of the `x²` run that differ from the task's (every field optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SquareSettings {
    /// Base learning rate (default: the task's).
    #[serde(default)]
    pub learning_rate: Option<f64>,
    /// Warm-up epochs (default: the task's).
    #[serde(default)]
    pub warmup_epochs: Option<usize>,
    /// Epochs (default: the task's).
    #[serde(default)]
    pub epochs: Option<usize>,
    /// Initial `[γ, β]` of the batch norms that feed activation sites
    /// ([`StGcn::init_pre_activation_bn`]; default: `γ = 1, β = 0`).
    #[serde(default)]
    pub bn_init: Option<[f64; 2]>,
    /// Start from the trained ReLU model's tensors and fine-tune with `x²` in place of ReLU
    /// (activation replacement, as CryptoGCN and LinGCN do); `relu` must come before `square`
    /// in `activations`. `bn_init`, if set, is applied after the copy.
    #[serde(default)]
    pub from_relu: bool,
    /// With `from_relu`: instead of copying the ReLU model's tensors unchanged, calibrate them
    /// per channel ([`stgcn::relu_to_square`] on the training clips) so that each `x²`
    /// computes, on the ReLU model's own pre-activations, the least-squares quadratic fit of
    /// ReLU (the constant removed downstream). Excludes `bn_init`.
    #[serde(default)]
    pub calibrate: bool,
    /// Knowledge distillation from the trained ReLU model during the `x²` training
    /// ([`stgcn::Distillation`]); `relu` must come before `square` in `activations`.
    #[serde(default)]
    pub distill: Option<DistillSpec>,
}

/// Knowledge-distillation settings ([`stgcn::Distillation`]): the loss is
/// `(1 − weight)·CE + weight·T²·KL(teacher ‖ student)` at temperature `T`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillSpec {
    /// Softmax temperature `T` (> 0).
    pub temperature: f64,
    /// Weight of the soft term, in `[0, 1]`.
    pub weight: f64,
}

fn default_architecture() -> Architecture {
    Architecture::Stgcn3x128
}

fn one() -> usize {
    1
}

fn default_activations() -> Vec<Activation> {
    vec![Activation::Relu, Activation::Square, Activation::Poly]
}

fn default_batch() -> usize {
    32
}

fn default_momentum() -> f64 {
    0.9
}

fn default_weight_decay() -> f64 {
    1e-4
}

/// Which skeleton data a task uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum SkeletonData {
    /// Mocap-15, NTU-style cross-view split (train ±45°, test 0°), `(N, 3, T, 15, 1)`.
    Mocap15 {
        /// Training clips per class (alternating −45° / +45°).
        train_per_class: usize,
        /// Test clips per class (0°).
        test_per_class: usize,
        /// Frames per clip `T`.
        #[serde(default = "default_frames")]
        frames: usize,
        /// Seed of the clip generator (default: the generator's own default, 2024).
        #[serde(default)]
        seed: Option<u64>,
    },
    /// BodyPose (BODY_25, 20 pose classes), `(N, 2, 1, 25, 1)`, stratified split.
    Bodypose {
        /// Fraction of each class held out for testing.
        test_fraction: f64,
        /// `as-provided` (the package's bounding-box normalisation) or `mid-hip-torso`.
        #[serde(default)]
        normalization: BodyPoseNorm,
    },
}

fn default_frames() -> usize {
    64
}

/// Keypoint normalisation of BodyPose (see [`BodyPoseNormalization`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BodyPoseNorm {
    /// The package's normalisation.
    #[default]
    AsProvided,
    /// Centred on the mid-hip, divided by the torso length.
    MidHipTorso,
}

/// An activation to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// ReLU (plaintext baseline).
    Relu,
    /// `x²`.
    Square,
    /// Trainable per-node `a·x² + b·x + c`.
    Poly,
}

impl Activation {
    /// The config / metric name.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Square => "square",
            Activation::Poly => "poly",
        }
    }

    fn kind(self) -> ActivationKind {
        match self {
            Activation::Relu => ActivationKind::Relu,
            Activation::Square => ActivationKind::Square,
            Activation::Poly => ActivationKind::Poly,
        }
    }
}

/// Learning-rate schedule as written in a config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum ScheduleSpec {
    /// Constant rate.
    Constant,
    /// Cosine annealing to 0 over the run.
    #[default]
    Cosine,
    /// Multiply by `gamma` at each milestone epoch (0-based).
    Step {
        /// Epochs at which the rate is multiplied.
        milestones: Vec<usize>,
        /// Factor.
        gamma: f64,
    },
}

impl ScheduleSpec {
    fn to_lr(&self) -> LrSchedule {
        match self {
            ScheduleSpec::Constant => LrSchedule::Constant,
            ScheduleSpec::Cosine => LrSchedule::Cosine,
            ScheduleSpec::Step { milestones, gamma } => LrSchedule::Step {
                milestones: milestones.clone(),
                gamma: *gamma,
            },
        }
    }
}

impl StgcnTask {
    /// Checks the settings (called by config validation); errors name the field and value.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            bail!("epochs must be at least 1");
        }
        if self.batch_size == 0 {
            bail!("batch_size must be at least 1");
        }
        if self.width_divisor == 0 {
            bail!("width_divisor must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            bail!("learning_rate = {} must be positive", self.learning_rate);
        }
        if !(0.0..1.0).contains(&self.momentum) {
            bail!("momentum = {} must be in [0, 1)", self.momentum);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!("weight_decay = {} must be non-negative", self.weight_decay);
        }
        if let Some(c) = self.clip_grad_norm {
            if !(c.is_finite() && c > 0.0) {
                bail!("clip_grad_norm = {c} must be positive");
            }
        }
        if self.activations.is_empty() {
            bail!("activations must name at least one of relu, square, poly");
        }
        for (i, a) in self.activations.iter().enumerate() {
            if self.activations[..i].contains(a) {
                bail!("activations lists {:?} twice", a.name());
            }
        }
        if !self
            .label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!(
                "label {:?} must use only letters, digits, '-' and '_'",
                self.label
            );
        }
        if let Some(p) = self.poly_init {
            if p.iter().any(|x| !x.is_finite()) {
                bail!("poly_init = {p:?} must be finite");
            }
        }
        let sq = &self.square;
        if let Some(lr) = sq.learning_rate {
            if !(lr.is_finite() && lr > 0.0) {
                bail!("square.learning_rate = {lr} must be positive");
            }
        }
        if sq.epochs == Some(0) {
            bail!("square.epochs must be at least 1");
        }
        if let Some(p) = sq.bn_init {
            if p.iter().any(|x| !x.is_finite()) {
                bail!("square.bn_init = {p:?} must be finite");
            }
        }
        if sq.calibrate && !sq.from_relu {
            bail!("square.calibrate needs square.from_relu = true");
        }
        if sq.calibrate && sq.bn_init.is_some() {
            bail!("square.calibrate and square.bn_init exclude each other (both set the BNs that feed x²)");
        }
        if let Some(d) = &sq.distill {
            if !(d.temperature.is_finite() && d.temperature > 0.0) {
                bail!(
                    "square.distill.temperature = {} must be positive",
                    d.temperature
                );
            }
            if !(0.0..=1.0).contains(&d.weight) {
                bail!("square.distill.weight = {} must be in [0, 1]", d.weight);
            }
        }
        let pos = |a| self.activations.iter().position(|&x| x == a);
        for (on, what) in [
            (sq.from_relu, "from_relu"),
            (sq.distill.is_some(), "distill"),
        ] {
            if !on {
                continue;
            }
            match (pos(Activation::Relu), pos(Activation::Square)) {
                (Some(r), Some(q)) if r < q => {}
                _ => {
                    bail!("square.{what} needs \"relu\" listed before \"square\" in activations")
                }
            }
        }
        if let ScheduleSpec::Step { gamma, .. } = &self.schedule {
            if !(gamma.is_finite() && *gamma > 0.0) {
                bail!("schedule.step.gamma = {gamma} must be positive");
            }
        }
        match &self.dataset {
            SkeletonData::Mocap15 {
                train_per_class,
                test_per_class,
                frames,
                ..
            } => {
                if *train_per_class == 0 || *test_per_class == 0 || *frames == 0 {
                    bail!(
                        "mocap15: train_per_class = {train_per_class}, test_per_class = {test_per_class} and frames = {frames} must all be at least 1"
                    );
                }
            }
            SkeletonData::Bodypose { test_fraction, .. } => {
                if !(*test_fraction > 0.0 && *test_fraction < 1.0) {
                    bail!("bodypose: test_fraction = {test_fraction} must be in (0, 1)");
                }
            }
        }
        Ok(())
    }

    fn run_name(&self, a: Activation) -> String {
        if self.label.is_empty() {
            a.name().to_string()
        } else {
            format!("{}_{}", a.name(), self.label)
        }
    }

    fn file_suffix(&self) -> String {
        if self.label.is_empty() {
            String::new()
        } else {
            format!("_{}", self.label)
        }
    }
}

/// Train and test clips with their graph.
struct Data {
    train: SkeletonSet,
    test: SkeletonSet,
    graph: GraphSpec,
    description: String,
    protocol_note: String,
    short_name: &'static str,
}

fn load(d: &SkeletonData, seed: u64) -> Result<Data> {
    match d {
        SkeletonData::Mocap15 {
            train_per_class,
            test_per_class,
            frames,
            seed: data_seed,
        } => {
            let mut mc = Mocap15Config {
                frames: *frames,
                ..Mocap15Config::default()
            };
            if let Some(s) = data_seed {
                mc.seed = *s;
            }
            let gen_seed = mc.seed;
            let gen = Mocap15::load_bundled(mc).context("loading the bundled mocap clips")?;
            let split = gen
                .cross_view(*train_per_class, *test_per_class)
                .context("generating the Mocap-15 cross-view split")?;
            let g = Graph::mocap15();
            let graph = GraphSpec::from_edges("mocap15", g.num_nodes, &g.edges, g.center)?;
            let (train, test) = (split.train.set, split.test.set);
            Ok(Data {
                description: format!(
                    "Mocap-15 cross-view: {} training clips ({train_per_class} per class, cameras at −45° and +45° yaw) and {} test clips ({test_per_class} per class, camera at 0°), {} classes, (C, T, V, M) = (3, {frames}, 15, 1), generator seed {gen_seed}",
                    train.len(),
                    test.len(),
                    train.num_classes(),
                ),
                protocol_note: "Mocap-15 cross-view follows the NTU RGB+D cross-view protocol (train on the ±45° cameras, test on the 0° camera). The clips are renderings of the 15 bundled DeepMimic motions with random speed, temporal crop, bone scale, mirroring and joint noise from independent random streams, so test clips are new renderings of the same 15 source motions and one performer: an easier setting than NTU RGB+D, where test clips come from other people and repetitions.".into(),
                short_name: "Mocap-15 cross-view",
                train,
                test,
                graph,
            })
        }
        SkeletonData::Bodypose {
            test_fraction,
            normalization,
        } => {
            let norm = match normalization {
                BodyPoseNorm::AsProvided => BodyPoseNormalization::AsProvided,
                BodyPoseNorm::MidHipTorso => BodyPoseNormalization::MidHipTorso,
            };
            let all = BodyPoseSet::load_bundled(norm).context("loading BodyPose")?;
            let (train, test) = all
                .set
                .split_stratified(*test_fraction, seed)
                .context("splitting BodyPose")?;
            let g = Graph::body25();
            let graph = GraphSpec::from_edges("body25", g.num_nodes, &g.edges, g.center)?;
            Ok(Data {
                description: format!(
                    "BodyPose (OpenPose BODY_25, real 2-D poses): {} training and {} test samples (stratified, test fraction {test_fraction}, seed {seed}), {} classes, (C, T, V, M) = (2, 1, 25, 1), keypoints {}",
                    train.len(),
                    test.len(),
                    train.num_classes(),
                    match normalization {
                        BodyPoseNorm::AsProvided => "as normalised by the package (bounding-box centre, scaled)",
                        BodyPoseNorm::MidHipTorso => "centred on the mid-hip and divided by the torso length",
                    }
                ),
                protocol_note: "BodyPose clips have T = 1 frame: every 9-tap temporal convolution (zero padding 4) then reduces to its centre tap, i.e. a 1×1 convolution, and stride-2 blocks keep the single frame ((1 − 1) / 2 + 1 = 1), so ST-GCN runs unchanged as a spatial graph network. Undetected keypoints stay at (0, 0).".into(),
                short_name: "BodyPose",
                train,
                test,
                graph,
            })
        }
    }
}

/// One epoch of one run.
#[derive(Debug, Clone)]
struct EpochPoint {
    epoch: usize,
    learning_rate: f64,
    train_loss: f64,
    train_accuracy: f64,
    test_accuracy: f64,
    test_loss: f64,
    train_s: f64,
}

/// What training one activation produced.
struct RunOutcome {
    act: Activation,
    name: String,
    curve: Vec<EpochPoint>,
    params: usize,
    train_s: f64,
    /// CPU seconds of the training epochs, if the platform reports them.
    train_cpu_s: Option<f64>,
    eval_s: f64,
    test_accuracy: f64,
    diverged_at: Option<usize>,
    model: StGcn,
    /// `(epochs completed, statistics)`; epoch 0 is the initial model.
    trace: Vec<(usize, Vec<ActivationInputStats>)>,
    /// Training settings that differ from the task's, for the report.
    deviations: Vec<String>,
    /// Test accuracy before the first epoch (the `square` run started from the ReLU model).
    initial_test_accuracy: Option<f64>,
}

/// CPU seconds (user + system, all threads) this process has used, from `/proc/self/stat`
/// (fields 14 and 15, in the kernel's fixed 100 Hz `USER_HZ` ticks); `None` where that file
/// does not exist or cannot be parsed. Unlike wall time, it does not grow when other processes
/// share the cores, so per-clip training costs stay comparable between runs.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Clips used by `trace_activations`.
const TRACE_CLIPS: usize = 64;

/// The training data of one task.
struct TrainData<'a> {
    xtr: &'a Array5<f64>,
    ytr: &'a [usize],
    xte: &'a Array5<f64>,
    yte: &'a [usize],
}

fn log_line(pb: &indicatif::ProgressBar, line: &str) {
    if pb.is_hidden() {
        tracing::info!("{line}");
    } else {
        pb.println(line);
    }
}

fn trace_line(name: &str, epoch: usize, stats: &[ActivationInputStats]) -> String {
    let parts: Vec<String> = stats
        .iter()
        .map(|a| format!("b{}s{} {:.3} ({:.1})", a.block, a.site, a.rms, a.max_abs))
        .collect();
    format!(
        "{name} after epoch {epoch}: activation inputs rms (max |x|): {}",
        parts.join(", ")
    )
}

fn train_one(
    t: &StgcnTask,
    act: Activation,
    name: &str,
    base: &StGcnConfig,
    seed: u64,
    data: &TrainData<'_>,
    relu_model: Option<&StGcn>,
) -> Result<RunOutcome> {
    let mut mcfg = base.clone();
    mcfg.activation = act.kind();
    let mut model = StGcn::new(mcfg, seed)?;
    let params = model.num_trainable_parameters();
    let mut tc = TrainConfig {
        epochs: t.epochs,
        batch_size: t.batch_size,
        learning_rate: t.learning_rate,
        momentum: t.momentum,
        weight_decay: t.weight_decay,
        schedule: t.schedule.to_lr(),
        seed,
        clip_grad_norm: t.clip_grad_norm,
        warmup_epochs: t.warmup_epochs,
    };
    let mut deviations = Vec::new();
    let mut teacher: Option<(ndarray::Array2<f64>, Distillation)> = None;
    if act == Activation::Square {
        let sq = &t.square;
        if let Some(lr) = sq.learning_rate {
            tc.learning_rate = lr;
            deviations.push(format!("learning rate {lr}"));
        }
        if let Some(w) = sq.warmup_epochs {
            tc.warmup_epochs = w;
            deviations.push(format!("{w} warm-up epochs"));
        }
        if let Some(e) = sq.epochs {
            tc.epochs = e;
            deviations.push(format!("{e} epochs"));
        }
        if sq.from_relu {
            let relu = relu_model.context("square.from_relu: no trained ReLU model")?;
            if sq.calibrate {
                let (calibrated, cal) = relu_to_square(relu, data.xtr.view())
                    .context("calibrating the x² model from the ReLU model")?;
                model = calibrated;
                let errs: Vec<String> = cal
                    .sites
                    .iter()
                    .map(|s| {
                        let n = s.relative_rms_error.len().max(1) as f64;
                        format!(
                            "b{}s{} {:.2}",
                            s.block,
                            s.site,
                            s.relative_rms_error.iter().sum::<f64>() / n
                        )
                    })
                    .collect();
                let floored: usize = cal.sites.iter().map(|s| s.floored).sum();
                deviations.push(format!(
                    "starts from the trained ReLU model's weights with every x² calibrated per channel to the least-squares quadratic fit of ReLU on the ReLU model's pre-activations (mean relative RMS fit error per site: {}; {floored} channels at the curvature floor)",
                    errs.join(", ")
                ));
            } else {
                for tensor in relu.tensors() {
                    model.set_tensor(&tensor.name, tensor.value.clone())?;
                }
                deviations.push("starts from the trained ReLU model's weights".into());
            }
        }
        if let Some(d) = &sq.distill {
            let relu = relu_model.context("square.distill: no trained ReLU model")?;
            let logits = evaluate(relu, data.xtr.view(), data.ytr)
                .context("the ReLU teacher's logits")?
                .logits;
            teacher = Some((
                logits,
                Distillation {
                    temperature: d.temperature,
                    weight: d.weight,
                },
            ));
            deviations.push(format!(
                "knowledge distillation from the ReLU model (temperature {}, soft-target weight {})",
                fmt_num(d.temperature),
                fmt_num(d.weight)
            ));
        }
        if let Some([g, b]) = sq.bn_init {
            model.init_pre_activation_bn(g, b);
            deviations.push(format!(
                "the BNs feeding activations start at γ = {}, β = {}",
                fmt_num(g),
                fmt_num(b)
            ));
        }
    }
    let epochs = tc.epochs;
    // The replaced model before fine-tuning, to show what the conversion itself costs.
    let initial_test_accuracy = if act == Activation::Square && t.square.from_relu {
        Some(
            evaluate(&model, data.xte.view(), data.yte)
                .with_context(|| format!("evaluating {name} before training"))?
                .accuracy,
        )
    } else {
        None
    };
    let mut trainer = Trainer::new(&model, tc)?;
    let pb = common::progress(epochs as u64, name);
    let (mut curve, mut eval_s, mut diverged_at) = (Vec::new(), 0.0, None);
    let n_trace = data.xtr.dim().0.min(TRACE_CLIPS);
    let trace_x = data.xtr.slice(ndarray::s![..n_trace, .., .., .., ..]);
    let mut trace = Vec::new();
    if t.trace_activations {
        let st = model.activation_input_stats(trace_x)?;
        log_line(&pb, &trace_line(name, 0, &st));
        trace.push((0, st));
    }
    let mut last_good = model.clone();
    let mut train_cpu_s = Some(0.0);
    for _ in 0..epochs {
        let cpu0 = process_cpu_seconds();
        let result = match &teacher {
            None => trainer.run_epoch(&mut model, data.xtr.view(), data.ytr),
            Some((logits, d)) => {
                trainer.run_epoch_distilled(&mut model, data.xtr.view(), data.ytr, logits.view(), d)
            }
        };
        train_cpu_s = match (train_cpu_s, cpu0, process_cpu_seconds()) {
            (Some(acc), Some(a), Some(b)) => Some(acc + (b - a)),
            _ => None,
        };
        let st = match result {
            Ok(st) => st,
            Err(ModelError::NonFiniteLoss { epoch, batch }) => {
                // Keep the model of the last completed epoch and say so in the report.
                let msg = format!(
                    "{name}: loss not finite in epoch {} (batch {}); keeping the model from before that epoch",
                    epoch + 1,
                    batch + 1
                );
                if pb.is_hidden() {
                    tracing::warn!("{msg}");
                } else {
                    pb.println(&msg);
                }
                diverged_at = Some(epoch);
                model = last_good;
                break;
            }
            Err(e) => return Err(e).with_context(|| format!("training {name}")),
        };
        let t0 = std::time::Instant::now();
        let ev = evaluate(&model, data.xte.view(), data.yte)
            .with_context(|| format!("evaluating {name}"))?;
        eval_s += t0.elapsed().as_secs_f64();
        let p = EpochPoint {
            epoch: st.epoch,
            learning_rate: st.learning_rate,
            train_loss: st.loss,
            train_accuracy: st.train_accuracy,
            test_accuracy: ev.accuracy,
            test_loss: ev.loss,
            train_s: st.seconds,
        };
        let line = format!(
            "{name} epoch {:>3}/{}: lr {:.4}, train loss {:.4}, train acc {:.2} %, test acc {:.2} % ({:.1} s)",
            p.epoch + 1,
            epochs,
            p.learning_rate,
            p.train_loss,
            100.0 * p.train_accuracy,
            100.0 * p.test_accuracy,
            p.train_s
        );
        log_line(&pb, &line);
        if t.trace_activations {
            let st = model.activation_input_stats(trace_x)?;
            log_line(&pb, &trace_line(name, p.epoch + 1, &st));
            trace.push((p.epoch + 1, st));
        }
        pb.set_message(format!("{name} test {:.1}%", 100.0 * p.test_accuracy));
        pb.inc(1);
        curve.push(p);
        last_good = model.clone();
    }
    pb.finish_and_clear();
    let test_accuracy = match curve.last() {
        Some(p) => p.test_accuracy,
        None => evaluate(&model, data.xte.view(), data.yte)?.accuracy,
    };
    Ok(RunOutcome {
        act,
        name: name.to_string(),
        train_s: curve.iter().fold(0.0, |acc, p| acc + p.train_s),
        train_cpu_s,
        curve,
        params,
        eval_s,
        test_accuracy,
        diverged_at,
        model,
        trace,
        deviations,
        initial_test_accuracy,
    })
}

/// Runs an `stgcn` task and adds its metrics, sections, notes and files to `report`.
pub fn run(t: &StgcnTask, cfg: &Config, report: &mut Report) -> Result<()> {
    t.validate()?;
    let seed = t.seed.unwrap_or(cfg.experiment.seed);
    let data = load(&t.dataset, seed)?;
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
    let mut runs: Vec<RunOutcome> = Vec::new();
    for &act in &t.activations {
        let name = t.run_name(act);
        let relu = runs
            .iter()
            .find(|r| r.act == Activation::Relu)
            .map(|r| &r.model);
        let run = train_one(t, act, &name, &base, seed, &train_data, relu)?;
        runs.push(run);
    }
    let n_train = data.train.len();

    // Metrics.
    let relu_acc = runs
        .iter()
        .find(|r| r.act == Activation::Relu)
        .map(|r| r.test_accuracy);
    for r in &runs {
        let last = r.curve.last();
        report.metric(
            format!("{}.test_accuracy_pct", r.name),
            100.0 * r.test_accuracy,
        );
        if let Some(p) = last {
            report.metric(
                format!("{}.train_accuracy_pct", r.name),
                100.0 * p.train_accuracy,
            );
            report.metric(format!("{}.final_train_loss", r.name), p.train_loss);
        }
        if let Some(a) = r.initial_test_accuracy {
            report.metric(format!("{}.initial_test_accuracy_pct", r.name), 100.0 * a);
        }
        report.metric(format!("{}.train_s", r.name), r.train_s);
        if !r.curve.is_empty() && n_train > 0 {
            let clip_epochs = (r.curve.len() * n_train) as f64;
            report.metric(
                format!("{}.train_per_clip_epoch_s", r.name),
                r.train_s / clip_epochs,
            );
            if let Some(cpu) = r.train_cpu_s {
                report.metric(
                    format!("{}.train_cpu_per_clip_epoch_s", r.name),
                    cpu / clip_epochs,
                );
            }
        }
        report.metric(format!("{}.params_count", r.name), r.params as f64);
        if let (Some(base_acc), true) = (relu_acc, r.act != Activation::Relu) {
            report.metric(
                format!("{}.accuracy_drop_pp", r.name),
                100.0 * (base_acc - r.test_accuracy),
            );
        }
    }

    // Sections.
    let widths: Vec<String> = base
        .blocks
        .iter()
        .map(|b| {
            format!(
                "{}→{}{}",
                b.in_channels,
                b.out_channels,
                if b.stride == 2 { " (stride 2)" } else { "" }
            )
        })
        .collect();
    let suffix = t.file_suffix();
    let title = if t.label.is_empty() {
        format!("ST-GCN on {}", data.short_name)
    } else {
        format!("ST-GCN on {} ({})", data.short_name, t.label)
    };
    let mut s = String::new();
    let _ = writeln!(s, "Data: {}.\n", data.description);
    let _ = writeln!(
        s,
        "Model: {} with widths divided by {} (blocks {}), 9-frame temporal kernels, K = 3 spatial partitions, learnable edge importance, global average pooling and a dense classifier; poly activations start at a·x² + b·x + c with [a, b, c] = {:?}. Training: {} epochs, batch {}, SGD lr {} ({}), momentum {}, weight decay {}{}{}, seed {seed}; every activation starts from the same seed and sees the same batches{}.\n",
        t.architecture.name(),
        t.width_divisor,
        widths.join(", "),
        base.poly_init,
        t.epochs,
        t.batch_size,
        t.learning_rate,
        schedule_text(&t.schedule),
        t.momentum,
        t.weight_decay,
        t.clip_grad_norm
            .map_or(String::new(), |c| format!(", gradient norm clipped at {}", fmt_num(c))),
        if t.warmup_epochs > 0 {
            format!(", linear learning-rate warm-up over {} epochs", t.warmup_epochs)
        } else {
            String::new()
        },
        {
            let d: Vec<String> = runs
                .iter()
                .filter(|r| !r.deviations.is_empty())
                .map(|r| format!("{}: {}", r.name, r.deviations.join(", ")))
                .collect();
            if d.is_empty() {
                String::new()
            } else {
                format!(", except ({})", d.join("; "))
            }
        },
    );
    let _ = writeln!(
        s,
        "| activation | parameters | test accuracy | best epoch (test) | drop vs ReLU | train accuracy | final train loss | train time | eval time |\n|---|---|---|---|---|---|---|---|---|"
    );
    for r in &runs {
        let best = r
            .curve
            .iter()
            .max_by(|a, b| a.test_accuracy.total_cmp(&b.test_accuracy));
        let last = r.curve.last();
        let drop = match (relu_acc, r.act) {
            (Some(b), a) if a != Activation::Relu => {
                format!("{:+.2} pp", 100.0 * (b - r.test_accuracy))
            }
            _ => "—".into(),
        };
        let _ = writeln!(
            s,
            "| {}{} | {} | **{:.2} %** | {} | {drop} | {} | {} | {:.1} s | {:.1} s |",
            r.name,
            r.diverged_at
                .map_or(String::new(), |e| format!(" (diverged in epoch {})", e + 1)),
            r.params,
            100.0 * r.test_accuracy,
            best.map_or("—".into(), |p| format!(
                "{:.2} % (epoch {})",
                100.0 * p.test_accuracy,
                p.epoch + 1
            )),
            last.map_or("—".into(), |p| format!(
                "{:.2} %",
                100.0 * p.train_accuracy
            )),
            last.map_or("—".into(), |p| format!("{:.4}", p.train_loss)),
            r.train_s,
            r.eval_s,
        );
    }
    for r in &runs {
        if let Some(a) = r.initial_test_accuracy {
            let _ = writeln!(
                s,
                "\n{}: {:.2} % test accuracy right after the activation replacement, before its training.",
                r.name,
                100.0 * a
            );
        }
    }
    let _ = writeln!(
        s,
        "\nThe headline accuracy is that of the model after the last epoch (for a diverged run: after the last epoch with a finite loss); the best epoch is selected on the test set and shown for information only."
    );
    let mut verdicts = Vec::new();
    if let (Some(target), Some(b)) = (t.target_accuracy_pct, relu_acc) {
        verdicts.push(format!(
            "ReLU {:.2} % against the target of ≥ {target} %: {}",
            100.0 * b,
            if 100.0 * b >= target {
                "met"
            } else {
                "not met"
            }
        ));
    }
    if let (Some(max), Some(b)) = (t.max_drop_pp, relu_acc) {
        for r in runs.iter().filter(|r| r.act != Activation::Relu) {
            let d = 100.0 * (b - r.test_accuracy);
            let diff = if d >= 0.0 {
                format!("{d:.2} pp below")
            } else {
                format!("{:.2} pp above", -d)
            };
            verdicts.push(format!(
                "{} is {diff} ReLU against the target of at most {max} pp below: {}",
                r.name,
                if d <= max { "met" } else { "not met" }
            ));
        }
    }
    if !verdicts.is_empty() {
        let _ = writeln!(s, "\nTargets: {}.", verdicts.join("; "));
    }
    let _ = writeln!(
        s,
        "\nTraining curves: [`curves{suffix}.svg`](curves{suffix}.svg) (per-epoch numbers in `curves{suffix}.csv`)."
    );
    let per_clip: Vec<String> = runs
        .iter()
        .filter(|r| !r.curve.is_empty())
        .map(|r| {
            let clip_epochs = (r.curve.len() * n_train.max(1)) as f64;
            format!(
                "{} {:.4} s{}",
                r.name,
                r.train_s / clip_epochs,
                r.train_cpu_s.map_or(String::new(), |c| format!(
                    " ({:.4} CPU-s)",
                    c / clip_epochs
                ))
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "\nTraining time per clip and epoch, wall clock ({} threads; CPU seconds of all threads in parentheses, which do not grow when other processes share the cores): {}.",
        rayon::current_num_threads(),
        per_clip.join(", ")
    );
    if t.trace_activations {
        let _ = writeln!(
            s,
            "\nActivation-input statistics (RMS, mean and largest magnitude per block and site, on the first {TRACE_CLIPS} training clips after every epoch): `activations{suffix}.csv`."
        );
    }
    if t.save_models {
        let files: Vec<String> = runs
            .iter()
            .map(|r| format!("`{0}.safetensors` + `{0}.json`", r.name))
            .collect();
        let _ = writeln!(
            s,
            "\nModels: {} (F64 safetensors and the JSON config with graph, input normalisation and class names; `stgcn::StGcn::from_json_and_safetensors` reads them).",
            files.join(", ")
        );
    }
    report.section(&title, s);
    report.note(
        "ST-GCN inputs are normalised per (coordinate, joint) by the mean and standard deviation of the training set only (stgcn::InputNorm). The map is stored in the model's JSON config, not learned; under encryption the client applies it to its own plaintext before encrypting.",
    );
    report.note(data.protocol_note.clone());
    report.note("ST-GCN training is plaintext (f64); square and poly are the HE-friendly activations for CKKS inference (CryptoGCN x², LinGCN per-node a·x² + b·x + c), ReLU the plaintext baseline.");

    // Files.
    report.files.push((
        format!("curves{suffix}.svg"),
        plot_curves(&runs, &title)?.into_bytes(),
    ));
    report.files.push((
        format!("curves{suffix}.csv"),
        curves_csv(&runs).into_bytes(),
    ));
    if t.trace_activations {
        report.files.push((
            format!("activations{suffix}.csv"),
            trace_csv(&runs).into_bytes(),
        ));
    }
    if t.save_models {
        for r in &runs {
            report.files.push((
                format!("{}.safetensors", r.name),
                r.model.to_safetensors_bytes()?,
            ));
            report.files.push((
                format!("{}.json", r.name),
                r.model.config_json()?.into_bytes(),
            ));
        }
    }
    Ok(())
}

fn schedule_text(s: &ScheduleSpec) -> String {
    match s {
        ScheduleSpec::Constant => "constant".into(),
        ScheduleSpec::Cosine => "cosine annealing".into(),
        ScheduleSpec::Step { milestones, gamma } => {
            format!("×{} at epochs {milestones:?}", fmt_num(*gamma))
        }
    }
}

fn curves_csv(runs: &[RunOutcome]) -> String {
    let mut s = String::from(
        "run,epoch,learning_rate,train_loss,train_accuracy,test_loss,test_accuracy,train_s\n",
    );
    for r in runs {
        for p in &r.curve {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{}",
                r.name,
                p.epoch + 1,
                p.learning_rate,
                p.train_loss,
                p.train_accuracy,
                p.test_loss,
                p.test_accuracy,
                p.train_s
            );
        }
    }
    s
}

fn trace_csv(runs: &[RunOutcome]) -> String {
    let mut s = String::from("run,epoch,block,site,mean,rms,max_abs\n");
    for r in runs {
        for (epoch, stats) in &r.trace {
            for a in stats {
                let _ = writeln!(
                    s,
                    "{},{epoch},{},{},{},{},{}",
                    r.name, a.block, a.site, a.mean, a.rms, a.max_abs
                );
            }
        }
    }
    s
}

/// Two panels side by side: test accuracy (%) and training loss per epoch, one line per run.
fn plot_curves(runs: &[RunOutcome], title: &str) -> Result<String> {
    use plotters::prelude::*;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (1100, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(plot_err)?;
        let panels = root.split_evenly((1, 2));
        let epochs = runs.iter().map(|r| r.curve.len()).max().unwrap_or(1).max(1);
        let colors = [
            RGBColor(31, 119, 180),
            RGBColor(214, 39, 40),
            RGBColor(44, 160, 44),
        ];
        let acc_min = runs
            .iter()
            .flat_map(|r| r.curve.iter().map(|p| 100.0 * p.test_accuracy))
            .fold(100.0f64, f64::min);
        let y0 = (acc_min / 10.0).floor() * 10.0;
        let losses: Vec<f64> = runs
            .iter()
            .flat_map(|r| r.curve.iter().map(|p| p.train_loss))
            .filter(|l| l.is_finite())
            .collect();
        let loss_max = losses.iter().copied().fold(0.0f64, f64::max).max(1e-3) * 1.05;
        type Pick = fn(&EpochPoint) -> f64;
        let specs: [(&str, f64, f64, Pick); 2] = [
            ("test accuracy (%)", y0.min(90.0), 100.0, |p| {
                100.0 * p.test_accuracy
            }),
            ("training loss", 0.0, loss_max, |p| p.train_loss),
        ];
        for (area, (label, lo, hi, pick)) in panels.iter().zip(specs) {
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(52)
                .caption(label, ("sans-serif", 16))
                .build_cartesian_2d(1f64..epochs as f64, lo..hi)
                .map_err(plot_err)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(label)
                .draw()
                .map_err(plot_err)?;
            for (i, r) in runs.iter().enumerate() {
                let color = colors[i % colors.len()];
                chart
                    .draw_series(LineSeries::new(
                        r.curve.iter().map(|p| ((p.epoch + 1) as f64, pick(p))),
                        color.stroke_width(2),
                    ))
                    .map_err(plot_err)?
                    .label(r.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the training curves: {e:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny(kind_body: &str) -> Config {
        Config::parse(
            &format!(
                "[experiment]\nname = \"stgcn-tiny\"\nseed = 7\n[[task]]\nkind = \"stgcn\"\n{kind_body}"
            ),
            "tiny.toml",
        )
        .unwrap()
    }

    #[tokio::test]
    async fn mocap15_end_to_end() {
        let cfg = tiny(
            "architecture = \"STGCN-3-128\"\nwidth_divisor = 16\nactivations = [\"relu\", \"square\", \"poly\"]\nepochs = 1\nbatch_size = 8\nlearning_rate = 0.05\nclip_grad_norm = 5.0\nsave_models = true\ntrace_activations = true\nsquare = { from_relu = true, bn_init = [0.05, 1.0], learning_rate = 0.02 }\ndataset = { mocap15 = { train_per_class = 2, test_per_class = 1, frames = 12 } }\n",
        );
        let report = crate::run(&cfg).await.unwrap();
        let m = &report.metrics;
        for act in ["relu", "square", "poly"] {
            let acc = m[&format!("{act}.test_accuracy_pct")];
            assert!((0.0..=100.0).contains(&acc), "{act}: {acc}");
            assert!(m[&format!("{act}.final_train_loss")].is_finite());
            assert!(m[&format!("{act}.train_s")] >= 0.0);
            assert!(m[&format!("{act}.params_count")] > 0.0);
        }
        // Poly adds three coefficients per node and activation site: 3 blocks × 2 sites × 15.
        assert_eq!(
            m["poly.params_count"] - m["relu.params_count"],
            (3 * 2 * 3 * 15) as f64
        );
        let drop = m["poly.accuracy_drop_pp"];
        assert!((drop - (m["relu.test_accuracy_pct"] - m["poly.test_accuracy_pct"])).abs() < 1e-9);
        assert!(m.contains_key("square.accuracy_drop_pp"));
        assert!(!m.contains_key("relu.accuracy_drop_pp"));
        let files: std::collections::BTreeMap<_, _> =
            report.files.iter().map(|(n, b)| (n.as_str(), b)).collect();
        let svg = std::str::from_utf8(files["curves.svg"]).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("poly") && svg.contains("<polyline"));
        let csv = std::str::from_utf8(files["curves.csv"]).unwrap();
        assert_eq!(csv.lines().count(), 1 + 3);
        for act in ["relu", "square", "poly"] {
            assert!(m[&format!("{act}.train_per_clip_epoch_s")] > 0.0);
        }
        // Activation traces: before training and after the epoch, 3 blocks × 2 sites, 3 runs.
        let trace = std::str::from_utf8(files["activations.csv"]).unwrap();
        assert_eq!(trace.lines().count(), 1 + 2 * 6 * 3);
        assert!(trace.starts_with("run,epoch,block,site,mean,rms,max_abs"));
        // The square run started from the ReLU run's weights with the BN reset: its first
        // trace row (block 0, site 0, before training) has mean β = 1.
        let first_square: Vec<&str> = trace
            .lines()
            .find(|l| l.starts_with("square,0,0,0,"))
            .unwrap()
            .split(',')
            .collect();
        assert!((first_square[4].parse::<f64>().unwrap() - 1.0).abs() < 1e-9);
        let section = report.sections.join("\n");
        assert!(
            section.contains("starts from the trained ReLU model")
                && section.contains("learning rate 0.02"),
            "{section}"
        );
        // Saved models load back and reproduce the reported accuracy on the same test clips.
        let poly = StGcn::from_json_and_safetensors(
            std::str::from_utf8(files["poly.json"]).unwrap(),
            files["poly.safetensors"],
        )
        .unwrap();
        assert_eq!(poly.config().activation, ActivationKind::Poly);
        assert!(poly.config().input_norm.is_some());
        let data = load(
            &SkeletonData::Mocap15 {
                train_per_class: 2,
                test_per_class: 1,
                frames: 12,
                seed: None,
            },
            7,
        )
        .unwrap();
        let acc = evaluate(&poly, data.test.data_f64().view(), &data.test.labels)
            .unwrap()
            .accuracy;
        assert!((100.0 * acc - m["poly.test_accuracy_pct"]).abs() < 1e-9);
        assert!(report.sections.iter().any(|s| s.contains("cross-view")));
        assert!(report.notes.iter().any(|n| n.contains("InputNorm")));
        let dir = tempfile::tempdir().unwrap();
        let out = report.write(dir.path()).unwrap();
        assert!(out.join("curves.svg").exists() && out.join("relu.safetensors").exists());
    }

    #[tokio::test]
    async fn square_calibrated_from_relu_with_distillation() {
        let cfg = tiny(
            "width_divisor = 16\nactivations = [\"relu\", \"square\"]\nepochs = 2\nbatch_size = 8\nlearning_rate = 0.05\nclip_grad_norm = 1.0\nsquare = { from_relu = true, calibrate = true, distill = { temperature = 4.0, weight = 0.7 }, epochs = 1 }\ndataset = { mocap15 = { train_per_class = 2, test_per_class = 1, frames = 12 } }\n",
        );
        let report = crate::run(&cfg).await.unwrap();
        let m = &report.metrics;
        let initial = m["square.initial_test_accuracy_pct"];
        assert!((0.0..=100.0).contains(&initial), "{initial}");
        assert!(!m.contains_key("relu.initial_test_accuracy_pct"));
        assert!(m["square.final_train_loss"].is_finite());
        let section = report.sections.join("\n");
        assert!(
            section.contains("calibrated per channel")
                && section.contains("knowledge distillation from the ReLU model (temperature 4")
                && section.contains("right after the activation replacement"),
            "{section}"
        );
    }

    #[tokio::test]
    async fn bodypose_single_frame_with_label() {
        let cfg = tiny(
            "label = \"bp\"\nwidth_divisor = 16\nactivations = [\"relu\", \"poly\"]\nepochs = 1\nbatch_size = 16\nlearning_rate = 0.05\nclip_grad_norm = 1.0\ndataset = { bodypose = { test_fraction = 0.9 } }\n",
        );
        let report = crate::run(&cfg).await.unwrap();
        let m = &report.metrics;
        // T = 1 trains: well above the 5 % of guessing among 20 classes after one epoch.
        assert!(m["relu_bp.test_accuracy_pct"] > 20.0, "{m:?}");
        assert!((0.0..=100.0).contains(&m["poly_bp.test_accuracy_pct"]));
        assert!(m.contains_key("poly_bp.accuracy_drop_pp"));
        assert!(!m.contains_key("poly.test_accuracy_pct"));
        assert!(report.files.iter().any(|(n, _)| n == "curves_bp.svg"));
        assert!(!report
            .files
            .iter()
            .any(|(n, _)| n.ends_with(".safetensors")));
        assert!(report.notes.iter().any(|n| n.contains("T = 1")));
    }

    #[test]
    fn bad_settings_are_rejected() {
        let base = "epochs = 1\nlearning_rate = 0.1\ndataset = { mocap15 = { train_per_class = 1, test_per_class = 1 } }\n";
        for (extra, needle) in [
            ("activations = [\"relu\", \"relu\"]\n", "twice"),
            ("activations = []\n", "at least one"),
            ("width_divisor = 0\n", "width_divisor"),
            ("clip_grad_norm = -1.0\n", "clip_grad_norm"),
            (
                "activations = [\"square\", \"relu\"]\nsquare = { from_relu = true }\n",
                "from_relu",
            ),
            ("square = { learning_rate = 0.0 }\n", "square.learning_rate"),
            ("square = { calibrate = true }\n", "square.calibrate"),
            (
                "activations = [\"relu\", \"square\"]\nsquare = { from_relu = true, calibrate = true, bn_init = [0.45, 0.56] }\n",
                "exclude",
            ),
            (
                "activations = [\"relu\", \"square\"]\nsquare = { distill = { temperature = 4.0, weight = 1.5 } }\n",
                "square.distill.weight",
            ),
            (
                "activations = [\"square\"]\nsquare = { distill = { temperature = 4.0, weight = 0.5 } }\n",
                "square.distill needs",
            ),
        ] {
            let e = Config::parse(
                &format!("[experiment]\nname = \"x\"\n[[task]]\nkind = \"stgcn\"\n{extra}{base}"),
                "c.toml",
            )
            .unwrap_err();
            let msg = format!("{e:#}");
            assert!(msg.contains(needle) && msg.contains("c.toml"), "{msg}");
        }
        let e = Config::parse(
            &format!("[experiment]\nname = \"x\"\n[[task]]\nkind = \"stgcn\"\nactivations = [\"gelu\"]\n{base}"),
            "c.toml",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("gelu"));
    }

    /// The models under `experiments/models/` load and reproduce the test accuracies that
    /// `models/accuracies.json` (and the README table) records, on regenerated test sets; every
    /// model file in the folder is listed there.
    #[test]
    fn committed_models_reproduce_their_accuracy() {
        #[derive(Deserialize)]
        struct Entry {
            stem: String,
            data: String,
            activation: ActivationKind,
            correct: usize,
            of: usize,
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let entries: Vec<Entry> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("accuracies.json")).unwrap())
                .unwrap();
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".safetensors").map(str::to_string)
            })
            .collect();
        files.sort();
        let mut listed: Vec<String> = entries.iter().map(|e| e.stem.clone()).collect();
        listed.sort();
        assert_eq!(files, listed, "model files vs accuracies.json");
        let mocap = load(
            &SkeletonData::Mocap15 {
                train_per_class: 40,
                test_per_class: 20,
                frames: 32,
                seed: None,
            },
            42,
        )
        .unwrap();
        let bodypose = load(
            &SkeletonData::Bodypose {
                test_fraction: 0.2,
                normalization: BodyPoseNorm::AsProvided,
            },
            42,
        )
        .unwrap();
        for e in &entries {
            let data = match e.data.as_str() {
                "mocap15" => &mocap,
                "bodypose" => &bodypose,
                other => panic!("{}: unknown data {other:?}", e.stem),
            };
            let json = std::fs::read_to_string(dir.join(format!("{}.json", e.stem))).unwrap();
            let bytes = std::fs::read(dir.join(format!("{}.safetensors", e.stem))).unwrap();
            assert!(bytes.len() < 1 << 20, "{}: {} bytes", e.stem, bytes.len());
            let model = StGcn::from_json_and_safetensors(&json, &bytes).unwrap();
            assert_eq!(model.config().activation, e.activation, "{}", e.stem);
            assert_eq!(data.test.len(), e.of, "{}", e.stem);
            let acc = evaluate(&model, data.test.data_f64().view(), &data.test.labels)
                .unwrap()
                .accuracy;
            let n = data.test.len() as f64;
            assert!(
                (acc * n - e.correct as f64).abs() < 1e-6,
                "{}: {acc} of {n}",
                e.stem
            );
        }
    }
}
