//! One linear layer of the matrix layout as a sum of rotated inputs times in-block diagonals,
//! evaluated baby-step/giant-step with double hoisting (`ckks::lazy`), as LoLa's dense layers
//! are, but on a batch: every plaintext is one block's pattern tiled over the images, so one
//! ciphertext operation serves every image of the batch.
//!
//! A map is given per output ciphertext as *diagonals*: output slot `s` of a block receives
//! `Σ_{(j, d)} P_{j,d}[s] · x_j[s + d]` (`P` an in-block pattern, `x_j` input ciphertext `j`),
//! then optional rotate-and-add steps and a bias. With `n1` baby steps, `d = g + b` (`b = d mod
//! n1`) and `Σ_d P_d ⊙ rot(x, d) = Σ_g rot(Σ_b rot(P_{g+b}, −g) ⊙ rot(x, b), g)`: the baby
//! rotations of each input are hoisted (one decomposition) and kept over `Q·P`, the products
//! are taken over `Q·P`, each giant step rotates a partial sum over `Q·P`, one ModDown and one
//! rescale per output. Without `n1` every shift is a baby step (the convolution: one input,
//! few shifts, several outputs sharing them).
//!
//! **Cost** per map: `Σ_j (babies_j − [0 ∈ babies_j])` hoisted rotations (one decomposition per
//! input), per output one giant rotation per non-zero giant step, one plaintext product per
//! non-zero diagonal, two ModDowns, one rescale, one full rotation per rotate-and-add step;
//! one level.

use crate::error::{HeCnnError, Result};
use crate::layout::Stage;
use ckks::{Ciphertext, CkksParams, Encoder, Evaluator, ExtCiphertext, OpCounts, Plaintext};
use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// One output ciphertext's map: in-block diagonals by `(input, shift)`, the rotate-and-add
/// steps after the products and the in-block bias.
#[derive(Debug, Clone, Default)]
pub(crate) struct Diagonals {
    pub terms: BTreeMap<(usize, i64), Vec<f64>>,
    pub collapse: Vec<i64>,
    pub bias: Vec<f64>,
}

/// One output's terms grouped by giant step: `(giant, [(input, baby, pattern rotated by
/// −giant)])`, ascending.
type Groups = Vec<(i64, Vec<(usize, i64, Vec<f64>)>)>;

/// The plan of one linear layer (patterns in the clear: a server-side object).
#[derive(Debug, Clone)]
pub(crate) struct LinearPlan {
    pub layer: &'static str,
    slots: usize,
    inputs: usize,
    outputs: Vec<(Groups, Vec<i64>, Vec<f64>)>,
}

/// `v` rotated left by `r` within its period.
fn rotate_block(v: &[f64], r: i64) -> Vec<f64> {
    let n = v.len() as i64;
    (0..n).map(|t| v[(t + r).rem_euclid(n) as usize]).collect()
}

/// `pattern` tiled over `slots`.
fn tile(pattern: &[f64], slots: usize) -> Vec<f64> {
    (0..slots).map(|s| pattern[s % pattern.len()]).collect()
}

impl LinearPlan {
    /// The plan of `outputs` on `inputs` ciphertexts of `slots` slots in blocks of `block`,
    /// with `n1` baby steps per giant step (`None`: no giant step). Diagonals that are zero
    /// everywhere are dropped.
    ///
    /// # Errors
    /// [`HeCnnError::Packing`] for an output without a non-zero diagonal, an input index out of
    /// range, or a pattern whose length is not `block`.
    pub fn new(
        layer: &'static str,
        (block, slots, inputs): (usize, usize, usize),
        outputs: Vec<Diagonals>,
        n1: Option<usize>,
    ) -> Result<Self> {
        let bad = |what, value, limit| HeCnnError::Packing {
            layer: "matrix",
            what,
            value,
            limit,
        };
        let mut planned = Vec::with_capacity(outputs.len());
        for o in outputs {
            let mut groups: BTreeMap<i64, Vec<(usize, i64, Vec<f64>)>> = BTreeMap::new();
            for ((j, d), p) in o.terms {
                if j >= inputs || p.len() != block {
                    return Err(bad("diagonal input or length", j.max(p.len()), inputs));
                }
                if p.iter().all(|&v| v == 0.0) {
                    continue;
                }
                let (g, b) = match n1 {
                    Some(n1) => {
                        let b = d.rem_euclid(n1 as i64);
                        (d - b, b)
                    }
                    None => (0, d),
                };
                groups
                    .entry(g)
                    .or_default()
                    .push((j, b, rotate_block(&p, -g)));
            }
            if groups.is_empty() || o.bias.len() != block {
                return Err(bad("non-zero diagonals of an output", 0, 1));
            }
            planned.push((groups.into_iter().collect(), o.collapse, o.bias));
        }
        Ok(Self {
            layer,
            slots,
            inputs,
            outputs: planned,
        })
    }

