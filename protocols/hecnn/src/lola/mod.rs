//! A single-image latency layout in the line of LoLa (Brutzkus, Gilad-Bachrach, Elisha,
//! "Low Latency Privacy Preserving Inference", ICML 2019): one image in a few ciphertexts,
//! rotations instead of one ciphertext per pixel.
//!
//! * **Input (convolution representation).** The client unfolds its image in plaintext before
//!   encrypting it, as in LoLa: one ciphertext per kernel tap (25 for 5 × 5), slot `s` holding
//!   the pixel that tap reads for the convolution output arranged in slot `s`. The arrangement
//!   (`arrange`) is public, derived from the model's shape and the slot count alone.
//! * **Convolution** (`conv`): slot-wise products with the kernels and a sum, no rotation.
//! * **`x²`**: one square and relinearization of one ciphertext.
//! * **Dense layers** (`dense`): the diagonal method on the arranged vector, baby-step/giant-
//!   step with double hoisting, then `log2` rotate-and-add steps that leave every slot holding
//!   `y[s mod R]`: the first dense layer's output is the periodic input of the second, whose
//!   output holds copies of the logits (and zeros in the padding rows) in every slot.
//!
//! Depth 5 ([`LOLA_DEPTH`]), as the batch layout: the smallest 128-bit preset is
//! `N14_L7_S40_128BIT` (8,192 slots, enough for the 845 features of CryptoNets and the 2,704
//! of the wide network). The input is encrypted at level 5 and the logits return at level 0.
//!
//! **Security model.** Semi-honest server holding the weights, semi-honest client holding the
//! secret key; the server sees only ciphertexts (IND-CPA under RLWE) and the arrangement is a
//! public function of the model's shape. The client receives one ciphertext whose every slot
//! holds a logit or an exact zero (padding rows), no partial sum of the weights; it is
//! sanitized like the batch layout's logits ([`crate::sanitize`]). The Galois keys the client
//! provides are exactly [`LolaCnn::rotation_steps`] (rotations by public amounts).

pub(crate) mod arrange;
mod client;
mod conv;
mod dense;
mod plan;
#[cfg(test)]
mod tests;

use crate::counts::sum_stages;
use crate::error::Result;
use crate::layout::{CnnLayout, LayoutKind, Stage};
use arrange::Arrangement;
use ckks::{Ciphertext, CkksParams, Encoder, Evaluator, OpCounts};
pub use client::LolaClient;
use conv::EncodedConv;
use dense::EncodedDense;
use ml::models::cnn::CnnModel;
pub use plan::LolaPlan;

/// Levels the single-image layout consumes: conv, x², dense, x², dense.
pub const LOLA_DEPTH: usize = 5;

/// One image in LoLa's convolution representation: one ciphertext per kernel tap.
#[derive(Debug, Clone)]
pub struct EncryptedImage {
    /// `taps[k]` holds, in each arranged slot, the pixel that tap `k` reads.
    pub taps: Vec<Ciphertext>,
}

/// The encrypted logits of one image: every slot `s` holds logit `s mod R` (`R` the class
/// count rounded up to a power of two; padding rows hold zero).
#[derive(Debug, Clone)]
pub struct EncryptedLogit {
    /// The ciphertext.
    pub ct: Ciphertext,
}

/// A CNN compiled for the single-image layout at given CKKS parameters (the kernels and
/// diagonals encoded once).
#[derive(Debug, Clone)]
pub struct LolaCnn {
    model: CnnModel,
    params: CkksParams,
    arrangement: Arrangement,
    conv: EncodedConv,
    fc1: EncodedDense,
    fc2: EncodedDense,
}

impl LolaCnn {
    /// Compiles `model` for `params`: plans the arrangement and the dense layers, encodes the
    /// kernels and diagonals.
    ///
    /// # Errors
    /// [`crate::HeCnnError::DepthExceeded`] below [`LOLA_DEPTH`] levels,
    /// [`crate::HeCnnError::Packing`] if the features do not fit one ciphertext at these
    /// parameters, CKKS encoding errors; [`crate::HeCnnError::Model`] for an FFConv model (use
    /// [`crate::ffconv::FfConvCnn`]).
    pub fn new(model: &CnnModel, params: &CkksParams) -> Result<Self> {
        Self::compile(model, params, LolaPlan::new(model, params)?)
    }

