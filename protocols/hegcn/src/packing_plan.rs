//! Which packing every stage of a model runs in ([`PackingPlan`]): the encrypted input, and per
//! block the graph-convolution output (activation 1, temporal input) and the block output
//! (temporal convolution + residual, activation 2, the next block's input or the head's).
//!
//! A plan may mix [`Packing::Ama`] and [`Packing::ChannelMajor`]. Where two consecutive
//! boundaries differ, the conversion between the packings is fused into the linear map between
//! them: a map's terms read `(ciphertext, block)` positions of its input layout and write
//! those of its output layout, whatever their packings, so a graph convolution from AMA to
//! channel-major is one block-diagonal map whose block distances include the transposition
//! of nodes and channels. The conversion therefore spends **no level** (the level plan of
//! [`crate::plan`] holds for every plan) and no masking product of its own; its cost is the
//! extra rotations (block distances) and diagonals of the fused map, which the map's own
//! plan (hoisted or baby-step/giant-step) counts and [`crate::planner`] prices.
//!
//! Cost: none (a description). Security: the plan is a public function of the model's shape
//! and this machine's probed costs; it reveals nothing about inputs or weights.

use serde::{Deserialize, Serialize};

use crate::layout::Packing;

/// The packings of one ST-GCN block's two internal boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockPacking {
    /// Packing of the graph-convolution output (activation 1 and the temporal input).
    pub mid: Packing,
    /// Packing of the block output (temporal + residual, activation 2).
    pub out: Packing,
}

/// The packing of every stage boundary of a model.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PackingPlan {
    /// Packing of the encrypted input.
    pub input: Packing,
    /// Per block, in order.
    pub blocks: Vec<BlockPacking>,
}

impl PackingPlan {
    /// `packing` everywhere, for a model of `blocks` blocks.
    pub fn uniform(packing: Packing, blocks: usize) -> Self {
        Self {
            input: packing,
            blocks: vec![
                BlockPacking {
                    mid: packing,
                    out: packing,
                };
                blocks
            ],
        }
    }

    /// Every boundary's packing in order: input, then each block's `mid` and `out`.
    pub fn boundaries(&self) -> Vec<Packing> {
        let mut v = vec![self.input];
        v.extend(self.blocks.iter().flat_map(|b| [b.mid, b.out]));
        v
    }

    /// The packing of every boundary if they all agree.
    pub fn uniform_packing(&self) -> Option<Packing> {
        let b = self.boundaries();
        b.iter().all(|&p| p == self.input).then_some(self.input)
    }

    /// Whether some boundary uses `packing`.
    pub fn uses(&self, packing: Packing) -> bool {
        self.boundaries().contains(&packing)
    }

    /// The packing the head reads (the last block's output, or the input).
    pub fn output(&self) -> Packing {
        self.blocks.last().map_or(self.input, |b| b.out)
    }

    /// Linear stages whose input and output packings differ (fused conversions).
    pub fn conversions(&self) -> usize {
        self.boundaries()
            .windows(2)
            .filter(|w| w[0] != w[1])
            .count()
    }

    /// A short label: `ama`, `channel-major`, or the boundaries as letters (`A|AC|CA`: AMA
    /// input, block 0 graph conv to AMA and temporal conv to channel-major, block 1 graph conv
    /// to channel-major and temporal conv back to AMA).
    pub fn label(&self) -> String {
        if let Some(p) = self.uniform_packing() {
            return p.name().to_string();
        }
        let l = |p: Packing| match p {
            Packing::Ama => 'A',
            Packing::ChannelMajor => 'C',
        };
        let mut s = String::from(l(self.input));
        for b in &self.blocks {
            s.push('|');
            s.push(l(b.mid));
            s.push(l(b.out));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_conversions_and_uniformity() {
        let u = PackingPlan::uniform(Packing::Ama, 3);
        assert_eq!((u.label(), u.conversions()), ("ama".to_string(), 0));
        assert_eq!(u.uniform_packing(), Some(Packing::Ama));
        let mut m = u.clone();
        m.blocks[0].out = Packing::ChannelMajor;
        assert_eq!(m.label(), "A|AC|AA|AA");
        // block0.tcn converts to channel-major, block1.gcn back to AMA.
        assert_eq!(m.conversions(), 2);
        assert!(m.uses(Packing::ChannelMajor) && m.uniform_packing().is_none());
        assert_eq!(m.output(), Packing::Ama);
    }
}
