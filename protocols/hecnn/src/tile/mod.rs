//! HElayers-style tile tensors (Aharoni et al., "HElayers: A Tile Tensor Framework for
//! Encrypted Deep Learning", PoPETs 2023) and the MNIST CNNs evaluated on them, with the tile
//! shape a parameter the planner chooses ([`crate::planner`]).
//!
//! * **Tile tensors** ([`shape`], [`pack`]): a tensor cut into tiles of `t_1 × … × t_k`
//!   values, `Π t_i` = the slot count, one ciphertext per tile; dimensions full, replicated
//!   (`*`) or unknown (`?`); HElayers' notation `[d_1/t_1, …, d_k/t_k]`. Packing and
//!   unpacking are the client's (and encode the server's weights).
//! * **Operators** ([`ops`]): the elementwise product with a plaintext tile tensor
//!   (replicated dimensions broadcast) summed over one dimension (tile additions, then
//!   `log2 t` rotate-and-add steps inside the tile), `x²`, bias addition, and the clean of an
//!   unknown dimension by a mask. A dense layer is a product and a summation; a convolution
//!   on the client's unfolded taps is a product summed over the tap dimension (tiles of 1: no
//!   rotation). HElayers' convolution by rotating image tiles is not built here: for these
//!   networks' single 5 × 5 stride-2 convolution on the input, unfolding by the client costs
//!   no rotation.
//! * **The CNN** ([`TileCnn`], [`TilePlan`]) with tiling `[t_f, t_h, t_b]` (`t_f·t_h·t_b` =
//!   slots; dimensions taps, features, hidden, images, outermost first):
//!
//!   | step | tile tensor | operations (per forward pass) |
//!   |---|---|---|
//!   | input (client) | `[25/1, 845/t_f, */t_h, B/t_b]` | `25·n_f` ciphertexts, `n_f = ⌈845/t_f⌉` |
//!   | conv + bias | `[*/1, 845/t_f, */t_h, B/t_b]` | `25·n_f` pt×ct, no rotation |
//!   | x² | same | `n_f` squares |
//!   | fc1 (`W1ᵀ` as `[1, 845/t_f, 100/t_h, */t_b]`), sum over features | `[*/1, */t_f, 100/t_h, B/t_b]` | `n_f·n_h` pt×ct, `n_h·log2 t_f` rotations |
//!   | x² | same | `n_h` squares |
//!   | fc2 (`W2` as `[1, 10/t_f, 100/t_h, */t_b]`), sum over hidden | `[*/1, 10/t_f, ?/t_h, B/t_b]` | `n_c·n_h` pt×ct, `n_c·log2 t_h` rotations |
//!   | clean + bias | `[*/1, 10/t_f, 1/t_h, B/t_b]` | `n_c` pt×ct (one level) |
//!
//!   The summation over the features is over the outermost tiled dimension, so it is cyclic
//!   and leaves `fc1`'s outputs replicated along it: `fc2` reads that dimension as its
//!   classes (no transposition between the layers, HElayers' alternation). The summation
//!   over the hidden units is over an inner dimension and leaves it unknown: the mask costs a
//!   level (depth 6, [`TILE_DEPTH`]); with `t_f = 1` or `t_h = 1` it is replicated and the
//!   depth is 5. `t_b = 1` is the single-image latency family; larger `t_b` answer `t_b`
//!   images per pass (throughput). Every tiling pays differently: small `t_f` means many
//!   input ciphertexts and convolution products, large `t_f` many rotations per hidden tile
//!   — the planner prices each ([`crate::planner::candidates`]) whose input fits
//!   [`MAX_INPUT_CTS`].
//!
//! **LoLa's representations as tile shapes** (Brutzkus et al., ICML 2019, §3–4, as we read
//! them; a 2-D tile `[a/t_a, b/t_b]` puts `b` inner). A *dense* vector of `d` values is
//! `[d/n]`; LoLa's *convolution* representation (one ciphertext per kernel tap) is
//! `[taps/1, positions/n]`, the input here; a *stacked* vector (`k` copies of `v` one after
//! the other) is `[*/k, d/(n/k)]`, `fc1`'s output here (`[*/t_f, 100/t_h]`); an
//! *interleaved* vector (the values of `k` vectors interleaved, or with `*`, each value of one
//! vector repeated `k` times in a row) is `[d/(n/k), k/k]` or `[d/(n/k), */k]`, the
//! convolution's output here (`[845/t_f, */t_h]`); CryptoNets' batch layout is
//! `[features/1, B/n]` (one ciphertext per value, one image per slot). The conversion from
//! interleaved to stacked is the summation of `fc1`: the product with `W1ᵀ` laid out
//! `[845/t_f, 100/t_h]` and the rotate-and-sum over the features turn the interleaved
//! features into the stacked hidden vector that `fc2` reads; the clean of `fc2`'s unknown
//! dimension is the second change of representation. A change that keeps the values and
//! only moves them (interleaved → stacked of the same vector) needs a permutation of slots
//! (rotations and masks) that neither network here needs.
//!
//! **Security model.** Semi-honest server holding the weights, semi-honest client holding the
//! secret key; the server sees only ciphertexts (IND-CPA under RLWE); the tiling, the shapes
//! and the rotation steps are public functions of the architecture and the slot count. The
//! returned tiles hold the logits at their in-tile index 0 of the hidden dimension and exact
//! zeros elsewhere (the clean removes the partial sums the rotate-and-sum leaves there; a
//! replicated result holds copies of the logits); padding classes hold zeros and absent
//! images the logits of an all-zero image (a value the client could query anyway). They are
//! sanitized like the other layouts' logits ([`crate::sanitize`]). The client sends
//! `25·⌈845/t_f⌉` tap ciphertexts and the Galois keys of [`TileCnn::rotation_steps`] only.

