//! Sanitizing the encrypted logits before they leave the server, as `hegcn` does for ST-GCN
//! logits: an encryption of zero under the client's public key and a uniform flood of the
//! phase ([`ckks::Evaluator::sanitize`]), with the flood rule and defaults of
//! [`ckks::sanitize::FloodConfig`], which `hegcn` uses too.
//!
//! **Security model.** Semi-honest server (holds the weights) and client (holds the secret
//! key). The flood width is `W = 2^s·B_eval` with `B_eval = 2·Δ·ε` and `ε` an empirical bound
//! on the logits' evaluation error (measured on the committed MNIST models: below 1e-4, see the
//! differential tests; the default `ε = 2^−12` leaves margin). As in `hegcn`, the default `s = 0`
//! removes the low-order bits of the weight-dependent noise and re-randomizes `c1`; it gives no
//! statistical hiding guarantee (that needs a larger last modulus than the 128-bit presets
//! leave at this depth).

use crate::batch::{BatchCnn, EncryptedLogits};
use crate::error::Result;
use crate::lola::{EncryptedLogit, LolaCnn};
use ckks::{CkksParams, Evaluator, Flood, PublicKey};

pub use ckks::sanitize::{FloodConfig, DEFAULT_EVAL_ERROR_BOUND, DEFAULT_FLOOD_BITS, LOGIT_BOUND};

/// The flood of logits at the parameters' default scale (every layout's logits carry it).
fn flood_of(params: &CkksParams, cfg: &FloodConfig) -> Flood {
    cfg.flood(params.default_scale())
}

impl BatchCnn {
    /// The flood of this model's logit ciphertexts.
    pub fn logit_flood(&self, cfg: &FloodConfig) -> Flood {
        flood_of(self.params(), cfg)
    }

    /// Sanitizes every logit ciphertext with the client's public key `pk` (at the logits'
    /// level or above).
    ///
    /// # Errors
    /// CKKS errors: a key of other parameters or below the logits' level, a flood that does
    /// not fit the last modulus.
    pub fn sanitize_logits(
        &self,
        eval: &Evaluator,
        logits: &EncryptedLogits,
        pk: &PublicKey,
        cfg: &FloodConfig,
    ) -> Result<EncryptedLogits> {
        Ok(EncryptedLogits {
            classes: eval.sanitize_all(&logits.classes, pk, &self.logit_flood(cfg))?,
            images: logits.images,
        })
    }
}

impl LolaCnn {
    /// The flood of this model's logit ciphertext.
    pub fn logit_flood(&self, cfg: &FloodConfig) -> Flood {
        flood_of(self.params(), cfg)
    }

    /// Sanitizes the logit ciphertext with the client's public key `pk` (at the logits' level
    /// or above), as [`BatchCnn::sanitize_logits`] does.
    ///
    /// # Errors
    /// CKKS errors: a key of other parameters or below the logits' level, a flood that does
    /// not fit the last modulus.
    pub fn sanitize_logits(
        &self,
        eval: &Evaluator,
        logits: &EncryptedLogit,
        pk: &PublicKey,
        cfg: &FloodConfig,
    ) -> Result<EncryptedLogit> {
        Ok(EncryptedLogit {
            ct: eval.sanitize(&logits.ct, pk, &self.logit_flood(cfg))?,
        })
    }
}
