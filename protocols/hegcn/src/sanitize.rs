//! Sanitizing the encrypted logits before they leave the server: the flood that
//! [`ckks::Evaluator::sanitize`] adds, sized for this crate's logits.
//!
//! **Security model.** Semi-honest server holding the weights, semi-honest client holding the
//! secret key. The client may learn the logits at the logit positions and the architecture and
//! parameters the server announces; the returned ciphertexts should show nothing else. The head's
//! logit mask (see [`HeStgcn::head`]) removes the dense layer's partial sums from the other
//! slots; [`HeStgcn::sanitize_logits`] then adds an encryption of zero under the client's public
//! key (a fresh `c1`) and a uniform flood on `[−W, W]` to `c0` (the phase noise), see
//! [`ckks::sanitize`] for the argument.
//!
//! **The noise bound `B_eval`.** The weight-dependent noise of a logit ciphertext is its slot
//! error times `Δ`: at the logit slots the evaluation error (rescale and key-switch roundings,
//! encoding errors and the input noise, carried through the weights), at the other slots the
//! residue of the mask (encoding error of the mask times the partial sums, plus the rounding of
//! the mask's rescale, far below the logit error). A polynomial whose slots (complex, real and
//! imaginary parts each below `ε`) are bounded by `Δ·ε·√2` has coefficients at most that large
//! (inverse canonical embedding: `c_k = (2/N)·Re Σ_j z_j ζ_j^−k` over `N/2` slots), so
//! `B_eval = 2·Δ·ε` with `ε` = [`FloodConfig::eval_error_bound`] (the rule and its defaults
//! live in [`ckks::sanitize`], shared with the other model layouts). No analytic bound on `ε`
//! through the whole network is derived: `ε` is an empirical bound, the largest logit error
//! measured on the committed models (BodyPose 4.4e-5, NTU-shaped STGCN-3-128 1.1e-4, the
//! tiny test models ~1e-8) with margin: the default is `2^−12 ≈ 2.4e-4`. It does not hold for
//! a model whose linear maps are fused across pruned sites ([`crate::plan::open_maps`]: about
//! 20 bits of weight precision per map of a pair), whose measured error is far larger (Mocap-15
//! keeping two of six sites: 3.6e-2 at logits up to 86); such a model needs `ε` raised to its
//! measured error for the same cover, at a proportionally larger flood.
//!
//! **What is reached.** With `W = 2^s·B` the flood adds to every logit an error of standard
//! deviation `≈ 2^(s+1)·ε·√(N/6)` and hides the phase within statistical distance
//! `δ ≈ N·2^−(s+1)` ([`ckks::Flood`]). 40-bit hiding needs `s = 40 + log2 N − 1` (54 at
//! N = 2^15): a logit error of ~2^48, which no `Δ = 2^40` ciphertext with a 50-bit `q_0` can
//! carry. It would take a scale and last modulus about 2^(s + log2 ε + log2 √(N/6) + 10) ≈ 2^56
//! times larger than the logit precision wanted (i.e. `Δ ≈ 2^96` and a matching `q_0`, which the
//! 128-bit presets' modulus budget does not leave), or a tighter, analytic `B_eval`. The default
//! [`DEFAULT_FLOOD_BITS`] keeps the committed models' top-1 decisions; at it `δ` is 1 (no
//! statistical guarantee): each coefficient of the weight-dependent noise is hidden only up to a
//! statistical distance of `2^−(s+1)`, i.e. the flood removes its low-order bits and re-randomizes
//! `c1` (computationally, under RLWE), nothing more.

use ckks::{Evaluator, Flood, PublicKey};

use crate::error::Result;
use crate::model::{EncryptedLogits, HeStgcn};

pub use ckks::sanitize::{FloodConfig, DEFAULT_EVAL_ERROR_BOUND, DEFAULT_FLOOD_BITS, LOGIT_BOUND};

/// Sanitizes every logit ciphertext of `logits` with the client's public key and `flood`.
pub(crate) fn sanitize_all(
    eval: &Evaluator,
    logits: &EncryptedLogits,
    pk: &PublicKey,
    flood: &Flood,
) -> Result<EncryptedLogits> {
    Ok(EncryptedLogits {
        cts: eval.sanitize_all(&logits.cts, pk, flood)?,
        positions: logits.positions.clone(),
    })
}

impl HeStgcn {
    /// The flood of this model's logit ciphertexts: `B_eval = 2·Δ·ε` (see the module docs).
    pub fn logit_flood(&self, cfg: &FloodConfig) -> Flood {
        cfg.flood(self.params().default_scale())
    }

    /// Sanitizes every logit ciphertext with the client's public key `pk` (at the logits' level
    /// or above) and the flood of [`Self::logit_flood`].
    ///
    /// # Errors
    /// CKKS errors: a key of other parameters or below the logits' level, a flood that does not
    /// fit the last modulus.
    pub fn sanitize_logits(
        &self,
        eval: &Evaluator,
        logits: &EncryptedLogits,
        pk: &PublicKey,
        cfg: &FloodConfig,
    ) -> Result<EncryptedLogits> {
        sanitize_all(eval, logits, pk, &self.logit_flood(cfg))
    }

    /// The level of the logit ciphertexts (the client's public key must reach it).
    pub fn output_level(&self) -> usize {
        0
    }
}
