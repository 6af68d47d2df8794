//! Baby-step/giant-step evaluation of a linear map: isomorphic groups of outputs (AMA
//! temporal convolution: nodes sharing the kernel) are evaluated in chunks whose baby-step
//! rotations fit the lockstep budget, each chunk in lockstep (`lockstep`) or, with fewer
//! members than threads, output by output. Baby steps, inner sums and giant steps are in the
//! map's representation ([`Lane`]); each output is divided by `P` once at the end when that is
//! the lazy one.

use ckks::{Ciphertext, Encoder, Evaluator};
use rayon::prelude::*;

use super::cache::PlaintextCache;
use super::groups::{isomorphic_classes, Group};
use super::lane::Lane;
use super::{finish, Encode, Finish, LinearMap, Term};
use crate::error::Result;

/// The baby steps of one input of a chunk: the input itself when baby step 0 is planned, and
/// its rotations by the non-zero baby steps.
struct Baby<L> {
    input: usize,
    unrotated: Option<L>,
    rotated: Vec<L>,
}

/// The baby steps of the inputs of one chunk, sorted by input.
type Babies<L> = Vec<Baby<L>>;

impl LinearMap {
    /// `out_q = Σ_g rot(Σ_{j,b} rot(in_j, b) ⊙ rot(P_{q,j,g+b}, −g), g)`, rescaled unless open.
    pub(super) fn apply_bsgs<L: Lane>(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        store: &PlaintextCache,
        inputs: &[Ciphertext],
        encode: &Encode<'_>,
        out: Finish,
    ) -> Result<Vec<Ciphertext>> {
        let level = inputs[0].level();
        let mut by_q: Vec<Vec<&Term>> = vec![Vec::new(); self.n_out];
        for t in &self.terms {
            by_q[t.q as usize].push(t);
        }
        // Groups of outputs that read only their own inputs (AMA temporal conv: one
        // node) and have the same terms up to renumbering (every node: the temporal
        // kernel is shared) are evaluated in lockstep, as many at once as their
        // baby-step rotations fit the lockstep budget (at least one per thread):
        // each diagonal is encoded once per chunk and multiplied into every member,
        // instead of once per member. Rotated copies of all inputs are never held at
        // once, and each is computed once. Operation counts are those of evaluating
        // the groups one by one.
        let comps = self.components();
        let classes = isomorphic_classes(&comps, &by_q);
        let threads = rayon::current_num_threads().max(1);
        let special = eval.params().p_primes().len();
        let ct_bytes = self.baby_bytes(L::EXTENDED, level, special);
        let mut outs: Vec<Option<Ciphertext>> = (0..self.n_out).map(|_| None).collect();
        for class in classes {
            let (ins0, _) = &comps[class[0]];
            let per_member: usize = ins0
                .iter()
                .map(|&j| self.in_steps[j].iter().filter(|&&s| s != 0).count())
                .sum::<usize>()
                * ct_bytes;
            let chunk = (store.lockstep_budget() / per_member.max(1)).max(threads);
            for members in class.chunks(chunk) {
                let groups: Vec<&Group> = members.iter().map(|&m| &comps[m]).collect();
                let chunk = Chunk {
                    inputs,
                    groups: &groups,
                    by_q: &by_q,
                    encode,
                };
                self.bsgs_chunk::<L>(eval, &chunk, threads, &mut outs)?;
            }
        }
        outs.into_par_iter()
            .map(|acc| finish(eval, encoder, acc, &inputs[0], out))
            .collect()
    }

