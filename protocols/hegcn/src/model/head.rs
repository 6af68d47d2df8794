//! The head of a compiled model: average pooling (AMA: node sum by ciphertext additions),
//! the dense layer with the pooling factor and frame mask folded into its diagonals, the
//! log-step rotate-and-sum inside each class block, the bias at the logit slots, and the 0/1
//! logit mask that zeroes every other slot before the logits are returned.

use ckks::{Ciphertext, Evaluator};
use rayon::prelude::*;
use stgcn::FoldedModel;

use super::maps::compile_pointwise;
use super::replicas::Replicas;
use super::{EncryptedLogits, HeStgcn, PackedTensor};
use crate::error::{HeGcnError, Result};
use crate::layout::{Layout, Packing};
use crate::linear::LinearMap;

/// The compiled head.
#[derive(Debug)]
pub(super) struct HeadProgram {
    /// Sum the node ciphertext groups before the dense layer (AMA).
    pub(super) node_sum: bool,
    pub(super) fc: LinearMap,
    /// Rotation steps of the rotate-and-sum after the dense layer.
    pub(super) sum_steps: Vec<usize>,
    /// Per logit ciphertext: the dense bias at the logit slots.
    pub(super) bias: Vec<Vec<f64>>,
    /// `(ciphertext, slot)` of every logit, sample-major.
    pub(super) positions: Vec<(usize, usize)>,
}

impl HeStgcn {
    /// The head on the output layout `lin` of the last block (or the input).
    pub(super) fn compile_head(
        model: &FoldedModel,
        lin: &Layout,
        reps: Replicas,
    ) -> Result<HeadProgram> {
        let (nq, c) = model.fc_weight.dim();
        if c != lin.channels {
            return Err(HeGcnError::Shape {
                what: "dense layer input channels",
                expected: lin.channels,
                found: c,
            });
        }
        let norm = 1.0 / (lin.frames * lin.nodes * lin.persons) as f64;
        let mask: Vec<f64> = lin.valid_mask().iter().map(|m| m * norm).collect();
        let (fc, sum_span, fc_in, node_sum) = match lin.packing {
            Packing::Ama => {
                let summed = Layout {
                    nodes: 1,
                    ..lin.clone()
                };
                let classes = summed.with_channels(nq);
                let fc = reps.map(
                    compile_pointwise(&model.fc_weight, &[1.0], &summed, &classes, mask),
                    lin.block,
                );
                (fc, lin.block, classes, true)
            }
            Packing::ChannelMajor => {
                let classes = lin.with_channels(nq);
                let ones = vec![1.0; lin.nodes];
                let fc = compile_pointwise(&model.fc_weight, &ones, lin, &classes, mask);
                let span = (lin.block * lin.nodes.next_power_of_two()).min(lin.slots);
                (fc, span, classes, false)
            }
        };
        let sum_steps: Vec<usize> = (0..sum_span.trailing_zeros())
            .map(|i| 1usize << i)
            .collect();
        let fc_ref = &fc_in;
        let positions: Vec<(usize, usize)> = (0..reps.clips)
            .flat_map(|r| {
                (0..nq).map(move |q| {
                    let fc_in = fc_ref;
                    let (ct, blk) = fc_in.position(q, 0);
                    (ct, (blk + r * reps.stride_blocks) * fc_in.block)
                })
            })
            .collect();
        let mut bias = vec![vec![0.0; lin.slots]; fc_in.num_cts()];
        for (i, &(ct, slot)) in positions.iter().enumerate() {
            bias[ct][slot] = model.fc_bias[i % nq];
        }
        Ok(HeadProgram {
            node_sum,
            fc,
            sum_steps,
            bias,
            positions,
        })
    }

    /// Average pooling, the dense head (one level) and the logit mask (one level: a 0/1
    /// plaintext product and a rescale): the returned ciphertexts hold the logits at `positions` and zeros
    /// (up to noise) in every other slot.
    pub fn head(&self, eval: &Evaluator, x: &PackedTensor) -> Result<EncryptedLogits> {
        let mut out = self.head_unmasked(eval, x)?;
        self.mask_logits(eval, &mut out)?;
        Ok(EncryptedLogits {
            cts: out,
            positions: self.head.positions.clone(),
        })
    }

    /// Multiplies each logit ciphertext by the 0/1 mask of its logit slots, encoded at scale
    /// `q_ℓ` (the prime the rescale removes, so the scale comes back exactly), and rescales.
    /// Without it the log-step rotate-and-sum leaves partial sums of the dense layer (weights
    /// times activations) in every other slot of a class block, which the client would decrypt.
    pub(crate) fn mask_logits(&self, eval: &Evaluator, cts: &mut [Ciphertext]) -> Result<()> {
        let positions = &self.head.positions;
        cts.par_iter_mut()
            .enumerate()
            .try_for_each(|(i, ct)| -> Result<()> {
                let mut mask = vec![0.0; self.params.slots()];
                for &(_, slot) in positions.iter().filter(|p| p.0 == i) {
                    mask[slot] = 1.0;
                }
                let level = ct.level();
                let q = self.params.q_primes()[level] as f64;
                let pt = self.encoder.encode(&mask, level, q)?;
                eval.mul_plain_assign(ct, &pt)?;
                eval.rescale_assign(ct)?;
                Ok(())
            })
    }

    /// The head without the logit mask: partial sums of the dense layer in every slot of a
    /// class block (what the returned ciphertexts held before the mask; tests compare).
    pub(crate) fn head_unmasked(
        &self,
        eval: &Evaluator,
        x: &PackedTensor,
    ) -> Result<Vec<Ciphertext>> {
        let expected = self
            .blocks
            .last()
            .map_or(&self.input_layout, |b| &b.out_layout);
        Self::check_layout(x, expected, "head input")?;
        let h = &self.head;
        let fc_in: Vec<Ciphertext> = if h.node_sum {
            let per = x.layout.cts_per_node();
            (0..per)
                .into_par_iter()
                .map(|j| -> Result<Ciphertext> {
                    let mut acc = x.cts[j].clone();
                    for v in 1..x.layout.nodes {
                        eval.add_assign(&mut acc, &x.cts[v * per + j])?;
                    }
                    Ok(acc)
                })
                .collect::<Result<_>>()?
        } else {
            x.cts.clone()
        };
        let mut out = self.apply_map(eval, &h.fc, &fc_in, 1.0)?;
        out.par_iter_mut().try_for_each(|ct| -> Result<()> {
            for &s in &h.sum_steps {
                let r = eval.rotate(ct, s as i64)?;
                eval.add_assign(ct, &r)?;
            }
            Ok(())
        })?;
        self.add_bias(eval, &mut out, &h.bias)?;
        Ok(out)
    }
}
