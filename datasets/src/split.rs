//! Reproducible train/test splits: random and stratified (per-class proportions preserved).
//!
//! Every split is a function of the seed alone: indices are shuffled with a
//! `ChaCha20Rng::seed_from_u64(seed)` Fisher–Yates shuffle, so the same seed gives the same split
//! on every machine and thread count.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{DatasetError, Result};

/// Row indices of a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitIndices {
    /// Training rows.
    pub train: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
}

/// The deterministic RNG for splits and shuffles made from `seed`.
pub fn rng_from_seed(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// `0..n` in a random order determined by `seed`.
pub fn shuffled_indices(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut rng_from_seed(seed));
    idx
}

fn check_frac(n: usize, test_frac: f64) -> Result<()> {
    if !(test_frac > 0.0 && test_frac < 1.0) {
        return Err(DatasetError::InvalidSplit {
            n,
            test_frac,
            reason: "the test fraction must lie strictly between 0 and 1",
        });
    }
    Ok(())
}

/// Random split of `0..n`: `ceil(test_frac · n)` test rows (as scikit-learn), the rest train.
///
/// # Errors
/// [`DatasetError::InvalidSplit`] unless `0 < test_frac < 1` and both sides are non-empty.
pub fn split_indices(n: usize, test_frac: f64, seed: u64) -> Result<SplitIndices> {
    check_frac(n, test_frac)?;
    // The small slack keeps e.g. 0.1 · 30 = 3.0000000000000004 from rounding up to 4.
    let n_test = (test_frac * n as f64 - 1e-9).ceil() as usize;
    if n_test == 0 || n_test >= n {
        return Err(DatasetError::InvalidSplit {
            n,
            test_frac,
            reason: "one side of the split would be empty",
        });
    }
    let idx = shuffled_indices(n, seed);
    Ok(SplitIndices {
        test: idx[..n_test].to_vec(),
        train: idx[n_test..].to_vec(),
    })
}

/// Stratified split of class labels: each class contributes `round(test_frac · n_c)` test rows,
/// clamped so that every class with at least two samples has one on each side. Each side is
/// shuffled (determined by `seed`), so classes are interleaved.
///
/// # Errors
/// [`DatasetError::InvalidSplit`] unless `0 < test_frac < 1` and both sides are non-empty.
pub fn stratified_indices(labels: &[usize], test_frac: f64, seed: u64) -> Result<SplitIndices> {
    let n = labels.len();
    check_frac(n, test_frac)?;
    let n_classes = labels.iter().max().map_or(0, |&m| m + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &l) in labels.iter().enumerate() {
        by_class[l].push(i);
    }
    let mut rng = rng_from_seed(seed);
    let mut train = Vec::new();
    let mut test = Vec::new();
    for mut members in by_class {
        let n_c = members.len();
        if n_c == 0 {
            continue;
        }
        let mut k = (test_frac * n_c as f64).round() as usize;
        if n_c >= 2 {
            k = k.clamp(1, n_c - 1);
        }
        members.shuffle(&mut rng);
        test.extend_from_slice(&members[..k]);
        train.extend_from_slice(&members[k..]);
    }
    if train.is_empty() || test.is_empty() {
        return Err(DatasetError::InvalidSplit {
            n,
            test_frac,
            reason: "one side of the split would be empty",
        });
    }
    train.shuffle(&mut rng);
    test.shuffle(&mut rng);
    Ok(SplitIndices { train, test })
}

/// Random train/test split of a dataset; returns `(train, test)`.
///
/// # Errors
/// As [`split_indices`].
pub fn train_test_split(ds: &Dataset, test_frac: f64, seed: u64) -> Result<(Dataset, Dataset)> {
    let s = split_indices(ds.n_samples(), test_frac, seed)?;
    Ok((ds.select(&s.train), ds.select(&s.test)))
}

