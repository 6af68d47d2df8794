//! What a compiled linear map costs and needs, from its plan alone: rotations, plaintext
//! products, every evaluator operation of one evaluation (mirroring `apply` call by call), the
//! products taken over `Q·P` and the weight plaintexts encoded (for pricing), and the rotation
//! steps its Galois keys must cover.

use std::collections::BTreeSet;

use ckks::OpCounts;

use super::groups::isomorphic_classes;
use super::{split, LinearMap, Strategy, Term};

impl LinearMap {
    /// Rotations one evaluation performs.
    pub(crate) fn rotations(&self) -> usize {
        let nz = |s: &Vec<Vec<usize>>| -> usize {
            s.iter()
                .map(|x| x.iter().filter(|&&v| v != 0).count())
                .sum()
        };
        nz(&self.in_steps) + nz(&self.giants)
    }

    /// Plaintext × ciphertext products one evaluation performs.
    pub(crate) fn products(&self) -> usize {
        let mut keys = BTreeSet::new();
        for t in &self.terms {
            let (g, b) = split(
                self.slots,
                self.block,
                self.slots / self.block,
                self.n1(),
                t,
            );
            keys.insert((t.q, t.j, g, b));
        }
        keys.len()
    }

    /// Every evaluator operation one evaluation performs, mirroring [`Self::apply`] call by
    /// call: hoisted rotations (one decomposition per input with a non-zero step), one
    /// plaintext product per distinct diagonal (and one for an output without terms), the
    /// additions that sum them, giant-step rotations, one rescale per output (none when open);
    /// ModDowns two per rotation, or, lazy, one per giant step and two per output with terms.
    pub(crate) fn planned_ops(&self) -> OpCounts {
        let mut c = OpCounts::default();
        let (per_rotation, per_giant) = if self.lazy { (0, 1) } else { (2, 2) };
        for steps in &self.in_steps {
            let k = steps.iter().filter(|&&v| v != 0).count() as u64;
            c.rotate += k;
            c.key_switch += k;
            c.decompose += u64::from(k > 0);
            c.mod_down += per_rotation * k;
        }
        for d in &self.diagonal_sets() {
            if d.is_empty() {
                c.mul_plain += 1;
            } else {
                c.mul_plain += d.len() as u64;
                c.add += d.len() as u64 - 1;
                c.mod_down += if self.lazy { 2 } else { 0 };
            }
            if let Strategy::Bsgs { .. } = self.strategy {
                let giants: BTreeSet<usize> = d.iter().map(|k| k.0).filter(|&g| g != 0).collect();
                let k = giants.len() as u64;
                c.rotate += k;
                c.key_switch += k;
                c.decompose += k;
                c.mod_down += per_giant * k;
            }
        }
        if !self.is_open() {
            c.rescale += self.n_out as u64;
        }
        c
    }

    /// Every rotation step used (for Galois key generation).
    pub(crate) fn steps(&self, out: &mut BTreeSet<usize>) {
        for s in self.in_steps.iter().chain(&self.giants) {
            out.extend(s.iter().copied().filter(|&v| v != 0));
        }
    }
}

impl LinearMap {
    /// Distinct weight diagonals of each output, keyed `(giant, input, baby)` (one plaintext
    /// product each; a hoisted map has no giant step).
    fn diagonal_sets(&self) -> Vec<BTreeSet<(usize, u32, usize)>> {
        let nb = self.slots / self.block;
        let mut diags: Vec<BTreeSet<(usize, u32, usize)>> = vec![BTreeSet::new(); self.n_out];
        for t in &self.terms {
            let (g, b) = split(self.slots, self.block, nb, self.n1(), t);
            let key = match self.strategy {
                Strategy::Hoisted => (0, t.j, (g + b) % self.slots),
                Strategy::Bsgs { .. } => (g, t.j, b),
            };
            diags[t.q as usize].insert(key);
        }
        diags
    }

    /// Distinct weight diagonals of each output (one plaintext product each).
    fn diagonals_per_output(&self) -> Vec<usize> {
        self.diagonal_sets().iter().map(BTreeSet::len).collect()
    }

