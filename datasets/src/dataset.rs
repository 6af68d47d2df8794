//! The in-memory dataset type shared by all loaders and generators: a feature matrix, a target
//! vector and what the target means.

use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{DatasetError, Result};

/// What the target `y` of a [`Dataset`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Task {
    /// Real-valued targets.
    Regression,
    /// Class indices `0..class_names.len()` stored as `f64`.
    Classification {
        /// Name of each class; label `i` means `class_names[i]`.
        class_names: Vec<String>,
    },
}

impl Task {
    /// `"regression"` or `"classification"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Task::Regression => "regression",
            Task::Classification { .. } => "classification",
        }
    }
}

/// A supervised dataset: `n` samples of `d` features and one target each.
///
/// Serializable with serde; deserializing runs the checks of [`Dataset::new`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "DatasetParts")]
pub struct Dataset {
    /// Short name (`"breast_cancer"`, `"mnist-train"`, ...), used in reports.
    pub name: String,
    /// Features, one row per sample (`n × d`).
    pub x: Array2<f64>,
    /// Targets (`n`): real values, or class indices for classification.
    pub y: Array1<f64>,
    /// Column names (`d` of them), or empty when the source has none.
    pub feature_names: Vec<String>,
    /// What `y` means.
    pub task: Task,
}

/// The fields of a [`Dataset`] before validation (serde's view).
#[derive(Deserialize)]
struct DatasetParts {
    name: String,
    x: Array2<f64>,
    y: Array1<f64>,
    feature_names: Vec<String>,
    task: Task,
}

impl TryFrom<DatasetParts> for Dataset {
    type Error = DatasetError;

    fn try_from(p: DatasetParts) -> Result<Self> {
        Dataset::new(p.name, p.x, p.y, p.feature_names, p.task)
    }
}

impl Dataset {
    /// Builds a dataset, checking that the parts agree: `y` has one entry per row of `x`,
    /// `feature_names` is empty or has one name per column, and classification labels are
    /// integers in `0..n_classes`.
    ///
    /// # Errors
    /// [`DatasetError::DimensionMismatch`] or [`DatasetError::LabelOutOfRange`].
    pub fn new(
        name: impl Into<String>,
        x: Array2<f64>,
        y: Array1<f64>,
        feature_names: Vec<String>,
        task: Task,
    ) -> Result<Self> {
        if y.len() != x.nrows() {
            return Err(DatasetError::DimensionMismatch {
                what: "targets vs rows of x",
                expected: x.nrows(),
                found: y.len(),
            });
        }
        if !feature_names.is_empty() && feature_names.len() != x.ncols() {
            return Err(DatasetError::DimensionMismatch {
                what: "feature names vs columns of x",
                expected: x.ncols(),
                found: feature_names.len(),
            });
        }
        let ds = Self {
            name: name.into(),
            x,
            y,
            feature_names,
            task,
        };
        if let Task::Classification { class_names } = &ds.task {
            labels_of(&ds.y, class_names.len())?;
        }
        Ok(ds)
    }

    /// Number of samples.
    pub fn n_samples(&self) -> usize {
        self.x.nrows()
    }

    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.x.ncols()
    }

    /// Number of classes, or `None` for regression.
    pub fn n_classes(&self) -> Option<usize> {
        match &self.task {
            Task::Regression => None,
            Task::Classification { class_names } => Some(class_names.len()),
        }
    }

    /// Class labels as indices.
    ///
    /// # Errors
    /// [`DatasetError::WrongTask`] for regression sets; [`DatasetError::LabelOutOfRange`] if a
    /// label was edited into something that is not a class index.
    pub fn labels(&self) -> Result<Vec<usize>> {
        let n_classes = self.n_classes().ok_or_else(|| self.wrong_task("labels"))?;
        labels_of(&self.y, n_classes)
    }

    /// Number of samples of each class.
    ///
    /// # Errors
    /// As [`Dataset::labels`].
    pub fn class_counts(&self) -> Result<Vec<usize>> {
        let labels = self.labels()?;
        let mut counts = vec![0; self.n_classes().unwrap_or(0)];
        for l in labels {
            counts[l] += 1;
        }
        Ok(counts)
    }

    /// The targets one-hot encoded (`n × n_classes`).
    ///
    /// # Errors
    /// As [`Dataset::labels`].
    pub fn one_hot(&self) -> Result<Array2<f64>> {
        let labels = self.labels()?;
        crate::preprocess::one_hot(&labels, self.n_classes().unwrap_or(0))
    }

    /// The samples at `indices` (in that order; repeats allowed), with the same metadata.
    ///
    /// # Panics
    /// If an index is `>= n_samples()`.
    pub fn select(&self, indices: &[usize]) -> Dataset {
        Dataset {
            name: self.name.clone(),
            x: self.x.select(Axis(0), indices),
            y: self.y.select(Axis(0), indices),
            feature_names: self.feature_names.clone(),
            task: self.task.clone(),
        }
    }

    /// The first `n` samples (all of them if `n >= n_samples()`).
    pub fn head(&self, n: usize) -> Dataset {
        let idx: Vec<usize> = (0..n.min(self.n_samples())).collect();
        self.select(&idx)
    }

    pub(crate) fn wrong_task(&self, operation: &'static str) -> DatasetError {
        DatasetError::WrongTask {
            name: self.name.clone(),
            task: self.task.kind(),
            operation,
        }
    }
}

