//! The checks of a skeleton dataset's [`TensorMeta`]: the dimensions bounded by named limits,
//! the graph one of the bundled layouts with `V` nodes, the shared matrix holding
//! `C·T·V·M` features then the label (last column), and class names that keep the control
//! frames that carry them small. An append to a skeleton dataset must carry the dataset's own
//! dimensions and graph.
//!
//! Security model: the metadata is public and chosen by the uploading client, who may be
//! careless or abusive; the party checks it before any share byte is received (and again when a
//! manifest is read back from disk), so a job never reads a matrix whose tensor it cannot
//! interpret. The shared values themselves stay secret: their range is the client's to check.

use crate::proto::TensorMeta;
use datasets::skeleton::Graph;

/// Largest `C` (coordinate channels per joint).
pub const MAX_CHANNELS: u64 = 16;
/// Largest `T` (frames per clip).
pub const MAX_FRAMES: u64 = 1024;
/// Largest `V` (joints, the graph's nodes).
pub const MAX_NODES: u64 = 256;
/// Largest `M` (persons per clip).
pub const MAX_PERSONS: u64 = 4;
/// Most class names.
pub const MAX_CLASSES: usize = 1024;
/// Longest class name, in bytes.
pub const MAX_CLASS_NAME_BYTES: usize = 64;
/// Most bytes of all class names together (they travel in one control frame).
pub const MAX_CLASS_NAMES_BYTES: usize = 16 << 10;

