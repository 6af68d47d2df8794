//! A data owner's file as `share-upload` reads it: numeric CSV, NumPy `.npy` (2-D, `f8`/`f4` or
//! integer), a skeleton `.npy` of rank 5 `(N, C, T, V, M)` with its label file ([`skeleton`]),
//! or MNIST IDX (an image file with its label file), turned into one matrix of features and a
//! label column, and checked against the fixed-point range before it is encoded (SecureML §IV
//! fixed point: `|x| < 2^(63 − f)` with `f` fractional bits, see [`mpc::FixedPoint::bound`]).
//!
//! Every error names the file and where in it the bad value is (CSV: line and 1-based column;
//! NPY: 0-based row and column as NumPy indexes them; skeletons: clip and `(c, t, v, m)`; IDX:
//! the item), the value and the limit. The readers are `datasets`' (`datasets::csv`,
//! `datasets::npy`, `datasets::mnist`), so format errors (bad magic, truncation, type) name the
//! file and byte offset too.
//!
//! Security model: the file is the data owner's own and is read on the owner's machine; nothing
//! is sent before every value has been read and checked, so a bad file leaves nothing behind at
//! the parties.

pub mod keyed;
pub mod skeleton;
pub mod standardize;

use datasets::DatasetError;
use ndarray::{Array2, Axis};
use std::path::{Path, PathBuf};

/// Errors of reading and checking an input file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file could not be read or parsed (names the file and offset or line).
    #[error(transparent)]
    Read(#[from] DatasetError),
    /// The format cannot be told from the file name and was not given.
    #[error("{file}: cannot tell the format from the name; name it .csv, .npy or *-ubyte (IDX), optionally .gz, or pass --format")]
    UnknownFormat {
        /// The file.
        file: String,
    },
    /// The array does not have the shape the format needs.
    #[error("{file}: {what}: expected {expected}, found {found}")]
    Shape {
        /// The file.
        file: String,
        /// What was checked.
        what: &'static str,
        /// Expected shape.
        expected: String,
        /// Found shape.
        found: String,
    },
    /// An IDX image file was given without its label file (or labels to a format that has a
    /// label column).
    #[error("{file}: {reason}")]
    Labels {
        /// The file.
        file: String,
        /// What is missing or extra.
        reason: &'static str,
    },
    /// A value is not finite or outside the fixed-point range.
    #[error("{file}: {at}: value {value} is outside the fixed-point range (finite, |x| < {bound} with {frac_bits} fractional bits)")]
    OutOfRange {
        /// The file.
        file: String,
        /// Where (`line 3, column 2`, `row 2, column 1 (0-based)`, `image 7, pixel 12`).
        at: String,
        /// The value.
        value: f64,
        /// The exclusive bound on its magnitude.
        bound: f64,
        /// Fractional bits of the encoding.
        frac_bits: u32,
    },
    /// The label column is outside the matrix.
    #[error("{file}: label column {column} but the data has {cols} columns")]
    LabelColumn {
        /// The file.
        file: String,
        /// The requested column (0-based).
        column: usize,
        /// Columns of the data.
        cols: usize,
    },
    /// An option that does not fit the file (a skeleton array without its graph or labels, a
    /// label column or `--positive` with one, a graph with a table).
    #[error("{file}: {reason}")]
    Skeleton {
        /// The file.
        file: String,
        /// What does not fit.
        reason: String,
    },
    /// A label is not a number, not an integer or outside the class range.
    #[error("{file}: {at}: label {value} {reason}")]
    Label {
        /// The label file.
        file: String,
        /// Where (`line 4`, `index 3 (0-based)`).
        at: String,
        /// The label as read.
        value: String,
        /// What is wrong, with the bound.
        reason: String,
    },
    /// A skeleton tensor's description does not hold (unknown graph, `V` not the graph's node
    /// count, a dimension over its limit, bad class names).
    #[error("{file}: {source}")]
    Tensor {
        /// The file.
        file: String,
        /// What is wrong.
        #[source]
        source: crate::store::tensor::TensorMetaError,
    },
    /// Too little data to train on.
    #[error(
        "{file}: need at least one row and two columns (features and a label), got {rows} x {cols}"
    )]
    TooSmall {
        /// The file.
        file: String,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// A table `--standardize` cannot standardize (a constant column, too few rows, clips).
    #[error("{file}: {reason}")]
    Standardize {
        /// The file.
        file: String,
        /// What is wrong, with the column and value.
        reason: String,
    },
    /// The row keys of a keyed upload: a missing key column, an empty or repeated key.
    #[error("{file}: {reason}")]
    Keys {
        /// The file.
        file: String,
        /// What is wrong, with the line.
        reason: String,
    },
}

