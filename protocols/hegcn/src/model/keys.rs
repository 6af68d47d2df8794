//! The rotation steps a compiled model needs Galois keys for: the whole model, one block
//! stage or the head (keys of one stage at a time for memory-bounded runs and benchmarks).

use std::collections::BTreeSet;

use super::compile::ResidualProgram;
use super::HeStgcn;

impl HeStgcn {
    /// Every rotation step the model uses (left rotations, `0 < step < slots`): generate Galois
    /// keys for exactly these.
    pub fn rotation_steps(&self) -> Vec<i64> {
        let mut s = BTreeSet::new();
        for b in &self.blocks {
            b.gcn.steps(&mut s);
            b.tcn.steps(&mut s);
            if let ResidualProgram::Map(m) = &b.residual {
                m.steps(&mut s);
            }
        }
        self.head.fc.steps(&mut s);
        s.extend(self.head.sum_steps.iter().copied());
        s.into_iter().map(|x| x as i64).collect()
    }

    /// Rotation steps of the graph convolution (`stage = 0`) or the temporal convolution with
    /// its residual (`stage = 1`) of block `i` — for keys of a single stage (benchmarks).
    pub fn block_rotation_steps(&self, i: usize, stage: usize) -> Vec<i64> {
        let mut s = BTreeSet::new();
        if let Some(b) = self.blocks.get(i) {
            if stage == 0 {
                b.gcn.steps(&mut s);
            } else {
                b.tcn.steps(&mut s);
                if let ResidualProgram::Map(m) = &b.residual {
                    m.steps(&mut s);
                }
            }
        }
        s.into_iter().map(|x| x as i64).collect()
    }

    /// Rotation steps of the pooling and dense head — with [`Self::block_rotation_steps`], the
    /// Galois keys of one stage at a time (for memory-bounded runs and benchmarks).
    pub fn head_rotation_steps(&self) -> Vec<i64> {
        let mut s = BTreeSet::new();
        self.head.fc.steps(&mut s);
        s.extend(self.head.sum_steps.iter().copied());
        s.into_iter().map(|x| x as i64).collect()
    }
}