    /// Plaintext products taken over `Q·P` (lazy ModDown): every product of an output with
    /// terms when the map is lazy, none otherwise.
    pub(crate) fn planned_over_qp(&self) -> u64 {
        if !self.lazy {
            return 0;
        }
        self.diagonals_per_output().iter().sum::<usize>() as u64
    }

    /// Weight plaintexts one evaluation encodes with no plaintext cache, mirroring `apply`:
    /// one per product (and one zero plaintext per output without terms), except that BSGS
    /// evaluates isomorphic groups in chunks whose baby steps fit `lockstep_budget` bytes (at
    /// least `threads` groups), and a chunk of at least `threads` groups encodes each diagonal
    /// once for all its members. `level` is the input level and `special` the special primes.
    pub(crate) fn planned_encodes(
        &self,
        level: usize,
        special: usize,
        lockstep_budget: usize,
        threads: usize,
    ) -> u64 {
        let baby = self.baby_bytes(self.lazy, level, special);
        self.encode_shape().encodes(baby, lockstep_budget, threads)
    }

    /// Bytes of one baby-step rotation at input `level` (over `Q·P` when `lazy`).
    pub(super) fn baby_bytes(&self, lazy: bool, level: usize, special: usize) -> usize {
        let k = if lazy { special } else { 0 };
        2 * (level + 1 + k) * 2 * self.slots * 8
    }

    /// What the planned encodings depend on besides the size of a baby step: the outputs
    /// without terms, and per isomorphic class its members, the diagonals of one member and
    /// its baby steps (the hoisted strategy encodes every diagonal, with no lockstep).
    pub(super) fn encode_shape(&self) -> EncodeShape {
        let per_q = self.diagonals_per_output();
        let empty = per_q.iter().filter(|&&d| d == 0).count() as u64;
        if self.strategy == Strategy::Hoisted {
            let all = per_q.iter().sum::<usize>() as u64 + empty;
            return EncodeShape {
                fixed: all,
                classes: Vec::new(),
            };
        }
        let mut by_q: Vec<Vec<&Term>> = vec![Vec::new(); self.n_out];
        for t in &self.terms {
            by_q[t.q as usize].push(t);
        }
        let comps = self.components();
        let classes = isomorphic_classes(&comps, &by_q)
            .into_iter()
            .map(|class| {
                let (ins0, qs0) = &comps[class[0]];
                let member: u64 = qs0.iter().map(|&q| per_q[q] as u64).sum();
                let babies: usize = ins0
                    .iter()
                    .map(|&j| self.in_steps[j].iter().filter(|&&s| s != 0).count())
                    .sum();
                (class.len(), member, babies)
            })
            .collect();
        EncodeShape {
            fixed: empty,
            classes,
        }
    }
}

/// The inputs of [`LinearMap::planned_encodes`] that do not depend on the representation
/// ([`LinearMap::encode_shape`]), so that both representations are priced from one pass over
/// the terms.
pub(super) struct EncodeShape {
    /// Encodings outside lockstep chunks.
    fixed: u64,
    /// Per isomorphic class: members, diagonals of one member, baby steps of one member.
    classes: Vec<(usize, u64, usize)>,
}

impl EncodeShape {
    /// The encodings when a baby step takes `baby_bytes`: a class is evaluated in chunks of
    /// members whose baby steps fit `lockstep_budget` (at least `threads`), and a chunk of at
    /// least `threads` members encodes each diagonal once for all of them.
    pub(super) fn encodes(&self, baby_bytes: usize, lockstep_budget: usize, threads: usize) -> u64 {
        let threads = threads.max(1);
        let mut encodes = self.fixed;
        for &(members, member, babies) in &self.classes {
            let per_member = babies * baby_bytes;
            let chunk = (lockstep_budget / per_member.max(1)).max(threads);
            let (full, rest) = (members / chunk, members % chunk);
            let last = match rest {
                0 => 0,
                r if r < threads => r as u64,
                _ => 1,
            };
            // A full chunk has at least `threads` members: one encoding per diagonal.
            encodes += (full as u64 + last) * member;
        }
        encodes
    }
}