    /// Compiles `model` for `params` with `splits` baby steps per giant step in `[fc1, fc2]`
    /// (one of [`LolaPlan::split_choices`], as the planner chooses) instead of the split the
    /// fixed weights of [`ckks::cost`] prefer.
    ///
    /// # Errors
    /// As [`Self::new`]; [`crate::HeCnnError::Packing`] for a split outside the layer's range.
    pub fn with_splits(model: &CnnModel, params: &CkksParams, splits: [usize; 2]) -> Result<Self> {
        let mut plan = LolaPlan::new(model, params)?;
        plan.set_splits(splits)?;
        Self::compile(model, params, plan)
    }

    /// Encodes the kernels and diagonals of `plan` (made for `model` at `params`).
    fn compile(model: &CnnModel, params: &CkksParams, plan: LolaPlan) -> Result<Self> {
        let LolaPlan {
            arrangement,
            fc1: plan1,
            fc2: plan2,
            ..
        } = plan;
        let enc = Encoder::new(params);
        let delta = params.default_scale();
        let l = LOLA_DEPTH;
        let conv = EncodedConv::new(model, &arrangement, params, &enc, l, delta, delta)?;
        let sq =
            |s: f64, level: usize| -> Result<f64> { Ok(s * s / params.q_prime(level)? as f64) };
        let s1 = sq(conv.out_scale(), l - 1)?;
        let fc1 = EncodedDense::new(
            plan1,
            model.fc1_b.as_slice().expect("contiguous"),
            params,
            &enc,
            l - 2,
            s1,
            delta,
        )?;
        let s2 = sq(fc1.out_scale(), l - 3)?;
        let fc2 = EncodedDense::new(
            plan2,
            model.fc2_b.as_slice().expect("contiguous"),
            params,
            &enc,
            l - 4,
            s2,
            delta,
        )?;
        Ok(Self {
            model: model.clone(),
            params: params.clone(),
            arrangement,
            conv,
            fc1,
            fc2,
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

    /// The level the client encrypts at (the depth: the logits arrive at level 0).
    pub fn input_level(&self) -> usize {
        LOLA_DEPTH
    }

    /// The level of the returned logits.
    pub fn output_level(&self) -> usize {
        0
    }

    /// The rotation steps whose Galois keys the forward pass needs (and no others).
    pub fn rotation_steps(&self) -> Vec<i64> {
        plan::rotation_steps(self.fc1.plan(), self.fc2.plan())
    }

    /// The kernel taps the convolution multiplies (those with a non-zero weight).
    pub fn live_taps(&self) -> Vec<usize> {
        self.conv.live_taps()
    }

    /// The planned shifts (non-zero diagonals) of the two dense layers.
    pub fn dense_shifts(&self) -> [&[usize]; 2] {
        [&self.fc1.plan().shifts, &self.fc2.plan().shifts]
    }

    /// Row blocks and shift counts of the two dense layers, for reports:
    /// `[(block, shifts, baby steps per giant step); 2]`.
    pub fn dense_shapes(&self) -> [(usize, usize, usize); 2] {
        plan::dense_shapes(self.fc1.plan(), self.fc2.plan())
    }
}

impl CnnLayout for LolaCnn {
    type Input = EncryptedImage;
    type Output = EncryptedLogit;

    fn kind(&self) -> LayoutKind {
        LayoutKind::Lola
    }

    fn depth(&self) -> usize {
        LOLA_DEPTH
    }

    fn planned_op_counts(&self) -> OpCounts {
        sum_stages(&self.planned_stages())
    }

    fn planned_stages(&self) -> Vec<Stage> {
        plan::stages(
            self.conv.live_taps().len(),
            self.fc1.plan(),
            self.fc2.plan(),
        )
    }

    fn forward(&self, eval: &Evaluator, input: &EncryptedImage) -> Result<EncryptedLogit> {
        let square = |x: &Ciphertext| -> Result<Ciphertext> { Ok(eval.rescale(&eval.square(x)?)?) };
        let z1 = self.conv.apply(eval, &input.taps)?;
        let z2 = self.fc1.apply(eval, &square(&z1)?)?;
        let ct = self.fc2.apply(eval, &square(&z2)?)?;
        Ok(EncryptedLogit { ct })
    }
}
