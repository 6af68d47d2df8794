//! The client's side of the matrix layout: a batch of images packed as the rows of one data
//! matrix (image `n` in block `n`, its pixels row-major with the padding's row stride) and
//! encrypted as one ciphertext; the logits read from slot `c` of each block.
//!
//! Packing needs the architecture and the slot count only: a client that knows the public
//! [`CnnSpec`] and the CKKS parameters encrypts with [`MatrixClient`]; [`super::MatrixCnn`]
//! encrypts the same way.

use super::geometry::Geometry;
use super::plan::check_depth;
use super::{EncryptedMatrix, EncryptedMatrixLogits, MATRIX_DEPTH};
use crate::batch::client::check_pixel;
use crate::error::{HeCnnError, Result};
use ckks::{Ciphertext, CkksParams, Encoder, Plaintext, PublicKey, SecretKey};
use ml::models::cnn::CnnSpec;
use ndarray::{Array2, ArrayView2};

/// The client of the matrix layout for architecture `spec` (no weights).
#[derive(Debug, Clone)]
pub struct MatrixClient {
    geometry: Geometry,
    params: CkksParams,
}

impl MatrixClient {
    /// The client for `spec` under `params` (an FFConv architecture as its folded network).
    ///
    /// # Errors
    /// An invalid architecture, [`HeCnnError::DepthExceeded`] below [`MATRIX_DEPTH`] levels,
    /// [`HeCnnError::Packing`] if one image's block does not fit the slots.
    pub fn new(spec: &CnnSpec, params: &CkksParams) -> Result<Self> {
        check_depth(params)?;
        Ok(Self {
            geometry: Geometry::new(spec, params.slots())?,
            params: params.clone(),
        })
    }

    /// Images one ciphertext carries.
    pub fn capacity(&self) -> usize {
        self.params.slots() / self.geometry.block
    }

    /// Slots per image: logit `c` of image `n` is in slot `n·block + c`.
    pub fn block(&self) -> usize {
        self.geometry.block
    }

    /// The logits of the first `images` images from the decoded slots of a logit ciphertext.
    ///
    /// # Errors
    /// [`HeCnnError::Shape`] for a slot count other than the parameters'; more images than
    /// one ciphertext carries.
    pub fn read_logits(&self, slots: &[f64], images: usize) -> Result<Array2<f64>> {
        if slots.len() != self.params.slots() {
            return Err(HeCnnError::Shape {
                what: "logit slots",
                expected: self.params.slots(),
                found: slots.len(),
            });
        }
        if images > self.capacity() {
            return Err(HeCnnError::BatchTooLarge {
                images,
                slots: self.capacity(),
            });
        }
        let (b, classes) = (self.geometry.block, self.geometry.spec.classes);
        Ok(Array2::from_shape_fn((images, classes), |(n, c)| {
            slots[n * b + c]
        }))
    }

    /// The slot vector of `images` (`n × side²`, pixels in `[0, 1]`, `n ≤` capacity).
    ///
    /// # Errors
    /// A wrong image width, too many images, a pixel outside `[0, 1]` (naming image and pixel).
    pub fn pack(&self, images: ArrayView2<'_, f64>) -> Result<Vec<f64>> {
        let sp = &self.geometry.spec;
        if images.ncols() != sp.pixels() {
            return Err(HeCnnError::Shape {
                what: "image pixels",
                expected: sp.pixels(),
                found: images.ncols(),
            });
        }
        if images.nrows() > self.capacity() {
            return Err(HeCnnError::BatchTooLarge {
                images: images.nrows(),
                slots: self.capacity(),
            });
        }
        let mut v = vec![0.0; self.params.slots()];
        for ((n, px), &value) in images.indexed_iter() {
            check_pixel(n, px, value)?;
            let slot = self.geometry.pixel_slot(px / sp.side, px % sp.side);
            v[n * self.geometry.block + slot] = value;
        }
        Ok(v)
    }

    /// The images of a slot vector made by [`Self::pack`] (`n` rows).
    pub fn unpack(&self, slots: &[f64], n: usize) -> Array2<f64> {
        let sp = &self.geometry.spec;
        Array2::from_shape_fn((n, sp.pixels()), |(i, px)| {
            slots[i * self.geometry.block + self.geometry.pixel_slot(px / sp.side, px % sp.side)]
        })
    }

    /// Encrypts `images` under the public key `pk`, at [`MATRIX_DEPTH`].
    ///
    /// # Errors
    /// As [`Self::pack`]; CKKS errors (a key of other parameters).
    pub fn encrypt(&self, pk: &PublicKey, images: ArrayView2<'_, f64>) -> Result<EncryptedMatrix> {
        let pk = if pk.level() > MATRIX_DEPTH {
            pk.at_level(MATRIX_DEPTH)?
        } else {
            pk.clone()
        };
        self.encrypt_with(images, |pt| Ok(pk.encrypt(pt)?))
    }

    /// Encrypts `images` with the secret key: the same ciphertext in distribution, whose `c1`
    /// is a seed's expansion, so that it serializes at about half the size (the upload).
    ///
    /// # Errors
    /// As [`Self::encrypt`].
    pub fn encrypt_symmetric(
        &self,
        sk: &SecretKey,
        images: ArrayView2<'_, f64>,
    ) -> Result<EncryptedMatrix> {
        self.encrypt_with(images, |pt| Ok(sk.encrypt_symmetric(pt)?))
    }

    fn encrypt_with(
        &self,
        images: ArrayView2<'_, f64>,
        enc: impl Fn(&Plaintext) -> Result<Ciphertext>,
    ) -> Result<EncryptedMatrix> {
        let v = self.pack(images)?;
        let pt =
            Encoder::new(&self.params).encode(&v, MATRIX_DEPTH, self.params.default_scale())?;
        Ok(EncryptedMatrix {
            ct: enc(&pt)?,
            images: images.nrows(),
        })
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
        let slots = Encoder::new(&self.params).decode(&sk.decrypt(&logits.ct)?);
        self.read_logits(&slots, logits.images)
    }
}
