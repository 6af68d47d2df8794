//! Loaders for the small UCI tabular sets bundled with scikit-learn (copied, with their license,
//! into `datasets/data/tabular/`): breast cancer (WDBC), diabetes (Efron et al. 2004), digits
//! (optdigits 8×8), wine and iris.
//!
//! The bundled loaders find the files through the crate's manifest directory, so they work from
//! any working directory of a checkout; the `*_from` twins take explicit paths (e.g. a copy of the
//! same file elsewhere). Each bundled loader checks the shape it knows the set has.

use std::path::{Path, PathBuf};

use ndarray::{s, Array1, Array2, Axis};

use crate::csv::{read_csv, CsvTable, Header};
use crate::dataset::{Dataset, Task};
use crate::error::{DatasetError, Result};
use crate::io::display;

/// Largest number of classes [`load_classification_csv`] infers from labels without a header
/// naming the classes (a guard against a regression target read as labels).
pub const MAX_INFERRED_CLASSES: usize = 1 << 16;

/// Path of a bundled tabular file, e.g. `bundled_path("iris.csv")`.
pub fn bundled_path(file: &str) -> PathBuf {
    crate::data_dir().join("tabular").join(file)
}

/// Names accepted by [`by_name`] (as written in experiment configs).
pub const NAMES: [&str; 6] = [
    "breast_cancer",
    "diabetes",
    "diabetes_scaled",
    "digits",
    "wine",
    "iris",
];

/// Loads a bundled tabular set by its name (one of [`NAMES`]).
///
/// # Errors
/// [`DatasetError::UnknownDataset`] for another name; otherwise as the named loader.
pub fn by_name(name: &str) -> Result<Dataset> {
    match name {
        "breast_cancer" => breast_cancer(),
        "diabetes" => diabetes(),
        "diabetes_scaled" => diabetes_scaled(),
        "digits" => digits(),
        "wine" => wine(),
        "iris" => iris(),
        _ => Err(DatasetError::UnknownDataset {
            name: name.to_owned(),
            known: "breast_cancer, diabetes, diabetes_scaled, digits, wine, iris",
        }),
    }
}

/// Breast cancer Wisconsin (diagnostic): 569 × 30, labels 0 = malignant, 1 = benign.
///
/// # Errors
/// I/O or format errors naming the bundled file.
pub fn breast_cancer() -> Result<Dataset> {
    let ds = breast_cancer_from(&bundled_path("breast_cancer.csv"))?;
    expect_shape(&ds, &bundled_path("breast_cancer.csv"), 569, 30)?;
    Ok(ds)
}

/// Breast cancer from a scikit-learn-format CSV at `path`.
///
/// # Errors
/// I/O or format errors naming `path`.
pub fn breast_cancer_from(path: &Path) -> Result<Dataset> {
    let mut ds = load_classification_csv(path, "breast_cancer")?;
    ds.feature_names = breast_cancer_feature_names();
    check_feature_count(&ds, path)?;
    Ok(ds)
}

/// Diabetes, raw features (scikit-learn's `load_diabetes(scaled=False)`): 442 × 10
/// (age, sex, bmi, bp, s1…s6), regression target = disease progression after one year.
///
/// # Errors
/// I/O or format errors naming the bundled file.
pub fn diabetes() -> Result<Dataset> {
    let data = bundled_path("diabetes_data_raw.csv.gz");
    let ds = diabetes_from(&data, &bundled_path("diabetes_target.csv.gz"))?;
    expect_shape(&ds, &data, 442, 10)?;
    Ok(ds)
}

/// Diabetes with scikit-learn's default scaling (`load_diabetes()`): each feature column
/// mean-centred and divided by its Euclidean norm (so its sum of squares is 1).
/// The target is unchanged.
///
/// # Errors
/// As [`diabetes`].
pub fn diabetes_scaled() -> Result<Dataset> {
    let mut ds = diabetes()?;
    for mut col in ds.x.axis_iter_mut(Axis(1)) {
        let mean = col.mean().unwrap_or(0.0);
        col.mapv_inplace(|v| v - mean);
        let norm = col.dot(&col).sqrt();
        if norm > 0.0 {
            col.mapv_inplace(|v| v / norm);
        }
    }
    ds.name = "diabetes_scaled".into();
    Ok(ds)
}

