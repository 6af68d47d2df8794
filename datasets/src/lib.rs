//! Datasets for Dyad: loaders for the real data bundled under `datasets/data/` (MNIST, and
//! scikit-learn's UCI tabular sets), readers for the formats data arrives in (numeric CSV, IDX,
//! NumPy `.npy`), seeded synthetic generators with planted models, and the preprocessing that
//! experiments apply before training (splits, scaling, one-hot).
//!
//! ```no_run
//! # fn main() -> datasets::Result<()> {
//! use datasets::{preprocess::Standardizer, split, tabular};
//! let ds = tabular::breast_cancer()?;
//! let (train, test) = split::stratified_split(&ds, 0.2, 7)?;
//! let scaler = Standardizer::fit(&train.x);
//! let (x_train, x_test) = (scaler.transform(&train.x)?, scaler.transform(&test.x)?);
//! # let _ = (x_train, x_test);
//! # Ok(())
//! # }
//! ```
//!
//! This crate may read files (the protocol crates may not); everything it returns is plain
//! `ndarray` data.

pub mod csv;
pub mod dataset;
pub mod error;
pub mod io;
pub mod mnist;
pub mod npy;
pub mod preprocess;
pub mod skeleton;
pub mod split;
pub mod synth;
pub mod tabular;

pub use dataset::{Dataset, Task};
pub use error::{DatasetError, Result};

/// Directory of the data bundled with this crate (`<crate>/data`), found through the crate's
/// manifest directory so that loaders work from any working directory of a checkout.
pub fn data_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}