/// Converts `f64` class labels to indices, checking each is an integer in `0..n_classes`.
pub(crate) fn labels_of(y: &Array1<f64>, n_classes: usize) -> Result<Vec<usize>> {
    y.iter()
        .enumerate()
        .map(|(row, &v)| {
            if v.fract() == 0.0 && v >= 0.0 && v < n_classes as f64 {
                Ok(v as usize)
            } else {
                Err(DatasetError::LabelOutOfRange {
                    row,
                    value: v,
                    n_classes,
                })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn two_class() -> Dataset {
        Dataset::new(
            "t",
            array![[1., 2.], [3., 4.], [5., 6.]],
            array![0., 1., 1.],
            vec!["a".into(), "b".into()],
            Task::Classification {
                class_names: vec!["n".into(), "p".into()],
            },
        )
        .unwrap()
    }

    #[test]
    fn new_checks_parts() {
        let e = Dataset::new(
            "t",
            Array2::zeros((3, 2)),
            Array1::zeros(2),
            vec![],
            Task::Regression,
        );
        assert!(matches!(
            e,
            Err(DatasetError::DimensionMismatch {
                expected: 3,
                found: 2,
                ..
            })
        ));
        let e = Dataset::new(
            "t",
            Array2::zeros((2, 2)),
            Array1::zeros(2),
            vec!["a".into()],
            Task::Regression,
        );
        assert!(matches!(
            e,
            Err(DatasetError::DimensionMismatch {
                expected: 2,
                found: 1,
                ..
            })
        ));
        let e = Dataset::new(
            "t",
            Array2::zeros((2, 1)),
            array![0., 2.],
            vec![],
            Task::Classification {
                class_names: vec!["a".into(), "b".into()],
            },
        );
        assert!(matches!(
            e,
            Err(DatasetError::LabelOutOfRange {
                row: 1,
                n_classes: 2,
                ..
            })
        ));
        let e = Dataset::new(
            "t",
            Array2::zeros((1, 1)),
            array![0.5],
            vec![],
            Task::Classification {
                class_names: vec!["a".into(), "b".into()],
            },
        );
        assert!(matches!(
            e,
            Err(DatasetError::LabelOutOfRange { row: 0, .. })
        ));
    }

    #[test]
    fn select_head_counts_onehot() {
        let ds = two_class();
        let s = ds.select(&[2, 0]);
        assert_eq!(s.x, array![[5., 6.], [1., 2.]]);
        assert_eq!(s.y, array![1., 0.]);
        assert_eq!(ds.head(2).n_samples(), 2);
        assert_eq!(ds.head(10).n_samples(), 3);
        assert_eq!(ds.class_counts().unwrap(), vec![1, 2]);
        assert_eq!(ds.one_hot().unwrap(), array![[1., 0.], [0., 1.], [0., 1.]]);
        let reg = Dataset::new(
            "r",
            Array2::zeros((1, 1)),
            array![0.3],
            vec![],
            Task::Regression,
        )
        .unwrap();
        assert!(matches!(reg.labels(), Err(DatasetError::WrongTask { .. })));
    }

    #[test]
    fn serde_round_trip_validates() {
        let ds = two_class();
        let json = serde_json::to_string(&ds).unwrap();
        let back: Dataset = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ds);
        // A label edited out of range is rejected on the way in.
        let bad = json.replace("\"data\":[0.0,1.0,1.0]", "\"data\":[0.0,1.0,7.0]");
        assert_ne!(bad, json);
        let err = serde_json::from_str::<Dataset>(&bad).unwrap_err();
        assert!(err.to_string().contains("label at row 2"), "{err}");
    }
}