/// Diabetes from a whitespace-separated feature file and a one-column target file.
///
/// # Errors
/// I/O or format errors naming the file; [`DatasetError::ShapeMismatch`] if the target file is
/// not one column with one row per feature row.
pub fn diabetes_from(data_path: &Path, target_path: &Path) -> Result<Dataset> {
    let x = read_csv(data_path)?.data;
    let t = read_csv(target_path)?.data;
    if t.ncols() != 1 || t.nrows() != x.nrows() {
        return Err(DatasetError::ShapeMismatch {
            file: display(target_path),
            offset: 0,
            what: "target rows × columns",
            expected: format!("{} × 1", x.nrows()),
            found: format!("{} × {}", t.nrows(), t.ncols()),
        });
    }
    let names = [
        "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
    ];
    let feature_names = if x.ncols() == names.len() {
        names.iter().map(|s| (*s).to_owned()).collect()
    } else {
        Vec::new()
    };
    Dataset::new(
        "diabetes",
        x,
        t.column(0).to_owned(),
        feature_names,
        Task::Regression,
    )
}

/// Optical recognition of handwritten digits: 1797 × 64 (8×8 images, values 0..16), 10 classes.
///
/// # Errors
/// I/O or format errors naming the bundled file.
pub fn digits() -> Result<Dataset> {
    let path = bundled_path("digits.csv.gz");
    let ds = digits_from(&path)?;
    expect_shape(&ds, &path, 1797, 64)?;
    Ok(ds)
}

/// Digits from a headerless CSV (64 pixel columns + label 0..9) at `path`.
///
/// # Errors
/// I/O or format errors naming `path`.
pub fn digits_from(path: &Path) -> Result<Dataset> {
    let ds = load_classification_csv(path, "digits")?;
    let feature_names = if ds.n_features() == 64 {
        (0..8)
            .flat_map(|r| (0..8).map(move |c| format!("pixel_{r}_{c}")))
            .collect()
    } else {
        Vec::new()
    };
    // All ten digit classes, even if a (partial) file lacks some; `new` re-checks the labels.
    let class_names = (0..10).map(|d| d.to_string()).collect();
    Dataset::new(
        ds.name,
        ds.x,
        ds.y,
        feature_names,
        Task::Classification { class_names },
    )
}

/// Wine recognition: 178 × 13, 3 classes (cultivars).
///
/// # Errors
/// I/O or format errors naming the bundled file.
pub fn wine() -> Result<Dataset> {
    let path = bundled_path("wine_data.csv");
    let ds = wine_from(&path)?;
    expect_shape(&ds, &path, 178, 13)?;
    Ok(ds)
}

