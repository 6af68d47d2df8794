//! The crate's error type.
//!
//! Every variant that comes from bad input names the file (or the name given to an in-memory
//! source), the position (1-based line and column for text, byte offset for binary formats),
//! the offending value and what was expected, so that a user can open the file and fix it.

use std::fmt;

/// Result alias used throughout the crate.
pub type Result<T, E = DatasetError> = std::result::Result<T, E>;

/// Errors of the `datasets` crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// Opening or reading a file failed (this includes corrupt gzip streams).
    #[error("{file}: {source}")]
    Io {
        /// The file being read or written.
        file: String,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A text line is not valid UTF-8.
    #[error("{file}:{line}: line is not valid UTF-8")]
    NotUtf8 {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
    },

    /// A file (or the part of it that should hold data) is empty.
    #[error("{file}: no data rows")]
    Empty {
        /// The file.
        file: String,
    },

    /// A CSV row has a different number of fields from the first data row.
    #[error(
        "{file}:{line}: row has {found} fields, expected {expected} (as in line {first_line})"
    )]
    RaggedRow {
        /// The file.
        file: String,
        /// 1-based line number of the offending row.
        line: usize,
        /// Number of fields of the first data row.
        expected: usize,
        /// Number of fields found.
        found: usize,
        /// 1-based line number of the first data row, which set `expected`.
        first_line: usize,
    },

    /// A CSV field is not a number.
    #[error("{file}:{line}:{column}: field {value:?} is not a number")]
    NotANumber {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// 1-based column (field) number.
        column: usize,
        /// The field as written.
        value: String,
    },

    /// A CSV field parses as NaN or ±infinity, which no loader accepts.
    #[error("{file}:{line}:{column}: field {value:?} is not finite (NaN or infinity)")]
    NonFinite {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// 1-based column (field) number.
        column: usize,
        /// The field as written.
        value: String,
    },

    /// A class-label field is not an integer in `0..n_classes` (the classes named by the header).
    #[error("{file}:{line}:{column}: label {value:?} is not an integer in 0..{n_classes}")]
    BadLabel {
        /// The file.
        file: String,
        /// 1-based line number.
        line: usize,
        /// 1-based column (field) number.
        column: usize,
        /// The field as written.
        value: String,
        /// Number of classes named by the header.
        n_classes: usize,
    },

    /// A header disagrees with the data below it (e.g. scikit-learn's `n_rows,n_cols,...` line).
    #[error("{file}:{line}: header says {what} = {expected}, the data has {found}")]
    HeaderMismatch {
        /// The file.
        file: String,
        /// 1-based line number of the header.
        line: usize,
        /// Which quantity disagrees (`"rows"`, `"columns"`, `"class count"`, ...).
        what: &'static str,
        /// The value stated by the header.
        expected: usize,
        /// The value found in the data.
        found: usize,
    },

    /// A value in a binary file is outside its allowed range.
    #[error("{file}@{offset}: value {value} is invalid: expected {expected}")]
    InvalidValue {
        /// The file.
        file: String,
        /// Byte offset of the value (in the uncompressed stream).
        offset: u64,
        /// The value found.
        value: String,
        /// What was expected.
        expected: &'static str,
    },

    /// A binary file starts with the wrong magic number.
    #[error("{file}@{offset}: bad magic number: expected {expected}, found {found}")]
    BadMagic {
        /// The file.
        file: String,
        /// Byte offset of the magic number.
        offset: u64,
        /// Expected magic bytes, in hex.
        expected: String,
        /// Found magic bytes, in hex.
        found: String,
    },

    /// A binary file ends before the data it announces.
    #[error(
        "{file}@{offset}: file ends early: needed {expected} more bytes for {what}, found {found}"
    )]
    Truncated {
        /// The file.
        file: String,
        /// Byte offset where the missing part starts.
        offset: u64,
        /// What was being read (`"header"`, `"data"`, ...).
        what: &'static str,
        /// Bytes needed.
        expected: u64,
        /// Bytes available.
        found: u64,
    },

    /// A binary file has bytes after the data it announces.
    #[error("{file}@{offset}: unexpected bytes after the end of the data")]
    TrailingBytes {
        /// The file.
        file: String,
        /// Byte offset of the first unexpected byte.
        offset: u64,
    },

    /// A shape read from a file is not the one the format or caller requires.
    #[error("{file}@{offset}: {what}: expected {expected}, found {found}")]
    ShapeMismatch {
        /// The file.
        file: String,
        /// Byte offset of the field holding the shape (0 when not meaningful).
        offset: u64,
        /// Which dimension or quantity.
        what: &'static str,
        /// Expected value (may be a list such as `[N, 28, 28]`).
        expected: String,
        /// Found value.
        found: String,
    },

    /// An element type code in a binary file is not supported.
    #[error("{file}@{offset}: unsupported element type {found:?} (supported: {supported})")]
    UnsupportedType {
        /// The file.
        file: String,
        /// Byte offset of the type code.
        offset: u64,
        /// The type code as found (hex byte for IDX, `descr` string for NPY).
        found: String,
        /// The supported codes.
        supported: &'static str,
    },

    /// A `.npy` header is malformed.
    #[error("{file}@{offset}: bad .npy header: {problem}; header is {header:?}")]
    NpyHeader {
        /// The file.
        file: String,
        /// Byte offset of the header text.
        offset: u64,
        /// What is wrong.
        problem: NpyHeaderProblem,
        /// The header text (latin-1 decoded).
        header: String,
    },

    /// The element type stored in a file differs from the one asked for.
    #[error("{file}: holds elements of type {found}, caller asked for {expected}")]
    DtypeMismatch {
        /// The file.
        file: String,
        /// The requested type (numpy `descr`).
        expected: &'static str,
        /// The stored type (numpy `descr`).
        found: String,
    },

    /// A value cannot be converted to `f64` without loss.
    #[error("{file}: element {index} = {value} cannot be represented exactly as f64 (limit 2^53)")]
    LossyConversion {
        /// The file.
        file: String,
        /// Flat (C-order) index of the element.
        index: usize,
        /// The value.
        value: i64,
    },

    /// A label is outside `0..n_classes` (or not an integer).
    #[error("label at row {row} is {value}, expected an integer in 0..{n_classes}")]
    LabelOutOfRange {
        /// 0-based row.
        row: usize,
        /// The label value.
        value: f64,
        /// Number of classes.
        n_classes: usize,
    },

    /// Two arrays that must agree in a dimension do not.
    #[error("{what}: expected {expected}, found {found}")]
    DimensionMismatch {
        /// What is compared (e.g. `"columns of x vs fitted scaler"`).
        what: &'static str,
        /// Expected size.
        expected: usize,
        /// Found size.
        found: usize,
    },

    /// A numeric argument is outside its allowed range.
    #[error("argument {name} = {value} is out of range: {constraint}")]
    InvalidArgument {
        /// The argument's name.
        name: &'static str,
        /// Its value.
        value: f64,
        /// The allowed range, in words.
        constraint: &'static str,
    },

    /// A split would leave one side empty, or a class without samples on a side.
    #[error("cannot split {n} samples with test fraction {test_frac}: {reason}")]
    InvalidSplit {
        /// Number of samples.
        n: usize,
        /// The requested test fraction.
        test_frac: f64,
        /// Why not.
        reason: &'static str,
    },

    /// A dataset name that no loader knows.
    #[error("unknown dataset {name:?}; known: {known}")]
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// The known names.
        known: &'static str,
    },

    /// The task of a dataset does not support the operation (e.g. stratifying a regression set).
    #[error("dataset {name:?} is a {task} dataset; {operation} needs a classification dataset")]
    WrongTask {
        /// Dataset name.
        name: String,
        /// The dataset's task.
        task: &'static str,
        /// The operation attempted.
        operation: &'static str,
    },
}