    /// A step as the evaluator takes it (in `0..slots`).
    fn step(&self, r: i64) -> i64 {
        r.rem_euclid(self.slots as i64)
    }

    /// The baby steps of input `j`, normalized, ascending, each once (0 included if used).
    fn babies(&self, j: usize) -> Vec<i64> {
        let set: BTreeSet<i64> = self
            .outputs
            .iter()
            .flat_map(|(g, _, _)| g.iter().flat_map(|(_, t)| t.iter()))
            .filter(|(i, _, _)| *i == j)
            .map(|(_, b, _)| self.step(*b))
            .collect();
        set.into_iter().collect()
    }

    /// Every rotation step the layer needs a Galois key for, normalized.
    pub fn rotation_steps(&self) -> BTreeSet<i64> {
        let mut s: BTreeSet<i64> = (0..self.inputs).flat_map(|j| self.babies(j)).collect();
        for (groups, collapse, _) in &self.outputs {
            s.extend(groups.iter().map(|(g, _)| self.step(*g)));
            s.extend(collapse.iter().map(|&c| self.step(c)));
        }
        s.remove(&0);
        s
    }

    /// Non-zero diagonals (plaintext products) of the layer.
    pub fn products(&self) -> usize {
        self.outputs
            .iter()
            .flat_map(|(g, _, _)| g.iter().map(|(_, t)| t.len()))
            .sum()
    }

    /// The layer's operations at `level`: the products stage and, if there are rotate-and-add
    /// steps, a stage one level down with them and the bias (else the bias is in the first).
    pub fn stages(&self, level: usize) -> Vec<Stage> {
        let mut prod = OpCounts::default();
        for j in 0..self.inputs {
            let n = self.babies(j).iter().filter(|&&b| b != 0).count() as u64;
            prod.rotate += n;
            prod.key_switch += n;
            prod.decompose += u64::from(n > 0);
        }
        let mut tail = OpCounts::default();
        for (groups, collapse, _) in &self.outputs {
            let terms: u64 = groups.iter().map(|(_, t)| t.len() as u64).sum();
            let giants = groups.iter().filter(|(g, _)| self.step(*g) != 0).count() as u64;
            let g = groups.len() as u64;
            prod.mul_plain += terms;
            prod.add += (terms - g) + (g - 1);
            prod.rotate += giants;
            prod.key_switch += giants;
            prod.decompose += giants;
            prod.mod_down += giants + 2;
            prod.rescale += 1;
            let c = collapse.len() as u64;
            tail.rotate += c;
            tail.key_switch += c;
            tail.decompose += c;
            tail.mod_down += 2 * c;
            tail.add += c + 1;
        }
        let over_qp = prod.mul_plain;
        if self.outputs.iter().all(|(_, c, _)| c.is_empty()) {
            prod.add += tail.add;
            return vec![Stage::new(self.layer, level, prod, over_qp)];
        }
        vec![
            Stage::new(self.layer, level, prod, over_qp),
            Stage::new(format!("{} rotate-and-add", self.layer), level - 1, tail, 0),
        ]
    }

    /// The layer on plaintext slot vectors, step for step as [`EncodedLinear::apply`] (the
    /// algebra's twin: tests check the geometry and the splits against the model with it).
    #[cfg(test)]
    pub fn apply_plain(&self, xs: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let rot = |v: &[f64], r: i64| rotate_block(v, r);
        let add = |a: &mut Vec<f64>, b: &[f64]| a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
        self.outputs
            .iter()
            .map(|(groups, collapse, bias)| {
                let mut z = vec![0.0; self.slots];
                for (g, terms) in groups {
                    let mut acc = vec![0.0; self.slots];
                    for (j, b, p) in terms {
                        let (x, p) = (rot(&xs[*j], *b), tile(p, self.slots));
                        let prod: Vec<f64> = x.iter().zip(&p).map(|(x, p)| x * p).collect();
                        add(&mut acc, &prod);
                    }
                    add(&mut z, &rot(&acc, *g));
                }
                for &c in collapse {
                    let r = rot(&z, c);
                    add(&mut z, &r);
                }
                add(&mut z, &tile(bias, self.slots));
                z
            })
            .collect()
    }
}

/// A [`LinearPlan`] encoded for one level and input scale (the server's weight cache).
#[derive(Debug, Clone)]
pub(crate) struct EncodedLinear {
    plan: LinearPlan,
    /// Extended plaintexts per output, per group, per term (as `plan.outputs`).
    pts: Vec<Vec<Vec<Plaintext>>>,
    bias: Vec<Plaintext>,
    level: usize,
    out_scale: f64,
}

