//! The model file of a revealed linear regression, logistic regression or MLP: the documented
//! JSON format `dyad-model/2` that `party reveal --out model.json` writes and [`LinearModel::read`]
//! loads (the one loader, for `party` and the `experiments` runner; it reads `dyad-model/1`
//! files too, whose `preprocessing` is always null).
//!
//! ```json
//! {
//!   "format": "dyad-model/2",
//!   "kind": "logreg",                     // linreg | logreg | mlp
//!   "features": 30,                       // input columns (the label excluded)
//!   "layers": [30, 1],                    // widths, input first ([features, 1] for regressions)
//!   "intercept": true,                    // every weight matrix has a last bias row
//!   "classes": 2,                         // logreg: 2, mlp: layers[last], linreg: null
//!   "softmax": null,                      // mlp: "relu" | "exp"
//!   "frac_bits": 16,                      // fixed point the model was trained in
//!   "job": "…32 hex digits…",             // the training job (the model's entry id)
//!   "dataset": { "name": "cancer", "id": "…", "rows": 455 },
//!   "training": { "learning_rate": 0.25, "batch_size": 32, "epochs": 10,
//!                 "schedule_seed": 1, "init_seed": null, "triples": "ot" },
//!   "preprocessing": null,                // or what was folded into the weights, see below
//!   "weights": [[[0.1], [0.2], …]],       // per weight matrix, its rows; or null and
//!   "weights_file": null                  // "NAME.safetensors" beside the JSON: F64 tensors
//! }                                       // "layer0", "layer1", … of the same shapes
//! ```
//!
//! Weight matrix `i` is `(layers[i] + intercept) × layers[i+1]`, the bias last: a regression's
//! prediction is `[x | 1]·w`, an MLP's `relu` between layers (see `ml::models::mlp::predict`).
//!
//! `preprocessing` is null for a model trained on raw data. A model trained on standardized
//! data is revealed with the standardization folded into its first weight matrix in 2PC (the
//! `Fold` job): it takes raw inputs, and a regression trained on a standardized target predicts
//! in the target's original units. Such a model has `"intercept": true` (folding gives the
//! first matrix a bias row; later MLP layers get a zero one if they had none) and
//!
//! ```json
//! "preprocessing": {
//!   "standardization": "…32 hex digits…", // the job (or upload) that standardized the data
//!   "folded": true,                       // the weights take raw inputs (always true)
//!   "columns": [0, 1, 2, 3],              // the training set's standardized columns
//!   "label": true                         // the target was standardized (outputs unscaled)
//! }
//! ```
//!
//! The statistics themselves are not in the file: the owner has them only if the
//! standardization revealed them (`party standardize --reveal-stats`, or a local
//! `share-upload --standardize`).
//! Models of at most [`INLINE_MAX_WEIGHTS`] weights carry them inline, larger ones in the
//! safetensors side file (the paths of [`crate::model_file::file_paths`]).
//!
//! Security: none by itself — the file holds plaintext weights and is written only by the
//! model's owner after a reveal. Reading checks every field, shape and value (finite) before a
//! model is built, with errors naming the file, the field, the value and the limit.

use crate::model_file::{file_paths, ModelFileError, Result};
use crate::proto::{EntryId, LinearModelMeta};
use ml::backend::SoftmaxKind;
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The format tag of the files this module writes (and reads).
pub const FORMAT: &str = "dyad-model/2";
/// The earlier format tag it still reads (`preprocessing` always null).
pub const FORMAT_V1: &str = "dyad-model/1";
/// Models with at most this many weights keep them inline in the JSON.
pub const INLINE_MAX_WEIGHTS: usize = 4096;

/// A revealed linear model or MLP with its description.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearModel {
    /// The job that trained it (its entry id).
    pub job: EntryId,
    /// What it is and how it was trained.
    pub meta: LinearModelMeta,
    /// The fixed-point fractional bits it was trained with.
    pub frac_bits: u32,
    /// The weight matrices, `(layers[i] + intercept) × layers[i+1]`.
    pub weights: Vec<Array2<f64>>,
    /// What was folded into the weights (`None`: trained on raw data).
    pub preprocessing: Option<Preprocessing>,
}

