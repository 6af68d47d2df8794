//! The convolution on LoLa's convolution representation: the client sends one ciphertext per
//! kernel tap, slot `s` of tap `k` holding the pixel that tap `k` reads for the feature
//! arranged in slot `s` (map `m`, position `p`); the convolution is then slot-wise: `Σ_k
//! P_k ⊙ T_k + bias`, `P_k` holding `w[m, k]` in the slots of map `m`, the products
//! accumulated in place. No rotation. A tap whose kernel weights are zero in every map (a
//! pruned tap, [`crate::prune`]) is skipped: no product, no addition (the client still sends
//! its ciphertext: the input format does not depend on the weights).

use super::arrange::Arrangement;
use crate::error::{HeCnnError, Result};
use crate::layout::Stage;
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
        let live = live_taps(model);
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
        // Products accumulated in place (one accumulator per rayon chunk, no ciphertext per
        // tap), then the chunks' sums added: live taps − 1 additions whatever the chunking.
        let acc = self
            .taps
            .par_iter()
            .try_fold(
                || None,
                |acc: Option<Ciphertext>, (k, p)| -> Result<_> {
                    let t = &taps[*k];
                    Ok(Some(match acc {
                        None => eval.mul_plain(t, p)?,
                        Some(mut a) => {
                            eval.mul_plain_add_assign(&mut a, t, p)?;
                            a
                        }
                    }))
                },
            )
            .try_reduce(
                || None,
                |a, b| match (a, b) {
                    (Some(mut a), Some(b)) => {
                        eval.add_assign(&mut a, &b)?;
                        Ok(Some(a))
                    }
                    (a, b) => Ok(a.or(b)),
                },
            )?
            .expect("at least one live tap");
        Ok(eval.add_plain(&eval.rescale(&acc)?, &self.bias)?)
    }

    /// The live taps (those with a non-zero weight), ascending.
    pub fn live_taps(&self) -> Vec<usize> {
        self.taps.iter().map(|(k, _)| *k).collect()
    }
}

/// The live taps of `model`'s kernels (some non-zero weight in some map), ascending.
pub(crate) fn live_taps(model: &CnnModel) -> Vec<usize> {
    (0..model.spec.taps())
        .filter(|&k| model.conv_w.column(k).iter().any(|&w| w != 0.0))
        .collect()
}

/// The operations of the convolution on `taps` live tap ciphertexts at `level`: one plaintext
/// product per live tap, their sum and the bias, one rescale.
pub(crate) fn planned_stage(taps: u64, level: usize) -> Stage {
    let ops = OpCounts {
        mul_plain: taps,
        add: taps, // taps − 1 accumulations + the bias
        rescale: 1,
        ..OpCounts::default()
    };
    Stage::new("conv", level, ops, 0)
}
