//! Reader for numeric delimited text (CSV, or whitespace-separated columns), gzip or plain.
//!
//! This is the format of scikit-learn's bundled UCI sets and of the data files that data owners
//! share with `share-upload`: every data field is a finite decimal number. What is accepted:
//!
//! * separators: comma (fields are trimmed of blanks and surrounding double quotes) or runs of
//!   whitespace; [`Separator::Auto`] picks comma when the first non-blank line has one;
//! * an optional header line. With [`HeaderMode::Auto`] the first non-blank line is a header when
//!   any of its fields is not a number. scikit-learn's header `n_samples,n_features,class names…`
//!   (e.g. `569,30,malignant,benign`) is recognised and checked against the data: the row count,
//!   `n_features + 1` columns, and a last column of integer labels in `0..n_classes`;
//! * blank lines and lines starting with `#` are skipped; CRLF line ends and a UTF-8 BOM are fine.
//!
//! Errors name the file and 1-based line (and column and value where there is one): ragged rows,
//! non-numbers, NaN and infinities are all rejected.

use std::fs::File;
use std::io::{BufRead, BufWriter, Write};
use std::path::Path;

use ndarray::Array2;

use crate::error::{DatasetError, Result};
use crate::io::{display, open_maybe_gzip};

/// How fields are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Separator {
    /// Comma if the first non-blank line contains one, else whitespace.
    #[default]
    Auto,
    /// Comma-separated; blanks around fields are ignored.
    Comma,
    /// Fields separated by runs of spaces or tabs.
    Whitespace,
}

/// Whether the first non-blank line is a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeaderMode {
    /// A header when any of its fields is not a number.
    #[default]
    Auto,
    /// Always a header.
    Present,
    /// Never a header: the first line is data.
    Absent,
}

/// Options of [`read_csv_with`] and [`parse_csv`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvOptions {
    /// Field separator.
    pub separator: Separator,
    /// Header handling.
    pub header: HeaderMode,
}

/// The header of a numeric CSV file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Header {
    /// No header line.
    None,
    /// Column names, one per data column.
    Names(Vec<String>),
    /// scikit-learn's `n_samples,n_features,class_0,class_1,…` line. The data then has
    /// `n_features` feature columns followed by one integer label column.
    Sklearn {
        /// Number of data rows.
        n_samples: usize,
        /// Number of feature columns (the label column is extra).
        n_features: usize,
        /// Class names; label `i` means `class_names[i]`.
        class_names: Vec<String>,
    },
}

/// A parsed numeric table.
#[derive(Debug, Clone)]
pub struct CsvTable {
    /// The header, if the file had one.
    pub header: Header,
    /// The numbers, one row per data line.
    pub data: Array2<f64>,
    /// The 1-based line number of each data row (for error messages about a row's content).
    pub row_lines: Vec<usize>,
}

/// Reads a numeric CSV file (gzip or plain) with default options (auto separator and header).
///
/// # Errors
/// See the module docs; every error names the file and line.
pub fn read_csv(path: &Path) -> Result<CsvTable> {
    read_csv_with(path, &CsvOptions::default())
}

/// Reads a numeric CSV file (gzip or plain) with the given options.
///
/// # Errors
/// See the module docs; every error names the file and line.
pub fn read_csv_with(path: &Path, options: &CsvOptions) -> Result<CsvTable> {
    let reader = open_maybe_gzip(path)?;
    parse_csv(reader, &display(path), options)
}

/// Parses numeric CSV from a reader; `name` stands for the file in error messages.
///
/// # Errors
/// See the module docs; every error names `name` and the line.
pub fn parse_csv<R: BufRead>(mut reader: R, name: &str, options: &CsvOptions) -> Result<CsvTable> {
    let mut state = Parser {
        name,
        options: *options,
        separator: None,
        header: Header::None,
        header_line: 0,
        header_decided: options.header == HeaderMode::Absent,
        n_cols: None,
        first_data_line: 0,
        values: Vec::new(),
        row_lines: Vec::new(),
    };
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| DatasetError::io(name, e))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let mut bytes: &[u8] = &buf;
        if line_no == 1 {
            bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| DatasetError::NotUtf8 {
            file: name.to_owned(),
            line: line_no,
        })?;
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() || text.trim_start().starts_with('#') {
            continue;
        }
        state.line(text, line_no)?;
    }
    state.finish()
}

struct Parser<'a> {
    name: &'a str,
    options: CsvOptions,
    separator: Option<Separator>,
    header: Header,
    header_line: usize,
    header_decided: bool,
    n_cols: Option<usize>,
    first_data_line: usize,
    values: Vec<f64>,
    row_lines: Vec<usize>,
}

/// Trims blanks and one pair of surrounding double quotes.
fn clean(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|g| g.strip_suffix('"'))
        .unwrap_or(f)
        .trim()
}

