//! Hoisted evaluation of a linear map: all rotations of an input share one key-switching
//! decomposition, and each output sums the products of the rotated inputs by its diagonals,
//! in the map's representation ([`Lane`]: one ModDown per rotation, or per output).

use std::collections::BTreeMap;
use std::sync::Mutex;

use ckks::{Ciphertext, Encoder, Evaluator};
use rayon::prelude::*;

use super::lane::{accumulate, mul_plain_accumulate, Lane};
use super::{finish, split, Encode, Finish, LinearMap, Term};
use crate::error::Result;

impl LinearMap {
    /// `out_q = Σ_{j,s} rot(in_j, s) ⊙ P_{q,j,s}`, input by input, rescaled unless open.
    pub(super) fn apply_hoisted<L: Lane>(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        inputs: &[Ciphertext],
        encode: &Encode<'_>,
        out: Finish,
    ) -> Result<Vec<Ciphertext>> {
        let acc: Vec<Mutex<Option<L>>> = (0..self.n_out).map(|_| Mutex::new(None)).collect();
        let mut start = 0;
        while start < self.terms.len() {
            let j = self.terms[start].j;
            let end = start + self.terms[start..].partition_point(|t| t.j == j);
            self.hoisted_input(
                eval,
                inputs,
                j as usize,
                &self.terms[start..end],
                encode,
                &acc,
            )?;
            start = end;
        }
        acc.into_par_iter()
            .map(|m| {
                let sum = m.into_inner().expect("no poisoned lock");
                let ct = sum.map(|s| L::finish(eval, s)).transpose()?;
                finish(eval, encoder, ct, &inputs[0], out)
            })
            .collect()
    }

    /// Rotates input `j` over its steps (hoisted) and adds the products of its terms `group`
    /// (sorted by output) into the outputs' accumulators, one output per task.
    fn hoisted_input<L: Lane>(
        &self,
        eval: &Evaluator,
        inputs: &[Ciphertext],
        j: usize,
        group: &[Term],
        encode: &Encode<'_>,
        acc: &[Mutex<Option<L>>],
    ) -> Result<()> {
        let steps = &self.in_steps[j];
        let nonzero: Vec<i64> = steps
            .iter()
            .filter(|&&s| s != 0)
            .map(|&s| s as i64)
            .collect();
        let rotated = L::rotations(eval, &inputs[j], &nonzero)?;
        let unrotated = if steps.contains(&0) {
            Some(L::identity(eval, &inputs[j])?)
        } else {
            None
        };
        let rot_of = |s: usize| -> &L {
            if s == 0 {
                unrotated.as_ref().expect("step 0 planned")
            } else {
                let i = nonzero.binary_search(&(s as i64)).expect("step planned");
                &rotated[i]
            }
        };
        // Group this input's terms by output ciphertext.
        let mut bounds = vec![0];
        for i in 1..group.len() {
            if group[i].q != group[i - 1].q {
                bounds.push(i);
            }
        }
        bounds.push(group.len());
        bounds.par_windows(2).try_for_each(|w| -> Result<()> {
            self.hoisted_output(eval, &group[w[0]..w[1]], &rot_of, encode, acc)
        })
    }

    /// The products of one input's `terms` for one output, summed into its accumulator.
    fn hoisted_output<'a, L: Lane + 'a>(
        &self,
        eval: &Evaluator,
        terms: &[Term],
        rot_of: &(dyn Fn(usize) -> &'a L + Sync),
        encode: &Encode<'_>,
        acc: &[Mutex<Option<L>>],
    ) -> Result<()> {
        let nb = self.slots / self.block;
        let qo = terms[0].q as usize;
        let mut diags: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for t in terms {
            let (g, b) = split(self.slots, self.block, nb, self.n1(), t);
            let d = diags
                .entry((g + b) % self.slots)
                .or_insert_with(|| vec![0.0; self.slots]);
            self.diagonal(d, t, 0);
        }
        let mut part: Option<L> = None;
        for (s, d) in diags {
            let pt = encode(&d)?;
            mul_plain_accumulate(eval, &mut part, rot_of(s), &pt)?;
        }
        if let Some(p) = part {
            let mut slot = acc[qo].lock().expect("no poisoned lock");
            accumulate(eval, &mut slot, p)?;
        }
        Ok(())
    }
}