/// Result of input reading.
pub type Result<T> = std::result::Result<T, InputError>;

/// The formats `share-upload` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Numeric CSV (header optional), one sample per line; gzip allowed.
    Csv,
    /// NumPy `.npy`, a 2-D array with one sample per row; gzip allowed.
    Npy,
    /// MNIST IDX: a 3-D unsigned-byte image file (`N × rows × cols`) and a 1-D label file.
    Idx,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "csv" => Ok(Self::Csv),
            "npy" => Ok(Self::Npy),
            "idx" => Ok(Self::Idx),
            _ => Err(format!("unknown format {s:?}: csv, npy or idx")),
        }
    }
}

impl Format {
    /// The format of a file from its name: `.csv`, `.npy`, or an IDX name (`*-ubyte`, `.idx*`),
    /// each optionally followed by `.gz`.
    pub fn detect(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        let name = name.strip_suffix(".gz").unwrap_or(&name);
        if name.ends_with(".csv") || name.ends_with(".txt") {
            Some(Self::Csv)
        } else if name.ends_with(".npy") {
            Some(Self::Npy)
        } else if name.ends_with("-ubyte") || name.contains(".idx") {
            Some(Self::Idx)
        } else {
            None
        }
    }
}

/// How to read an input.
#[derive(Debug, Clone, Default)]
pub struct InputSpec {
    /// The data file.
    pub file: PathBuf,
    /// Its format (detected from the name when `None`).
    pub format: Option<Format>,
    /// A separate label file: required for IDX images, optional for NPY (a 1-D array of as
    /// many labels as rows, appended as the last column).
    pub labels: Option<PathBuf>,
    /// The label's column in the data (CSV and NPY without `labels`); default the last.
    pub label_column: Option<usize>,
    /// Map labels to a binary task: 1 when the label is one of these, else 0.
    pub positive: Option<Vec<f64>>,
    /// The skeleton graph of a rank-5 `.npy` (`mocap15`, `body25`, `ntu25`); required for one,
    /// refused for tables.
    pub graph: Option<String>,
    /// Class names of a skeleton set, one per label value (labels must then be below their
    /// count); may be empty.
    pub class_names: Vec<String>,
}

/// Where each row came from, for error messages.
#[derive(Debug, Clone)]
enum Origin {
    /// CSV: the 1-based line of each row.
    Csv(Vec<usize>),
    /// CSV with a key column taken out: the line of each row, the key's 0-based column.
    KeyedCsv {
        /// 1-based line of each row.
        lines: Vec<usize>,
        /// The key column in the owner's file.
        key: usize,
    },
    /// NPY: 0-based row index.
    Npy,
    /// IDX: image index, pixel index; the label column is last.
    Idx,
    /// A skeleton array: clip, then `(c, t, v, m)` of the flattened column; the label column
    /// (last) comes from the named label file.
    Tensor {
        /// `[C, T, V, M]`.
        dims: [usize; 4],
        /// The label file.
        labels: String,
    },
}

