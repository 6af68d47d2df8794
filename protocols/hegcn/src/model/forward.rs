//! The server's encrypted forward pass, stage by stage: graph convolution, activation sites,
//! temporal convolution with the residual branch, whole blocks, and the network with
//! per-stage operation counts and wall time ([`StageReport`]); the head is in `head`.

use std::time::Instant;

use ckks::{Ciphertext, Evaluator, OpCounts, Plaintext};
use rayon::prelude::*;

use super::compile::{BlockProgram, ResidualProgram};
use super::counts::{counts_diff, StageReport};
use super::{EncryptedLogits, HeStgcn, PackedTensor};
use crate::error::{HeGcnError, Result};
use crate::layout::Layout;
use crate::linear::{open_scale, LinearMap};

impl HeStgcn {
    /// `v` encoded at the level and scale of `like`.
    fn encode_slots(&self, v: &[f64], like: &Ciphertext) -> Result<Plaintext> {
        Ok(self.encoder.encode(v, like.level(), like.scale())?)
    }

    /// Adds the per-ciphertext bias vectors (all-zero ones cost nothing).
    pub(super) fn add_bias(
        &self,
        eval: &Evaluator,
        cts: &mut [Ciphertext],
        bias: &[Vec<f64>],
    ) -> Result<()> {
        cts.par_iter_mut()
            .zip(bias)
            .try_for_each(|(ct, b)| -> Result<()> {
                if b.iter().any(|&x| x != 0.0) {
                    let pt = self.encode_slots(b, ct)?;
                    *ct = eval.add_plain(ct, &pt)?;
                }
                Ok(())
            })
    }

    /// Evaluates `map` on `inputs`: rescaled to the default scale, or, an open map
    /// ([`crate::plan::open_maps`]), unrescaled with its diagonals at `factor·ρ·√q_ℓ`, `ρ` its
    /// split ([`LinearMap::balance_with`]) and `factor` 1 for a stage's own map (a residual
    /// beside an open temporal map passes the ratio of the temporal input's scale to its own,
    /// so that both land at the same scale).
    pub(super) fn apply_map(
        &self,
        eval: &Evaluator,
        map: &LinearMap,
        inputs: &[Ciphertext],
        factor: f64,
    ) -> Result<Vec<Ciphertext>> {
        let (enc, cache) = (&self.encoder, &self.cache);
        if map.is_open() {
            let level = inputs.first().map_or(0, Ciphertext::level);
            let s = factor * map.open_split() * open_scale(&self.params, level)?;
            map.apply_open(eval, enc, cache, inputs, s)
        } else {
            map.apply(eval, enc, cache, inputs, self.params.default_scale())
        }
    }

    /// Block `i`, or a shape error.
    fn block_ref(&self, i: usize) -> Result<&BlockProgram> {
        self.blocks.get(i).ok_or(HeGcnError::Shape {
            what: "block index (exclusive bound)",
            expected: self.blocks.len(),
            found: i,
        })
    }

    /// Refuses a tensor not packed in `expected`.
    pub(super) fn check_layout(
        x: &PackedTensor,
        expected: &Layout,
        what: &'static str,
    ) -> Result<()> {
        if &x.layout != expected || x.cts.len() != expected.num_cts() {
            return Err(HeGcnError::Shape {
                what,
                expected: expected.num_cts(),
                found: x.cts.len(),
            });
        }
        Ok(())
    }

    /// Stage 1 of block `i`: graph convolution + bias (one level).
    pub fn gcn(&self, eval: &Evaluator, i: usize, x: &PackedTensor) -> Result<PackedTensor> {
        let b = self.block_ref(i)?;
        Self::check_layout(x, &b.in_layout, "graph convolution input")?;
        let mut cts = self.apply_map(eval, &b.gcn, &x.cts, 1.0)?;
        self.add_bias(eval, &mut cts, &b.gcn_bias)?;
        Ok(PackedTensor {
            cts,
            layout: b.mid_layout.clone(),
        })
    }

