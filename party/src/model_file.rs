//! The one conversion between an ST-GCN model and the share column of a trained ST-GCN model
//! entry ([`crate::proto::ModelMeta::Stgcn`]), and the model files (`NAME.json` +
//! `NAME.safetensors`) that `[inference]` loads and `party reveal` writes.
//!
//! The column holds every tensor of [`StGcn::tensors`] in that order, each flattened row-major
//! (C order); the configuration (the JSON half of the model file) is public and travels beside
//! it in the clear. Reveal (the owner reconstructs), deploy (the serving party reconstructs) and
//! the training job (which stores such entries) all go through [`stgcn_column`] and
//! [`stgcn_from_column`], so plaintext-trained, 2PC-trained and served models are one format.
//!
//! Security: none by itself — these functions see plaintext weights and run only where the
//! weights may be known (the model's owner, or the party the owner deployed the model to).
//! Decoding checks every value (finite) and the length against the configuration before a
//! model is built, with errors naming both lengths, or the index, tensor and value.

use ndarray::{ArrayD, IxDyn};
use std::path::{Path, PathBuf};
use stgcn::StGcn;

/// Why a column or a model file could not be turned into a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelFileError {
    /// The column's length is not what the configuration's tensors take.
    #[error("model column has {found} values, the configuration's tensors take {expected}")]
    Length {
        /// Values the configuration's tensors take together.
        expected: usize,
        /// Values in the column.
        found: usize,
    },
    /// A value is NaN or infinite.
    #[error("model column value {index} (tensor {tensor:?}) is {value}, not a finite number")]
    NonFinite {
        /// Index in the column.
        index: usize,
        /// The tensor it belongs to.
        tensor: String,
        /// The value.
        value: f64,
    },
    /// The configuration is invalid or a tensor does not fit it.
    #[error("{what}: {source}")]
    Model {
        /// What was being done.
        what: String,
        /// The model's error.
        #[source]
        source: stgcn::ModelError,
    },
    /// A field of a model file is missing, malformed or out of its limits.
    #[error("{path}: {field} = {value}: {limit}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The field (a JSON key path, or a tensor name).
        field: String,
        /// The value found.
        value: String,
        /// What the field must be.
        limit: String,
    },
    /// A model file is not the JSON its format describes.
    #[error("{path}: not a {format} file: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The expected format.
        format: &'static str,
        /// The parser's error (line and column).
        #[source]
        source: serde_json::Error,
    },
    /// A model file could not be written or read.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Result of model-file operations.
pub type Result<T, E = ModelFileError> = std::result::Result<T, E>;

fn model_err(what: impl Into<String>) -> impl FnOnce(stgcn::ModelError) -> ModelFileError {
    let what = what.into();
    move |source| ModelFileError::Model { what, source }
}

/// Every tensor of `m` in [`StGcn::tensors`] order, each flattened row-major: the plaintext of
/// a trained ST-GCN entry's share column.
pub fn stgcn_column(m: &StGcn) -> Vec<f64> {
    let mut out = Vec::with_capacity(column_len(m));
    for t in m.tensors() {
        out.extend(t.value.iter().copied());
    }
    out
}

/// Values in the column of `m` (all its tensors together).
pub fn column_len(m: &StGcn) -> usize {
    m.tensors().iter().map(|t| t.value.len()).sum()
}

