//! Slot layouts of an ST-GCN activation tensor `(C, T, V, M)` in CKKS ciphertexts.
//!
//! * [`Packing::Ama`] — the CryptoGCN AMA format (Ran et al., NeurIPS 2022, §3.1): one
//!   ciphertext group per graph node `v`; inside a ciphertext, channel `c`, person `m` and
//!   frame `t` sit at slot `(c mod B)·bs + m·T_p + t`, with `T_p` the frame count rounded up to
//!   a power of two, `bs = (M·T_p)` rounded up to a power of two (the *block*) and
//!   `B = slots / bs` channels per ciphertext; node `v` owns ciphertexts
//!   `v·⌈C/B⌉ .. (v+1)·⌈C/B⌉`. For power-of-two `T` and `M` this is exactly
//!   `c·(M·T) + m·T + t`. Aggregation over nodes then needs no rotation.
//! * [`Packing::ChannelMajor`] — the baseline: one ciphertext per channel, node `v`'s block at
//!   slot `v·bs + m·T_p + t`. Channel mixing is rotation-free but the adjacency product mixes
//!   blocks and needs rotations.
//!
//! **Stride.** A stride-2 temporal convolution does not compact the slots: logical frame `τ`
//! stays at slot offset `d·τ` with a *dilation* `d` that doubles at every strided layer (the
//! other slots hold zeros). Later temporal taps rotate by multiples of `d`, the strided residual
//! reads the same slots, and every weight plaintext is zero on invalid slots, so no masking
//! level and no compaction rotations are spent. The cost is slot occupancy: the block size stays
//! that of the input frame count.

use serde::{Deserialize, Serialize};

use crate::error::{HeGcnError, Result};

/// Which packing of the activation tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Packing {
    /// CryptoGCN AMA: one ciphertext group per node, channels along the slots.
    Ama,
    /// Baseline: one ciphertext per channel, nodes along the slots.
    ChannelMajor,
}

impl Packing {
    /// A short name (`"ama"`, `"channel-major"`).
    pub fn name(self) -> &'static str {
        match self {
            Packing::Ama => "ama",
            Packing::ChannelMajor => "channel-major",
        }
    }
}

/// Where every `(c, t, v, m)` entry of a logical tensor lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The packing.
    pub packing: Packing,
    /// Channels `C`.
    pub channels: usize,
    /// Nodes `V` (1 after the node sum of the pooling).
    pub nodes: usize,
    /// Persons `M`.
    pub persons: usize,
    /// Logical frames `T` (after strides).
    pub frames: usize,
    /// Slot distance between consecutive logical frames (product of the strides so far).
    pub dilation: usize,
    /// Slots reserved per person (`T_p`, a power of two ≥ the input frame count).
    pub frame_stride: usize,
    /// Slots per block (`bs`, a power of two ≥ `M·T_p`).
    pub block: usize,
    /// Slots per ciphertext (`N/2`).
    pub slots: usize,
}

impl Layout {
    /// The layout of `model`'s input (its channels, nodes, persons and frames) in `packing`.
    ///
    /// # Errors
    /// [`HeGcnError::LayoutTooLarge`] when it does not fit `slots`.
    pub fn input_of(model: &stgcn::FoldedModel, packing: Packing, slots: usize) -> Result<Self> {
        Self::new(
            packing,
            model.in_channels,
            model.num_nodes,
            model.num_persons,
            model.num_frames,
            slots,
        )
    }

    /// The layout of a fresh input with `frames` frames.
    pub fn new(
        packing: Packing,
        channels: usize,
        nodes: usize,
        persons: usize,
        frames: usize,
        slots: usize,
    ) -> Result<Self> {
        let frame_stride = frames.max(1).next_power_of_two();
        let block = (persons.max(1) * frame_stride).next_power_of_two();
        let needed = Self::slots_needed(packing, nodes, block);
        if needed > slots {
            return Err(HeGcnError::LayoutTooLarge {
                packing: packing.name(),
                needed,
                available: slots,
            });
        }
        Ok(Self {
            packing,
            channels,
            nodes,
            persons,
            frames,
            dilation: 1,
            frame_stride,
            block,
            slots,
        })
    }

    /// Slots one ciphertext must hold at least for `packing` with blocks of `block` slots.
    pub fn slots_needed(packing: Packing, nodes: usize, block: usize) -> usize {
        match packing {
            Packing::Ama => block,
            Packing::ChannelMajor => block * nodes.max(1).next_power_of_two(),
        }
    }

