//! `share-upload --standardize`: a single owner standardizes a table on its own machine before
//! sharing it, and the statistics travel with the upload as shares, so the parties store the
//! dataset exactly as if `party standardize` had standardized it on shares
//! ([`crate::store::Standardization`], the upload's id as its origin, `revealed`: the owner
//! computed them).
//!
//! The statistics are `datasets::preprocess::Standardizer`'s: column means and population
//! standard deviations (divided by `n`, as scikit-learn's `StandardScaler` and as
//! `ml::ops::stats` computes them on shares), so a model trained on a table standardized here and
//! one standardized on the parties see the same numbers. The features are standardized, the
//! label column too only when asked (a regression target); a constant column (standard
//! deviation 0) is refused, naming the file and the column, since `1/sd` does not exist.
//!
//! Security model: everything here runs on the owner's machine on the owner's plaintext; the
//! statistics leave it only as additive shares (a fresh OS-seeded split per statistic, one share
//! per party), so one party's words are uniform and say nothing about them.

use super::{InputError, Result, Table};
use datasets::preprocess::Standardizer;
use ndarray::{Array2, Axis};

/// The statistics of the standardized columns of a table (0-based columns, ascending).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalStats {
    /// The standardized columns: every feature, the label too when it was asked for.
    pub columns: Vec<usize>,
    /// Whether the label column is among them.
    pub label: bool,
    /// Their means.
    pub mean: Vec<f64>,
    /// Their population standard deviations (all positive).
    pub sd: Vec<f64>,
}

impl LocalStats {
    /// `[mean; 1/sd; sd]`, each `1 × columns` (the three statistics a standardized dataset
    /// keeps, in the order of [`crate::store::Standardization`]).
    pub fn rows(&self) -> [Array2<f64>; 3] {
        let row = |v: Vec<f64>| Array2::from_shape_vec((1, v.len()), v).expect("one row");
        [
            row(self.mean.clone()),
            row(self.sd.iter().map(|s| 1.0 / s).collect()),
            row(self.sd.clone()),
        ]
    }
}

/// Standardizes `table` in place (its features, the label column too with `label`) and returns
/// the statistics used.
///
/// # Errors
/// [`InputError::Standardize`] for a skeleton table, fewer than two rows, or a constant column
/// (naming it, 0-based, with its value).
pub fn standardize(table: &mut Table, label: bool) -> Result<LocalStats> {
    let refuse = |reason: String| InputError::Standardize {
        file: table.file.clone(),
        reason,
    };
    if table.tensor.is_some() {
        return Err(refuse(
            "skeleton clips are not standardized (their networks' batch norms normalize them)"
                .into(),
        ));
    }
    let n = table.data.nrows();
    if n < 2 {
        return Err(refuse(format!(
            "only {n} row(s): at least 2 to standardize"
        )));
    }
    let columns: Vec<usize> = (0..table.data.ncols())
        .filter(|&c| label || c != table.label_column)
        .collect();
    let x = table.data.select(Axis(1), &columns);
    let (fit, z) = Standardizer::fit_transform(&x);
    // A column the standardizer took as constant keeps its spread (near 0); every other
    // standardized column has population deviation 1.
    if let Some(k) = (0..columns.len()).find(|&k| z.column(k).std(0.0) < 0.5) {
        return Err(refuse(format!(
            "column {} (0-based) is constant ({}): standard deviation 0, cannot divide by it; \
             drop the column or upload without --standardize",
            columns[k],
            fit.mean()[k]
        )));
    }
    for (k, &c) in columns.iter().enumerate() {
        table.data.column_mut(c).assign(&z.column(k));
    }
    Ok(LocalStats {
        label,
        mean: fit.mean().to_vec(),
        sd: fit.scale().to_vec(),
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn table(data: Array2<f64>) -> Table {
        let label_column = data.ncols() - 1;
        Table {
            file: "t.csv".into(),
            data,
            label_column,
            tensor: None,
            origin: super::super::Origin::Npy,
        }
    }

    #[test]
    fn features_are_z_scored_with_population_statistics() {
        let raw = array![[1.0, 10.0, 0.0], [3.0, 20.0, 1.0], [5.0, 60.0, 1.0]];
        let mut t = table(raw.clone());
        let s = standardize(&mut t, false).unwrap();
        assert_eq!((s.columns.clone(), s.label), (vec![0, 1], false));
        assert_eq!(s.mean, vec![3.0, 30.0]);
        let sd0 = (8.0f64 / 3.0).sqrt();
        let sd1 = (1400.0f64 / 3.0).sqrt();
        assert!((s.sd[0] - sd0).abs() < 1e-12 && (s.sd[1] - sd1).abs() < 1e-12);
        for i in 0..3 {
            assert!((t.data[[i, 0]] - (raw[[i, 0]] - 3.0) / sd0).abs() < 1e-12);
            assert!((t.data[[i, 1]] - (raw[[i, 1]] - 30.0) / sd1).abs() < 1e-12);
        }
        assert_eq!(t.data.column(2), raw.column(2), "the class label is kept");
        let [m, inv, sd] = s.rows();
        assert_eq!(m, array![[3.0, 30.0]]);
        assert!((inv[[0, 1]] * sd[[0, 1]] - 1.0).abs() < 1e-15);
    }

    #[test]
    fn the_label_is_standardized_only_on_request() {
        let raw = array![[1.0, 1000.0], [2.0, 1002.0], [3.0, 1004.0], [4.0, 1006.0]];
        let mut t = table(raw.clone());
        let s = standardize(&mut t, true).unwrap();
        assert_eq!((s.columns.clone(), s.label), (vec![0, 1], true));
        assert_eq!(s.mean[1], 1003.0);
        assert!((s.sd[1] - 5.0f64.sqrt()).abs() < 1e-12);
        let back = &t.data.column(1) * s.sd[1] + s.mean[1];
        assert!(back
            .iter()
            .zip(raw.column(1))
            .all(|(a, b)| (a - b).abs() < 1e-9));
    }

    #[test]
    fn constant_columns_short_tables_and_clips_are_refused() {
        let mut t = table(array![[1.0, 7.0, 0.0], [2.0, 7.0, 1.0], [3.0, 7.0, 0.0]]);
        let e = standardize(&mut t, false).unwrap_err().to_string();
        assert!(
            e.starts_with("t.csv: column 1 (0-based) is constant (7)"),
            "{e}"
        );
        let e = standardize(&mut table(array![[1.0, 0.0]]), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("only 1 row(s): at least 2"), "{e}");
        let mut clip = table(array![[1.0, 0.0], [2.0, 1.0]]);
        clip.tensor = Some(crate::proto::TensorMeta {
            dims: [1, 1, 1, 1],
            graph: "mocap15".into(),
            class_names: vec![],
        });
        let e = standardize(&mut clip, false).unwrap_err().to_string();
        assert!(e.contains("skeleton clips"), "{e}");
    }
}