/// Stratified train/test split of a classification dataset; returns `(train, test)`.
///
/// # Errors
/// [`DatasetError::WrongTask`] for regression sets; otherwise as [`stratified_indices`].
pub fn stratified_split(ds: &Dataset, test_frac: f64, seed: u64) -> Result<(Dataset, Dataset)> {
    let labels = ds.labels().map_err(|e| match e {
        DatasetError::WrongTask { .. } => ds.wrong_task("stratified_split"),
        other => other,
    })?;
    let s = stratified_indices(&labels, test_frac, seed)?;
    Ok((ds.select(&s.train), ds.select(&s.test)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Task;
    use ndarray::{Array1, Array2};
    use proptest::prelude::*;

    fn is_partition(s: &SplitIndices, n: usize) -> bool {
        let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
        all.sort_unstable();
        all == (0..n).collect::<Vec<_>>()
    }

    #[test]
    fn split_is_deterministic_and_seed_dependent() {
        let a = split_indices(100, 0.25, 7).unwrap();
        let b = split_indices(100, 0.25, 7).unwrap();
        let c = split_indices(100, 0.25, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.test.len(), 25);
        assert_eq!(a.train.len(), 75);
        assert!(is_partition(&a, 100));
        // ceil: 10 * 0.25 = 2.5 -> 3 test rows; 0.1 * 30 is 3 despite rounding error.
        assert_eq!(split_indices(10, 0.25, 1).unwrap().test.len(), 3);
        assert_eq!(split_indices(30, 0.1, 1).unwrap().test.len(), 3);
    }

    #[test]
    fn split_rejects_bad_fractions() {
        for f in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
            assert!(matches!(
                split_indices(10, f, 0),
                Err(DatasetError::InvalidSplit { .. })
            ));
        }
        assert!(split_indices(1, 0.5, 0).is_err());
        assert!(split_indices(0, 0.5, 0).is_err());
    }

    #[test]
    fn stratified_keeps_class_proportions() {
        // 60 / 30 / 10 samples of three classes, interleaved.
        let labels: Vec<usize> = (0..100)
            .map(|i| match i % 10 {
                0..=5 => 0,
                6..=8 => 1,
                _ => 2,
            })
            .collect();
        let s = stratified_indices(&labels, 0.2, 3).unwrap();
        assert!(is_partition(&s, 100));
        let count = |idx: &[usize], c| idx.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!(
            [count(&s.test, 0), count(&s.test, 1), count(&s.test, 2)],
            [12, 6, 2]
        );
        assert_eq!(s, stratified_indices(&labels, 0.2, 3).unwrap());
        assert_ne!(s, stratified_indices(&labels, 0.2, 4).unwrap());
    }

    #[test]
    fn stratified_gives_small_classes_both_sides() {
        let labels = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1];
        let s = stratified_indices(&labels, 0.1, 0).unwrap();
        assert_eq!(s.test.iter().filter(|&&i| labels[i] == 1).count(), 1);
        assert_eq!(s.train.iter().filter(|&&i| labels[i] == 1).count(), 1);
    }

    #[test]
    fn dataset_splits() {
        let n = 50;
        let x = Array2::from_shape_fn((n, 2), |(i, j)| (i * 2 + j) as f64);
        let y = Array1::from_shape_fn(n, |i| (i % 2) as f64);
        let ds = Dataset::new(
            "t",
            x,
            y,
            vec![],
            Task::Classification {
                class_names: vec!["a".into(), "b".into()],
            },
        )
        .unwrap();
        let (tr, te) = stratified_split(&ds, 0.2, 11).unwrap();
        assert_eq!(tr.n_samples() + te.n_samples(), n);
        assert_eq!(te.class_counts().unwrap(), vec![5, 5]);
        // Rows stay intact: x[i] = [2i, 2i+1] and y = i mod 2.
        for ds in [&tr, &te] {
            for (row, &yv) in ds.x.rows().into_iter().zip(ds.y.iter()) {
                let i = row[0] as usize / 2;
                assert_eq!(row[1], row[0] + 1.0);
                assert_eq!(yv, (i % 2) as f64);
            }
        }
        let (tr2, _) = train_test_split(&ds, 0.3, 11).unwrap();
        assert_eq!(tr2.n_samples(), 35);

        let reg = Dataset::new(
            "r",
            Array2::zeros((4, 1)),
            Array1::zeros(4),
            vec![],
            Task::Regression,
        )
        .unwrap();
        assert!(matches!(
            stratified_split(&reg, 0.5, 0),
            Err(DatasetError::WrongTask {
                operation: "stratified_split",
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn stratified_is_a_partition_with_near_exact_proportions(
            labels in proptest::collection::vec(0usize..4, 4..200),
            frac in 0.05f64..0.95,
            seed in any::<u64>(),
        ) {
            if let Ok(s) = stratified_indices(&labels, frac, seed) {
                prop_assert!(is_partition(&s, labels.len()));
                for c in 0..4 {
                    let n_c = labels.iter().filter(|&&l| l == c).count();
                    let t = s.test.iter().filter(|&&i| labels[i] == c).count();
                    if n_c >= 2 {
                        prop_assert!(t >= 1 && t < n_c);
                        prop_assert!((t as f64 - frac * n_c as f64).abs() <= 1.0);
                    }
                }
            }
        }
    }
}
