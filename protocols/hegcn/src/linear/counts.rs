//! What a compiled linear map costs and needs, from its plan alone: rotations, plaintext
//! products, every evaluator operation of one evaluation (mirroring `apply` call by call) and
//! the rotation steps its Galois keys must cover.

use std::collections::BTreeSet;

use ckks::OpCounts;

use super::{split, LinearMap, Strategy};

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
    /// additions that sum them, giant-step rotations, one rescale per output; ModDowns two per
    /// rotation, or, lazy, one per giant step and two per output with terms.
    pub(crate) fn planned_ops(&self) -> OpCounts {
        let mut c = OpCounts::default();
        let nb = self.slots / self.block;
        let (per_rotation, per_giant) = if self.lazy { (0, 1) } else { (2, 2) };
        for steps in &self.in_steps {
            let k = steps.iter().filter(|&&v| v != 0).count() as u64;
            c.rotate += k;
            c.key_switch += k;
            c.decompose += u64::from(k > 0);
            c.mod_down += per_rotation * k;
        }
        let mut diags: Vec<BTreeSet<(usize, u32, usize)>> = vec![BTreeSet::new(); self.n_out];
        for t in &self.terms {
            let (g, b) = split(self.slots, self.block, nb, self.n1(), t);
            let key = match self.strategy {
                Strategy::Hoisted => (0, t.j, (g + b) % self.slots),
                Strategy::Bsgs { .. } => (g, t.j, b),
            };
            diags[t.q as usize].insert(key);
        }
        for d in &diags {
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
        c.rescale += self.n_out as u64;
        c
    }

    /// Every rotation step used (for Galois key generation).
    pub(crate) fn steps(&self, out: &mut BTreeSet<usize>) {
        for s in self.in_steps.iter().chain(&self.giants) {
            out.extend(s.iter().copied().filter(|&v| v != 0));
        }
    }
}