/// What is wrong with a `.npy` header (see [`DatasetError::NpyHeader`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NpyHeaderProblem {
    /// The format version is not 1.0, 2.0 or 3.0.
    UnsupportedVersion {
        /// Major version byte.
        major: u8,
        /// Minor version byte.
        minor: u8,
    },
    /// The header is not a Python dict literal of the expected form.
    Syntax {
        /// Character position in the header text.
        position: usize,
        /// What the parser expected there.
        expected: &'static str,
    },
    /// A required key is missing.
    MissingKey(&'static str),
    /// A key not defined by the format.
    UnknownKey(String),
    /// The shape's element count overflows `usize`.
    ShapeOverflow,
    /// The header text is not valid UTF-8 (format 3.0).
    NotUtf8,
}

impl fmt::Display for NpyHeaderProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedVersion { major, minor } => {
                write!(
                    f,
                    "unsupported format version {major}.{minor} (supported 1.0, 2.0, 3.0)"
                )
            }
            Self::Syntax { position, expected } => {
                write!(f, "expected {expected} at character {position}")
            }
            Self::MissingKey(k) => write!(f, "missing key {k:?}"),
            Self::UnknownKey(k) => write!(f, "unknown key {k:?}"),
            Self::ShapeOverflow => write!(f, "shape's element count overflows"),
            Self::NotUtf8 => write!(f, "header text is not UTF-8"),
        }
    }
}

/// Formats bytes as lowercase hex (`"00000803"`), for magic numbers in errors.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl DatasetError {
    /// Wraps an I/O error with the file it came from.
    pub(crate) fn io(file: &str, source: std::io::Error) -> Self {
        Self::Io {
            file: file.to_owned(),
            source,
        }
    }
}
