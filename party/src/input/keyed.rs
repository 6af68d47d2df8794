//! A CSV file with a row key column, as an owner of vertically partitioned data uploads it
//! (`share-upload --key-column`): the key column is taken out (it is not a feature and never
//! leaves the owner's machine; only its tags do, see [`crate::rowkeys`]) and the rest is read as
//! numeric CSV. Errors name the file, the line and the column as counted in the owner's file
//! (the key column included).
//!
//! Security model: as [`crate::input`]: the owner's own file, read and checked on the owner's
//! machine before anything is sent.

use super::{name, InputError, InputSpec, Origin, Result, Table};

/// Which column holds the row key: a 0-based index or a header name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyColumn {
    /// 0-based index.
    Index(usize),
    /// A name in the header line.
    Name(String),
}

impl std::str::FromStr for KeyColumn {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.is_empty() {
            return Err("an empty key column".into());
        }
        Ok(s.parse().map_or_else(|_| Self::Name(s.into()), Self::Index))
    }
}

/// Reads a keyed CSV file: the table without its key column, and the key of each row. With
/// `labelled` the label column is `spec.label_column` (counted without the key column; default
/// the last); without, every remaining column is a feature and the table's `label_column` is
/// its column count (no column).
///
/// # Errors
/// [`InputError::Keys`] for a missing key column, an empty or repeated key; the CSV reader's
/// errors; [`InputError::OutOfRange`] later from [`Table::check_range`].
pub fn read_keyed(
    spec: &InputSpec,
    key: &KeyColumn,
    labelled: bool,
) -> Result<(Table, Vec<String>)> {
    let file = name(&spec.file);
    let bad = |reason: String| InputError::Keys {
        file: file.clone(),
        reason,
    };
    let format = spec.format.or_else(|| super::Format::detect(&spec.file));
    if spec.labels.is_some()
        || spec.graph.is_some()
        || format.is_some_and(|f| f != super::Format::Csv)
    {
        return Err(bad(
            "a keyed upload is one CSV file (no --labels, no --graph)".into(),
        ));
    }
    let bytes = datasets::io::read_maybe_gzip(&spec.file)?;
    let text = String::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8 text: {e}")))?;
    let lines: Vec<&str> = text.lines().collect();
    let col = match key {
        KeyColumn::Index(i) => *i,
        KeyColumn::Name(n) => lines
            .first()
            .and_then(|h| h.split(',').position(|f| f.trim() == n))
            .ok_or_else(|| bad(format!("no column named {n:?} in the header line")))?,
    };
    let mut keys = Vec::with_capacity(lines.len());
    let mut rest = String::with_capacity(text.len());
    for (i, l) in lines.iter().enumerate() {
        let mut fields: Vec<&str> = l.split(',').collect();
        if l.trim().is_empty() {
            keys.push(String::new());
        } else if col < fields.len() {
            keys.push(fields.remove(col).trim().to_string());
        } else {
            return Err(bad(format!(
                "line {}: {} fields, no key column {} (0-based)",
                i + 1,
                fields.len(),
                col
            )));
        }
        rest.push_str(&fields.join(","));
        rest.push('\n');
    }
    let csv = datasets::csv::parse_csv(rest.as_bytes(), &file, &Default::default())?;
    let keys = row_keys(&csv.row_lines, keys).map_err(bad)?;
    let (rows, cols) = csv.data.dim();
    let min_cols = if labelled { 2 } else { 1 };
    if rows == 0 || cols < min_cols {
        return Err(InputError::TooSmall { file, rows, cols });
    }
    let label_column = match (labelled, spec.label_column) {
        (false, _) => cols,
        (true, None) => cols - 1,
        (true, Some(c)) if c < cols => c,
        (true, Some(column)) => return Err(InputError::LabelColumn { file, column, cols }),
    };
    let mut t = Table {
        file,
        data: csv.data,
        label_column,
        tensor: None,
        origin: Origin::KeyedCsv {
            lines: csv.row_lines,
            key: col,
        },
    };
    if let (Some(pos), true) = (&spec.positive, labelled) {
        let l = t.label_column;
        t.data
            .column_mut(l)
            .mapv_inplace(|v| f64::from(u8::from(pos.contains(&v))));
    }
    Ok((t, keys))
}

/// The keys of the data rows (`lines`: 1-based line of each row), refusing empty and repeated
/// keys.
fn row_keys(lines: &[usize], mut by_line: Vec<String>) -> std::result::Result<Vec<String>, String> {
    let mut seen = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(lines.len());
    for &l in lines {
        let k = std::mem::take(&mut by_line[l - 1]);
        if k.is_empty() {
            return Err(format!("line {l}: empty row key"));
        }
        if let Some(first) = seen.insert(k.clone(), l) {
            return Err(format!(
                "line {l}: row key {k:?} repeats line {first} (keys must be unique)"
            ));
        }
        out.push(k);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn spec(file: &Path) -> InputSpec {
        InputSpec {
            file: file.into(),
            format: None,
            labels: None,
            label_column: None,
            positive: None,
            graph: None,
            class_names: vec![],
        }
    }

    #[test]
    fn the_key_column_is_taken_out_by_name_or_index() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("bank.csv");
        std::fs::write(&p, "income,id,debt,y\n1.5,C-1,2,1\n-3,C-2,4,0\n").unwrap();
        let (t, k) = read_keyed(&spec(&p), &"id".parse().unwrap(), true).unwrap();
        assert_eq!(k, vec!["C-1", "C-2"]);
        assert_eq!(t.data, ndarray::array![[1.5, 2.0, 1.0], [-3.0, 4.0, 0.0]]);
        assert_eq!(t.label_column, 2);
        let (t, _) = read_keyed(&spec(&p), &KeyColumn::Index(1), false).unwrap();
        assert_eq!(t.label_column, 3, "no label: the column count");
    }

    #[test]
    fn bad_keys_and_values_name_the_line_and_the_owners_column() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ins.csv");
        let key = KeyColumn::Index(0);
        std::fs::write(&p, "a,1\nb,2\na,3\n").unwrap();
        let e = read_keyed(&spec(&p), &key, false).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("repeats line 1"), "{e}");
        std::fs::write(&p, "a,1\n,2\n").unwrap();
        let e = read_keyed(&spec(&p), &key, false).unwrap_err().to_string();
        assert!(e.contains("line 2: empty row key"), "{e}");
        std::fs::write(&p, "a,1\nb,1e300\n").unwrap();
        let (t, _) = read_keyed(&spec(&p), &key, false).unwrap();
        let e = t
            .check_range(mpc::FracBits::new(16).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2, column 2"), "{e}");
        let e = read_keyed(&spec(&p), &"id".parse().unwrap(), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no column named \"id\""), "{e}");
    }
}
