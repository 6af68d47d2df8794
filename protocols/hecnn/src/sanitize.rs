//! Sanitizing the encrypted logits before they leave the server, as `hegcn` does for ST-GCN
//! logits: an encryption of zero under the client's public key and a uniform flood of the
//! phase ([`ckks::Evaluator::sanitize`]).
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
use ckks::{Evaluator, Flood, PublicKey};
use rayon::prelude::*;

/// Default `s` of the flood width.
pub const DEFAULT_FLOOD_BITS: u32 = 0;
/// Default `ε`, bound on the slot error of a logit ciphertext.
pub const DEFAULT_EVAL_ERROR_BOUND: f64 = 1.0 / 4096.0;
/// Largest `|logit|` the flood leaves room for.
pub const LOGIT_BOUND: f64 = 256.0;

/// How the logits are flooded.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FloodConfig {
    /// `s`: the flood is uniform on `[−W, W]`, `W = 2^s·(B_eval + fresh-encryption noise)`.
    pub flood_bits: u32,
    /// `ε`: bound on the slot error of the logit ciphertexts before the flood.
    pub eval_error_bound: f64,
}

impl Default for FloodConfig {
    fn default() -> Self {
        Self {
            flood_bits: DEFAULT_FLOOD_BITS,
            eval_error_bound: DEFAULT_EVAL_ERROR_BOUND,
        }
    }
}

impl BatchCnn {
    /// The flood of this model's logit ciphertexts.
    pub fn logit_flood(&self, cfg: &FloodConfig) -> Flood {
        Flood {
            noise_bound: 2.0 * self.params().default_scale() * cfg.eval_error_bound.abs(),
            flood_bits: cfg.flood_bits,
            message_bound: LOGIT_BOUND,
        }
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
        let flood = self.logit_flood(cfg);
        let classes = logits
            .classes
            .par_iter()
            .map(|ct| eval.sanitize(ct, pk, &flood))
            .collect::<ckks::Result<_>>()?;
        Ok(EncryptedLogits {
            classes,
            images: logits.images,
        })
    }
}