/// The model the configuration `config_json` describes, with its tensors read from `column`
/// (by name and shape, via [`StGcn::set_tensor`]).
///
/// # Errors
/// [`ModelFileError::Model`] for an invalid configuration, [`ModelFileError::Length`] naming
/// both lengths, [`ModelFileError::NonFinite`] naming the index, tensor and value.
pub fn stgcn_from_column(config_json: &str, column: &[f64]) -> Result<StGcn> {
    let cfg = stgcn::StGcnConfig::from_json(config_json)
        .map_err(model_err("the model's JSON configuration"))?;
    // The seed only fills tensors that are all replaced below.
    let mut m = StGcn::new(cfg, 0).map_err(model_err("building the configured model"))?;
    let expected = column_len(&m);
    if column.len() != expected {
        return Err(ModelFileError::Length {
            expected,
            found: column.len(),
        });
    }
    let shapes: Vec<(String, Vec<usize>)> = m
        .tensors()
        .iter()
        .map(|t| (t.name.clone(), t.value.shape().to_vec()))
        .collect();
    let mut at = 0;
    for (name, shape) in shapes {
        let n: usize = shape.iter().product();
        let values = &column[at..at + n];
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelFileError::NonFinite {
                index: at + i,
                tensor: name,
                value: values[i],
            });
        }
        let t = ArrayD::from_shape_vec(IxDyn(&shape), values.to_vec())
            .expect("the length is the shape's product");
        m.set_tensor(&name, t)
            .map_err(model_err(format!("tensor {name:?}")))?;
        at += n;
    }
    Ok(m)
}

/// The two files of the model at `out` (`DIR/NAME`): `DIR/NAME.json` and
/// `DIR/NAME.safetensors` (an extension `out` has is replaced).
pub fn file_paths(out: &Path) -> (PathBuf, PathBuf) {
    (
        out.with_extension("json"),
        out.with_extension("safetensors"),
    )
}

/// Writes `m` as `NAME.json` + `NAME.safetensors` at `out` (see [`file_paths`]), the format
/// `[inference]` loads ([`StGcn::from_json_and_safetensors`]); returns the two paths.
///
/// # Errors
/// [`ModelFileError::Model`] when the model does not serialize, [`ModelFileError::Io`].
pub fn write_files(m: &StGcn, out: &Path) -> Result<(PathBuf, PathBuf)> {
    let (json, weights) = file_paths(out);
    let text = m
        .config_json()
        .map_err(model_err("serializing the configuration"))?;
    let bytes = m
        .to_safetensors_bytes()
        .map_err(model_err("serializing the weights"))?;
    for (path, b) in [(&json, text.as_bytes()), (&weights, &bytes[..])] {
        std::fs::write(path, b).map_err(|source| ModelFileError::Io {
            op: "write",
            path: path.clone(),
            source,
        })?;
    }
    Ok((json, weights))
}

