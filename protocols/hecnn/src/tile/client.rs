//! The client's side of the tile layout: up to `t_b` images unfolded into the tap tensor
//! `[taps/1, features/t_f, */t_h, images/t_b]` (LoLa's convolution representation, each value
//! repeated `t_h` times), packed and encrypted; the logits read back from their tiles. Needs
//! the architecture, the tiling and the parameters only ([`TilePlan`]), never the weights.

use super::ops::CtTiles;
use super::pack::{pack, unpack};
use super::plan::{too_many_images, TilePlan};
use super::TileCnn;
use crate::batch::client::check_pixel;
use crate::error::{HeCnnError, Result};
use ckks::{Ciphertext, CkksParams, Encoder, Plaintext, PublicKey, SecretKey};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

impl TilePlan {
    /// The slot vectors of the input tiles of `images` (`n × side²`, pixels in `[0, 1]`,
    /// `n ≤ t_b`; missing images are zero).
    ///
    /// # Errors
    /// Too many images, a wrong pixel count, a pixel outside `[0, 1]` (naming it).
    pub fn pack_images(&self, images: ArrayView2<'_, f64>) -> Result<Vec<Vec<f64>>> {
        let sp = &self.spec;
        let tb = self.tiling.batch;
        if images.nrows() > tb {
            return Err(too_many_images(images.nrows(), tb));
        }
        if images.ncols() != sp.pixels() {
            return Err(HeCnnError::Shape {
                what: "image pixels",
                expected: sp.pixels(),
                found: images.ncols(),
            });
        }
        for ((i, p), &v) in images.indexed_iter() {
            check_pixel(i, p, v)?;
        }
        let (nf, np) = (sp.features(), sp.positions());
        let mut v = vec![0.0; sp.taps() * nf * tb];
        for (b, img) in images.outer_iter().enumerate() {
            for k in 0..sp.taps() {
                for f in 0..nf {
                    if let Some(src) = sp.tap_source(f % np, k) {
                        v[(k * nf + f) * tb + b] = img[src];
                    }
                }
            }
        }
        pack(&self.input, &v)
    }

    /// Packs `images` and encrypts each tile with `enc` at the plan's depth and the default
    /// scale of `params`.
    ///
    /// # Errors
    /// As [`Self::pack_images`]; CKKS errors.
    pub fn encrypt_images(
        &self,
        params: &CkksParams,
        images: ArrayView2<'_, f64>,
        enc: impl Fn(&Plaintext) -> Result<Ciphertext> + Sync,
    ) -> Result<CtTiles> {
        let encoder = Encoder::new(params);
        let (level, scale) = (self.depth(), params.default_scale());
        let tiles = self
            .pack_images(images)?
            .into_par_iter()
            .map(|v| enc(&encoder.encode(&v, level, scale)?))
            .collect::<Result<_>>()?;
        Ok(CtTiles {
            shape: self.input.clone(),
            tiles,
        })
    }

    /// The logits of the first `images` images, `images × classes`, from the decrypted slot
    /// vectors of the returned tiles.
    ///
    /// # Errors
    /// A tile count other than the plan's, more images than `t_b`.
    pub fn read_logits(&self, tiles: &[Vec<f64>], images: usize) -> Result<Array2<f64>> {
        let tb = self.tiling.batch;
        if images > tb {
            return Err(too_many_images(images, tb));
        }
        let v = unpack(&self.output, tiles)?;
        let classes = self.spec.classes;
        Ok(Array2::from_shape_fn((images, classes), |(b, c)| {
            v[c * tb + b]
        }))
    }
}

impl TileCnn {
    /// Encrypts up to `t_b` images under the client's public key.
    ///
    /// # Errors
    /// As [`TilePlan::pack_images`]; CKKS errors.
    pub fn encrypt_images(&self, pk: &PublicKey, images: ArrayView2<'_, f64>) -> Result<CtTiles> {
        let level = self.input_level();
        let pk = if pk.level() > level {
            pk.at_level(level)?
        } else {
            pk.clone()
        };
        self.plan
            .encrypt_images(&self.params, images, |pt| Ok(pk.encrypt(pt)?))
    }

    /// Encrypts up to `t_b` images with the client's secret key (seeded: about half the
    /// upload).
    ///
    /// # Errors
    /// As [`Self::encrypt_images`].
    pub fn encrypt_images_symmetric(
        &self,
        sk: &SecretKey,
        images: ArrayView2<'_, f64>,
    ) -> Result<CtTiles> {
        self.plan
            .encrypt_images(&self.params, images, |pt| Ok(sk.encrypt_symmetric(pt)?))
    }

    /// Decrypts the logits of the first `images` images (`images × classes`).
    ///
    /// # Errors
    /// CKKS errors (another key), a tile count other than the plan's.
    pub fn decrypt_logits(
        &self,
        sk: &SecretKey,
        logits: &CtTiles,
        images: usize,
    ) -> Result<Array2<f64>> {
        let enc = Encoder::new(&self.params);
        let tiles = logits
            .tiles
            .iter()
            .map(|ct| Ok(enc.decode(&sk.decrypt(ct)?)))
            .collect::<Result<Vec<_>>>()?;
        self.plan.read_logits(&tiles, images)
    }
}
