//! Reading one skeleton sequence `(C, T, V, M)` for `he-infer` from CSV or NPY.
//!
//! * **CSV** — one line per frame (`T` data lines); each line holds `M·V·C` numbers, person by
//!   person, joint by joint, channel by channel: `x0,y0[,z0],x1,y1,…` (the BodyPose column
//!   order). A first line whose first field is not a number is a header; blank lines and lines
//!   starting with `#` are skipped. Separators: comma, semicolon, tab or spaces.
//! * **NPY** — a float or integer array of shape `(C, T, V, M)`, `(C, T, V)` (one person) or
//!   `(1, C, T, V, M)` (a batch of one), as `stgcn` uses.
//!
//! Every error names the file, and for CSV the line, column and offending value; values must be
//! finite.

use ndarray::{Array4, Ix4};
use std::path::{Path, PathBuf};

/// Errors reading an input sequence.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The file cannot be read.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A CSV field is not a finite number.
    #[error("{}:{line}: column {column}: {value:?} is not a finite number", file.display())]
    Value {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The field as written.
        value: String,
    },
    /// A CSV line has the wrong number of fields.
    #[error("{}:{line}: {found} values, the model needs {expected} per frame (M·V·C = {persons}·{joints}·{channels})", file.display())]
    Fields {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// Fields expected.
        expected: usize,
        /// Fields found.
        found: usize,
        /// Persons M.
        persons: usize,
        /// Joints V.
        joints: usize,
        /// Channels C.
        channels: usize,
    },
    /// The file has the wrong number of frames or the wrong array shape.
    #[error("{}: {what}: expected {expected}, found {found}", file.display())]
    Shape {
        /// The file.
        file: PathBuf,
        /// Which dimension.
        what: &'static str,
        /// Expected.
        expected: String,
        /// Found.
        found: String,
    },
    /// An NPY value is not finite.
    #[error("{}: element {index} (flat, C order) is {value}, not a finite number", file.display())]
    NotFinite {
        /// The file.
        file: PathBuf,
        /// Flat index.
        index: usize,
        /// The value.
        value: f64,
    },
    /// The NPY reader refused the file.
    #[error("{}: {source}", file.display())]
    Npy {
        /// The file.
        file: PathBuf,
        /// The cause (names the byte offset).
        source: datasets::DatasetError,
    },
}

/// The expected shape `(C, T, V, M)`.
pub type Shape = (usize, usize, usize, usize);

/// Reads a CSV or NPY file (by extension: `.npy` / `.npy.gz` is NPY, anything else CSV).
///
/// # Errors
/// [`InputError`] naming the file (and line, column and value for CSV).
pub fn read_sequence(path: &Path, shape: Shape) -> Result<Array4<f64>, InputError> {
    let name = path.to_string_lossy();
    if name.ends_with(".npy") || name.ends_with(".npy.gz") {
        read_npy(path, shape)
    } else {
        let text = std::fs::read_to_string(path).map_err(|source| InputError::Io {
            file: path.to_path_buf(),
            source,
        })?;
        parse_csv(&text, path, shape)
    }
}

/// Parses CSV text (`file` names it in errors).
///
/// # Errors
/// [`InputError::Value`], [`InputError::Fields`], [`InputError::Shape`].
pub fn parse_csv(text: &str, file: &Path, shape: Shape) -> Result<Array4<f64>, InputError> {
    let (c, t, v, m) = shape;
    let per_frame = m * v * c;
    let mut rows: Vec<Vec<f64>> = Vec::new();
    let mut first = true;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let s = raw.trim();
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = s
            .split([',', ';', '\t', ' '])
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect();
        let is_first = std::mem::take(&mut first);
        if is_first && fields.first().is_some_and(|f| f.parse::<f64>().is_err()) {
            continue; // header
        }
        if fields.len() != per_frame {
            return Err(InputError::Fields {
                file: file.to_path_buf(),
                line,
                expected: per_frame,
                found: fields.len(),
                persons: m,
                joints: v,
                channels: c,
            });
        }
        let mut row = Vec::with_capacity(per_frame);
        for (k, f) in fields.iter().enumerate() {
            match f.parse::<f64>() {
                Ok(x) if x.is_finite() => row.push(x),
                _ => {
                    return Err(InputError::Value {
                        file: file.to_path_buf(),
                        line,
                        column: k + 1,
                        value: (*f).to_string(),
                    })
                }
            }
        }
        rows.push(row);
    }
    if rows.len() != t {
        return Err(InputError::Shape {
            file: file.to_path_buf(),
            what: "frames (data lines)",
            expected: t.to_string(),
            found: rows.len().to_string(),
        });
    }
    Ok(Array4::from_shape_fn((c, t, v, m), |(ci, ti, vi, mi)| {
        rows[ti][(mi * v + vi) * c + ci]
    }))
}