/// What is wrong with a [`TensorMeta`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TensorMetaError {
    /// A dimension is zero or above its limit.
    #[error("tensor dimension {name} = {value} is outside 1..={max}")]
    Dim {
        /// `C`, `T`, `V` or `M`.
        name: &'static str,
        /// The value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// The graph is not a bundled layout.
    #[error("unknown skeleton graph {name:?}; known graphs: {known}")]
    UnknownGraph {
        /// The name given.
        name: String,
        /// The known names.
        known: String,
    },
    /// `V` is not the graph's node count.
    #[error("graph {graph} has {nodes} nodes, but the tensor has V = {v}")]
    Nodes {
        /// The graph.
        graph: String,
        /// Its node count.
        nodes: usize,
        /// The tensor's `V`.
        v: u64,
    },
    /// The matrix does not have `C·T·V·M + 1` columns.
    #[error(
        "{cols} columns, but a skeleton dataset of (C, T, V, M) = {dims:?} has C·T·V·M + 1 = \
         {want} (the flattened clip, then the label)"
    )]
    Cols {
        /// Columns declared.
        cols: u64,
        /// The tensor's `[C, T, V, M]`.
        dims: [u64; 4],
        /// Columns it needs.
        want: u64,
    },
    /// The label is not the last column.
    #[error("label column {column}, but a skeleton dataset's label is its last column, {want}")]
    LabelColumn {
        /// The label column declared.
        column: u64,
        /// The last column.
        want: u64,
    },
    /// Too many class names, or too many bytes of them.
    #[error(
        "{count} class names of {bytes} bytes in all; at most {max} names and {max_bytes} bytes"
    )]
    Classes {
        /// Names given.
        count: usize,
        /// Their bytes.
        bytes: usize,
        /// The limit on names.
        max: usize,
        /// The limit on bytes.
        max_bytes: usize,
    },
    /// A class name is empty, too long, has control characters or repeats an earlier one.
    #[error("class name {index} ({name:?}): {reason}")]
    ClassName {
        /// Its index (the label value it names).
        index: usize,
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Checks `t` as the tensor of a dataset of `cols` columns with its label in `label_column`,
/// and returns its graph.
///
/// # Errors
/// The first problem found, as a [`TensorMetaError`] naming the value and its limit.
pub fn check(t: &TensorMeta, cols: u64, label_column: u64) -> Result<Graph, TensorMetaError> {
    let limits = [
        ("C", MAX_CHANNELS),
        ("T", MAX_FRAMES),
        ("V", MAX_NODES),
        ("M", MAX_PERSONS),
    ];
    for (&value, (name, max)) in t.dims.iter().zip(limits) {
        if value == 0 || value > max {
            return Err(TensorMetaError::Dim { name, value, max });
        }
    }
    let graph = Graph::by_name(&t.graph).map_err(|_| TensorMetaError::UnknownGraph {
        name: t.graph.clone(),
        known: Graph::NAMES.join(", "),
    })?;
    if graph.num_nodes as u64 != t.dims[2] {
        return Err(TensorMetaError::Nodes {
            graph: t.graph.clone(),
            nodes: graph.num_nodes,
            v: t.dims[2],
        });
    }
    // The limits keep the product far from overflowing (2^4 · 2^10 · 2^8 · 2^2 = 2^24).
    let want = t.dims.iter().product::<u64>() + 1;
    if cols != want {
        return Err(TensorMetaError::Cols {
            cols,
            dims: t.dims,
            want,
        });
    }
    if label_column != want - 1 {
        return Err(TensorMetaError::LabelColumn {
            column: label_column,
            want: want - 1,
        });
    }
    check_class_names(&t.class_names)?;
    Ok(graph)
}

/// Class names: at most [`MAX_CLASSES`] of at most [`MAX_CLASS_NAMES_BYTES`] in all, each of 1
/// to [`MAX_CLASS_NAME_BYTES`] bytes without control characters, no two alike.
///
/// # Errors
/// [`TensorMetaError::Classes`] or [`TensorMetaError::ClassName`].
pub fn check_class_names(names: &[String]) -> Result<(), TensorMetaError> {
    let bytes: usize = names.iter().map(String::len).sum();
    if names.len() > MAX_CLASSES || bytes > MAX_CLASS_NAMES_BYTES {
        return Err(TensorMetaError::Classes {
            count: names.len(),
            bytes,
            max: MAX_CLASSES,
            max_bytes: MAX_CLASS_NAMES_BYTES,
        });
    }
    let mut seen = std::collections::HashMap::new();
    for (index, name) in names.iter().enumerate() {
        let bad = |reason: String| TensorMetaError::ClassName {
            index,
            name: name.clone(),
            reason,
        };
        if name.is_empty() || name.len() > MAX_CLASS_NAME_BYTES {
            return Err(bad(format!(
                "{} bytes, names have 1 to {MAX_CLASS_NAME_BYTES}",
                name.len()
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(bad("has a control character".into()));
        }
        if let Some(first) = seen.insert(name.as_str(), index) {
            return Err(bad(format!("repeats class name {first}")));
        }
    }
    Ok(())
}

/// Checks that rows described by `new` may be appended to a dataset described by `base`: both
/// tables, or both skeleton tensors with the same dimensions and graph (class names equal, or
/// left out by the appender). The message names both sides.
///
/// # Errors
/// A message naming both values.
pub fn check_append(new: Option<&TensorMeta>, base: Option<&TensorMeta>) -> Result<(), String> {
    match (new, base) {
        (None, None) => Ok(()),
        (Some(n), None) => Err(format!(
            "the rows to append are skeleton clips (C, T, V, M) = {:?} on graph {}, but the \
             dataset is a table",
            n.dims, n.graph
        )),
        (None, Some(b)) => Err(format!(
            "the dataset holds skeleton clips (C, T, V, M) = {:?} on graph {}; the rows to \
             append must name the same tensor",
            b.dims, b.graph
        )),
        (Some(n), Some(b)) if n.dims != b.dims || n.graph != b.graph => Err(format!(
            "the rows to append are clips (C, T, V, M) = {:?} on graph {}; the dataset has \
             (C, T, V, M) = {:?} on graph {}: they must match",
            n.dims, n.graph, b.dims, b.graph
        )),
        (Some(n), Some(b)) if !n.class_names.is_empty() && n.class_names != b.class_names => {
            Err(format!(
                "the rows to append name the classes {:?}; the dataset's are {:?}: give the \
                 same names or none",
                n.class_names, b.class_names
            ))
        }
        (Some(_), Some(_)) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(dims: [u64; 4], graph: &str, names: &[&str]) -> TensorMeta {
        TensorMeta {
            dims,
            graph: graph.into(),
            class_names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn a_consistent_tensor_passes_and_returns_its_graph() {
        let t = meta([3, 32, 15, 1], "mocap15", &["walk", "run"]);
        let g = check(&t, 3 * 32 * 15 + 1, 3 * 32 * 15).unwrap();
        assert_eq!(g.name(), Some("mocap15"));
        let t = meta([2, 1, 25, 1], "body25", &[]);
        check(&t, 51, 50).unwrap();
        let t = meta([16, 1024, 25, 4], "ntu25", &[]);
        check(&t, 16 * 1024 * 25 * 4 + 1, 16 * 1024 * 25 * 4).unwrap();
    }

    #[test]
    fn each_bad_field_is_named_with_its_value_and_limit() {
        let cases: [(TensorMeta, u64, u64, &[&str]); 9] = [
            (
                meta([0, 1, 25, 1], "body25", &[]),
                1,
                0,
                &["C = 0", "1..=16"],
            ),
            (
                meta([3, 2000, 25, 1], "body25", &[]),
                1,
                0,
                &["T = 2000", "1..=1024"],
            ),
            (
                meta([3, 1, 300, 1], "body25", &[]),
                1,
                0,
                &["V = 300", "1..=256"],
            ),
            (
                meta([3, 1, 25, 5], "body25", &[]),
                1,
                0,
                &["M = 5", "1..=4"],
            ),
            (
                meta([3, 1, 25, 1], "coco17", &[]),
                76,
                75,
                &["\"coco17\"", "mocap15, body25, ntu25"],
            ),
            (
                meta([3, 1, 25, 1], "mocap15", &[]),
                76,
                75,
                &["mocap15 has 15 nodes", "V = 25"],
            ),
            (
                meta([3, 2, 15, 1], "mocap15", &[]),
                90,
                89,
                &["90 columns", "[3, 2, 15, 1]", "= 91"],
            ),
            (
                meta([3, 2, 15, 1], "mocap15", &[]),
                91,
                0,
                &["label column 0", "last column, 90"],
            ),
            (
                meta([3, 2, 15, 1], "mocap15", &["a", "b", "a"]),
                91,
                90,
                &["class name 2", "repeats class name 0"],
            ),
        ];
        for (t, cols, label, want) in cases {
            let e = check(&t, cols, label).unwrap_err().to_string();
            for w in want {
                assert!(e.contains(w), "{e:?} lacks {w:?}");
            }
        }
    }

    #[test]
    fn class_names_are_bounded() {
        let long = "x".repeat(MAX_CLASS_NAME_BYTES + 1);
        let e = check_class_names(&["ok".into(), long])
            .unwrap_err()
            .to_string();
        assert!(e.contains("class name 1") && e.contains("65 bytes"), "{e}");
        let e = check_class_names(&["".into()]).unwrap_err().to_string();
        assert!(e.contains("class name 0") && e.contains("0 bytes"), "{e}");
        let e = check_class_names(&["a\nb".into()]).unwrap_err().to_string();
        assert!(e.contains("control character"), "{e}");
        let many: Vec<String> = (0..=MAX_CLASSES).map(|i| i.to_string()).collect();
        let e = check_class_names(&many).unwrap_err().to_string();
        assert!(
            e.contains("1025 class names") && e.contains("at most 1024"),
            "{e}"
        );
        let heavy: Vec<String> = (0..300).map(|i| format!("{i:064}")).collect();
        let e = check_class_names(&heavy).unwrap_err().to_string();
        assert!(
            e.contains("19200 bytes") && e.contains("16384 bytes"),
            "{e}"
        );
        check_class_names(&heavy[..256]).unwrap();
    }

    #[test]
    fn appends_must_carry_the_datasets_tensor() {
        let base = meta([3, 32, 15, 1], "mocap15", &["walk", "run"]);
        check_append(None, None).unwrap();
        check_append(Some(&base), Some(&base)).unwrap();
        check_append(Some(&meta([3, 32, 15, 1], "mocap15", &[])), Some(&base)).unwrap();
        let e = check_append(Some(&meta([3, 16, 15, 1], "mocap15", &[])), Some(&base)).unwrap_err();
        assert!(
            e.contains("[3, 16, 15, 1]")
                && e.contains("[3, 32, 15, 1]")
                && e.contains("must match"),
            "{e}"
        );
        let e = check_append(
            Some(&meta([3, 32, 15, 1], "mocap15", &["run", "walk"])),
            Some(&base),
        )
        .unwrap_err();
        assert!(
            e.contains("[\"run\", \"walk\"]") && e.contains("[\"walk\", \"run\"]"),
            "{e}"
        );
        let e = check_append(None, Some(&base)).unwrap_err();
        assert!(e.contains("[3, 32, 15, 1]") && e.contains("mocap15"), "{e}");
        let e = check_append(Some(&base), None).unwrap_err();
        assert!(e.contains("is a table"), "{e}");
    }
}