    /// Activation site `site` (0: after the graph conv, 1: after the residual sum) of block `i`;
    /// a fully pruned site returns its input unchanged.
    pub fn activation(
        &self,
        eval: &Evaluator,
        i: usize,
        site: usize,
        x: &PackedTensor,
    ) -> Result<PackedTensor> {
        let b = self.block_ref(i)?;
        let (act, layout) = match site {
            0 => (&b.act1, &b.mid_layout),
            _ => (&b.act2, &b.out_layout),
        };
        Self::check_layout(x, layout, "activation input")?;
        match act {
            None => Ok(x.clone()),
            Some(a) => Ok(PackedTensor {
                cts: a.apply(eval, &self.encoder, &x.cts)?,
                layout: layout.clone(),
            }),
        }
    }

    /// Temporal convolution of `h` (the activated graph-conv output) plus the residual branch
    /// of the block input `x` (one level).
    pub fn temporal(
        &self,
        eval: &Evaluator,
        i: usize,
        h: &PackedTensor,
        x: &PackedTensor,
    ) -> Result<PackedTensor> {
        let b = self.block_ref(i)?;
        Self::check_layout(h, &b.mid_layout, "temporal convolution input")?;
        Self::check_layout(x, &b.in_layout, "residual input")?;
        let mut r = self.apply_map(eval, &b.tcn, &h.cts, 1.0)?;
        match &b.residual {
            ResidualProgram::None => {}
            ResidualProgram::Map(m) => {
                let level = h.cts[0].level();
                let xd: Vec<Ciphertext> = x
                    .cts
                    .par_iter()
                    .map(|c| eval.drop_to_level(c, level))
                    .collect::<ckks::Result<_>>()?;
                // Open: the residual lands at the temporal map's output scale unrescaled.
                let res = self.apply_map(eval, m, &xd, h.cts[0].scale() / xd[0].scale())?;
                r.par_iter_mut()
                    .zip(&res)
                    .try_for_each(|(ri, si)| -> Result<()> {
                        eval.add_assign(ri, si)?;
                        Ok(())
                    })?;
            }
        }
        self.add_bias(eval, &mut r, &b.tcn_bias)?;
        Ok(PackedTensor {
            cts: r,
            layout: b.out_layout.clone(),
        })
    }
    /// Runs block `i` (graph conv, activation, temporal conv + residual, activation).
    pub fn block(&self, eval: &Evaluator, i: usize, x: &PackedTensor) -> Result<PackedTensor> {
        let g = self.gcn(eval, i, x)?;
        let h = self.activation(eval, i, 0, &g)?;
        let r = self.temporal(eval, i, &h, x)?;
        self.activation(eval, i, 1, &r)
    }

    /// The whole network with per-stage operation counts and wall time.
    pub fn forward(
        &self,
        eval: &Evaluator,
        x: &PackedTensor,
    ) -> Result<(EncryptedLogits, Vec<StageReport>)> {
        let mut reports = Vec::new();
        let mut stage = |name: String, t0: Instant, c0: OpCounts| {
            reports.push(StageReport {
                name,
                counts: counts_diff(&c0, &eval.counters()),
                seconds: t0.elapsed().as_secs_f64(),
            })
        };
        let mut cur = x.clone();
        for i in 0..self.blocks.len() {
            let (t0, c0) = (Instant::now(), eval.counters());
            let g = self.gcn(eval, i, &cur)?;
            stage(format!("block{i}.gcn"), t0, c0);
            let (t0, c0) = (Instant::now(), eval.counters());
            let h = self.activation(eval, i, 0, &g)?;
            stage(format!("block{i}.act1"), t0, c0);
            let (t0, c0) = (Instant::now(), eval.counters());
            let r = self.temporal(eval, i, &h, &cur)?;
            stage(format!("block{i}.tcn"), t0, c0);
            let (t0, c0) = (Instant::now(), eval.counters());
            cur = self.activation(eval, i, 1, &r)?;
            stage(format!("block{i}.act2"), t0, c0);
        }
        let (t0, c0) = (Instant::now(), eval.counters());
        let logits = self.head(eval, &cur)?;
        stage("head".into(), t0, c0);
        Ok((logits, reports))
    }
}
