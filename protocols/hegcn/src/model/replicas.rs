//! [`Replicas`]: where the copies of each channel block sit when several independent clips share
//! every ciphertext (AMA batching); the compiler, the maps, the activations and the head all
//! place their work through it.

use crate::linear::LinearMap;

/// Independent samples side by side in every ciphertext (AMA): copy `r` of channel block
/// `blk` sits at block `blk + r·stride_blocks`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Replicas {
    pub(super) clips: usize,
    pub(super) stride_blocks: usize,
}

impl Replicas {
    pub(super) const ONE: Replicas = Replicas {
        clips: 1,
        stride_blocks: 0,
    };

    /// Block indices of every copy of block `blk`.
    pub(super) fn blocks(self, blk: usize) -> impl Iterator<Item = usize> {
        (0..self.clips).map(move |r| blk + r * self.stride_blocks)
    }

    /// `m` repeated for every copy (`block` slots per channel block).
    pub(super) fn map(self, m: LinearMap, block: usize) -> LinearMap {
        m.with_replicas(self.clips, self.stride_blocks * block)
    }
}