/// A data owner's table: one sample per row, features and a label column.
#[derive(Debug, Clone)]
pub struct Table {
    /// The file it was read from (for messages).
    pub file: String,
    /// The values, one row per sample.
    pub data: Array2<f64>,
    /// The label's column.
    pub label_column: usize,
    /// Skeleton sets: the tensor each row flattens (`None` for tables).
    pub tensor: Option<crate::proto::TensorMeta>,
    origin: Origin,
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

/// Reads an input file as [`InputSpec`] says.
///
/// # Errors
/// The readers' errors (file, offset or line), [`InputError::Shape`], [`InputError::Labels`],
/// [`InputError::LabelColumn`], [`InputError::TooSmall`], [`InputError::UnknownFormat`].
pub fn read(spec: &InputSpec) -> Result<Table> {
    let file = name(&spec.file);
    let format = match spec.format.or_else(|| Format::detect(&spec.file)) {
        Some(f) => f,
        None => return Err(InputError::UnknownFormat { file }),
    };
    if spec.graph.is_some() && format != Format::Npy {
        return Err(InputError::Skeleton {
            file,
            reason: "--graph is for skeleton arrays: a rank-5 (N, C, T, V, M) .npy".into(),
        });
    }
    let mut t = match format {
        Format::Csv => {
            if spec.labels.is_some() {
                return Err(InputError::Labels {
                    file,
                    reason: "a CSV file holds its labels in a column (--label-column)",
                });
            }
            let table = datasets::csv::read_csv(&spec.file)?;
            Table {
                file,
                data: table.data,
                label_column: 0,
                tensor: None,
                origin: Origin::Csv(table.row_lines),
            }
        }
        Format::Npy => {
            let a = datasets::npy::read_npy_f64(&spec.file)?;
            if a.ndim() == 5 {
                return skeleton::from_array(spec, file, a);
            }
            read_npy(spec, file, a)?
        }
        Format::Idx => read_idx(spec, file)?,
    };
    let (rows, cols) = t.data.dim();
    if rows == 0 || cols < 2 {
        return Err(InputError::TooSmall {
            file: t.file,
            rows,
            cols,
        });
    }
    t.label_column = match (format, spec.label_column) {
        (Format::Idx, _) => cols - 1,
        (_, None) => cols - 1,
        (_, Some(c)) if c < cols && spec.labels.is_none() => c,
        (_, Some(column)) => {
            return Err(InputError::LabelColumn {
                file: t.file,
                column,
                cols,
            })
        }
    };
    if let Some(pos) = &spec.positive {
        let l = t.label_column;
        t.data
            .column_mut(l)
            .mapv_inplace(|v| f64::from(u8::from(pos.contains(&v))));
    }
    Ok(t)
}

fn read_npy(spec: &InputSpec, file: String, a: ndarray::ArrayD<f64>) -> Result<Table> {
    let shape = a.shape().to_vec();
    if spec.graph.is_some() {
        return Err(InputError::Skeleton {
            file,
            reason: format!(
                "--graph is for skeleton arrays of rank 5 (N, C, T, V, M), found shape {shape:?}"
            ),
        });
    }
    let data = a
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|_| InputError::Shape {
            file: file.clone(),
            what: "array dimensions",
            expected: "2-D (samples × columns) or a rank-5 skeleton array (N, C, T, V, M)".into(),
            found: format!("{shape:?}"),
        })?;
    let data = match &spec.labels {
        None => data,
        Some(lp) => {
            let l = datasets::npy::read_npy_f64(lp)?;
            if l.ndim() != 1 || l.len() != data.nrows() {
                return Err(InputError::Shape {
                    file: name(lp),
                    what: "labels",
                    expected: format!("[{}] (one per row of {file})", data.nrows()),
                    found: format!("{:?}", l.shape()),
                });
            }
            let l = l
                .into_shape_with_order((data.nrows(), 1))
                .expect("checked 1-D of nrows");
            ndarray::concatenate(Axis(1), &[data.view(), l.view()]).expect("same rows")
        }
    };
    Ok(Table {
        file,
        data,
        label_column: 0,
        tensor: None,
        origin: Origin::Npy,
    })
}

fn read_idx(spec: &InputSpec, file: String) -> Result<Table> {
    let Some(lp) = &spec.labels else {
        return Err(InputError::Labels {
            file,
            reason: "an IDX image file needs its label file (--labels)",
        });
    };
    let m = datasets::mnist::load(&spec.file, lp)?;
    // Pixels scaled to [0, 1] as in the experiments (`Mnist::images_f64`), the digit last.
    let x = m.images_f64();
    let y = m.labels.mapv(f64::from).insert_axis(Axis(1));
    let data = ndarray::concatenate(Axis(1), &[x.view(), y.view()]).expect("same rows");
    Ok(Table {
        file,
        data,
        label_column: 0,
        tensor: None,
        origin: Origin::Idx,
    })
}

