//! The model-specific halves of a job: what a standardization or an evaluation does, and the
//! architecture of an ST-GCN or MLP job (re-exported from [`crate::proto`]).

use crate::ids::EntryId;
use serde::{Deserialize, Serialize};

/// What a standardization job does beyond the new version of the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardizeSpec {
    /// Send each party's shares of the statistics (means, then standard deviations, of every
    /// standardized column) to the owner alone; otherwise they stay shared on the parties.
    pub reveal_stats: bool,
    /// Standardize the label column too (a regression target: the model is then trained in
    /// standardized units and evaluated or used in the original ones); classifiers refuse a
    /// dataset whose label was standardized.
    pub label: bool,
}

/// A trained model applied to a dataset: what is revealed to the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluateSpec {
    /// The model entry (the job that trained it), a model of the owner's.
    pub model: EntryId,
    /// `false`: the metrics (MSE for a linear regression; accuracy and log-loss for a logistic
    /// regression or an MLP); `true`: the model's output on every row (original units for a regression
    /// trained on standardized data, the sigmoid's probability for a logistic regression, the
    /// class scores for an MLP).
    pub predict: bool,
}

/// A trained model of the owner whose standardization (of its training set's features, and of
/// a regression target) is folded into its first weight matrix in 2PC (`ml::ops::fold`): the
/// owner receives the shares of the folded weights only (`party reveal`), never the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FoldSpec {
    /// The model entry (the job that trained it), trained on a standardized dataset.
    pub model: EntryId,
}

/// A public ST-GCN model file as a job's starting point: the two halves of the files
/// `stgcn::StGcn::from_json_and_safetensors` loads.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitModel {
    /// The JSON configuration.
    pub config_json: String,
    /// The safetensors weights.
    pub safetensors: Vec<u8>,
}

impl std::fmt::Debug for InitModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InitModel")
            .field("config_json_bytes", &self.config_json.len())
            .field("safetensors_bytes", &self.safetensors.len())
            .finish()
    }
}

/// The architecture and optimizer of an ST-GCN job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StgcnSpec {
    /// The public model to fine-tune; `None` trains `architecture` from scratch.
    pub init: Option<InitModel>,
    /// Architecture name (`stgcn::Architecture`, e.g. `STGCN-3-128`) when training from
    /// scratch; checked against `init` otherwise.
    pub architecture: String,
    /// Every channel width divided by this (from scratch).
    pub width_divisor: u32,
    /// Activation from scratch: `square` (x²) or `poly` (node-wise `a·x² + b·x + c`).
    pub activation: String,
    /// Seed of the public initial weights (from scratch).
    pub init_seed: u64,
    /// SGD momentum (e.g. 0.9).
    pub momentum: f64,
    /// L2 weight decay (0 for none).
    pub weight_decay: f64,
    /// Number of classes when training from scratch on a dataset without class names (the
    /// label values must lie in `0..classes`); checked against the class names or `init`.
    #[serde(default)]
    pub classes: Option<u32>,
    /// Training clips on which every BN is re-calibrated in 2PC before the first step
    /// (`ml::models::stgcn::calibrate`: per-channel statistics of those clips on shares; the
    /// clips are `ml::models::stgcn::calibration_rows(rows, k, schedule_seed)`); 0 = keep the
    /// starting model's statistics.
    #[serde(default)]
    pub calibration_clips: u32,
}

/// The architecture of an MLP job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MlpSpec {
    /// Layer widths, input first: the dataset's feature count, the hidden widths, and the number
    /// of classes `k` (the label column holds class indices `0..k`; the parties turn it into
    /// one-hot rows by secure comparisons).
    pub layers: Vec<u32>,
    /// The output normalization (SecureML's ReLU normalization or the exp softmax).
    pub softmax: ml::backend::SoftmaxKind,
    /// Seed of the public initial weights (`ml::models::mlp::init_weights`; the owner's
    /// plaintext twin starts from the same weights).
    pub init_seed: u64,
}
