//! Skeleton clips as `share-upload` reads them: a rank-5 `.npy` array `(N, C, T, V, M)` (the
//! ST-GCN layout: clips, coordinates, frames, joints, persons; `f4`, `f8` or integers), its
//! labels from a `--labels` file (a 1-D `.npy` of integers, or of floats holding integers, or a
//! text file with one label per line) and the skeleton graph by name. The result is a
//! [`Table`] whose row `n` is clip `n` flattened in C order (`c`, then `t`, `v`, `m`) followed
//! by its label (the last column), with the [`TensorMeta`] the parties store beside it.
//!
//! Everything is checked before anything is sent: the graph is known and has `V` nodes, the
//! dimensions are within the parties' limits ([`crate::store::tensor`]), there is one label per
//! clip, each label is an integer in `0..Q` (`Q` the number of class names when given, else
//! [`MAX_UNNAMED_CLASSES`]); [`Table::check_range`] then checks every coordinate against the
//! fixed-point range, naming the clip and `(c, t, v, m)`. Errors name the file, the index and
//! the bound.
//!
//! Security model: as the rest of [`crate::input`] — the owner's own file, read locally.

use super::{name, InputError, InputSpec, Origin, Result, Table};
use crate::proto::TensorMeta;
use ndarray::{ArrayD, Axis, Ix2};
use std::path::Path;

/// Labels must be below this when no class names are given.
pub const MAX_UNNAMED_CLASSES: u64 = 1 << 16;

/// Turns a rank-5 array read from `spec.file` into a skeleton [`Table`].
///
/// # Errors
/// [`InputError::Skeleton`] for options that do not fit, [`InputError::Tensor`] for a bad
/// graph, dimension or class names, [`InputError::Shape`] for a label count other than `N` or
/// no clips, [`InputError::Label`] for a label that is not an integer in range, and the
/// readers' errors for the label file.
pub fn from_array(spec: &InputSpec, file: String, a: ArrayD<f64>) -> Result<Table> {
    let refuse = |reason: &str| InputError::Skeleton {
        file: file.clone(),
        reason: reason.into(),
    };
    if spec.label_column.is_some() {
        return Err(refuse(
            "a skeleton array (N, C, T, V, M) has no label column: give one label per clip in \
             a --labels file instead of --label-column",
        ));
    }
    if spec.positive.is_some() {
        return Err(refuse(
            "--positive does not apply to skeleton clips: their labels are class indices",
        ));
    }
    let Some(graph) = &spec.graph else {
        return Err(refuse(
            "a skeleton array (N, C, T, V, M) needs its graph: --graph mocap15, body25 or ntu25",
        ));
    };
    let Some(labels_path) = &spec.labels else {
        return Err(refuse(
            "a skeleton array (N, C, T, V, M) needs its labels: --labels FILE (a 1-D .npy or \
             a text file, one label per clip)",
        ));
    };
    let shape = a.shape().to_vec();
    let n = shape[0];
    let dims = [shape[1], shape[2], shape[3], shape[4]];
    let meta = TensorMeta {
        dims: dims.map(|d| d as u64),
        graph: graph.clone(),
        class_names: spec.class_names.clone(),
    };
    let feats: usize = dims.iter().product();
    crate::store::tensor::check(&meta, feats as u64 + 1, feats as u64).map_err(|source| {
        InputError::Tensor {
            file: file.clone(),
            source,
        }
    })?;
    if n == 0 {
        return Err(InputError::Shape {
            file,
            what: "clips",
            expected: "N ≥ 1".into(),
            found: format!("{shape:?}"),
        });
    }
    let labels = read_labels(labels_path, n, &file)?;
    check_labels(&labels, &spec.class_names)?;
    let x = a
        .into_shape_with_order(ndarray::IxDyn(&[n, feats]))
        .expect("a C-order array of n · feats elements")
        .into_dimensionality::<Ix2>()
        .expect("rank 2");
    let y = ndarray::Array1::from_iter(labels.values.iter().copied()).insert_axis(Axis(1));
    let data = ndarray::concatenate(Axis(1), &[x.view(), y.view()]).expect("same rows");
    Ok(Table {
        file,
        label_column: feats,
        data,
        tensor: Some(meta),
        origin: Origin::Tensor {
            dims,
            labels: labels.file,
        },
    })
}

/// Labels as read, with where each came from.
#[derive(Debug)]
struct Labels {
    file: String,
    values: Vec<f64>,
    /// Text files: the 1-based line of each label; `None` for `.npy` (0-based index).
    lines: Option<Vec<usize>>,
}

impl Labels {
    fn at(&self, i: usize) -> String {
        match &self.lines {
            Some(l) => format!("line {}", l[i]),
            None => format!("index {i} (0-based)"),
        }
    }
}

/// Reads `n` labels from a 1-D `.npy` (by its name) or a text file with one per line (blank
/// lines skipped).
fn read_labels(path: &Path, n: usize, data_file: &str) -> Result<Labels> {
    let file = name(path);
    let lower = file.to_ascii_lowercase();
    let (values, lines) = if lower.ends_with(".npy") || lower.ends_with(".npy.gz") {
        let l = datasets::npy::read_npy_f64(path)?;
        if l.ndim() != 1 {
            return Err(InputError::Shape {
                file,
                what: "labels",
                expected: format!("1-D [{n}] (one per clip of {data_file})"),
                found: format!("{:?}", l.shape()),
            });
        }
        (l.iter().copied().collect(), None)
    } else {
        let (v, l) = read_text_labels(path, &file)?;
        (v, Some(l))
    };
    if values.len() != n {
        return Err(InputError::Shape {
            file,
            what: "labels",
            expected: format!("{n} (one per clip of {data_file})"),
            found: values.len().to_string(),
        });
    }
    Ok(Labels {
        file,
        values,
        lines,
    })
}

fn read_text_labels(path: &Path, file: &str) -> Result<(Vec<f64>, Vec<usize>)> {
    let text = std::fs::read_to_string(path).map_err(|source| datasets::DatasetError::Io {
        file: file.to_owned(),
        source,
    })?;
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let s = line.trim();
        if s.is_empty() {
            continue;
        }
        let v = s.parse::<f64>().map_err(|_| InputError::Label {
            file: file.to_owned(),
            at: format!("line {}", i + 1),
            value: format!("{s:?}"),
            reason: "is not a number".into(),
        })?;
        values.push(v);
        lines.push(i + 1);
    }
    Ok((values, lines))
}

/// Every label an integer in `0..Q`: `Q` the number of class names, or
/// [`MAX_UNNAMED_CLASSES`] without names.
fn check_labels(l: &Labels, class_names: &[String]) -> Result<()> {
    let (q, why) = match class_names.len() {
        0 => (
            MAX_UNNAMED_CLASSES,
            "no class names given: at most 2^16 classes".to_string(),
        ),
        k => (k as u64, format!("{k} class names")),
    };
    for (i, &v) in l.values.iter().enumerate() {
        let reason = if !v.is_finite() || v.fract() != 0.0 {
            "is not an integer class index".to_string()
        } else if v < 0.0 || v >= q as f64 {
            format!("is outside 0..{q} ({why})")
        } else {
            continue;
        };
        return Err(InputError::Label {
            file: l.file.clone(),
            at: l.at(i),
            value: v.to_string(),
            reason,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
