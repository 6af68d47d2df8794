//! The client's side of the single-image layout: the image unfolded into one slot vector per
//! kernel tap (in plaintext, before encryption, as in LoLa) and encrypted; logits out.
//!
//! The unfolding needs the architecture and the slot count only, never the weights: a client
//! that knows the public [`CnnSpec`] and the CKKS parameters encrypts with [`LolaClient`]
//! (what a party serving the model announces is enough); [`LolaCnn`] encrypts the same way.

use super::arrange::{dense_input_arrangement, Arrangement};
use super::conv::tap_values;
use super::{EncryptedImage, EncryptedLogit, LolaCnn, LOLA_DEPTH};
use crate::batch::client::check_pixel;
use crate::error::{HeCnnError, Result};
use ckks::{Ciphertext, CkksParams, Encoder, Plaintext, PublicKey, SecretKey};
use ml::models::cnn::CnnSpec;
use rayon::prelude::*;

/// The client of the single-image layout for a model of architecture `spec` (no weights):
/// the arrangement of the convolution's outputs, derived from the shape and the slot count.
#[derive(Debug, Clone)]
pub struct LolaClient {
    spec: CnnSpec,
    params: CkksParams,
    arrangement: Arrangement,
}

impl LolaClient {
    /// The client for `spec` under `params` (an FFConv architecture is encrypted for as its
    /// folded network, [`CnnSpec::folded`]: the client's input depends on the convolution only).
    ///
    /// # Errors
    /// An invalid architecture (`CnnSpec::validate`), [`HeCnnError::DepthExceeded`] below
    /// [`LOLA_DEPTH`] levels, [`HeCnnError::Packing`] if the features do not fit one
    /// ciphertext at these parameters.
    pub fn new(spec: &CnnSpec, params: &CkksParams) -> Result<Self> {
        spec.validate()?;
        let spec = &spec.folded();
        if params.max_level() < LOLA_DEPTH {
            return Err(HeCnnError::DepthExceeded {
                layout: crate::LayoutKind::Lola.name(),
                needed: LOLA_DEPTH,
                available: params.max_level(),
            });
        }
        let (_, arrangement) =
            dense_input_arrangement("fc1", spec.hidden, spec.features(), params.slots())?;
        Ok(Self {
            spec: spec.clone(),
            params: params.clone(),
            arrangement,
        })
    }

    /// The architecture.
    pub fn spec(&self) -> &CnnSpec {
        &self.spec
    }

    /// Ciphertexts of one encrypted image (one per kernel tap).
    pub fn input_cts(&self) -> usize {
        self.spec.taps()
    }

    /// Encrypts one image (`side²` pixels in `[0, 1]`) with the client's secret key at
    /// [`LOLA_DEPTH`], as [`LolaCnn::encrypt_image_symmetric`] does.
    ///
    /// # Errors
    /// As [`LolaCnn::encrypt_image`].
    pub fn encrypt_image_symmetric(&self, sk: &SecretKey, image: &[f64]) -> Result<EncryptedImage> {
        encrypt_taps(&self.spec, &self.arrangement, &self.params, image, |pt| {
            Ok(sk.encrypt_symmetric(pt)?)
        })
    }
}

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
        let sp = &self.model.spec;
        encrypt_taps(sp, &self.arrangement, &self.params, image, |pt| {
            Ok(pk.encrypt(pt)?)
        })
    }

    /// Encrypts one image as [`Self::encrypt_image`] does, with the client's secret key: the
    /// same ciphertexts in distribution (the key owner encrypts; IND-CPA under RLWE as for
    /// the public key), whose `c1` is a seed's expansion, so that each serializes at about half
    /// the size (the upload of one image halves).
    ///
    /// # Errors
    /// As [`Self::encrypt_image`].
    pub fn encrypt_image_symmetric(&self, sk: &SecretKey, image: &[f64]) -> Result<EncryptedImage> {
        let sp = &self.model.spec;
        encrypt_taps(sp, &self.arrangement, &self.params, image, |pt| {
            Ok(sk.encrypt_symmetric(pt)?)
        })
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

/// Checks `image`, unfolds it into one slot vector per tap of `spec` under arrangement `a` and
/// encrypts each with `enc` at [`LOLA_DEPTH`] and the default scale.
fn encrypt_taps(
    spec: &CnnSpec,
    a: &Arrangement,
    params: &CkksParams,
    image: &[f64],
    enc: impl Fn(&Plaintext) -> Result<Ciphertext> + Sync,
) -> Result<EncryptedImage> {
    if image.len() != spec.pixels() {
        return Err(HeCnnError::Shape {
            what: "image pixels",
            expected: spec.pixels(),
            found: image.len(),
        });
    }
    for (pixel, &value) in image.iter().enumerate() {
        check_pixel(0, pixel, value)?;
    }
    let encoder = Encoder::new(params);
    let scale = params.default_scale();
    let taps = (0..spec.taps())
        .into_par_iter()
        .map(|k| {
            let v = tap_values(spec, a, image, k);
            enc(&encoder.encode(&v, LOLA_DEPTH, scale)?)
        })
        .collect::<Result<_>>()?;
    Ok(EncryptedImage { taps })
}
