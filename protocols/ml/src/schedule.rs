//! Mini-batch schedules: which rows each step uses, decided publicly from a seed so that the
//! secure run and its plaintext twin see the same batches in the same order.

use crate::error::{MlError, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The batches of a training run, epoch by epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// `epochs[e][b]` = the row indices of batch `b` in epoch `e`.
    pub epochs: Vec<Vec<Vec<usize>>>,
}

impl Schedule {
    /// Shuffles `0..n` anew for each epoch (ChaCha20 from `seed`) and cuts it into full batches of
    /// `batch` rows (a trailing partial batch is dropped, as SecureML does, so every step has the
    /// same step size α/|B|).
    pub fn shuffled(n: usize, batch: usize, epochs: usize, seed: u64) -> Result<Self> {
        if batch == 0 || batch > n {
            return Err(MlError::InvalidHyper {
                name: "batch_size",
                value: batch.to_string(),
                reason: "must be between 1 and the number of training rows",
            });
        }
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(epochs);
        for _ in 0..epochs {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.shuffle(&mut rng);
            out.push(idx.chunks_exact(batch).map(<[usize]>::to_vec).collect());
        }
        Ok(Self { epochs: out })
    }

    /// Total number of steps.
    pub fn steps(&self) -> usize {
        self.epochs.iter().map(Vec::len).sum()
    }

    /// Keeps only the first `steps` steps in order (a quick check of a long run); epochs left
    /// empty are dropped. A no-op when the schedule is no longer than `steps`.
    pub fn truncate(&mut self, steps: usize) {
        let mut left = steps;
        for e in &mut self.epochs {
            e.truncate(left);
            left -= e.len();
        }
        self.epochs.retain(|e| !e.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_rows_once_per_epoch() {
        let s = Schedule::shuffled(10, 3, 2, 1).unwrap();
        assert_eq!(s.steps(), 6);
        for e in &s.epochs {
            let mut all: Vec<usize> = e.iter().flatten().copied().collect();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 9);
        }
        assert_ne!(s.epochs[0], s.epochs[1]);
        assert_eq!(s, Schedule::shuffled(10, 3, 2, 1).unwrap());
        assert!(Schedule::shuffled(10, 0, 1, 1).is_err());
        assert!(Schedule::shuffled(10, 11, 1, 1).is_err());
    }

    #[test]
    fn truncate_keeps_the_first_steps_in_order() {
        let full = Schedule::shuffled(10, 3, 3, 7).unwrap();
        let mut s = full.clone();
        s.truncate(4);
        assert_eq!(s.steps(), 4);
        assert_eq!(s.epochs.len(), 2);
        assert_eq!(s.epochs[0], full.epochs[0]);
        assert_eq!(s.epochs[1], full.epochs[1][..1]);
        let mut all = full.clone();
        all.truncate(100);
        assert_eq!(all, full);
        s.truncate(0);
        assert!(s.epochs.is_empty());
    }
}