/// Wine from a scikit-learn-format CSV at `path`.
///
/// # Errors
/// I/O or format errors naming `path`.
pub fn wine_from(path: &Path) -> Result<Dataset> {
    let mut ds = load_classification_csv(path, "wine")?;
    ds.feature_names = [
        "alcohol",
        "malic_acid",
        "ash",
        "alcalinity_of_ash",
        "magnesium",
        "total_phenols",
        "flavanoids",
        "nonflavanoid_phenols",
        "proanthocyanins",
        "color_intensity",
        "hue",
        "od280/od315_of_diluted_wines",
        "proline",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    check_feature_count(&ds, path)?;
    Ok(ds)
}

/// Iris: 150 × 4 (sepal/petal length/width in cm), 3 classes.
///
/// # Errors
/// I/O or format errors naming the bundled file.
pub fn iris() -> Result<Dataset> {
    let path = bundled_path("iris.csv");
    let ds = iris_from(&path)?;
    expect_shape(&ds, &path, 150, 4)?;
    Ok(ds)
}

/// Iris from a scikit-learn-format CSV at `path`.
///
/// # Errors
/// I/O or format errors naming `path`.
pub fn iris_from(path: &Path) -> Result<Dataset> {
    let mut ds = load_classification_csv(path, "iris")?;
    ds.feature_names = [
        "sepal length (cm)",
        "sepal width (cm)",
        "petal length (cm)",
        "petal width (cm)",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    check_feature_count(&ds, path)?;
    Ok(ds)
}

/// Loads a classification CSV whose last column holds integer labels `0..k`.
///
/// Class names come from a scikit-learn header (`n,d,name…`) when there is one, else they are
/// `"0"`, `"1"`, … up to the largest label (at most [`MAX_INFERRED_CLASSES`] classes). Column names from a named header become the feature
/// names (the label column's name is dropped).
///
/// # Errors
/// CSV errors naming `path`; [`DatasetError::BadLabel`] (with line) for a label that is not a
/// non-negative integer (or not below the header's class count).
pub fn load_classification_csv(path: &Path, name: &str) -> Result<Dataset> {
    let table = read_csv(path)?;
    let (x, y, feature_names) = split_last_column(&table, path)?;
    let class_names = match &table.header {
        Header::Sklearn { class_names, .. } => class_names.clone(),
        _ => {
            let mut max = 0usize;
            for (&v, &line) in y.iter().zip(&table.row_lines) {
                if v.fract() != 0.0 || v < 0.0 || v >= MAX_INFERRED_CLASSES as f64 {
                    return Err(DatasetError::BadLabel {
                        file: display(path),
                        line,
                        column: table.data.ncols(),
                        value: v.to_string(),
                        n_classes: MAX_INFERRED_CLASSES,
                    });
                }
                max = max.max(v as usize);
            }
            (0..=max).map(|c| c.to_string()).collect()
        }
    };
    Dataset::new(
        name,
        x,
        y,
        feature_names,
        Task::Classification { class_names },
    )
}

/// Loads a regression CSV whose last column is the target.
///
/// # Errors
/// CSV errors naming `path`.
pub fn load_regression_csv(path: &Path, name: &str) -> Result<Dataset> {
    let table = read_csv(path)?;
    let (x, y, feature_names) = split_last_column(&table, path)?;
    Dataset::new(name, x, y, feature_names, Task::Regression)
}

type Parts = (Array2<f64>, Array1<f64>, Vec<String>);

fn split_last_column(table: &CsvTable, path: &Path) -> Result<Parts> {
    let d = table.data.ncols();
    if d < 2 {
        return Err(DatasetError::ShapeMismatch {
            file: display(path),
            offset: 0,
            what: "columns (features + target)",
            expected: "at least 2".into(),
            found: d.to_string(),
        });
    }
    let x = table.data.slice(s![.., ..d - 1]).to_owned();
    let y = table.data.column(d - 1).to_owned();
    let names = match &table.header {
        Header::Names(n) => n[..d - 1].to_vec(),
        _ => Vec::new(),
    };
    Ok((x, y, names))
}

fn check_feature_count(ds: &Dataset, path: &Path) -> Result<()> {
    if ds.feature_names.len() != ds.n_features() {
        return Err(DatasetError::ShapeMismatch {
            file: display(path),
            offset: 0,
            what: "feature columns",
            expected: ds.feature_names.len().to_string(),
            found: ds.n_features().to_string(),
        });
    }
    Ok(())
}

fn expect_shape(ds: &Dataset, path: &Path, n: usize, d: usize) -> Result<()> {
    if ds.x.dim() != (n, d) {
        return Err(DatasetError::ShapeMismatch {
            file: display(path),
            offset: 0,
            what: "samples × features of the bundled set",
            expected: format!("{n} × {d}"),
            found: format!("{} × {}", ds.n_samples(), ds.n_features()),
        });
    }
    Ok(())
}

fn breast_cancer_feature_names() -> Vec<String> {
    const BASE: [&str; 10] = [
        "radius",
        "texture",
        "perimeter",
        "area",
        "smoothness",
        "compactness",
        "concavity",
        "concave points",
        "symmetry",
        "fractal dimension",
    ];
    let mean = BASE.iter().map(|b| format!("mean {b}"));
    let se = BASE.iter().map(|b| format!("{b} error"));
    let worst = BASE.iter().map(|b| format!("worst {b}"));
    mean.chain(se).chain(worst).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn breast_cancer_matches_uci_description() {
        let ds = breast_cancer().unwrap();
        assert_eq!(ds.x.dim(), (569, 30));
        // 212 malignant (label 0), 357 benign (label 1), per the UCI description.
        assert_eq!(ds.class_counts().unwrap(), vec![212, 357]);
        assert_eq!(
            ds.task,
            Task::Classification {
                class_names: vec!["malignant".into(), "benign".into()]
            }
        );
        assert_eq!(ds.feature_names[0], "mean radius");
        assert_eq!(ds.feature_names[29], "worst fractal dimension");
        // First row of the file.
        assert_eq!(ds.x[[0, 0]], 17.99);
        assert_eq!(ds.x[[0, 29]], 0.1189);
        // Min/max of mean radius from the description's summary table.
        let col = ds.x.column(0);
        assert_eq!(col.fold(f64::INFINITY, |a, &b| a.min(b)), 6.981);
        assert_eq!(col.fold(f64::NEG_INFINITY, |a, &b| a.max(b)), 28.11);
    }

    #[test]
    fn diabetes_raw_and_scaled() {
        let ds = diabetes().unwrap();
        assert_eq!(ds.x.dim(), (442, 10));
        assert_eq!(ds.task, Task::Regression);
        assert_eq!(ds.x.row(0).to_vec()[..3], [59.0, 2.0, 32.1]);
        assert_eq!(ds.y[0], 151.0);
        // Target range 25..346 (scikit-learn's description).
        assert_eq!(ds.y.fold(f64::INFINITY, |a, &b| a.min(b)), 25.0);
        assert_eq!(ds.y.fold(f64::NEG_INFINITY, |a, &b| a.max(b)), 346.0);

        let sc = diabetes_scaled().unwrap();
        for col in sc.x.axis_iter(Axis(1)) {
            assert!(approx(col.sum(), 0.0, 1e-12));
            assert!(approx(col.dot(&col), 1.0, 1e-12));
        }
        // scikit-learn's load_diabetes().data[0, :3].
        let want = [0.038_075_906, 0.050_680_119, 0.061_696_207];
        for (a, b) in sc.x.row(0).iter().zip(want) {
            assert!(approx(*a, b, 1e-8), "{a} vs {b}");
        }
    }

    #[test]
    fn digits_wine_iris_shapes_and_classes() {
        let d = digits().unwrap();
        assert_eq!(d.x.dim(), (1797, 64));
        assert_eq!(
            d.class_counts().unwrap(),
            vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
        );
        assert!(d
            .x
            .iter()
            .all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0));
        assert_eq!(d.feature_names[9], "pixel_1_1");

        let w = wine().unwrap();
        assert_eq!(w.x.dim(), (178, 13));
        assert_eq!(w.class_counts().unwrap(), vec![59, 71, 48]);
        assert_eq!(w.x[[0, 12]], 1065.0);

        let i = iris().unwrap();
        assert_eq!(i.x.dim(), (150, 4));
        assert_eq!(i.class_counts().unwrap(), vec![50, 50, 50]);
        // Mean sepal length 5.84 (the description's summary statistics).
        assert!(approx(i.x.column(0).mean().unwrap(), 5.8433, 1e-4));
    }

    #[test]
    fn explicit_path_loaders_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("iris_small.csv");
        std::fs::write(&p, "2,4,a,b\n1,2,3,4,0\n5,6,7,8,1\n").unwrap();
        let ds = iris_from(&p).unwrap();
        assert_eq!(ds.n_samples(), 2);
        assert_eq!(ds.n_classes(), Some(2));

        // Wrong feature count for iris's names.
        std::fs::write(&p, "1,2,3,0\n1,2,3,1\n").unwrap();
        let err = iris_from(&p).unwrap_err();
        assert!(matches!(err, DatasetError::ShapeMismatch { .. }), "{err}");

        // Generic classification loader infers classes; a bad label names file and line.
        let q = dir.path().join("c.csv");
        std::fs::write(&q, "f1,f2,label\n0.1,0.2,0\n0.3,0.4,2\n").unwrap();
        let ds = load_classification_csv(&q, "c").unwrap();
        assert_eq!(ds.feature_names, vec!["f1", "f2"]);
        assert_eq!(ds.n_classes(), Some(3));
        std::fs::write(&q, "0.1,0.2,0\n\n0.3,0.4,1.5\n").unwrap();
        let err = load_classification_csv(&q, "c").unwrap_err();
        let line_col = matches!(
            err,
            DatasetError::BadLabel {
                line: 3,
                column: 3,
                ..
            }
        );
        assert!(line_col, "{err}");
        assert!(err.to_string().contains("c.csv:3:3"), "{err}");
        // A regression target is not taken for millions of classes.
        std::fs::write(&q, "0.1,0.2,0\n0.3,0.4,1e9\n").unwrap();
        let err = load_classification_csv(&q, "c").unwrap_err();
        assert!(
            matches!(err, DatasetError::BadLabel { line: 2, .. }),
            "{err}"
        );

        let r = load_regression_csv(&q, "r").unwrap();
        assert_eq!(r.y.to_vec(), vec![0.0, 1e9]);

        // Diabetes target with the wrong length.
        let t = dir.path().join("t.csv");
        std::fs::write(&t, "1\n2\n3\n").unwrap();
        let err = diabetes_from(&bundled_path("diabetes_data_raw.csv.gz"), &t).unwrap_err();
        assert!(matches!(err, DatasetError::ShapeMismatch { .. }), "{err}");
    }

    #[test]
    fn by_name_loads_every_listed_set() {
        for name in NAMES {
            let ds = by_name(name).unwrap();
            assert_eq!(ds.name, name);
        }
        let err = by_name("cancer").unwrap_err();
        assert!(err.to_string().contains("breast_cancer"), "{err}");
    }

    #[test]
    fn bundled_path_is_independent_of_cwd() {
        assert!(bundled_path("iris.csv").is_absolute());
        assert!(bundled_path("iris.csv").exists());
        assert!(bundled_path("PACKAGE_LICENSE_BSD3").exists());
    }
}
