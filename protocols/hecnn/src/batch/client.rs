//! The client's side of the batch layout: pixels of a batch into ciphertexts, logits out.

use super::{BatchCnn, EncryptedBatch, EncryptedLogits};
use crate::error::{HeCnnError, Result};
use ckks::{Encoder, PublicKey, SecretKey};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Pixels must lie in `[0, PIXEL_MAX]` (MNIST scaled to `[0, 1]`, with margin); the CKKS
/// modulus was sized for the activations of such inputs.
pub const PIXEL_MAX: f64 = 1.0;

impl BatchCnn {
    /// Encrypts `images` (`n × side²`, pixels in `[0, 1]`, `n ≤` [`Self::batch_capacity`]) under
    /// the client's public key: ciphertext `i` holds pixel `i` of image `j` in slot `j`,
    /// encrypted at [`Self::input_level`].
    ///
    /// # Errors
    /// Wrong image width, too many images, a pixel outside `[0, 1]` (naming image and pixel),
    /// or CKKS errors (a key of other parameters).
    pub fn encrypt_batch(
        &self,
        pk: &PublicKey,
        images: ArrayView2<'_, f64>,
    ) -> Result<EncryptedBatch> {
        self.model.check_images(images)?;
        let (n, slots) = (images.nrows(), self.batch_capacity());
        if n > slots {
            return Err(HeCnnError::BatchTooLarge { images: n, slots });
        }
        for ((image, pixel), &value) in images.indexed_iter() {
            if !(0.0..=PIXEL_MAX).contains(&value) {
                return Err(HeCnnError::PixelOutOfRange {
                    image,
                    pixel,
                    value,
                    min: 0.0,
                    max: PIXEL_MAX,
                });
            }
        }
        let level = self.input_level();
        let pk = if pk.level() > level {
            pk.at_level(level)?
        } else {
            pk.clone()
        };
        let encoder = Encoder::new(&self.params);
        let scale = self.params.default_scale();
        let pixels = (0..images.ncols())
            .into_par_iter()
            .map(|i| {
                let column = images.column(i).to_vec();
                Ok(pk.encrypt(&encoder.encode(&column, level, scale)?)?)
            })
            .collect::<Result<_>>()?;
        Ok(EncryptedBatch { pixels, images: n })
    }

    /// Decrypts the logits: `images × classes`.
    ///
    /// # Errors
    /// A ciphertext count other than the class count, or CKKS errors (another key).
    pub fn decrypt_logits(&self, sk: &SecretKey, logits: &EncryptedLogits) -> Result<Array2<f64>> {
        let classes = self.model.spec.classes;
        if logits.classes.len() != classes {
            return Err(HeCnnError::Shape {
                what: "logit ciphertexts",
                expected: classes,
                found: logits.classes.len(),
            });
        }
        let encoder = Encoder::new(&self.params);
        let mut out = Array2::zeros((logits.images, classes));
        for (c, ct) in logits.classes.iter().enumerate() {
            let slots = encoder.decode(&sk.decrypt(ct)?);
            for (j, v) in slots.into_iter().take(logits.images).enumerate() {
                out[[j, c]] = v;
            }
        }
        Ok(out)
    }
}
