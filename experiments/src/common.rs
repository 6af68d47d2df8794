//! Pieces shared by the tasks: data loading, the in-process dealer, progress bars, timing.

use crate::config::DataSource;
use anyhow::{bail, Context, Result};
use datasets::Dataset;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::Array2;

/// Train and test sets.
#[derive(Debug)]
pub struct Split {
    /// Training set.
    pub train: Dataset,
    /// Test set.
    pub test: Dataset,
    /// Where it came from, for the report.
    pub description: String,
}

/// The split's feature matrices `(train, test)`, standardized by the training set's statistics
/// when `standardize` is set (the test set never contributes to them).
pub fn features(split: &Split, standardize: bool) -> Result<(Array2<f64>, Array2<f64>)> {
    let (xtr, xte) = (split.train.x.clone(), split.test.x.clone());
    if !standardize {
        return Ok((xtr, xte));
    }
    let st = datasets::preprocess::Standardizer::fit(&xtr);
    Ok((st.transform(&xtr)?, st.transform(&xte)?))
}

/// Loads the data a task names and splits it.
pub fn load(src: &DataSource, seed: u64) -> Result<Split> {
    match src {
        DataSource::Bundled {
            name,
            test_fraction,
        } => {
            let ds = match name.as_str() {
                "diabetes" => datasets::tabular::diabetes()?,
                "breast_cancer" | "breast-cancer" => datasets::tabular::breast_cancer()?,
                "wine" => datasets::tabular::wine()?,
                "iris" => datasets::tabular::iris()?,
                "digits" => datasets::tabular::digits()?,
                other => bail!("unknown bundled dataset {other:?} (diabetes, breast_cancer, wine, iris, digits)"),
            };
            let n = ds.n_samples();
            let (train, test) = datasets::split::train_test_split(&ds, *test_fraction, seed)
                .with_context(|| format!("splitting {name}"))?;
            Ok(Split {
                description: format!(
                    "{name}: {n} rows × {} features, split {}/{} (seed {seed})",
                    ds.n_features(),
                    train.n_samples(),
                    test.n_samples()
                ),
                train,
                test,
            })
        }
        DataSource::Mnist {
            positive,
            train_rows,
            test_rows,
        } => {
            use datasets::mnist::{load_bundled, Split as S};
            let (mut tr, mut te) = (load_bundled(S::Train)?, load_bundled(S::Test)?);
            if let Some(n) = train_rows {
                tr = tr.head(*n);
            }
            if let Some(n) = test_rows {
                te = te.head(*n);
            }
            let (train, test, what) = if positive.is_empty() {
                (tr.to_dataset(), te.to_dataset(), "10 classes".to_string())
            } else {
                (
                    tr.binary(positive)?,
                    te.binary(positive)?,
                    format!("binary: digits {positive:?} vs the rest"),
                )
            };
            Ok(Split {
                description: format!(
                    "MNIST ({what}): {} train, {} test rows × 784 pixels in [0, 1]",
                    train.n_samples(),
                    test.n_samples()
                ),
                train,
                test,
            })
        }
        DataSource::Csv {
            train,
            test,
            regression,
        } => {
            let train = train
                .as_ref()
                .context("a csv source needs `train` (the training file) for an in-process run")?;
            let (tr, te) = (load_csv(train, *regression)?, load_csv(test, *regression)?);
            Ok(Split {
                description: format!(
                    "CSV: {} ({} rows) for training, {} ({} rows) for testing, {} features",
                    train.display(),
                    tr.n_samples(),
                    test.display(),
                    te.n_samples(),
                    tr.n_features()
                ),
                train: tr,
                test: te,
            })
        }
        DataSource::Planted {
            n_train,
            n_test,
            d,
            noise_std,
        } => {
            let spec = datasets::synth::PlantedSpec::new(n_train + n_test, *d, seed);
            let p = datasets::synth::planted_linear(&spec, *noise_std)?;
            let train: Vec<usize> = (0..*n_train).collect();
            let test: Vec<usize> = (*n_train..n_train + n_test).collect();
            Ok(Split {
                description: format!(
                    "planted linear regression: {n_train} train + {n_test} test rows × {d} features, features U[-1,1), noise σ = {noise_std} (seed {seed})"
                ),
                train: p.dataset.select(&train),
                test: p.dataset.select(&test),
            })
        }
    }
}

/// Reads a CSV whose last column is the target (`regression`) or the class index.
pub fn load_csv(path: &std::path::Path, regression: bool) -> Result<Dataset> {
    let name = path
        .file_stem()
        .map_or_else(|| "csv".to_string(), |s| s.to_string_lossy().into_owned());
    Ok(if regression {
        datasets::tabular::load_regression_csv(path, &name)?
    } else {
        datasets::tabular::load_classification_csv(path, &name)?
    })
}

/// A progress bar for `steps` steps, hidden when stderr is not a terminal.
pub fn progress(steps: u64, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(steps);
    pb.set_style(
        ProgressStyle::with_template(
            "{msg:>24} [{bar:30}] {pos}/{len} steps, {elapsed_precise} (eta {eta})",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

/// Median of a sample (sorted copy).
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}
