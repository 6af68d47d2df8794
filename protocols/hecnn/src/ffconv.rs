//! FFConv (Lu et al., "FFConv: Fast Factorized Convolutional Neural Network Inference on
//! Encrypted Data", 2021) in the single-image layout: a `kernel × kernel` convolution with
//! `rank` maps, `x²`, a 1×1 convolution mixing the `rank` maps into `maps`, then the dense
//! layers (`ml::models::cnn::CnnSpec::rank`).
//!
//! **Where the 1×1 mixing goes.** The activation sits between the low-rank convolution and the
//! mixing, so the mixing `M` (`maps × rank`, bias `c`) and the first dense layer `W1` are two
//! consecutive linear maps: they are folded into one, `W1·(M ⊗ I_P)` with bias
//! `b1 + W1·(c ⊗ 1_P)` (`CnnModel::folded`, exact up to `f64` rounding of the weights), and the
//! encrypted pass is [`LolaCnn`] on the folded network: the rank-`r` convolution slot-wise
//! (one product per kernel tap, whatever the map count), `x²`, the folded dense layer by
//! diagonals, `x²`, the output layer. The dense layer's input holds `rank · positions` values
//! instead of `maps · positions`, and that is where the saving is: its diagonal count (products
//! and baby/giant-step rotations) scales with the values per ciphertext.
//!
//! The paper places the activation after the 1×1 convolution. Here that order would fold the
//! mixing into the convolution instead (`M·K`, again two linear maps), leaving a plain
//! `maps`-map network whose cost is LoLa's at `maps` maps: in this layout the convolution's
//! cost does not depend on the map count (it is slot-wise over the client's tap ciphertexts),
//! so a low rank before the activation saves nothing. With the activation before the mixing,
//! the folded network is a `rank`-map network whose dense layer is constrained to the product
//! `W1·(M ⊗ I)`: no more expressive than a plain `rank`-map network, trained through the
//! factorisation.
//!
//! **Security model.** As [`crate::lola`]: the folding happens on the server, on its own
//! weights; the client encrypts for the folded architecture, a public function of the public
//! spec (`CnnSpec::folded`), and receives the same one logit ciphertext.

use crate::error::{HeCnnError, Result};
use crate::layout::{CnnLayout, LayoutKind, Stage};
use crate::lola::{EncryptedImage, EncryptedLogit, LolaCnn};
use ckks::{CkksParams, Evaluator, OpCounts};
use ml::models::cnn::CnnModel;

/// An FFConv model compiled for the single-image layout: its folded network as a [`LolaCnn`].
#[derive(Debug, Clone)]
pub struct FfConvCnn {
    model: CnnModel,
    folded: LolaCnn,
}

impl FfConvCnn {
    /// Folds `model`'s mixing into its first dense layer and compiles the result for `params`.
    ///
    /// # Errors
    /// [`HeCnnError::Model`] for a model without `spec.rank`; as [`LolaCnn::new`].
    pub fn new(model: &CnnModel, params: &CkksParams) -> Result<Self> {
        model.spec.validate()?;
        if model.spec.rank.is_none() || model.mix.is_none() {
            return Err(HeCnnError::Model(ml::MlError::Unsupported {
                what: "CNN spec.rank",
                value: format!("{:?} (model {})", model.spec.rank, model.spec.name),
                reason: "the FFConv layout needs a low-rank model with its 1×1 mixing",
            }));
        }
        Ok(Self {
            model: model.clone(),
            folded: LolaCnn::new(&model.folded(), params)?,
        })
    }

    /// The FFConv model as trained (with its mixing).
    pub fn model(&self) -> &CnnModel {
        &self.model
    }

    /// The compiled folded network: encryption of the image, decryption and sanitizing of the
    /// logits, Galois key steps.
    pub fn folded(&self) -> &LolaCnn {
        &self.folded
    }
}

impl CnnLayout for FfConvCnn {
    type Input = EncryptedImage;
    type Output = EncryptedLogit;

    fn kind(&self) -> LayoutKind {
        LayoutKind::FfConv
    }

    fn depth(&self) -> usize {
        self.folded.depth()
    }

    fn planned_op_counts(&self) -> OpCounts {
        self.folded.planned_op_counts()
    }

    fn planned_stages(&self) -> Vec<Stage> {
        self.folded.planned_stages()
    }

    fn forward(&self, eval: &Evaluator, input: &EncryptedImage) -> Result<EncryptedLogit> {
        self.folded.forward(eval, input)
    }
}