impl Table {
    /// Where row `r`, column `c` is, in the file's own terms.
    fn locate(&self, r: usize, c: usize) -> String {
        match &self.origin {
            Origin::Csv(lines) => format!(
                "line {}, column {}",
                lines.get(r).copied().unwrap_or(r + 1),
                c + 1
            ),
            Origin::KeyedCsv { lines, key } => format!(
                "line {}, column {}",
                lines.get(r).copied().unwrap_or(r + 1),
                c + 1 + usize::from(c >= *key)
            ),
            Origin::Npy => format!("row {r}, column {c} (0-based)"),
            Origin::Idx if c + 1 == self.data.ncols() => format!("label of image {r} (0-based)"),
            Origin::Idx => format!("image {r}, pixel {c} (0-based)"),
            Origin::Tensor { labels, .. } if c + 1 == self.data.ncols() => {
                format!("label of clip {r} (from {labels})")
            }
            Origin::Tensor { dims, .. } => {
                let [_, t, v, m] = *dims;
                let (ci, rest) = (c / (t * v * m), c % (t * v * m));
                let (ti, rest) = (rest / (v * m), rest % (v * m));
                format!(
                    "clip {r}, (c, t, v, m) = ({ci}, {ti}, {}, {}) (0-based)",
                    rest / m,
                    rest % m
                )
            }
        }
    }

