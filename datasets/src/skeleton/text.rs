//! Small helpers for the line-oriented text parsers of this module: number parsing with the file
//! name and line in the error.

use super::{Result, SkeletonError};

/// Parses `value` as `f64`, naming `file`, `line` and `field` on failure. Non-finite values are
/// rejected too.
pub(crate) fn parse_f64(value: &str, file: &str, line: usize, field: &'static str) -> Result<f64> {
    match value.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(SkeletonError::InvalidNumber {
            file: file.to_string(),
            line,
            field,
            value: value.to_string(),
        }),
    }
}

/// Parses `value` as a non-negative integer, naming `file`, `line` and `field` on failure.
pub(crate) fn parse_usize(
    value: &str,
    file: &str,
    line: usize,
    field: &'static str,
) -> Result<usize> {
    value
        .trim()
        .parse::<usize>()
        .map_err(|_| SkeletonError::InvalidNumber {
            file: file.to_string(),
            line,
            field,
            value: value.to_string(),
        })
}

/// Splits a CSV line into fields and checks their number.
pub(crate) fn csv_fields<'a>(
    text: &'a str,
    file: &str,
    line: usize,
    what: &'static str,
    expected: usize,
) -> Result<Vec<&'a str>> {
    let fields: Vec<&str> = text.trim_end_matches('\r').split(',').collect();
    if fields.len() != expected {
        return Err(SkeletonError::FieldCount {
            file: file.to_string(),
            line,
            what,
            expected,
            found: fields.len(),
        });
    }
    Ok(fields)
}