/// Reads an NPY array of shape `(C, T, V, M)`, `(C, T, V)` or `(1, C, T, V, M)`.
///
/// # Errors
/// [`InputError::Npy`], [`InputError::Shape`], [`InputError::NotFinite`].
pub fn read_npy(path: &Path, shape: Shape) -> Result<Array4<f64>, InputError> {
    let a = datasets::npy::read_npy_f64(path).map_err(|source| InputError::Npy {
        file: path.to_path_buf(),
        source,
    })?;
    let (c, t, v, m) = shape;
    let found = format!("{:?}", a.shape());
    let a4 = match a.ndim() {
        3 if m == 1 => a.insert_axis(ndarray::Axis(3)),
        5 if a.shape()[0] == 1 => a.index_axis_move(ndarray::Axis(0), 0),
        _ => a,
    };
    let a4 = a4
        .into_dimensionality::<Ix4>()
        .ok()
        .filter(|x| x.dim() == shape)
        .ok_or_else(|| InputError::Shape {
            file: path.to_path_buf(),
            what: "array shape (C, T, V, M)",
            expected: format!("[{c}, {t}, {v}, {m}]"),
            found,
        })?;
    if let Some((index, &value)) = a4.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(InputError::NotFinite {
            file: path.to_path_buf(),
            index,
            value,
        });
    }
    Ok(a4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_rows_are_frames_and_columns_are_person_joint_channel() {
        let text = "x0,y0,x1,y1,x2,y2\n1,2,3,4,5,6\n# comment\n\n7;8;9;10;11;12\n";
        let a = parse_csv(text, Path::new("s.csv"), (2, 2, 3, 1)).unwrap();
        assert_eq!(a[[0, 0, 0, 0]], 1.0);
        assert_eq!(a[[1, 0, 0, 0]], 2.0);
        assert_eq!(a[[0, 0, 2, 0]], 5.0);
        assert_eq!(a[[1, 1, 1, 0]], 10.0);
    }

    #[test]
    fn csv_errors_name_file_line_column_and_value() {
        let e = parse_csv("1,2\n3,abc\n", Path::new("clip.csv"), (2, 2, 1, 1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "clip.csv:2: column 2: \"abc\" is not a finite number"
        );
        let e = parse_csv("1,2\n3,NaN\n", Path::new("clip.csv"), (2, 2, 1, 1)).unwrap_err();
        assert!(
            matches!(
                e,
                InputError::Value {
                    line: 2,
                    column: 2,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_csv("1,2,3\n", Path::new("clip.csv"), (2, 1, 1, 1)).unwrap_err();
        assert!(
            matches!(
                e,
                InputError::Fields {
                    line: 1,
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{e}"
        );
        let e = parse_csv("1,2\n", Path::new("clip.csv"), (2, 2, 1, 1)).unwrap_err();
        assert!(e
            .to_string()
            .contains("frames (data lines): expected 2, found 1"));
    }

    #[test]
    fn npy_shapes_are_checked_and_one_person_may_be_implicit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.npy");
        let x =
            ndarray::Array3::from_shape_fn((2, 3, 4), |(a, b, c)| (a * 100 + b * 10 + c) as f64);
        datasets::npy::write_npy(&p, &x).unwrap();
        let a = read_sequence(&p, (2, 3, 4, 1)).unwrap();
        assert_eq!(a[[1, 2, 3, 0]], 123.0);
        let e = read_sequence(&p, (2, 3, 5, 1)).unwrap_err();
        assert!(
            e.to_string()
                .contains("expected [2, 3, 5, 1], found [2, 3, 4]"),
            "{e}"
        );
        let mut bad = x.clone();
        bad[[0, 1, 2]] = f64::INFINITY;
        datasets::npy::write_npy(&p, &bad).unwrap();
        let e = read_sequence(&p, (2, 3, 4, 1)).unwrap_err();
        assert!(matches!(e, InputError::NotFinite { index: 6, .. }), "{e}");
    }
}
