//! Settings of the `stgcn` task (plaintext ST-GCN training with ReLU, `x²` and polynomial
//! activations): the task table, its dataset, activation and schedule choices, their serde
//! defaults and the checks run when a config is parsed.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use stgcn::{ActivationKind, Architecture, LrSchedule};

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
    /// Linear learning-rate warm-up epochs of every run ([`stgcn::TrainConfig::warmup_epochs`]).
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Settings that apply to the `square` run only.
    #[serde(default)]
    pub square: SquareSettings,
    /// After every epoch, log the RMS and largest magnitude of the inputs of every activation
    /// site ([`stgcn::StGcn::activation_input_stats`] on the first 64 training clips) and write them
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
    /// ([`stgcn::StGcn::init_pre_activation_bn`]; default: `γ = 1, β = 0`).
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
        /// Other camera views instead of the cross-view split (e.g. to pretrain a public model
        /// on clips the private ±45° / 0° data does not contain).
        #[serde(default)]
        views: Option<OtherViews>,
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

/// Mocap-15 clips seen from other cameras than the cross-view split's (±45° train, 0° test):
/// sample `i` of each class is seen from `angles_deg[i % len]`, training clips from random
/// stream [`OTHER_VIEWS_TRAIN_STREAM`] and held-out clips from [`OTHER_VIEWS_TEST_STREAM`] of the
/// generator, which the cross-view (1, 2) and random-view (3, 4) splits never use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtherViews {
    /// Camera yaw angles, degrees; none of them may be −45, 0 or 45.
    pub angles_deg: Vec<f64>,
}

/// Generator stream of the training clips of [`OtherViews`].
pub const OTHER_VIEWS_TRAIN_STREAM: u64 = 5;
/// Generator stream of the held-out clips of [`OtherViews`].
pub const OTHER_VIEWS_TEST_STREAM: u64 = 6;

impl OtherViews {
    /// Checks that there is at least one angle, all finite and none a cross-view camera.
    pub fn validate(&self) -> Result<()> {
        if self.angles_deg.is_empty() {
            bail!("mocap15.views.angles_deg must name at least one angle");
        }
        for (i, a) in self.angles_deg.iter().enumerate() {
            if !a.is_finite() || [-45.0, 0.0, 45.0].contains(a) {
                bail!(
                    "mocap15.views.angles_deg[{i}] = {a} must be finite and not a cross-view camera (-45, 0, 45)"
                );
            }
        }
        Ok(())
    }
}

/// Keypoint normalisation of BodyPose (see [`datasets::skeleton::BodyPoseNormalization`]).
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

    /// The model's activation.
    pub(crate) fn kind(self) -> ActivationKind {
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
    /// The trainer's schedule.
    pub(crate) fn to_lr(&self) -> LrSchedule {
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

impl super::Task {
    /// The skeleton data of a task that trains on clips, with the task's own seed (which fixes
    /// the BodyPose split; the experiment seed when `None`); `None` for the other tasks.
    /// `experiment export` writes these sets for `share-upload`.
    pub fn skeleton(&self) -> Option<(&SkeletonData, Option<u64>)> {
        match self {
            super::Task::Stgcn(t) => Some((&t.dataset, t.seed)),
            _ => None,
        }
    }
}

impl StgcnTask {
    /// Checks the settings (called by config validation); errors name the field and value.
    pub fn validate(&self) -> Result<()> {
        self.validate_training()?;
        self.validate_square()?;
        self.validate_schedule_and_data()
    }

    /// The task-wide training settings, activations, label and `poly_init`.
    fn validate_training(&self) -> Result<()> {
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
        Ok(())
    }

    /// The `square` settings and the order of activations they depend on.
    fn validate_square(&self) -> Result<()> {
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
        Ok(())
    }

    /// The schedule's factor and the data set's sizes.
    fn validate_schedule_and_data(&self) -> Result<()> {
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
                views,
                ..
            } => {
                if let Some(v) = views {
                    v.validate()?;
                }
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

    /// Metric and file name of the run of `a` (`relu`, or `relu_<label>` with a label).
    pub(crate) fn run_name(&self, a: Activation) -> String {
        if self.label.is_empty() {
            a.name().to_string()
        } else {
            format!("{}_{}", a.name(), self.label)
        }
    }

    /// Suffix of the task's file names (`_<label>`, or empty).
    pub(crate) fn file_suffix(&self) -> String {
        if self.label.is_empty() {
            String::new()
        } else {
            format!("_{}", self.label)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

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
}