fn split(text: &str, sep: Separator) -> Vec<&str> {
    match sep {
        Separator::Comma => text.split(',').map(clean).collect(),
        _ => text.split_whitespace().map(clean).collect(),
    }
}

fn is_number(field: &str) -> bool {
    field.parse::<f64>().is_ok()
}

impl Parser<'_> {
    fn line(&mut self, text: &str, line_no: usize) -> Result<()> {
        let sep = *self.separator.get_or_insert(match self.options.separator {
            Separator::Auto if text.contains(',') => Separator::Comma,
            Separator::Auto => Separator::Whitespace,
            s => s,
        });
        let fields = split(text, sep);
        if !self.header_decided {
            self.header_decided = true;
            let is_header = match self.options.header {
                HeaderMode::Present => true,
                _ => !fields.iter().all(|f| is_number(f)),
            };
            if is_header {
                self.header = parse_header(&fields);
                self.header_line = line_no;
                return Ok(());
            }
        }
        self.data_row(&fields, line_no)
    }

    fn data_row(&mut self, fields: &[&str], line_no: usize) -> Result<()> {
        let expected = *self.n_cols.get_or_insert_with(|| {
            self.first_data_line = line_no;
            fields.len()
        });
        if fields.len() != expected {
            return Err(DatasetError::RaggedRow {
                file: self.name.to_owned(),
                line: line_no,
                expected,
                found: fields.len(),
                first_line: self.first_data_line,
            });
        }
        for (i, field) in fields.iter().enumerate() {
            let v: f64 = field.parse().map_err(|_| DatasetError::NotANumber {
                file: self.name.to_owned(),
                line: line_no,
                column: i + 1,
                value: (*field).to_owned(),
            })?;
            if !v.is_finite() {
                return Err(DatasetError::NonFinite {
                    file: self.name.to_owned(),
                    line: line_no,
                    column: i + 1,
                    value: (*field).to_owned(),
                });
            }
            self.values.push(v);
        }
        if let Header::Sklearn { class_names, .. } = &self.header {
            let last = fields.len() - 1;
            let v = self.values[self.values.len() - 1];
            let n_classes = class_names.len();
            if v.fract() != 0.0 || v < 0.0 || v >= n_classes as f64 {
                return Err(DatasetError::BadLabel {
                    file: self.name.to_owned(),
                    line: line_no,
                    column: last + 1,
                    value: fields[last].to_owned(),
                    n_classes,
                });
            }
        }
        self.row_lines.push(line_no);
        Ok(())
    }

    fn finish(self) -> Result<CsvTable> {
        let Some(n_cols) = self.n_cols else {
            return Err(DatasetError::Empty {
                file: self.name.to_owned(),
            });
        };
        let mismatch = |what, expected, found| DatasetError::HeaderMismatch {
            file: self.name.to_owned(),
            line: self.header_line,
            what,
            expected,
            found,
        };
        match &self.header {
            Header::None => {}
            Header::Names(names) => {
                if names.len() != n_cols {
                    return Err(mismatch("columns", names.len(), n_cols));
                }
            }
            Header::Sklearn {
                n_samples,
                n_features,
                ..
            } => {
                if *n_features + 1 != n_cols {
                    return Err(mismatch(
                        "columns (features + label)",
                        n_features + 1,
                        n_cols,
                    ));
                }
                if *n_samples != self.row_lines.len() {
                    return Err(mismatch("rows", *n_samples, self.row_lines.len()));
                }
            }
        }
        let data = Array2::from_shape_vec((self.row_lines.len(), n_cols), self.values)
            .expect("row lengths were checked while parsing");
        Ok(CsvTable {
            header: self.header,
            data,
            row_lines: self.row_lines,
        })
    }
}

/// Writes a numeric table as comma-separated text, with an optional header line of names.
///
/// Numbers are written in Rust's shortest round-trip form, so [`read_csv`] gives back exactly the
/// same `f64` values. Names must not contain commas, quotes or line breaks (nor blanks, for a
/// single column).
///
/// # Errors
/// [`DatasetError::Io`] naming the file; [`DatasetError::DimensionMismatch`] if there are names
/// but not one per column; [`DatasetError::InvalidArgument`] for a non-finite value or a name
/// the reader could not read back.
pub fn write_csv(path: &Path, names: Option<&[String]>, data: &Array2<f64>) -> Result<()> {
    if let Some(names) = names {
        if names.len() != data.ncols() {
            return Err(DatasetError::DimensionMismatch {
                what: "header names vs columns",
                expected: data.ncols(),
                found: names.len(),
            });
        }
        if let Some(i) = names.iter().position(|n| {
            n.contains([',', '"', '\n', '\r'])
                    || n.trim().is_empty()
                    // One column has no comma, so the reader would split the name on blanks.
                    || (data.ncols() == 1 && n.contains(char::is_whitespace))
        }) {
            return Err(DatasetError::InvalidArgument {
                name: "header name index",
                value: i as f64,
                constraint: "names are non-empty and free of commas, quotes and line breaks",
            });
        }
    }
    if let Some(&v) = data.iter().find(|v| !v.is_finite()) {
        return Err(DatasetError::InvalidArgument {
            name: "value",
            value: v,
            constraint: "finite",
        });
    }
    let name = display(path);
    let io = |e| DatasetError::io(&name, e);
    let mut w = BufWriter::new(File::create(path).map_err(io)?);
    if let Some(names) = names {
        writeln!(w, "{}", names.join(",")).map_err(io)?;
    }
    for row in data.rows() {
        let mut first = true;
        for v in row {
            if !first {
                w.write_all(b",").map_err(io)?;
            }
            first = false;
            write!(w, "{v}").map_err(io)?;
        }
        w.write_all(b"\n").map_err(io)?;
    }
    w.flush().map_err(io)
}