    /// Checks every value is finite and inside the fixed-point range of `frac_bits`.
    ///
    /// # Errors
    /// [`InputError::OutOfRange`] for the first bad value, naming where it is.
    pub fn check_range(&self, frac_bits: mpc::FracBits) -> Result<()> {
        let fp = mpc::FixedPoint::new(frac_bits);
        let bound = fp.bound();
        match self
            .data
            .indexed_iter()
            .find(|(_, v)| !v.is_finite() || v.abs() >= bound)
        {
            None => Ok(()),
            Some(((r, c), &value)) => Err(InputError::OutOfRange {
                file: self.file.clone(),
                at: self.locate(r, c),
                value,
                bound,
                frac_bits: frac_bits.get(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn spec(file: &Path) -> InputSpec {
        InputSpec {
            file: file.to_path_buf(),
            ..Default::default()
        }
    }

    #[test]
    fn formats_are_detected_from_names() {
        for (n, f) in [
            ("a.csv", Some(Format::Csv)),
            ("a.CSV.gz", Some(Format::Csv)),
            ("x.npy", Some(Format::Npy)),
            ("x.npy.gz", Some(Format::Npy)),
            ("train-images-idx3-ubyte.gz", Some(Format::Idx)),
            ("t.idx3", Some(Format::Idx)),
            ("data.bin", None),
        ] {
            assert_eq!(Format::detect(Path::new(n)), f, "{n}");
        }
    }

    #[test]
    fn csv_reads_and_a_bad_value_names_line_column_value_and_bound() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.csv");
        std::fs::write(&p, "a,b,y\n1,2,0\n3,4,1\n").unwrap();
        let t = read(&spec(&p)).unwrap();
        assert_eq!(t.data, array![[1.0, 2.0, 0.0], [3.0, 4.0, 1.0]]);
        assert_eq!(t.label_column, 2);
        t.check_range(mpc::FracBits::new(16).unwrap()).unwrap();
        std::fs::write(&p, "a,b,y\n1,2,0\n3,-1e15,1\n").unwrap();
        let e = read(&spec(&p))
            .unwrap()
            .check_range(mpc::FracBits::new(16).unwrap())
            .unwrap_err();
        let msg = e.to_string();
        // The bound with 16 fractional bits is 2^47.
        assert!(
            msg.contains("d.csv")
                && msg.contains("line 3, column 2")
                && msg.contains("-1000000000000000")
                && msg.contains("140737488355328")
                && msg.contains("16 fractional bits"),
            "{msg}"
        );
        // With 8 fractional bits the bound is 2^55 and -1e15 fits.
        read(&spec(&p))
            .unwrap()
            .check_range(mpc::FracBits::new(8).unwrap())
            .unwrap();
    }

    #[test]
    fn npy_f64_and_f32_read_with_an_optional_label_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.npy");
        datasets::npy::write_npy(&p, &array![[1.0f32, 2.0], [3.0, 4.5]]).unwrap();
        let t = read(&spec(&p)).unwrap();
        assert_eq!(t.data, array![[1.0, 2.0], [3.0, 4.5]]);
        assert_eq!(t.label_column, 1);
        let l = d.path().join("y.npy");
        datasets::npy::write_npy(&l, &array![1.0f64, 0.0]).unwrap();
        let t = read(&InputSpec {
            labels: Some(l.clone()),
            ..spec(&p)
        })
        .unwrap();
        assert_eq!(t.data, array![[1.0, 2.0, 1.0], [3.0, 4.5, 0.0]]);
        assert_eq!(t.label_column, 2);
        // Labels of the wrong length, a 3-D array: shape errors naming the file.
        datasets::npy::write_npy(&l, &array![1.0f64, 0.0, 1.0]).unwrap();
        let e = read(&InputSpec {
            labels: Some(l),
            ..spec(&p)
        })
        .unwrap_err();
        assert!(
            matches!(e, InputError::Shape { ref file, .. } if file.ends_with("y.npy")),
            "{e}"
        );
        let p3 = d.path().join("cube.npy");
        datasets::npy::write_npy(&p3, &ndarray::Array3::<f64>::zeros((2, 2, 2))).unwrap();
        let e = read(&spec(&p3)).unwrap_err().to_string();
        assert!(e.contains("cube.npy") && e.contains("2-D"), "{e}");
    }

    #[test]
    fn npy_bad_values_name_row_and_column() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bad.npy");
        datasets::npy::write_npy(&p, &array![[1.0f64, 2.0], [3.0, f64::NAN]]).unwrap();
        let msg = read(&spec(&p))
            .unwrap()
            .check_range(mpc::FracBits::new(16).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("bad.npy")
                && msg.contains("row 1, column 1 (0-based)")
                && msg.contains("NaN"),
            "{msg}"
        );
        // A truncated file is refused by the reader with the file named.
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 3]).unwrap();
        let msg = read(&spec(&p)).unwrap_err().to_string();
        assert!(msg.contains("bad.npy"), "{msg}");
    }

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn idx_images_and_labels_become_scaled_pixels_and_a_label_column() {
        let d = tempfile::tempdir().unwrap();
        let im = d.path().join("img-idx3-ubyte");
        let lb = d.path().join("lab-idx1-ubyte");
        std::fs::write(&im, idx(&[2, 1, 2], &[0, 255, 51, 102])).unwrap();
        std::fs::write(&lb, idx(&[2], &[7, 3])).unwrap();
        let t = read(&InputSpec {
            labels: Some(lb.clone()),
            ..spec(&im)
        })
        .unwrap();
        assert_eq!(t.data, array![[0.0, 1.0, 7.0], [0.2, 0.4, 3.0]]);
        assert_eq!(t.label_column, 2);
        let t = read(&InputSpec {
            labels: Some(lb.clone()),
            positive: Some(vec![3.0]),
            ..spec(&im)
        })
        .unwrap();
        assert_eq!(t.data.column(2).to_vec(), vec![0.0, 1.0]);
        // No label file; a label file of another length; a label above 9.
        assert!(matches!(read(&spec(&im)), Err(InputError::Labels { .. })));
        std::fs::write(&lb, idx(&[3], &[1, 2, 3])).unwrap();
        let e = read(&InputSpec {
            labels: Some(lb.clone()),
            ..spec(&im)
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("lab-idx1-ubyte"), "{e}");
        std::fs::write(&lb, idx(&[2], &[1, 12])).unwrap();
        let e = read(&InputSpec {
            labels: Some(lb),
            ..spec(&im)
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("lab-idx1-ubyte") && e.contains("12"), "{e}");
        // A truncated image file.
        std::fs::write(&im, idx(&[2, 1, 2], &[0, 255, 51])).unwrap();
        assert!(read(&InputSpec {
            labels: Some(d.path().join("x")),
            ..spec(&im)
        })
        .is_err());
    }

    #[test]
    fn label_column_out_of_range_and_tiny_tables_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("d.csv");
        std::fs::write(&p, "1,2\n3,4\n").unwrap();
        let e = read(&InputSpec {
            label_column: Some(2),
            ..spec(&p)
        })
        .unwrap_err();
        assert!(
            matches!(
                e,
                InputError::LabelColumn {
                    column: 2,
                    cols: 2,
                    ..
                }
            ),
            "{e}"
        );
        std::fs::write(&p, "1\n3\n").unwrap();
        assert!(matches!(read(&spec(&p)), Err(InputError::TooSmall { .. })));
    }
}
