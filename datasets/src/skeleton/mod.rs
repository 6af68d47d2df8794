//! Skeleton data for spatio-temporal graph convolution (ST-GCN, Yan et al. AAAI 2018; CryptoGCN's
//! skeleton benchmarks): skeleton graphs with ST-GCN spatial partitioning, the bundled DeepMimic
//! mocap clips (3-D joint positions, and the raw joint rotations with forward kinematics), the
//! augmented "Mocap-15" action set with an NTU-style cross-view split, the BodyPose BODY_25 set,
//! and readers/writers for the NTU RGB+D `.skeleton` text format and `(N, C, T, V, M)` `.npy`
//! arrays (through the crate's `.npy` reader, [`crate::npy`]).
//!
//! All tensors use the layout of ST-GCN / 2s-AGCN: `(N, C, T, V, M)` = (samples, coordinate
//! channels, frames, joints, persons), stored as `f32` ([`SkeletonSet::data`]).
//!
//! ```
//! use datasets::skeleton::{Graph, Mocap15, Mocap15Config};
//!
//! // ST-GCN adjacency partitions (K = 3, V, V) of the 15-joint mocap humanoid.
//! let a = Graph::mocap15().spatial_partitions();
//! assert_eq!(a.shape(), &[3, 15, 15]);
//!
//! // NTU-style cross-view split: train views -45/+45 degrees, test view 0 degrees.
//! let gen = Mocap15::load_bundled(Mocap15Config::default())?;
//! let split = gen.cross_view(2, 1)?;
//! assert_eq!(split.train.set.shape(), [30, 3, 64, 15, 1]);
//! assert_eq!(split.test.set.labels.len(), 15);
//! # Ok::<(), datasets::skeleton::SkeletonError>(())
//! ```

pub mod augment;
pub mod bodypose;
pub mod fk;
pub mod graph;
pub mod mocap;
pub mod ntu;
mod text;
pub mod urdf;

use std::path::{Path, PathBuf};

use ndarray::Array5;

pub use augment::{
    Centering, CrossViewSplit, GeneratedSet, Mocap15, Mocap15Config, SampleParams, ViewSet,
};
pub use bodypose::{BodyPoseNormalization, BodyPoseSet};
pub use fk::{ForwardKinematics, RawClip};
pub use graph::Graph;
pub use mocap::{MocapClip, MocapSkeleton};
pub use ntu::{NtuBody, NtuFrame, NtuJoint, NtuSkeletonFile};

