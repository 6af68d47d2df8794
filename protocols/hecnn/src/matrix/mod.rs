//! Matrix encoding of a batch (the line of Jiang–Kim–Lauter–Song, "Secure Outsourced Matrix
//! Computation and Application to Neural Networks", CCS 2018 (E2DM), and Chiang's matrix
//! encoding for CNN inference, 2022): a batch of images is one data matrix, one image per row,
//! in **one** ciphertext; the convolution is written in the images' matrix space; the dense
//! layers are matrix products of that data matrix with the plaintext weight matrices.
//!
//! * **Encoding** (`geometry`, `client`). Image `n` of the batch owns block `n` of `block`
//!   slots (1,024 for 28 × 28: the padded 29 × 29 image with row stride 32); `slots / block`
//!   images per ciphertext (8 at `N14_L7_S40_128BIT`, 32 at `N = 2^16` as published). The
//!   client packs and encrypts; the upload is that one ciphertext.
//! * **Convolution** (`layers::conv`): each kernel is spanned into the image's matrix space:
//!   tap `k` of map `m` is one rotation of the input (the same for every output position) times
//!   a plaintext holding `w[m, k]` on the map's output slots. The stride leaves `stride²`
//!   interleaved output grids, so four maps share an output ciphertext and, where their
//!   shifts coincide, a product: CryptoNets' 5 maps × 25 taps are 61 products on 35 hoisted
//!   rotations into 2 ciphertexts.
//! * **`x²`**: one square and relinearization per ciphertext.
//! * **Dense layers** (`layers::fc1`, `layers::fc2`): `Y = X·Wᵀ` for the batch matrix `X`, in
//!   the E2DM form for a plaintext `W`: the column shifts of `X` (rotations, hoisted
//!   baby-step/giant-step with lazy ModDown, `linear`) times the matching diagonals of `W`
//!   precomputed in plaintext, then E2DM's rectangular rotate-and-add over the row blocks.
//!   Each operation serves the whole batch. E2DM's ciphertext × ciphertext product (an
//!   encrypted model, with the `σ`/`τ` transforms of both operands) is not implemented: here, as
//!   in every layout of this crate, the server holds the weights in the clear.
//!
//! **Depth** 5 ([`MATRIX_DEPTH`]: conv, x², fc1, x², fc2); the input is encrypted at level 5 and
//! the logits return at level 0 in one ciphertext, logit `c` of image `n` in slot
//! `n·block + c` and exact zeros elsewhere.
//!
//! **Cost** of one batch (CryptoNets, `N14_L7_S40_128BIT`, 8 images; [`MatrixPlan::stages`]
//! counts them exactly, the tests pin these figures): conv 35 hoisted rotations, 61 products
//! over `Q·P`, 2 ModDown pairs; 2 squares; fc1 256 products on 2 × 9 hoisted baby steps and 12
//! giant steps, 3 rotate-and-add steps; 1 square; fc2 109 products on 12 baby and 8 giant
//! steps; 88 rotations, 426 plaintext products, 956 HE ops in all (the wide 16-map model: 101
//! rotations, 765 products, 68 Galois keys). The baby/giant splits follow `ckks::cost`'s
//! weights (re-measured 2026-12-07, when the IFMA kernels made ModUp and ModDown about half as
//! dear: before, fc1 took 2 × 15 baby and 7 giant steps, fc2 24 rotations, 99 in all, 63 keys).
//! Upload: one ciphertext at level 5 for the whole batch, 1.57 MB
//! under the public key, 0.79 MB seeded ([`MatrixClient::encrypt_symmetric`]); result: one
//! ciphertext at level 0 (262 KB). Galois keys: [`MatrixCnn::rotation_steps`], 65 (340 MB at
//! this preset, more than LoLa's 17: the convolution's shifts are rotations here, where LoLa's
//! client unfolds the image into 25 ciphertexts).
//!
//! **Security model.** Semi-honest server holding the weights, semi-honest client holding the
//! secret key; the server sees one ciphertext per batch (IND-CPA under RLWE), the geometry
//! and the rotation steps are public functions of the architecture and the slot count (the
//! batch size is public). The returned ciphertext holds the logits of the batch's images in
//! their class slots and exact zeros in every other slot (the second dense layer writes only
//! the class slots; the unused blocks hold the logits of an all-zero image, which the client
//! could query anyway); it is sanitized like the other layouts' logits
//! ([`MatrixCnn::sanitize_logits`], [`crate::sanitize`]).

mod client;
mod geometry;
mod layers;
mod linear;
mod plan;
#[cfg(test)]
mod tests;

pub use client::MatrixClient;
pub use plan::MatrixPlan;

use crate::counts::sum_stages;
use crate::error::Result;
use crate::layout::{CnnLayout, LayoutKind, Stage};
use crate::sanitize::FloodConfig;
use ckks::{Ciphertext, CkksParams, Encoder, Evaluator, Flood, OpCounts, PublicKey, SecretKey};
use linear::EncodedLinear;
use ml::models::cnn::CnnModel;
use ndarray::{Array2, ArrayView2};

/// Levels the matrix layout consumes: conv, x², fc1, x², fc2.
pub const MATRIX_DEPTH: usize = 5;

/// A batch of images encrypted as one data matrix (image `n` in block `n`).
#[derive(Debug, Clone)]
pub struct EncryptedMatrix {
    /// The ciphertext.
    pub ct: Ciphertext,
    /// Images in the batch.
    pub images: usize,
}

/// The encrypted logits of a batch: logit `c` of image `n` in slot `n·block + c`.
#[derive(Debug, Clone)]
pub struct EncryptedMatrixLogits {
    /// The ciphertext.
    pub ct: Ciphertext,
    /// Images in the batch.
    pub images: usize,
}

