//! The convolution on LoLa's convolution representation: the client sends one ciphertext per
//! kernel tap, slot `s` of tap `k` holding the pixel that tap `k` reads for the feature
//! arranged in slot `s` (map `m`, position `p`); the convolution is then slot-wise: `Σ_k
//! P_k ⊙ T_k + bias`, `P_k` holding `w[m, k]` in the slots of map `m`. No rotation. A tap
//! whose kernel weights are zero in every map (a pruned tap, [`crate::prune`]) is skipped:
//! no product, no addition (the client still sends its ciphertext: the input format does not
//! depend on the weights).

use super::arrange::Arrangement;
use crate::error::{HeCnnError, Result};
use ckks::{Ciphertext, CkksParams, Encoder, Evaluator, OpCounts, Plaintext};
use ml::models::cnn::{CnnModel, CnnSpec};
use rayon::prelude::*;

/// The convolution compiled for one level and input scale.
#[derive(Debug, Clone)]
pub(crate) struct EncodedConv {
    /// Taps the client sends.
    inputs: usize,
    /// The live taps (some non-zero weight) and their kernels.
    taps: Vec<(usize, Plaintext)>,
    bias: Plaintext,
    level: usize,
    out_scale: f64,
}

/// The map of each arranged feature (features are map-major: `m·positions + p`).
fn map_of(model: &CnnModel, a: &Arrangement, s: usize) -> Option<usize> {
    a[s].map(|f| f / model.spec.positions())
}

/// Slot values of tap `k` for `image` (`side²` pixels) under arrangement `a`.
pub(crate) fn tap_values(spec: &CnnSpec, a: &Arrangement, image: &[f64], k: usize) -> Vec<f64> {
    let np = spec.positions();
    a.iter()
        .map(|f| {
            f.and_then(|f| spec.tap_source(f % np, k))
                .map_or(0.0, |src| image[src])
        })
        .collect()
}

impl EncodedConv {
    /// Encodes the kernels and biases of `model` for tap ciphertexts at `level` with scale
    /// `in_scale`; the outputs carry `target`.
    ///
    /// # Errors
    /// CKKS encoding errors (level 0); [`HeCnnError::Packing`] if every tap is pruned.
    pub fn new(
        model: &CnnModel,
        a: &Arrangement,
        params: &CkksParams,
        encoder: &Encoder,
        level: usize,
        in_scale: f64,
        target: f64,
    ) -> Result<Self> {
        let q = params.q_prime(level)? as f64;
        let pt_scale = q * target / in_scale;
        let inputs = model.spec.taps();
        let live: Vec<usize> = (0..inputs)
            .filter(|&k| model.conv_w.column(k).iter().any(|&w| w != 0.0))
            .collect();
        if live.is_empty() {
            return Err(HeCnnError::Packing {
                layer: "conv",
                what: "live kernel taps",
                value: 0,
                limit: inputs,
            });
        }
        let taps = live
            .into_par_iter()
            .map(|k| {
                let v: Vec<f64> = (0..a.len())
                    .map(|s| map_of(model, a, s).map_or(0.0, |m| model.conv_w[[m, k]]))
                    .collect();
                Ok((k, encoder.encode(&v, level, pt_scale)?))
            })
            .collect::<Result<_>>()?;
        let out_scale = in_scale * pt_scale / q;
        let b: Vec<f64> = (0..a.len())
            .map(|s| map_of(model, a, s).map_or(0.0, |m| model.conv_b[m]))
            .collect();
        Ok(Self {
            inputs,
            taps,
            bias: encoder.encode(&b, level - 1, out_scale)?,
            level,
            out_scale,
        })
    }

    /// The scale of the outputs.
    pub fn out_scale(&self) -> f64 {
        self.out_scale
    }

    /// The convolution's pre-activations, one level below the taps.
    ///
    /// # Errors
    /// A tap count or level other than the compiled ones, CKKS errors.
    pub fn apply(&self, eval: &Evaluator, taps: &[Ciphertext]) -> Result<Ciphertext> {
        if taps.len() != self.inputs {
            return Err(HeCnnError::Shape {
                what: "tap ciphertexts",
                expected: self.inputs,
                found: taps.len(),
            });
        }
        if let Some(t) = taps.iter().find(|t| t.level() != self.level) {
            return Err(HeCnnError::Shape {
                what: "tap ciphertext level",
                expected: self.level,
                found: t.level(),
            });
        }
        let products: Vec<Ciphertext> = self
            .taps
            .par_iter()
            .map(|(k, p)| Ok(eval.mul_plain(&taps[*k], p)?))
            .collect::<Result<_>>()?;
        let mut it = products.into_iter();
        let mut acc = it.next().expect("at least one tap");
        for p in it {
            eval.add_assign(&mut acc, &p)?;
        }
        Ok(eval.add_plain(&eval.rescale(&acc)?, &self.bias)?)
    }

    /// The live taps (those with a non-zero weight), ascending.
    pub fn live_taps(&self) -> Vec<usize> {
        self.taps.iter().map(|(k, _)| *k).collect()
    }

    /// Every evaluator operation of [`Self::apply`].
    pub fn planned(&self) -> OpCounts {
        let taps = self.taps.len() as u64;
        OpCounts {
            mul_plain: taps,
            add: taps, // taps − 1 accumulations + the bias
            rescale: 1,
            ..OpCounts::default()
        }
    }
}