pub mod client;
mod cnn;
pub mod ops;
pub mod pack;
pub mod plan;
pub mod shape;
#[cfg(test)]
mod tests;

use crate::counts::sum_stages;
use crate::error::Result;
use crate::layout::{CnnLayout, LayoutKind, Stage};
use ckks::{Evaluator, OpCounts, PublicKey};
pub use cnn::TileCnn;
pub use ops::CtTiles;
pub use plan::{CnnTiling, TilePlan};
pub use shape::{DimKind, TileDim, TileShape};

/// The largest depth of the tile layout (when `fc2`'s summation needs a clean).
pub const TILE_DEPTH: usize = 6;

/// The most input ciphertexts of a tiling the planner considers: the client unfolds each
/// image into 25 taps (the convolution representation), so small `t_f` multiply the upload
/// and the server's convolution weights (as many plaintexts as input tiles) — at N = 2^14 and
/// level 6, 1,024 tiles are 1.8 GB of input and 0.9 GB of weights, what this repository's
/// 24 GiB machines hold beside the other layouts. The cost model prices time, not memory;
/// this bound keeps the planner from choosing a tiling that cannot run (e.g. `1×1×8192`, the
/// batch layout's shape with unfolded taps: 21,125 input ciphertexts, 38 GB).
pub const MAX_INPUT_CTS: usize = 1024;

impl CnnLayout for TileCnn {
    type Input = CtTiles;
    type Output = CtTiles;

    fn kind(&self) -> LayoutKind {
        LayoutKind::Tile
    }

    fn depth(&self) -> usize {
        self.plan.depth()
    }

    fn planned_op_counts(&self) -> OpCounts {
        sum_stages(&self.planned_stages())
    }

    fn planned_stages(&self) -> Vec<Stage> {
        self.plan.stages()
    }

    fn forward(&self, eval: &Evaluator, input: &CtTiles) -> Result<CtTiles> {
        self.run(eval, input)
    }
}

impl TileCnn {
    /// The flood of this model's logit ciphertexts.
    pub fn logit_flood(&self, cfg: &crate::FloodConfig) -> ckks::Flood {
        cfg.flood(self.params.default_scale())
    }

    /// Sanitizes every returned tile with the client's public key `pk` (at the logits' level
    /// or above), as [`crate::LolaCnn::sanitize_logits`] does.
    ///
    /// # Errors
    /// CKKS errors: a key of other parameters or below the logits' level, a flood that does
    /// not fit the last modulus.
    pub fn sanitize_logits(
        &self,
        eval: &Evaluator,
        logits: &CtTiles,
        pk: &PublicKey,
        cfg: &crate::FloodConfig,
    ) -> Result<CtTiles> {
        Ok(CtTiles {
            shape: logits.shape.clone(),
            tiles: eval.sanitize_all(&logits.tiles, pk, &self.logit_flood(cfg))?,
        })
    }
}