/// A CNN compiled for the matrix layout at given CKKS parameters (diagonals encoded once).
#[derive(Debug, Clone)]
pub struct MatrixCnn {
    model: CnnModel,
    params: CkksParams,
    plan: MatrixPlan,
    client: MatrixClient,
    conv: EncodedLinear,
    fc1: EncodedLinear,
    fc2: EncodedLinear,
}

impl MatrixCnn {
    /// Compiles `model` for `params`: plans the layers and encodes their diagonals.
    ///
    /// # Errors
    /// As [`MatrixPlan::new`]; CKKS encoding errors.
    pub fn new(model: &CnnModel, params: &CkksParams) -> Result<Self> {
        let plan = MatrixPlan::new(model, params)?;
        let enc = Encoder::new(params);
        let delta = params.default_scale();
        let l = MATRIX_DEPTH;
        let sq =
            |s: f64, level: usize| -> Result<f64> { Ok(s * s / params.q_prime(level)? as f64) };
        let conv = EncodedLinear::new(plan.conv.clone(), params, &enc, l, delta, delta)?;
        let s1 = sq(conv.out_scale(), l - 1)?;
        let fc1 = EncodedLinear::new(plan.fc1.clone(), params, &enc, l - 2, s1, delta)?;
        let s2 = sq(fc1.out_scale(), l - 3)?;
        let fc2 = EncodedLinear::new(plan.fc2.clone(), params, &enc, l - 4, s2, delta)?;
        Ok(Self {
            client: MatrixClient::new(&model.spec, params)?,
            model: model.clone(),
            params: params.clone(),
            plan,
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

    /// The plan (geometry, diagonals, stages).
    pub fn plan(&self) -> &MatrixPlan {
        &self.plan
    }

    /// Images per ciphertext.
    pub fn batch_capacity(&self) -> usize {
        self.plan.images()
    }

    /// The level the client encrypts at.
    pub fn input_level(&self) -> usize {
        MATRIX_DEPTH
    }

    /// The level of the returned logits.
    pub fn output_level(&self) -> usize {
        0
    }

    /// The rotation steps whose Galois keys the forward pass needs (and no others).
    pub fn rotation_steps(&self) -> Vec<i64> {
        self.plan.rotation_steps()
    }

    /// Encrypts `images` under the client's public key (see [`MatrixClient::encrypt`]).
    ///
    /// # Errors
    /// As [`MatrixClient::encrypt`].
    pub fn encrypt_batch(
        &self,
        pk: &PublicKey,
        images: ArrayView2<'_, f64>,
    ) -> Result<EncryptedMatrix> {
        self.client.encrypt(pk, images)
    }

    /// Encrypts `images` with the secret key (seeded: about half the upload).
    ///
    /// # Errors
    /// As [`MatrixClient::encrypt`].
    pub fn encrypt_batch_symmetric(
        &self,
        sk: &SecretKey,
        images: ArrayView2<'_, f64>,
    ) -> Result<EncryptedMatrix> {
        self.client.encrypt_symmetric(sk, images)
    }

    /// Decrypts the logits: `images × classes`.
    ///
    /// # Errors
    /// CKKS errors (another key).
    pub fn decrypt_logits(
        &self,
        sk: &SecretKey,
        logits: &EncryptedMatrixLogits,
    ) -> Result<Array2<f64>> {
        self.client.decrypt_logits(sk, logits)
    }

    /// The flood of this model's logit ciphertext.
    pub fn logit_flood(&self, cfg: &FloodConfig) -> Flood {
        cfg.flood(self.params.default_scale())
    }

    /// Sanitizes the logit ciphertext with the client's public key `pk` (at the logits' level
    /// or above), as [`crate::BatchCnn::sanitize_logits`] does.
    ///
    /// # Errors
    /// CKKS errors: a key of other parameters or below the logits' level, a flood that does
    /// not fit the last modulus.
    pub fn sanitize_logits(
        &self,
        eval: &Evaluator,
        logits: &EncryptedMatrixLogits,
        pk: &PublicKey,
        cfg: &FloodConfig,
    ) -> Result<EncryptedMatrixLogits> {
        Ok(EncryptedMatrixLogits {
            ct: eval.sanitize(&logits.ct, pk, &self.logit_flood(cfg))?,
            images: logits.images,
        })
    }
}

impl CnnLayout for MatrixCnn {
    type Input = EncryptedMatrix;
    type Output = EncryptedMatrixLogits;

    fn kind(&self) -> LayoutKind {
        LayoutKind::Matrix
    }

    fn depth(&self) -> usize {
        MATRIX_DEPTH
    }

    fn planned_op_counts(&self) -> OpCounts {
        sum_stages(&self.planned_stages())
    }

    fn planned_stages(&self) -> Vec<Stage> {
        self.plan.stages()
    }

    fn forward(&self, eval: &Evaluator, input: &EncryptedMatrix) -> Result<EncryptedMatrixLogits> {
        let square = |x: &Ciphertext| -> Result<Ciphertext> { Ok(eval.rescale(&eval.square(x)?)?) };
        let z1 = self.conv.apply(eval, std::slice::from_ref(&input.ct))?;
        let a1: Vec<Ciphertext> = z1.iter().map(square).collect::<Result<_>>()?;
        let z2 = self.fc1.apply(eval, &a1)?;
        let a2 = [square(&z2[0])?];
        let mut out = self.fc2.apply(eval, &a2)?;
        Ok(EncryptedMatrixLogits {
            ct: out.pop().expect("one output"),
            images: input.images,
        })
    }
}
