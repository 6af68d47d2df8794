//! Lockstep BSGS evaluation of one output rank of several isomorphic groups: each weight
//! diagonal is encoded once (the next one while the current one is multiplied) and multiplied
//! into every member's baby-step rotation, then the per-giant-step partial sums are rotated
//! and accumulated, in the map's representation ([`Lane`]), and each output finished.

use std::collections::BTreeMap;

use ckks::{Ciphertext, Evaluator};
use rayon::prelude::*;

use super::lane::{accumulate, mul_plain_accumulate, Lane};
use super::{split, Encode, LinearMap, Term};
use crate::error::{HeGcnError, Result};

/// One diagonal of a lockstep output: `(giant step, input rank, baby step)` and its values.
type RankDiagonal = ((usize, usize, usize), Vec<f64>);

/// Partial sums of one member: the current giant step's inner sum and the output so far.
struct Acc<L> {
    inner: Option<L>,
    out: Option<L>,
}

impl LinearMap {
    /// The outputs of one rank of several isomorphic groups, in lockstep: the diagonals come
    /// from `terms` (the terms of the first group's output, whose inputs are `ins0`); member
    /// `m` multiplies them into its own input of the same rank (`members[m]`). Each diagonal
    /// is encoded once, the next one while the current one is multiplied into every member.
    /// Per member: `Σ_g rot(Σ_{j,b} baby(j, b) ⊙ P_{q,j,g+b}, g)`, not yet rescaled; with one
    /// member, one group's output evaluated alone. Each output is finished ([`Lane::finish`]:
    /// divided by `P` in the lazy representation), not yet rescaled.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn bsgs_outputs_lockstep<'a, L: Lane + 'a>(
        &self,
        eval: &Evaluator,
        terms: &[&Term],
        ins0: &[usize],
        members: &[&[usize]],
        baby_of: &(dyn Fn(usize, usize) -> &'a L + Sync),
        encode: &Encode<'_>,
        nb: usize,
    ) -> Result<Vec<Ciphertext>> {
        let diags = self.rank_diagonals(terms, ins0, nb);
        let mut acc: Vec<Acc<L>> = members
            .iter()
            .map(|_| Acc {
                inner: None,
                out: None,
            })
            .collect();
        let mut next = diags.first().map(|(_, d)| encode(d));
        for (i, &((g, rank, b), _)) in diags.iter().enumerate() {
            if i > 0 && diags[i - 1].0 .0 != g {
                flush(eval, diags[i - 1].0 .0, &mut acc)?;
            }
            let pt = next.take().expect("encoded one step ahead")?;
            let (ahead, done) = rayon::join(
                || diags.get(i + 1).map(|(_, d)| encode(d)),
                || {
                    acc.par_iter_mut().zip(members.par_iter()).try_for_each(
                        |(a, ins)| -> Result<()> {
                            mul_plain_accumulate(eval, &mut a.inner, baby_of(ins[rank], b), &pt)
                        },
                    )
                },
            );
            done?;
            next = ahead;
        }
        if let Some(&((g, _, _), _)) = diags.last() {
            flush(eval, g, &mut acc)?;
        }
        acc.into_par_iter()
            .map(|a| {
                let out = a.out.ok_or(HeGcnError::Shape {
                    what: "terms of a BSGS output (at least one)",
                    expected: 1,
                    found: 0,
                })?;
                L::finish(eval, out)
            })
            .collect()
    }

    /// The diagonals of one output of the first group, keyed by `(giant step, rank of the
    /// input within the group, baby step)` and sorted by that key (giant steps together).
    fn rank_diagonals(&self, terms: &[&Term], ins0: &[usize], nb: usize) -> Vec<RankDiagonal> {
        let mut diags: BTreeMap<(usize, usize, usize), Vec<f64>> = BTreeMap::new();
        for t in terms {
            let (g, b) = split(self.slots, self.block, nb, self.n1(), t);
            let rank = ins0
                .binary_search(&(t.j as usize))
                .expect("input of the first group");
            let d = diags
                .entry((g, rank, b))
                .or_insert_with(|| vec![0.0; self.slots]);
            self.diagonal(d, t, g);
        }
        diags.into_iter().collect()
    }
}

/// Ends giant step `g` for every member: rotates its inner sum by `g` into its output.
fn flush<L: Lane>(eval: &Evaluator, g: usize, acc: &mut [Acc<L>]) -> Result<()> {
    acc.par_iter_mut().try_for_each(|a| -> Result<()> {
        if let Some(ct) = a.inner.take() {
            let r = if g == 0 {
                ct
            } else {
                L::rotate(eval, &ct, g as i64)?
            };
            accumulate(eval, &mut a.out, r)?;
        }
        Ok(())
    })
}
