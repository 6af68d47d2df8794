//! Encrypted CNN inference with CKKS on the project's `ckks` crate, for the MNIST networks of
//! `ml::models::cnn` (CryptoNets and wider LoLa-style variants).
//!
//! **What is here.** The CryptoNets batch layout ([`batch`], Dowlin et al., ICML 2016): one
//! image per slot, one ciphertext per pixel, scalar-weighted sums, `x²` by squaring, one rescale
//! per layer, no rotations; a LoLa-style single-image layout ([`lola`], Brutzkus et al., ICML
//! 2019) for latency: the client unfolds its image into one ciphertext per kernel tap, the
//! convolution is slot-wise, the dense layers are diagonal products with hoisted
//! baby-step/giant-step rotations on one ciphertext; FFConv low-rank networks in that layout
//! ([`ffconv`]: the 1×1 mixing folded into the first dense layer); structured pruning of
//! kernel taps and dense diagonals, the units that layout pays for ([`prune`]); matrix
//! encoding ([`matrix`], the E2DM line: a batch of images as one data matrix in one
//! ciphertext, the convolution spanned into the images' matrix space, the dense layers as
//! matrix products with the plaintext weights); HElayers-style tile tensors and the CNN on
//! them with the tile shape a parameter ([`tile`]: LoLa's convolution, interleaved and stacked
//! representations as tile shapes, the change from interleaved to stacked in the first dense
//! layer's summation); the
//! [`CnnLayout`] trait every layout implements (depth, planned op counts by [`Stage`], forward
//! pass) and the catalogue [`LayoutKind`]; the choice of the smallest 128-bit preset for a
//! depth ([`plan`]); the packing planner ([`planner`]): every candidate (batch; single image
//! with each baby-step/giant-step split of each dense layer; the tile layout with each tiling
//! of the slots; thread counts) priced stage by
//! stage with a probe of this machine's op costs per level ([`ckks::cost::probe`]), chosen for
//! latency or throughput and explained in a table; the flood of returned logits
//! ([`sanitize`](mod@sanitize)); [`error`].
//!
//! **What is not here yet.** HElayers' convolution by rotating image tiles (the tile layout
//! convolves the client's unfolded taps), E2DM's ciphertext × ciphertext product (an encrypted
//! model), and pruning for the batch layout. They plug in beside [`batch`], [`lola`],
//! [`matrix`] and [`tile`] as further [`CnnLayout`] implementations, which the planner prices
//! through their
//! [`CnnLayout::planned_stages`] ([`planner::Candidate::of_layout`]); the op counts are the
//! evaluator's shared counters ([`ckks::OpCounts`]), so every layout reports in the same units.
//! Shared with `hegcn`: the `ckks` crate (its hoisted and lazy rotations, which `lola` uses
//! directly, and the cost probe the planner prices with, which `hegcn` can use to price its
//! AMA, channel-major or mixed stages the same way), and the flood convention (the same
//! `FloodConfig` defaults); `hegcn`'s block-diagonal maps are built for its node-and-channel
//! blocks, and the single-image dense layers need a slot arrangement of their own.
//!
//! **Security model.** Semi-honest server holding the weights, semi-honest client holding the
//! secret key; see [`batch`] and [`sanitize`](mod@sanitize).
//!
//! ```no_run
//! use ckks::{Evaluator, KeyGenerator};
//! use hecnn::{batch::BatchCnn, choose_preset, CnnLayout, BATCH_DEPTH};
//! # fn run(model: &ml::models::cnn::CnnModel, images: ndarray::ArrayView2<'_, f64>) -> hecnn::Result<()> {
//! let params = choose_preset("batch", BATCH_DEPTH)?.build()?;
//! let he = BatchCnn::new(model, &params)?;
//! // client: keys and the encrypted batch (no Galois keys needed)
//! let mut kg = KeyGenerator::new(&params);
//! let sk = kg.secret_key();
//! let pk = kg.public_key(&sk)?;
//! let eval = Evaluator::new(&params).with_relin_key(kg.relin_key(&sk)?);
//! let ct = he.encrypt_batch(&pk, images)?;
//! // server
//! let logits = he.forward(&eval, &ct)?;
//! let logits = he.sanitize_logits(&eval, &logits, &pk.at_level(0)?, &Default::default())?;
//! // client
//! let scores = he.decrypt_logits(&sk, &logits)?;
//! # let _ = scores; Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod batch;
mod counts;
pub mod error;
pub mod ffconv;
pub mod layout;
pub mod lola;
pub mod matrix;
pub mod plan;
pub mod planner;
pub mod prune;
pub mod sanitize;
pub mod tile;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ffconv;

pub use batch::{BatchCnn, EncryptedBatch, EncryptedLogits, BATCH_DEPTH};
pub use error::{HeCnnError, Result};
pub use ffconv::FfConvCnn;
pub use layout::{CnnLayout, LayoutKind, Stage};
pub use lola::{EncryptedImage, EncryptedLogit, LolaClient, LolaCnn, LolaPlan, LOLA_DEPTH};
pub use matrix::{MatrixClient, MatrixCnn, MatrixPlan, MATRIX_DEPTH};
pub use plan::choose_preset;
pub use prune::{PruneLevel, PruneMask};
pub use sanitize::FloodConfig;
pub use tile::{CnnTiling, TileCnn, TilePlan, TILE_DEPTH};

/// Total of every operation count (additions, products, key switches' parents, rescales),
/// the experiment's `he_ops_count`.
pub fn he_ops(c: &ckks::OpCounts) -> u64 {
    c.add + c.mul_plain + c.mul_const + c.mul + c.relinearize + c.rotate + c.rescale + c.drop_level
}