impl EncodedLinear {
    /// Encodes `plan` for inputs at `level` with scale `in_scale`; outputs carry `target`.
    ///
    /// # Errors
    /// CKKS encoding errors (level 0, values too large).
    pub fn new(
        plan: LinearPlan,
        params: &CkksParams,
        encoder: &Encoder,
        level: usize,
        in_scale: f64,
        target: f64,
    ) -> Result<Self> {
        let q = params.q_prime(level)? as f64;
        let pt_scale = q * target / in_scale;
        let slots = plan.slots;
        let pts = plan
            .outputs
            .iter()
            .map(|(groups, _, _)| {
                groups
                    .iter()
                    .map(|(_, terms)| {
                        terms
                            .par_iter()
                            .map(|(_, _, p)| {
                                Ok(encoder.encode_ext(&tile(p, slots), level, pt_scale)?)
                            })
                            .collect::<Result<Vec<_>>>()
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let out_scale = in_scale * pt_scale / q;
        let bias = plan
            .outputs
            .iter()
            .map(|(_, _, b)| Ok(encoder.encode(&tile(b, slots), level - 1, out_scale)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            plan,
            pts,
            bias,
            level,
            out_scale,
        })
    }

    /// The scale of the outputs.
    pub fn out_scale(&self) -> f64 {
        self.out_scale
    }

    /// The hoisted baby rotations of input `x` (`lift_ext` for the zero step), by step.
    fn hoist(
        &self,
        eval: &Evaluator,
        j: usize,
        x: &Ciphertext,
    ) -> Result<Vec<(i64, ExtCiphertext)>> {
        let babies = self.plan.babies(j);
        let nonzero: Vec<i64> = babies.iter().copied().filter(|&b| b != 0).collect();
        let mut rotated = eval.rotate_hoisted_ext(x, &nonzero)?.into_iter();
        babies
            .into_iter()
            .map(|b| {
                let e = if b == 0 {
                    eval.lift_ext(x)?
                } else {
                    rotated.next().expect("one rotation per non-zero baby step")
                };
                Ok((b, e))
            })
            .collect()
    }

    /// The layer on `xs` (at the compiled level), one level down.
    ///
    /// # Errors
    /// A wrong input count or level, missing Galois keys, CKKS errors.
    pub fn apply(&self, eval: &Evaluator, xs: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
        if xs.len() != self.plan.inputs {
            return Err(HeCnnError::Shape {
                what: "matrix layer inputs",
                expected: self.plan.inputs,
                found: xs.len(),
            });
        }
        if let Some(x) = xs.iter().find(|x| x.level() != self.level) {
            return Err(HeCnnError::Shape {
                what: "matrix layer input level",
                expected: self.level,
                found: x.level(),
            });
        }
        let ext: Vec<Vec<(i64, ExtCiphertext)>> = xs
            .par_iter()
            .enumerate()
            .map(|(j, x)| self.hoist(eval, j, x))
            .collect::<Result<_>>()?;
        let get = |j: usize, b: i64| {
            let b = self.plan.step(b);
            &ext[j].iter().find(|(s, _)| *s == b).expect("hoisted").1
        };
        self.plan
            .outputs
            .par_iter()
            .zip(&self.pts)
            .zip(&self.bias)
            .map(|(((groups, collapse, _), pts), bias)| {
                let partial: Vec<ExtCiphertext> = groups
                    .par_iter()
                    .zip(pts)
                    .map(|((g, terms), pts)| {
                        let mut acc: Option<ExtCiphertext> = None;
                        for ((j, b, _), pt) in terms.iter().zip(pts) {
                            match acc.as_mut() {
                                None => acc = Some(eval.mul_plain_ext(get(*j, *b), pt)?),
                                Some(a) => eval.mul_plain_add_assign_ext(a, get(*j, *b), pt)?,
                            }
                        }
                        let acc = acc.expect("a group has terms");
                        let g = self.plan.step(*g);
                        Ok(if g == 0 {
                            acc
                        } else {
                            eval.rotate_ext(&acc, g)?
                        })
                    })
                    .collect::<Result<_>>()?;
                let mut parts = partial.into_iter();
                let mut sum = parts.next().expect("an output has a group");
                for p in parts {
                    eval.add_assign_ext(&mut sum, &p)?;
                }
                let mut z = eval.rescale(&eval.mod_down_ext(sum)?)?;
                for &c in collapse {
                    let r = eval.rotate(&z, self.plan.step(c))?;
                    eval.add_assign(&mut z, &r)?;
                }
                Ok(eval.add_plain(&z, bias)?)
            })
            .collect()
    }
}
