//! The plaintext forward pass of a [`CnnModel`] in `f64` (ndarray), independent of the
//! [`Backend`](crate::Backend) code that trains it: what the encrypted layouts are compared
//! against, and what the committed models' accuracies are measured with.

use super::spec::{CnnActivation, CnnModel};
use crate::error::{MlError, Result};
use ndarray::{Array2, ArrayView2, Axis};

/// Images evaluated per chunk (bounds the unfolded matrix to ~35 MB at 5 × 5 taps).
const CHUNK: usize = 1024;

impl CnnModel {
    fn act(&self, x: f64) -> f64 {
        match self.spec.activation {
            CnnActivation::Square => x * x,
        }
    }

    /// Checks that `images` has one row of `side²` pixels per image.
    ///
    /// # Errors
    /// [`MlError::Shape`].
    pub fn check_images(&self, images: ArrayView2<'_, f64>) -> Result<()> {
        if images.ncols() != self.spec.pixels() {
            return Err(MlError::Shape {
                op: "CNN input images (rows × side²)",
                left: images.dim(),
                right: (images.nrows(), self.spec.pixels()),
            });
        }
        Ok(())
    }

    /// The convolution's outputs before the activation, `N × conv_maps·positions` (map-major;
    /// `N × features` for a plain network).
    ///
    /// # Errors
    /// Images of the wrong width.
    pub fn conv(&self, images: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        self.check_images(images)?;
        let sp = &self.spec;
        let (np, nt) = (sp.positions(), sp.taps());
        let cm = sp.conv_maps();
        let mut out = Array2::zeros((images.nrows(), cm * np));
        for (c, chunk) in images.axis_chunks_iter(Axis(0), CHUNK).enumerate() {
            let mut unf = Array2::zeros((chunk.nrows() * np, nt));
            for (i, img) in chunk.outer_iter().enumerate() {
                for p in 0..np {
                    for k in 0..nt {
                        if let Some(src) = sp.tap_source(p, k) {
                            unf[[i * np + p, k]] = img[src];
                        }
                    }
                }
            }
            let z = unf.dot(&self.conv_w.t()); // (n·P) × maps
            let base = c * CHUNK;
            for i in 0..chunk.nrows() {
                for m in 0..cm {
                    for p in 0..np {
                        out[[base + i, m * np + p]] = z[[i * np + p, m]] + self.conv_b[m];
                    }
                }
            }
        }
        Ok(out)
    }

    /// FFConv's 1×1 mixing of the activated maps (`N × rank·P` → `N × maps·P`, map-major);
    /// the identity for a plain network.
    fn mixed(&self, a1: Array2<f64>) -> Array2<f64> {
        let Some((w, b)) = &self.mix else {
            return a1;
        };
        let np = self.spec.positions();
        let mut out = Array2::zeros((a1.nrows(), self.spec.features()));
        for (row, mut o) in a1.outer_iter().zip(out.outer_iter_mut()) {
            let a = row.into_shape_with_order((w.ncols(), np)).expect("rank·P");
            let m = w.dot(&a) + b.view().insert_axis(Axis(1));
            o.assign(&ndarray::Array::from_iter(m.iter().copied()));
        }
        out
    }

    /// The first dense layer's pre-activations, `N × hidden`.
    fn dense1(&self, images: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let a1 = self.mixed(self.conv(images)?.mapv(|x| self.act(x)));
        Ok(a1.dot(&self.fc1_w.t()) + &self.fc1_b)
    }

    /// The logits, `N × classes`, of images with pixels in `[0, 1]` (`N × side²`).
    ///
    /// # Errors
    /// Images of the wrong width.
    pub fn logits(&self, images: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
        let a2 = self.dense1(images)?.mapv(|x| self.act(x));
        Ok(a2.dot(&self.fc2_w.t()) + &self.fc2_b)
    }

    /// Row-wise index of the largest logit.
    pub fn predictions(logits: ArrayView2<'_, f64>) -> Vec<usize> {
        crate::models::mlp::argmax_rows(logits)
    }

    /// Fraction of `images` classified as `labels` says.
    ///
    /// # Errors
    /// Images of the wrong width, or a label count that differs from the image count.
    pub fn accuracy(&self, images: ArrayView2<'_, f64>, labels: &[u8]) -> Result<f64> {
        if labels.len() != images.nrows() {
            return Err(MlError::Shape {
                op: "CNN accuracy (images vs labels)",
                left: images.dim(),
                right: (labels.len(), 1),
            });
        }
        let pred = Self::predictions(self.logits(images)?.view());
        let hits = pred
            .iter()
            .zip(labels)
            .filter(|(p, &l)| **p == usize::from(l))
            .count();
        Ok(hits as f64 / labels.len().max(1) as f64)
    }

    /// The largest `|value|` at each stage (conv, act, dense, act, logits) over `images`: what
    /// the CKKS scale and first modulus must leave room for (FFConv's mixing is part of the
    /// dense stage, as under encryption).
    ///
    /// # Errors
    /// Images of the wrong width.
    pub fn stage_max_abs(&self, images: ArrayView2<'_, f64>) -> Result<[f64; 5]> {
        let m = |a: &Array2<f64>| a.iter().fold(0.0f64, |x, v| x.max(v.abs()));
        let z1 = self.conv(images)?;
        let a1 = z1.mapv(|x| self.act(x));
        let z2 = self.dense1(images)?;
        let a2 = z2.mapv(|x| self.act(x));
        let z3 = a2.dot(&self.fc2_w.t()) + &self.fc2_b;
        Ok([m(&z1), m(&a1), m(&z2), m(&a2), m(&z3)])
    }
}
