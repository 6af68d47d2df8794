//! The client's side of the single-image layout: the image unfolded into one slot vector per
//! kernel tap (in plaintext, before encryption, as in LoLa) and encrypted; logits out.

use super::conv::tap_values;
use super::{EncryptedImage, EncryptedLogit, LolaCnn};
use crate::batch::PIXEL_MAX;
use crate::error::{HeCnnError, Result};
use ckks::{Ciphertext, Encoder, Plaintext, PublicKey, SecretKey};
use rayon::prelude::*;

impl LolaCnn {
    /// Encrypts one image (`side²` pixels in `[0, 1]`) under the client's public key: one
    /// ciphertext per kernel tap at [`Self::input_level`].
    ///
    /// # Errors
    /// A wrong pixel count, a pixel outside `[0, 1]` (naming it), CKKS errors (a key of other
    /// parameters).
    pub fn encrypt_image(&self, pk: &PublicKey, image: &[f64]) -> Result<EncryptedImage> {
        let level = self.input_level();
        let pk = if pk.level() > level {
            pk.at_level(level)?
        } else {
            pk.clone()
        };
        self.encrypt_taps(image, |pt| Ok(pk.encrypt(pt)?))
    }

    /// Encrypts one image as [`Self::encrypt_image`] does, with the client's secret key: the
    /// same ciphertexts in distribution (the key owner encrypts; IND-CPA under RLWE as for
    /// the public key), whose `c1` is a seed's expansion, so that each serializes at about half
    /// the size (the upload of one image halves).
    ///
    /// # Errors
    /// As [`Self::encrypt_image`].
    pub fn encrypt_image_symmetric(&self, sk: &SecretKey, image: &[f64]) -> Result<EncryptedImage> {
        self.encrypt_taps(image, |pt| Ok(sk.encrypt_symmetric(pt)?))
    }

    /// Checks `image`, unfolds it into one slot vector per tap and encrypts each with `enc`.
    fn encrypt_taps(
        &self,
        image: &[f64],
        enc: impl Fn(&Plaintext) -> Result<Ciphertext> + Sync,
    ) -> Result<EncryptedImage> {
        let sp = &self.model.spec;
        if image.len() != sp.pixels() {
            return Err(HeCnnError::Shape {
                what: "image pixels",
                expected: sp.pixels(),
                found: image.len(),
            });
        }
        if let Some((pixel, &value)) = image
            .iter()
            .enumerate()
            .find(|(_, v)| !(0.0..=PIXEL_MAX).contains(*v))
        {
            return Err(HeCnnError::PixelOutOfRange {
                image: 0,
                pixel,
                value,
                min: 0.0,
                max: PIXEL_MAX,
            });
        }
        let encoder = Encoder::new(&self.params);
        let (level, scale) = (self.input_level(), self.params.default_scale());
        let taps = (0..sp.taps())
            .into_par_iter()
            .map(|k| {
                let v = tap_values(&self.model, &self.arrangement, image, k);
                enc(&encoder.encode(&v, level, scale)?)
            })
            .collect::<Result<_>>()?;
        Ok(EncryptedImage { taps })
    }

    /// Decrypts the logits of one image (slots `0..classes`).
    ///
    /// # Errors
    /// CKKS errors (another key).
    pub fn decrypt_logits(&self, sk: &SecretKey, logits: &EncryptedLogit) -> Result<Vec<f64>> {
        let slots = Encoder::new(&self.params).decode(&sk.decrypt(&logits.ct)?);
        Ok(slots[..self.model.spec.classes].to_vec())
    }
}
