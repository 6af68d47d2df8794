//! The client's side of a compiled model: packing and encryption of the input (after the
//! model's input affine map, one or several samples) or of any packed tensor, and decryption
//! of packed tensors and of the class scores.

use ckks::{Ciphertext, PublicKey, SecretKey};
use ndarray::{Array4, ArrayView4};
use rayon::prelude::*;

use super::{EncryptedLogits, HeStgcn, PackedTensor};
use crate::error::{HeGcnError, Result};
use crate::layout::Layout;

impl HeStgcn {
    /// Client: applies the model's input affine map to one sample `(C, T, V, M)`, packs it and
    /// encrypts it at level `plan().depth` with the public key (as sample 0 of a batched model).
    pub fn encrypt_input(&self, pk: &PublicKey, x: ArrayView4<'_, f64>) -> Result<PackedTensor> {
        self.encrypt_clips(pk, &[x])
    }

    /// Client: packs up to [`Self::clips`] samples `(C, T, V, M)` (sample `r` in copy `r`, see
    /// [`Self::compile_batched`]) after the input affine map and encrypts them at level
    /// `plan().depth`; missing samples are zeros.
    ///
    /// # Errors
    /// [`HeGcnError::Shape`] for a sample of the wrong shape or more samples than clips.
    pub fn encrypt_clips(
        &self,
        pk: &PublicKey,
        xs: &[ArrayView4<'_, f64>],
    ) -> Result<PackedTensor> {
        let l = &self.input_layout;
        if xs.len() > self.clips {
            return Err(HeGcnError::Shape {
                what: "samples per pass",
                expected: self.clips,
                found: xs.len(),
            });
        }
        let mut slots = vec![vec![0.0; l.slots]; l.num_cts()];
        for (r, x) in xs.iter().enumerate() {
            for (what, expected, found) in [
                ("input channels C", l.channels, x.dim().0),
                ("input frames T", l.frames, x.dim().1),
                ("input nodes V", l.nodes, x.dim().2),
                ("input persons M", l.persons, x.dim().3),
            ] {
                if expected != found {
                    return Err(HeGcnError::Shape {
                        what,
                        expected,
                        found,
                    });
                }
            }
            for ((c, t, v, m), &e) in x.indexed_iter() {
                let y = match &self.input_affine {
                    Some((scale, shift)) => scale[[c, v]] * e + shift[[c, v]],
                    None => e,
                };
                let (ct, slot) = l.slot(c, t, v, m);
                slots[ct][slot + r * self.clip_stride] = y;
            }
        }
        let cts = self.encrypt_slots(pk, &slots, self.plan.depth)?;
        Ok(PackedTensor {
            cts,
            layout: l.clone(),
        })
    }

    /// Packs and encrypts a logical tensor `(C, T, V, M)` (no input map) in `layout` at
    /// `level` with the default scale — to feed a single stage (tests, benchmarks).
    pub fn encrypt_packed(
        &self,
        pk: &PublicKey,
        layout: &Layout,
        x: ArrayView4<'_, f64>,
        level: usize,
    ) -> Result<PackedTensor> {
        let dims = (layout.channels, layout.frames, layout.nodes, layout.persons);
        if x.dim() != dims {
            return Err(HeGcnError::Shape {
                what: "tensor entries (C·T·V·M)",
                expected: dims.0 * dims.1 * dims.2 * dims.3,
                found: x.len(),
            });
        }
        let mut slots = vec![vec![0.0; layout.slots]; layout.num_cts()];
        for ((c, t, v, m), &e) in x.indexed_iter() {
            let (ct, slot) = layout.slot(c, t, v, m);
            slots[ct][slot] = e;
        }
        let cts = self.encrypt_slots(pk, &slots, level)?;
        Ok(PackedTensor {
            cts,
            layout: layout.clone(),
        })
    }

    /// Client (or tests): decrypts a packed tensor back to `(C, T, V, M)` (sample 0 of a batched
    /// model).
    pub fn decrypt_tensor(&self, sk: &SecretKey, x: &PackedTensor) -> Result<Array4<f64>> {
        let l = &x.layout;
        let dec: Vec<Vec<f64>> = x
            .cts
            .iter()
            .map(|ct| Ok(self.encoder.decode(&sk.decrypt(ct)?)))
            .collect::<Result<_>>()?;
        Ok(Array4::from_shape_fn(
            (l.channels, l.frames, l.nodes, l.persons),
            |(c, t, v, m)| {
                let (ct, slot) = l.slot(c, t, v, m);
                dec[ct][slot]
            },
        ))
    }

    /// Client: decrypts the class scores (`clips × classes`, sample-major).
    pub fn decrypt_logits(&self, sk: &SecretKey, logits: &EncryptedLogits) -> Result<Vec<f64>> {
        let dec: Vec<Vec<f64>> = logits
            .cts
            .iter()
            .map(|ct| Ok(self.encoder.decode(&sk.decrypt(ct)?)))
            .collect::<Result<_>>()?;
        Ok(logits
            .positions
            .iter()
            .map(|&(ct, slot)| dec[ct][slot])
            .collect())
    }

    /// Encodes every slot vector at `level` with the default scale and encrypts it with `pk`.
    fn encrypt_slots(
        &self,
        pk: &PublicKey,
        slots: &[Vec<f64>],
        level: usize,
    ) -> Result<Vec<Ciphertext>> {
        let scale = self.params.default_scale();
        slots
            .par_iter()
            .map(|s| -> Result<Ciphertext> {
                pk.encrypt(&self.encoder.encode(s, level, scale)?)
                    .map_err(Into::into)
            })
            .collect()
    }
}
