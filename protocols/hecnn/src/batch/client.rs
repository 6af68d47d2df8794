//! The client's side of the batch layout: pixels of a batch into ciphertexts, logits out.
//!
//! Packing needs the architecture and the slot count only: a client that knows the public
//! [`CnnSpec`] encrypts with [`encrypt_batch_symmetric`]; [`BatchCnn::encrypt_batch`] packs
//! the same way under the public key.

use super::{BatchCnn, EncryptedBatch, EncryptedLogits, BATCH_DEPTH};
use crate::error::{HeCnnError, Result};
use ckks::{Ciphertext, CkksParams, Encoder, Plaintext, PublicKey, SecretKey};
use ml::models::cnn::CnnSpec;
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

/// Pixels must lie in `[0, PIXEL_MAX]` (MNIST scaled to `[0, 1]`, with margin); the CKKS
/// modulus was sized for the activations of such inputs.
pub const PIXEL_MAX: f64 = 1.0;

/// Refuses a pixel outside `[0, PIXEL_MAX]` (NaN included), naming the image and the pixel.
pub(crate) fn check_pixel(image: usize, pixel: usize, value: f64) -> Result<()> {
    if (0.0..=PIXEL_MAX).contains(&value) {
        return Ok(());
    }
    Err(HeCnnError::PixelOutOfRange {
        image,
        pixel,
        value,
        min: 0.0,
        max: PIXEL_MAX,
    })
}

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
        let level = self.input_level();
        let pk = if pk.level() > level {
            pk.at_level(level)?
        } else {
            pk.clone()
        };
        encrypt_pixels(&self.model.spec, &self.params, images, |pt| {
            Ok(pk.encrypt(pt)?)
        })
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

/// Encrypts `images` (`n × side²` of architecture `spec`, pixels in `[0, 1]`) with the client's
/// secret key, packed as [`BatchCnn::encrypt_batch`] packs them, at [`BATCH_DEPTH`]: the same
/// ciphertexts in distribution, each serializing at about half the size (seeded `c1`).
///
/// # Errors
/// As [`BatchCnn::encrypt_batch`]; [`HeCnnError::DepthExceeded`] below [`BATCH_DEPTH`] levels.
pub fn encrypt_batch_symmetric(
    spec: &CnnSpec,
    params: &CkksParams,
    sk: &SecretKey,
    images: ArrayView2<'_, f64>,
) -> Result<EncryptedBatch> {
    spec.validate()?;
    if params.max_level() < BATCH_DEPTH {
        return Err(HeCnnError::DepthExceeded {
            layout: crate::LayoutKind::Batch.name(),
            needed: BATCH_DEPTH,
            available: params.max_level(),
        });
    }
    if images.ncols() != spec.pixels() {
        return Err(HeCnnError::Shape {
            what: "image pixels",
            expected: spec.pixels(),
            found: images.ncols(),
        });
    }
    encrypt_pixels(spec, params, images, |pt| Ok(sk.encrypt_symmetric(pt)?))
}

/// Checks the batch size and the pixels, and encrypts pixel column `i` into ciphertext `i`
/// with `enc` at [`BATCH_DEPTH`] and the default scale.
fn encrypt_pixels(
    spec: &CnnSpec,
    params: &CkksParams,
    images: ArrayView2<'_, f64>,
    enc: impl Fn(&Plaintext) -> Result<Ciphertext> + Sync,
) -> Result<EncryptedBatch> {
    let (n, slots) = (images.nrows(), params.slots());
    if n > slots {
        return Err(HeCnnError::BatchTooLarge { images: n, slots });
    }
    for ((image, pixel), &value) in images.indexed_iter() {
        check_pixel(image, pixel, value)?;
    }
    let encoder = Encoder::new(params);
    let scale = params.default_scale();
    let pixels = (0..spec.pixels())
        .into_par_iter()
        .map(|i| {
            let column = images.column(i).to_vec();
            enc(&encoder.encode(&column, BATCH_DEPTH, scale)?)
        })
        .collect::<Result<_>>()?;
    Ok(EncryptedBatch { pixels, images: n })
}