/// Errors of the skeleton loaders, generators and graph constructors.
///
/// Errors about a file name the file and the 1-based line (text formats) or byte offset
/// (binary formats) where the problem was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SkeletonError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A token that should be a number is not one.
    #[error("{file}:{line}: field {field}: cannot parse {value:?} as a number")]
    InvalidNumber {
        /// File name (or a description of the source).
        file: String,
        /// 1-based line.
        line: usize,
        /// What the field is.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// A line has the wrong number of fields.
    #[error("{file}:{line}: {what}: expected {expected} fields, found {found}")]
    FieldCount {
        /// File name.
        file: String,
        /// 1-based line.
        line: usize,
        /// What the line should hold.
        what: &'static str,
        /// Expected field count.
        expected: usize,
        /// Found field count.
        found: usize,
    },
    /// The file ended before the structure it announced was complete.
    #[error("{file}:{line}: unexpected end of file, expected {expected}")]
    UnexpectedEof {
        /// File name.
        file: String,
        /// 1-based line after the last line read.
        line: usize,
        /// What was expected next.
        expected: &'static str,
    },
    /// A count or value is outside its allowed range.
    #[error("{file}:{line}: {what} = {value} is outside the allowed range {min}..={max}")]
    OutOfRange {
        /// File name.
        file: String,
        /// 1-based line.
        line: usize,
        /// What the value is.
        what: &'static str,
        /// The value found.
        value: f64,
        /// Smallest allowed value.
        min: f64,
        /// Largest allowed value.
        max: f64,
    },
    /// A structural problem in a text file (missing tag, header mismatch, unknown name).
    #[error("{file}:{line}: {reason}: {value:?}")]
    Malformed {
        /// File name.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        reason: &'static str,
        /// The offending text.
        value: String,
    },
    /// A binary (`.npy`) file is malformed at a byte offset.
    #[error("{file}: byte offset {offset}: {reason} (found {found:?})")]
    Npy {
        /// File name.
        file: String,
        /// Byte offset of the problem.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
        /// What was found there.
        found: String,
    },
    /// A `.npy` file could not be read or written ([`crate::npy`]'s error, which names the file
    /// and, for malformed content, the byte offset).
    #[error(transparent)]
    NpyFile(#[from] crate::DatasetError),
    /// An array has the wrong shape.
    #[error("{what}: expected shape {expected}, found {found:?}")]
    Shape {
        /// Which array.
        what: &'static str,
        /// The expected shape, in words (e.g. "(N, 3, T, 25, M)").
        expected: &'static str,
        /// The shape found.
        found: Vec<usize>,
    },
    /// A graph description is invalid.
    #[error("invalid graph: {reason} (node {node}, {num_nodes} nodes)")]
    InvalidGraph {
        /// What is wrong.
        reason: &'static str,
        /// The offending node index.
        node: usize,
        /// Number of nodes of the graph.
        num_nodes: usize,
    },
    /// A skeleton graph name that is not one of the bundled layouts.
    #[error("unknown skeleton graph {name:?}; known graphs: {known}")]
    UnknownGraph {
        /// The name asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
    /// A configuration value is invalid.
    #[error("invalid configuration: {field} = {value}: {reason}")]
    InvalidConfig {
        /// The field.
        field: &'static str,
        /// Its value.
        value: f64,
        /// Why it is rejected.
        reason: &'static str,
    },
    /// Labels and samples disagree in number.
    #[error("{what}: {samples} samples but {labels} labels")]
    LabelCount {
        /// Which data set.
        what: String,
        /// Number of samples.
        samples: usize,
        /// Number of labels.
        labels: usize,
    },
}

/// Shorthand for results of this module.
pub type Result<T> = std::result::Result<T, SkeletonError>;

/// A labelled set of skeleton sequences in the ST-GCN layout.
#[derive(Debug, Clone, PartialEq)]
pub struct SkeletonSet {
    /// `(N, C, T, V, M)`: samples, coordinate channels, frames, joints, persons.
    pub data: Array5<f32>,
    /// Class index of each sample (`labels.len() == N`).
    pub labels: Vec<usize>,
    /// Class names; `labels[i] < class_names.len()`.
    pub class_names: Vec<String>,
}

impl SkeletonSet {
    /// Number of samples `N`.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// `true` when the set holds no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// Number of samples of each class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.class_names.len()];
        for &l in &self.labels {
            counts[l] += 1;
        }
        counts
    }

    /// The samples at `indices`, in that order.
    pub fn subset(&self, indices: &[usize]) -> SkeletonSet {
        SkeletonSet {
            data: self.data.select(ndarray::Axis(0), indices),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            class_names: self.class_names.clone(),
        }
    }

    /// Stratified split: in every class, `round(test_fraction · n_class)` samples chosen by a
    /// `ChaCha20Rng` seeded with `seed` go to the test set, the rest to the training set. Both
    /// keep the original sample order. Returns `(train, test)`.
    pub fn split_stratified(
        &self,
        test_fraction: f64,
        seed: u64,
    ) -> Result<(SkeletonSet, SkeletonSet)> {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        if !(0.0..=1.0).contains(&test_fraction) {
            return Err(SkeletonError::InvalidConfig {
                field: "test_fraction",
                value: test_fraction,
                reason: "must be in [0, 1]",
            });
        }
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let mut is_test = vec![false; self.len()];
        for class in 0..self.num_classes() {
            let mut idx: Vec<usize> = (0..self.len())
                .filter(|&i| self.labels[i] == class)
                .collect();
            idx.shuffle(&mut rng);
            let n_test = (test_fraction * idx.len() as f64).round() as usize;
            for &i in &idx[..n_test] {
                is_test[i] = true;
            }
        }
        let train: Vec<usize> = (0..self.len()).filter(|&i| !is_test[i]).collect();
        let test: Vec<usize> = (0..self.len()).filter(|&i| is_test[i]).collect();
        Ok((self.subset(&train), self.subset(&test)))
    }

    /// The data converted to `f64` (for the `f64` model code).
    pub fn data_f64(&self) -> ndarray::Array5<f64> {
        self.data.mapv(f64::from)
    }

    /// `(N, C, T, V, M)` as an array.
    pub fn shape(&self) -> [usize; 5] {
        let s = self.data.shape();
        [s[0], s[1], s[2], s[3], s[4]]
    }
}

/// Folder of the data bundled with this crate (`datasets/data`).
pub fn bundled_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// Folder of the bundled mocap clips (`datasets/data/mocap`).
pub fn bundled_mocap_dir() -> PathBuf {
    bundled_data_dir().join("mocap")
}

/// Reads a whole file, mapping the error to [`SkeletonError::Io`].
pub(crate) fn read_to_string(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| SkeletonError::Io {
        path: path.to_path_buf(),
        source,
    })
}