    /// Evaluates the outputs of one chunk of isomorphic groups into `outs` (not rescaled).
    fn bsgs_chunk<L: Lane>(
        &self,
        eval: &Evaluator,
        chunk: &Chunk<'_>,
        threads: usize,
        outs: &mut [Option<Ciphertext>],
    ) -> Result<()> {
        let Chunk { inputs, groups, .. } = *chunk;
        let babies: Babies<L> = self.chunk_babies(eval, inputs, groups)?;
        let baby_of = |j: usize, b: usize| -> &L {
            let k = babies
                .binary_search_by_key(&j, |x| x.input)
                .expect("input of this chunk");
            if b == 0 {
                babies[k].unrotated.as_ref().expect("baby step 0 planned")
            } else {
                let pos = self.in_steps[j]
                    .iter()
                    .filter(|&&s| s != 0)
                    .position(|&s| s == b)
                    .expect("baby step planned");
                &babies[k].rotated[pos]
            }
        };
        if groups.len() < threads {
            // Fewer members than threads: spread over the outputs instead, each
            // group's outputs evaluated on their own (a lockstep of one).
            return self.bsgs_spread(eval, chunk, &baby_of, outs);
        }
        let (ins0, qs0) = groups[0];
        for (r, &q0) in qs0.iter().enumerate() {
            // Member m's output of rank r reads its inputs of the same ranks.
            let ins: Vec<&[usize]> = groups.iter().map(|(ins, _)| &ins[..]).collect();
            let res = self.bsgs_outputs_lockstep(
                eval,
                &chunk.by_q[q0],
                ins0,
                &ins,
                &baby_of,
                chunk.encode,
                self.slots / self.block,
            )?;
            for ((_, qs), c) in groups.iter().zip(res) {
                outs[qs[r]] = Some(c);
            }
        }
        Ok(())
    }

    /// The hoisted baby-step rotations of every input of the chunk's groups.
    fn chunk_babies<L: Lane>(
        &self,
        eval: &Evaluator,
        inputs: &[Ciphertext],
        groups: &[&Group],
    ) -> Result<Babies<L>> {
        let mut babies: Babies<L> = groups
            .iter()
            .flat_map(|(ins, _)| ins.iter().copied())
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(|j| {
                let nonzero: Vec<i64> = self.in_steps[j]
                    .iter()
                    .filter(|&&s| s != 0)
                    .map(|&s| s as i64)
                    .collect();
                let unrotated = if self.in_steps[j].contains(&0) {
                    Some(L::identity(eval, &inputs[j])?)
                } else {
                    None
                };
                Ok(Baby {
                    input: j,
                    unrotated,
                    rotated: L::rotations(eval, &inputs[j], &nonzero)?,
                })
            })
            .collect::<Result<_>>()?;
        babies.sort_by_key(|x| x.input);
        Ok(babies)
    }

    /// Every output of the chunk evaluated on its own, in parallel over groups and outputs.
    fn bsgs_spread<'a, L: Lane + 'a>(
        &self,
        eval: &Evaluator,
        chunk: &Chunk<'_>,
        baby_of: &(dyn Fn(usize, usize) -> &'a L + Sync),
        outs: &mut [Option<Ciphertext>],
    ) -> Result<()> {
        let nb = self.slots / self.block;
        let done = chunk
            .groups
            .par_iter()
            .map(|(ins, qs)| -> Result<Vec<(usize, Ciphertext)>> {
                qs.par_iter()
                    .map(|&q| {
                        let mut c = self.bsgs_outputs_lockstep(
                            eval,
                            &chunk.by_q[q],
                            ins,
                            &[&ins[..]],
                            baby_of,
                            chunk.encode,
                            nb,
                        )?;
                        Ok((q, c.remove(0)))
                    })
                    .collect()
            })
            .collect::<Result<Vec<_>>>()?;
        for (q, c) in done.into_iter().flatten() {
            outs[q] = Some(c);
        }
        Ok(())
    }
}

/// What every output of one chunk reads: the map's inputs, the chunk's groups, the terms of
/// every output and the diagonal encoder.
#[derive(Clone, Copy)]
struct Chunk<'a> {
    inputs: &'a [Ciphertext],
    groups: &'a [&'a Group],
    by_q: &'a [Vec<&'a Term>],
    encode: &'a Encode<'a>,
}
