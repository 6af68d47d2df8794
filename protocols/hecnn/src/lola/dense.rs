//! The encrypted evaluation of a [`DensePlan`]: the baby-step rotations of the input hoisted
//! and kept over `Q·P` (`ckks::lazy`, double hoisting), products with the pre-rotated
//! diagonals, one giant-step rotation per partial sum, one ModDown and one rescale, then the
//! rotate-and-add steps and the bias. The diagonals are encoded once, when the model is
//! compiled (the server's weight cache), not per image.

use super::arrange::DensePlan;
use crate::error::{HeCnnError, Result};
use crate::layout::Stage;
use ckks::{Ciphertext, CkksParams, Encoder, Evaluator, ExtCiphertext, OpCounts, Plaintext};
use rayon::prelude::*;

/// A dense layer compiled for one level and input scale.
#[derive(Debug, Clone)]
pub(crate) struct EncodedDense {
    plan: DensePlan,
    /// Extended plaintexts of the pre-rotated diagonals, as `plan.shifts`.
    diagonals: Vec<Plaintext>,
    /// The bias in every slot `s` with `s mod R < rows`, one level down.
    bias: Plaintext,
    level: usize,
    out_scale: f64,
}

impl EncodedDense {
    /// Encodes `plan` for inputs at `level` with scale `in_scale`; outputs carry `target`.
    ///
    /// # Errors
    /// A bias of the wrong length, CKKS encoding errors (level 0, values too large).
    pub fn new(
        plan: DensePlan,
        bias: &[f64],
        params: &CkksParams,
        encoder: &Encoder,
        level: usize,
        in_scale: f64,
        target: f64,
    ) -> Result<Self> {
        if bias.len() != plan.rows {
            return Err(HeCnnError::Shape {
                what: "dense bias",
                expected: plan.rows,
                found: bias.len(),
            });
        }
        let q = params.q_prime(level)? as f64;
        let pt_scale = q * target / in_scale;
        let diagonals = (0..plan.shifts.len())
            .into_par_iter()
            .map(|i| Ok(encoder.encode_ext(&plan.encoded_diagonal(i), level, pt_scale)?))
            .collect::<Result<_>>()?;
        let out_scale = in_scale * pt_scale / q;
        let b: Vec<f64> = (0..plan.slots)
            .map(|s| bias.get(s % plan.block).copied().unwrap_or(0.0))
            .collect();
        let bias = encoder.encode(&b, level - 1, out_scale)?;
        Ok(Self {
            plan,
            diagonals,
            bias,
            level,
            out_scale,
        })
    }

    /// The scale of the outputs.
    pub fn out_scale(&self) -> f64 {
        self.out_scale
    }

    /// The plan.
    pub fn plan(&self) -> &DensePlan {
        &self.plan
    }

    /// `W·x + b` on `x` (at the compiled level), one level down.
    ///
    /// # Errors
    /// An input at another level, missing Galois keys, CKKS errors.
    pub fn apply(&self, eval: &Evaluator, x: &Ciphertext) -> Result<Ciphertext> {
        if x.level() != self.level {
            return Err(HeCnnError::Shape {
                what: "dense layer input level",
                expected: self.level,
                found: x.level(),
            });
        }
        let babies = self.plan.baby_steps();
        let steps: Vec<i64> = babies
            .iter()
            .filter(|&&b| b != 0)
            .map(|&b| b as i64)
            .collect();
        let mut rotated = eval.rotate_hoisted_ext(x, &steps)?.into_iter();
        let lifted: Vec<(usize, ExtCiphertext)> = babies
            .iter()
            .map(|&b| {
                let ext = if b == 0 {
                    eval.lift_ext(x)?
                } else {
                    rotated.next().expect("one rotation per non-zero baby step")
                };
                Ok((b, ext))
            })
            .collect::<Result<_>>()?;
        let by_baby = |b: usize| &lifted.iter().find(|(s, _)| *s == b).expect("planned").1;
        let partial: Vec<ExtCiphertext> = self
            .plan
            .groups()
            .into_par_iter()
            .map(|(g, members)| {
                let mut acc: Option<ExtCiphertext> = None;
                for (b, idx) in members {
                    let (xb, pt) = (by_baby(b), &self.diagonals[idx]);
                    match acc.as_mut() {
                        None => acc = Some(eval.mul_plain_ext(xb, pt)?),
                        Some(a) => eval.mul_plain_add_assign_ext(a, xb, pt)?,
                    }
                }
                let acc = acc.expect("a group has members");
                Ok(if g == 0 {
                    acc
                } else {
                    eval.rotate_ext(&acc, g as i64)?
                })
            })
            .collect::<Result<_>>()?;
        let mut parts = partial.into_iter();
        let mut sum = parts.next().expect("a plan has a shift");
        for p in parts {
            eval.add_assign_ext(&mut sum, &p)?;
        }
        let mut z = eval.rescale(&eval.mod_down_ext(sum)?)?;
        for step in self.plan.collapse_steps() {
            let r = eval.rotate(&z, step as i64)?;
            eval.add_assign(&mut z, &r)?;
        }
        Ok(eval.add_plain(&z, &self.bias)?)
    }
}

/// The operations of `plan` applied at `level` (what [`EncodedDense::apply`] does): the products
/// stage at `level` (hoisted baby steps, giant steps, products over `Q·P`, one ModDown and
/// rescale) and the rotate-and-add stage one level down (full rotations, the bias).
pub(crate) fn planned_stages(plan: &DensePlan, layer: &str, level: usize) -> Vec<Stage> {
    let babies = plan.baby_steps().iter().filter(|&&b| b != 0).count() as u64;
    let groups = plan.groups();
    let giants = groups.iter().filter(|(g, _)| *g != 0).count() as u64;
    let terms = plan.shifts.len() as u64;
    let steps = plan.collapse_steps().len() as u64;
    let products = OpCounts {
        rotate: babies + giants,
        key_switch: babies + giants,
        decompose: u64::from(babies > 0) + giants,
        mod_down: giants + 2,
        mul_plain: terms,
        // products accumulated, giant sums added
        add: (terms - groups.len() as u64) + (groups.len() as u64 - 1),
        rescale: 1,
        ..OpCounts::default()
    };
    let collapse = OpCounts {
        rotate: steps,
        key_switch: steps,
        decompose: steps,
        mod_down: 2 * steps,
        add: steps + 1, // rotate-and-add steps, the bias
        ..OpCounts::default()
    };
    vec![
        Stage::new(layer, level, products, terms),
        Stage::new(format!("{layer} rotate-and-add"), level - 1, collapse, 0),
    ]
}