/// Classifies a header line: scikit-learn's `n,d,name…` form or plain names.
fn parse_header(fields: &[&str]) -> Header {
    let counts = fields.len() >= 3
        && fields[2..].iter().all(|f| !is_number(f))
        && fields[0].parse::<usize>().is_ok()
        && fields[1].parse::<usize>().is_ok();
    if counts {
        Header::Sklearn {
            n_samples: fields[0].parse().unwrap_or(0),
            n_features: fields[1].parse().unwrap_or(0),
            class_names: fields[2..].iter().map(|s| (*s).to_owned()).collect(),
        }
    } else {
        Header::Names(fields.iter().map(|s| (*s).to_owned()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn parse(text: &str) -> Result<CsvTable> {
        parse_csv(text.as_bytes(), "mem.csv", &CsvOptions::default())
    }

    fn write_tmp(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn plain_numeric_no_header() {
        let t = parse("1,2,3\n4, 5 ,6e1\n").unwrap();
        assert_eq!(t.header, Header::None);
        assert_eq!(t.data, ndarray::array![[1., 2., 3.], [4., 5., 60.]]);
    }

    #[test]
    fn named_header_detected() {
        let t = parse("\u{feff}a,\"b\",c\r\n1,2,3\r\n\r\n# comment\n4,5,6\n").unwrap();
        assert_eq!(
            t.header,
            Header::Names(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(t.data.dim(), (2, 3));
        assert_eq!(t.row_lines, vec![2, 5]);
    }

    #[test]
    fn sklearn_header_detected_and_checked() {
        let t = parse("2,2,no,yes\n0.5,1,0\n2,3,1\n").unwrap();
        assert_eq!(
            t.header,
            Header::Sklearn {
                n_samples: 2,
                n_features: 2,
                class_names: vec!["no".into(), "yes".into()]
            }
        );
        assert_eq!(t.data.column(2).to_vec(), vec![0., 1.]);

        let rows = parse("3,2,no,yes\n0.5,1,0\n2,3,1\n").unwrap_err();
        assert!(
            matches!(
                rows,
                DatasetError::HeaderMismatch {
                    what: "rows",
                    expected: 3,
                    found: 2,
                    line: 1,
                    ..
                }
            ),
            "{rows}"
        );
        let cols = parse("2,3,no,yes\n0.5,1,0\n2,3,1\n").unwrap_err();
        assert!(
            matches!(
                cols,
                DatasetError::HeaderMismatch {
                    expected: 4,
                    found: 3,
                    ..
                }
            ),
            "{cols}"
        );
        let label = parse("2,2,no,yes\n0.5,1,0\n2,3,2\n").unwrap_err();
        assert!(
            matches!(&label, DatasetError::BadLabel { line: 3, column: 3, n_classes: 2, value, .. } if value == "2"),
            "{label}"
        );
    }

    #[test]
    fn whitespace_separated() {
        let t = parse("59 2 32.1\t101.0\n48  1 21.6 87.0\n").unwrap();
        assert_eq!(t.data.dim(), (2, 4));
        assert_eq!(t.data[[1, 3]], 87.0);
    }

    #[test]
    fn header_modes() {
        let opts = CsvOptions {
            header: HeaderMode::Present,
            ..Default::default()
        };
        let t = parse_csv("1,2\n3,4\n".as_bytes(), "m", &opts).unwrap();
        assert_eq!(t.header, Header::Names(vec!["1".into(), "2".into()]));
        assert_eq!(t.data.dim(), (1, 2));
        let opts = CsvOptions {
            header: HeaderMode::Absent,
            ..Default::default()
        };
        let err = parse_csv("x,y\n3,4\n".as_bytes(), "m", &opts).unwrap_err();
        assert!(matches!(
            err,
            DatasetError::NotANumber {
                line: 1,
                column: 1,
                ..
            }
        ));
    }

    #[test]
    fn ragged_row_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_tmp(&dir, "ragged.csv", "a,b,c\n1,2,3\n4,5,6\n7,8\n");
        let err = read_csv(&p).unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::RaggedRow {
                    line: 4,
                    expected: 3,
                    found: 2,
                    first_line: 2,
                    ..
                }
            ),
            "{err}"
        );
        let msg = err.to_string();
        assert!(msg.contains("ragged.csv:4:"), "{msg}");
    }

    #[test]
    fn non_number_names_file_line_column_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_tmp(&dir, "bad.csv", "1,2,3\n4,five,6\n");
        let err = read_csv(&p).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bad.csv:2:2"), "{msg}");
        assert!(msg.contains("\"five\""), "{msg}");
        // An empty field (trailing comma) is not a number either.
        let err = parse("1,2,3\n4,5,\n").unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::NotANumber {
                    line: 2,
                    column: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn nan_and_inf_rejected_with_position() {
        let dir = tempfile::tempdir().unwrap();
        for (i, bad) in ["NaN", "nan", "inf", "-Infinity"].iter().enumerate() {
            let p = write_tmp(
                &dir,
                &format!("nan{i}.csv"),
                &format!("h1,h2\n1,2\n3,{bad}\n"),
            );
            let err = read_csv(&p).unwrap_err();
            assert!(
                matches!(&err, DatasetError::NonFinite { line: 3, column: 2, value, .. } if value == bad),
                "{err}"
            );
            assert!(
                err.to_string().contains(&format!("nan{i}.csv:3:2")),
                "{err}"
            );
        }
    }

    #[test]
    fn header_name_count_must_match() {
        let err = parse("a,b\n1,2,3\n").unwrap_err();
        assert!(
            matches!(
                err,
                DatasetError::HeaderMismatch {
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn empty_and_header_only_files_are_errors() {
        assert!(matches!(parse(""), Err(DatasetError::Empty { .. })));
        assert!(matches!(parse("a,b\n\n"), Err(DatasetError::Empty { .. })));
    }

    #[test]
    fn not_utf8_names_line() {
        let err = parse_csv(&b"1,2\n\xff,3\n"[..], "m.csv", &CsvOptions::default()).unwrap_err();
        assert!(
            matches!(err, DatasetError::NotUtf8 { line: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn gzip_file_reads_like_plain() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"x y\n1 2\n3 4\n").unwrap();
        std::fs::write(&p, enc.finish().unwrap()).unwrap();
        let t = read_csv(&p).unwrap();
        assert_eq!(t.header, Header::Names(vec!["x".into(), "y".into()]));
        assert_eq!(t.data, ndarray::array![[1., 2.], [3., 4.]]);
    }

    #[test]
    fn write_read_round_trip_and_write_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.csv");
        let data = ndarray::array![[0.1, -2.5e-300, 1e300], [3.0, 0.0, -0.0]];
        let names: Vec<String> = vec!["a".into(), "b c".into(), "d".into()];
        write_csv(&p, Some(&names), &data).unwrap();
        let t = read_csv(&p).unwrap();
        assert_eq!(t.header, Header::Names(names.clone()));
        assert_eq!(t.data, data);
        write_csv(&p, None, &data).unwrap();
        assert_eq!(read_csv(&p).unwrap().header, Header::None);
        let bad = ndarray::array![[1.0, f64::NAN]];
        assert!(write_csv(&p, None, &bad).is_err());
        assert!(write_csv(&p, Some(&names[..2]), &data).is_err());
        let comma = vec!["a".into(), "b,c".into(), "d".into()];
        assert!(write_csv(&p, Some(&comma), &data).is_err());
        let col = ndarray::array![[1.0], [2.0]];
        assert!(write_csv(&p, Some(&["x y".to_string()]), &col).is_err());
        write_csv(&p, Some(&["x".to_string()]), &col).unwrap();
        assert_eq!(read_csv(&p).unwrap().data, col);
    }

    proptest::proptest! {
        #[test]
        fn csv_round_trip_is_exact(
            rows in 1usize..6,
            bits in proptest::collection::vec(proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL | proptest::num::f64::ZERO, 18),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("r.csv");
            let data = Array2::from_shape_vec((rows, 3), bits[..rows * 3].to_vec()).unwrap();
            write_csv(&p, None, &data).unwrap();
            let back = read_csv(&p).unwrap().data;
            proptest::prop_assert!(back.iter().zip(data.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn gzip_errors_still_name_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"1 2\n3 4\n5\n").unwrap();
        std::fs::write(&p, enc.finish().unwrap()).unwrap();
        let err = read_csv(&p).unwrap_err();
        assert!(err.to_string().contains("t.csv.gz:3:"), "{err}");
    }
}