    /// Blocks per ciphertext (`B = slots / bs`).
    pub fn blocks_per_ct(&self) -> usize {
        self.slots / self.block
    }

    /// Ciphertexts per node (AMA) or 1 (channel-major: a node is a block).
    pub fn cts_per_node(&self) -> usize {
        match self.packing {
            Packing::Ama => self.channels.div_ceil(self.blocks_per_ct()),
            Packing::ChannelMajor => 1,
        }
    }

    /// Number of ciphertexts.
    pub fn num_cts(&self) -> usize {
        match self.packing {
            Packing::Ama => self.nodes * self.cts_per_node(),
            Packing::ChannelMajor => self.channels,
        }
    }

    /// `(ciphertext, block)` of channel `c` of node `v`.
    pub fn position(&self, c: usize, v: usize) -> (usize, usize) {
        match self.packing {
            Packing::Ama => {
                let b = self.blocks_per_ct();
                (v * self.cts_per_node() + c / b, c % b)
            }
            Packing::ChannelMajor => (c, v),
        }
    }

    /// Offset inside a block of person `m`, logical frame `tau`.
    pub fn offset(&self, m: usize, tau: usize) -> usize {
        m * self.frame_stride + self.dilation * tau
    }

    /// `(ciphertext, slot)` of entry `(c, tau, v, m)`.
    pub fn slot(&self, c: usize, tau: usize, v: usize, m: usize) -> (usize, usize) {
        let (ct, blk) = self.position(c, v);
        (ct, blk * self.block + self.offset(m, tau))
    }

    /// 1 on the offsets of valid `(m, τ)` inside a block, 0 elsewhere.
    pub fn valid_mask(&self) -> Vec<f64> {
        let mut mask = vec![0.0; self.block];
        for m in 0..self.persons {
            for tau in 0..self.frames {
                mask[self.offset(m, tau)] = 1.0;
            }
        }
        mask
    }

    /// The same layout with `channels` channels.
    pub fn with_channels(&self, channels: usize) -> Self {
        Self {
            channels,
            ..self.clone()
        }
    }

    /// The same tensor in `packing` (same blocks and frames; see [`crate::packing_plan`]).
    ///
    /// # Errors
    /// [`HeGcnError::LayoutTooLarge`] if `packing`'s ciphertexts cannot hold the nodes' blocks.
    pub fn with_packing(&self, packing: Packing) -> Result<Self> {
        let needed = Self::slots_needed(packing, self.nodes, self.block);
        if needed > self.slots {
            return Err(HeGcnError::LayoutTooLarge {
                packing: packing.name(),
                needed,
                available: self.slots,
            });
        }
        Ok(Self {
            packing,
            ..self.clone()
        })
    }

    /// The layout after a temporal stride `stride` (frames `⌊(T−1)/s⌋+1`, dilation × `s`).
    pub fn strided(&self, stride: usize) -> Self {
        let stride = stride.max(1);
        Self {
            frames: (self.frames.max(1) - 1) / stride + 1,
            dilation: self.dilation * stride,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ama_slot_formula_matches_design() {
        // C·(M·T) + m·T + t for power-of-two T and M.
        let l = Layout::new(Packing::Ama, 6, 5, 2, 8, 32).unwrap();
        assert_eq!(l.blocks_per_ct(), 2);
        assert_eq!(l.cts_per_node(), 3);
        for c in 0..6 {
            for m in 0..2 {
                for t in 0..8 {
                    let (ct, slot) = l.slot(c, t, 4, m);
                    assert_eq!(ct, 4 * 3 + c / 2);
                    assert_eq!(slot, (c % 2) * 16 + m * 8 + t);
                }
            }
        }
    }

    #[test]
    fn stride_dilates_and_layouts_refuse_oversized_blocks() {
        let l = Layout::new(Packing::ChannelMajor, 3, 5, 1, 7, 64).unwrap();
        assert_eq!((l.block, l.blocks_per_ct()), (8, 8));
        let s = l.strided(2);
        assert_eq!((s.frames, s.dilation), (4, 2));
        assert_eq!(s.valid_mask(), vec![1., 0., 1., 0., 1., 0., 1., 0.]);
        let e = Layout::new(Packing::ChannelMajor, 3, 5, 1, 8, 32).unwrap_err();
        assert!(matches!(
            e,
            HeGcnError::LayoutTooLarge {
                needed: 64,
                available: 32,
                ..
            }
        ));
    }
}