/// Reads the model at `out` (`NAME.json` + `NAME.safetensors`, see [`file_paths`]).
///
/// # Errors
/// [`ModelFileError::Io`], [`ModelFileError::Model`] naming the file.
pub fn read_files(out: &Path) -> Result<StGcn> {
    let (json, weights) = file_paths(out);
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|source| ModelFileError::Io {
            op: "read",
            path: p.clone(),
            source,
        })
    };
    let text = String::from_utf8(read(&json)?).map_err(|e| ModelFileError::Io {
        op: "read",
        path: json.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    StGcn::from_json_and_safetensors(&text, &read(&weights)?)
        .map_err(model_err(format!("loading {}", json.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use stgcn::{spatial_partition, Architecture, StGcnConfig};

    /// A small two-block model with node-wise polynomial activations (all tensor kinds: conv
    /// weights and biases, edge importance, BN parameters and statistics, activation
    /// coefficients, a residual convolution, the classifier).
    fn small(seed: u64) -> StGcn {
        let (c, t, v) = (3, 4, 5);
        let edges: Vec<(usize, usize)> = (0..v - 1).map(|i| (i, i + 1)).collect();
        let a = spatial_partition(v, &edges, 1).unwrap();
        let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 32, c, t, &a, 4);
        cfg.architecture = None;
        cfg.blocks.truncate(2);
        cfg.activation_mask.truncate(2);
        cfg.activation = stgcn::ActivationKind::Poly;
        let mut m = StGcn::new(cfg, seed).unwrap();
        // Distinct values in every tensor, BN statistics included.
        let names: Vec<String> = m.tensors().iter().map(|t| t.name.clone()).collect();
        for (k, name) in names.iter().enumerate() {
            let v = m.tensor(name).unwrap().mapv(|x| x + 0.01 * k as f64 + 0.5);
            m.set_tensor(name, v).unwrap();
        }
        m
    }

    #[test]
    fn column_round_trips_every_tensor_in_order() {
        let m = small(3);
        let col = stgcn_column(&m);
        assert_eq!(col.len(), column_len(&m));
        // The first tensor's first value leads the column, the last tensor's last ends it.
        let ts = m.tensors();
        assert_eq!(col[0], *ts[0].value.iter().next().unwrap());
        assert_eq!(
            *col.last().unwrap(),
            *ts.last().unwrap().value.iter().last().unwrap()
        );
        let back = stgcn_from_column(&m.config_json().unwrap(), &col).unwrap();
        for (a, b) in m.tensors().iter().zip(back.tensors()) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.value, b.value, "{}", a.name);
        }
        assert_eq!(back.config_json().unwrap(), m.config_json().unwrap());
    }

    #[test]
    fn a_column_of_the_wrong_length_is_refused_naming_both_lengths() {
        let m = small(1);
        let json = m.config_json().unwrap();
        let mut col = stgcn_column(&m);
        let n = col.len();
        col.push(0.0);
        let e = stgcn_from_column(&json, &col).unwrap_err();
        assert!(
            matches!(e, ModelFileError::Length { expected, found } if expected == n && found == n + 1)
        );
        let text = e.to_string();
        assert!(
            text.contains(&format!("{}", n + 1)) && text.contains(&n.to_string()),
            "{text}"
        );
        col.truncate(n - 2);
        assert!(matches!(
            stgcn_from_column(&json, &col),
            Err(ModelFileError::Length { expected, found }) if expected == n && found == n - 2
        ));
    }

    #[test]
    fn non_finite_values_are_refused_naming_index_tensor_and_value() {
        let m = small(2);
        let json = m.config_json().unwrap();
        let first = m.tensors()[0].value.len();
        for (at, bad) in [
            (0, f64::NAN),
            (first + 1, f64::INFINITY),
            (first, f64::NEG_INFINITY),
        ] {
            let mut col = stgcn_column(&m);
            col[at] = bad;
            let e = stgcn_from_column(&json, &col).unwrap_err();
            let want = if at < first { 0 } else { 1 };
            match &e {
                ModelFileError::NonFinite { index, tensor, .. } => {
                    assert_eq!(*index, at);
                    assert_eq!(tensor, &m.tensors()[want].name);
                }
                other => panic!("{other:?}"),
            }
            assert!(e.to_string().contains(&format!("value {at}")), "{e}");
        }
    }

    #[test]
    fn an_invalid_configuration_is_refused() {
        let m = small(2);
        let col = stgcn_column(&m);
        assert!(matches!(
            stgcn_from_column("{\"not\": \"a model\"}", &col),
            Err(ModelFileError::Model { .. })
        ));
    }

    #[test]
    fn files_round_trip_through_the_inference_format() {
        let dir = tempfile::tempdir().unwrap();
        let m = small(4);
        let (json, weights) = write_files(&m, &dir.path().join("net")).unwrap();
        assert_eq!(json, dir.path().join("net.json"));
        assert_eq!(weights, dir.path().join("net.safetensors"));
        let back = StGcn::from_json_and_safetensors(
            &std::fs::read_to_string(&json).unwrap(),
            &std::fs::read(&weights).unwrap(),
        )
        .unwrap();
        assert_eq!(stgcn_column(&back), stgcn_column(&m));
        assert_eq!(
            stgcn_column(&read_files(&dir.path().join("net")).unwrap()),
            stgcn_column(&m)
        );
        let e = read_files(&dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("none.json"), "{e}");
    }
}