/// The standardization folded into a model's weights (the file's `preprocessing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    /// The job (or upload) that standardized the training set, 32 hex digits.
    pub standardization: String,
    /// The weights take raw inputs (always `true` in files this module writes).
    pub folded: bool,
    /// The training set's standardized columns (0-based, ascending).
    pub columns: Vec<u64>,
    /// Whether the target was standardized too (a regression's outputs are unscaled).
    pub label: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Doc {
    format: String,
    kind: String,
    features: u64,
    layers: Vec<u64>,
    intercept: bool,
    classes: Option<u64>,
    #[serde(default)]
    softmax: Option<SoftmaxKind>,
    frac_bits: u32,
    job: String,
    dataset: DatasetDoc,
    training: TrainingDoc,
    #[serde(default)]
    preprocessing: Option<serde_json::Value>,
    #[serde(default)]
    weights: Option<Vec<Vec<Vec<f64>>>>,
    #[serde(default)]
    weights_file: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DatasetDoc {
    name: String,
    id: String,
    rows: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingDoc {
    learning_rate: f64,
    batch_size: u64,
    epochs: u64,
    schedule_seed: u64,
    init_seed: Option<u64>,
    triples: String,
}

impl LinearModel {
    /// The model revealed from its entry's column (`column`: every weight matrix row-major,
    /// one after the other, as the job stores it).
    ///
    /// # Errors
    /// [`ModelFileError::Length`] when the column is not exactly the weights `meta` describes,
    /// [`ModelFileError::NonFinite`] for a NaN or infinite weight.
    pub fn from_column(
        job: EntryId,
        meta: LinearModelMeta,
        frac_bits: u32,
        column: ArrayView2<'_, f64>,
    ) -> Result<Self> {
        let dims = weight_dims(&meta.layers, meta.intercept);
        let expected: usize = dims.iter().map(|(r, c)| r * c).sum();
        if column.ncols() != 1 || column.nrows() != expected {
            return Err(ModelFileError::Length {
                expected,
                found: column.len(),
            });
        }
        let values: Vec<f64> = column.iter().copied().collect();
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelFileError::NonFinite {
                index: i,
                tensor: format!("{} weights", meta.kind),
                value: values[i],
            });
        }
        let mut at = 0;
        let weights = dims
            .iter()
            .map(|&(r, c)| {
                let w = Array2::from_shape_vec((r, c), values[at..at + r * c].to_vec());
                at += r * c;
                w.expect("the column holds exactly these shapes")
            })
            .collect();
        Ok(Self {
            job,
            meta,
            frac_bits,
            weights,
            preprocessing: None,
        })
    }

    /// The model revealed from the column of the `Fold` job (`column`: every weight matrix with
    /// its bias row, the standardization `st` folded into the first), for raw inputs.
    ///
    /// # Errors
    /// As [`LinearModel::from_column`].
    pub fn folded(
        job: EntryId,
        mut meta: LinearModelMeta,
        frac_bits: u32,
        st: &crate::proto::StandardizationInfo,
        column: ArrayView2<'_, f64>,
    ) -> Result<Self> {
        meta.intercept = true;
        let mut m = Self::from_column(job, meta, frac_bits, column)?;
        m.preprocessing = Some(Preprocessing {
            standardization: st.origin.to_string(),
            folded: true,
            columns: st.columns.clone(),
            label: st.label,
        });
        Ok(m)
    }

    /// Number of weights (all matrices).
    pub fn weight_count(&self) -> usize {
        self.weights.iter().map(|w| w.len()).sum()
    }

    /// The model's outputs on raw features `x` (`n × features`): a linear regression's
    /// predictions, a logistic regression's logits (class 1 when ≥ 0), an MLP's last-layer
    /// pre-activations (the class is the argmax).
    ///
    /// # Errors
    /// [`ModelFileError::Field`] when `x` does not have `features` columns.
    pub fn outputs(&self, x: &Array2<f64>) -> Result<Array2<f64>> {
        let d = self.meta.layers[0] as usize;
        if x.ncols() != d {
            return Err(ModelFileError::Field {
                path: PathBuf::from("(input)"),
                field: "features".into(),
                value: x.ncols().to_string(),
                limit: format!("the model takes {d} feature columns"),
            });
        }
        let mut h = x.clone();
        for (i, w) in self.weights.iter().enumerate() {
            if self.meta.intercept {
                h = ml::models::bias::append_ones_plain(&h);
            }
            h = h.dot(w);
            if i + 1 < self.weights.len() {
                h.mapv_inplace(|v| v.max(0.0));
            }
        }
        Ok(h)
    }

    /// Writes the model at `out` (`DIR/NAME`): `NAME.json`, and `NAME.safetensors` when it has
    /// more than [`INLINE_MAX_WEIGHTS`] weights; returns the paths written.
    ///
    /// # Errors
    /// [`ModelFileError::Io`]; [`ModelFileError::Field`] if the weights do not serialize.
    pub fn write(&self, out: &Path) -> Result<Vec<PathBuf>> {
        let (json, side) = file_paths(out);
        let inline = self.weight_count() <= INLINE_MAX_WEIGHTS;
        let mut doc = self.doc();
        let mut written = Vec::new();
        if inline {
            doc.weights = Some(
                self.weights
                    .iter()
                    .map(|w| w.rows().into_iter().map(|r| r.to_vec()).collect())
                    .collect(),
            );
        } else {
            let bytes = safetensors_bytes(&self.weights).map_err(|e| ModelFileError::Field {
                path: side.clone(),
                field: "weights".into(),
                value: e.to_string(),
                limit: "F64 tensors layer0, layer1, …".into(),
            })?;
            write_file(&side, &bytes)?;
            doc.weights_file = side.file_name().map(|n| n.to_string_lossy().into_owned());
            written.push(side);
        }
        let text = serde_json::to_string_pretty(&doc).expect("model documents serialize");
        write_file(&json, text.as_bytes())?;
        written.insert(0, json);
        Ok(written)
    }

    fn doc(&self) -> Doc {
        let m = &self.meta;
        let parse_seed = |s: &str| s.parse::<u64>().unwrap_or_default();
        Doc {
            format: FORMAT.into(),
            kind: m.kind.clone(),
            features: m.layers[0],
            layers: m.layers.clone(),
            intercept: m.intercept,
            classes: match m.kind.as_str() {
                "logreg" => Some(2),
                "mlp" => m.layers.last().copied(),
                _ => None,
            },
            softmax: m.softmax,
            frac_bits: self.frac_bits,
            job: self.job.to_string(),
            dataset: DatasetDoc {
                name: m.dataset.clone(),
                id: m.dataset_id.to_string(),
                rows: m.rows,
            },
            training: TrainingDoc {
                learning_rate: m.learning_rate,
                batch_size: m.batch_size,
                epochs: m.epochs,
                schedule_seed: parse_seed(&m.schedule_seed),
                init_seed: m.init_seed.as_deref().map(parse_seed),
                triples: m.triples.name().into(),
            },
            preprocessing: self
                .preprocessing
                .as_ref()
                .map(|p| serde_json::to_value(p).expect("preprocessing serializes")),
            weights: None,
            weights_file: None,
        }
    }

    /// Reads a model file written by [`LinearModel::write`] (`path`: the JSON; a side file is
    /// looked up beside it).
    ///
    /// # Errors
    /// [`ModelFileError::Io`], [`ModelFileError::Json`], [`ModelFileError::Field`] naming the
    /// file, field, value and limit, [`ModelFileError::NonFinite`].
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|source| ModelFileError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let doc: Doc = serde_json::from_slice(&text).map_err(|source| ModelFileError::Json {
            path: path.to_path_buf(),
            format: FORMAT,
            source,
        })?;
        read::from_doc(path, doc)
    }
}

/// Shapes of the weight matrices of layer widths `layers`, a bias row each with `intercept`.
pub fn weight_dims(layers: &[u64], intercept: bool) -> Vec<(usize, usize)> {
    let extra = usize::from(intercept);
    layers
        .windows(2)
        .map(|w| (w[0] as usize + extra, w[1] as usize))
        .collect()
}

fn safetensors_bytes(ws: &[Array2<f64>]) -> std::result::Result<Vec<u8>, String> {
    let bytes: Vec<Vec<u8>> = ws
        .iter()
        .map(|w| w.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(ws.len());
    for (i, (w, b)) in ws.iter().zip(&bytes).enumerate() {
        let shape = vec![w.nrows(), w.ncols()];
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F64, shape, b)
            .map_err(|e| e.to_string())?;
        views.push((format!("layer{i}"), view));
    }
    safetensors::serialize(views, &None).map_err(|e| e.to_string())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| ModelFileError::Io {
        op: "write",
        path: path.to_path_buf(),
        source,
    })
}

/// Field-by-field checks of a read document.
mod read;
#[cfg(test)]
mod tests;
