//! The CryptoNets batch layout (Dowlin et al., ICML 2016): one image per slot. The client
//! packs pixel `i` of up to `slots` images into ciphertext `i`; every layer is a sum of
//! plaintext scalars times ciphertexts ([`ckks::Evaluator::mul_const`], no rotations, no
//! Galois keys), `x²` is a square and a relinearization, and each layer ends with one rescale:
//! depth 5 (conv, x², dense, x², dense), so the input is encrypted at level 5 and the logits
//! come back at level 0.
//!
//! Submodules: `client` (encryption of a batch, decryption of the logits), `forward` (the
//! server's layers), `counts` (the operations of a forward pass by stage, from the model's shape).
//!
//! **Security model.** Semi-honest server holding the weights, semi-honest client holding the
//! secret key. The server sees ciphertexts only (IND-CPA under RLWE); the batch size is public.
//! The client learns the logits of its images (the unused slots hold the network applied to
//! zero images, which reveals nothing beyond the logits of an all-zero image, a value the client
//! could query anyway); [`BatchCnn::sanitize_logits`] floods the returned ciphertexts so their
//! noise does not carry the weights beyond what the logits show (see [`crate::sanitize`]).

pub(crate) mod client;
mod counts;
mod forward;

pub use client::{encrypt_batch_symmetric, PIXEL_MAX};

use crate::error::{HeCnnError, Result};
use crate::layout::{CnnLayout, LayoutKind, Stage};
use ckks::{Ciphertext, CkksParams, Evaluator, OpCounts};
use ml::models::cnn::{CnnActivation, CnnModel};

/// Levels the batch layout consumes: conv, x², dense, x², dense.
pub const BATCH_DEPTH: usize = 5;

/// A batch of images encrypted pixel by pixel: `pixels[i]` holds pixel `i` of every image.
#[derive(Debug, Clone)]
pub struct EncryptedBatch {
    /// One ciphertext per pixel.
    pub pixels: Vec<Ciphertext>,
    /// Images in the batch (slots `0..images`).
    pub images: usize,
}

/// The encrypted logits of a batch: `classes[c]` holds logit `c` of every image.
#[derive(Debug, Clone)]
pub struct EncryptedLogits {
    /// One ciphertext per class.
    pub classes: Vec<Ciphertext>,
    /// Images in the batch.
    pub images: usize,
}

/// A CNN compiled for the batch layout at given CKKS parameters.
#[derive(Debug, Clone)]
pub struct BatchCnn {
    model: CnnModel,
    params: CkksParams,
    /// For each convolution position, the `(tap, pixel)` pairs inside the image.
    taps: Vec<Vec<(usize, usize)>>,
}

impl BatchCnn {
    /// Compiles `model` for `params`.
    ///
    /// # Errors
    /// [`HeCnnError::DepthExceeded`] if the parameters have fewer than [`BATCH_DEPTH`] levels;
    /// [`HeCnnError::Model`] for an FFConv model (compile `CnnModel::folded` instead).
    pub fn new(model: &CnnModel, params: &CkksParams) -> Result<Self> {
        model.spec.validate()?;
        crate::layout::require_plain(model)?;
        let CnnActivation::Square = model.spec.activation;
        if params.max_level() < BATCH_DEPTH {
            return Err(HeCnnError::DepthExceeded {
                layout: LayoutKind::Batch.name(),
                needed: BATCH_DEPTH,
                available: params.max_level(),
            });
        }
        let sp = &model.spec;
        let taps = (0..sp.positions())
            .map(|p| {
                (0..sp.taps())
                    .filter_map(|k| sp.tap_source(p, k).map(|src| (k, src)))
                    .collect()
            })
            .collect();
        Ok(Self {
            model: model.clone(),
            params: params.clone(),
            taps,
        })
    }

    /// The plaintext model.
    pub fn model(&self) -> &CnnModel {
        &self.model
    }

    /// The CKKS parameters.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    /// Images per batch (the slot count).
    pub fn batch_capacity(&self) -> usize {
        self.params.slots()
    }

    /// The level the client encrypts at (exactly the depth: the logits arrive at level 0).
    pub fn input_level(&self) -> usize {
        BATCH_DEPTH
    }

    /// The level of the returned logits (the client's public key for sanitizing must reach it).
    pub fn output_level(&self) -> usize {
        0
    }
}

impl CnnLayout for BatchCnn {
    type Input = EncryptedBatch;
    type Output = EncryptedLogits;

    fn kind(&self) -> LayoutKind {
        LayoutKind::Batch
    }

    fn depth(&self) -> usize {
        BATCH_DEPTH
    }

    fn planned_op_counts(&self) -> OpCounts {
        crate::counts::sum_stages(&self.planned_stages())
    }

    fn planned_stages(&self) -> Vec<Stage> {
        counts::stages(self)
    }

    fn forward(&self, eval: &Evaluator, input: &EncryptedBatch) -> Result<EncryptedLogits> {
        forward::forward(self, eval, input)
    }
}
