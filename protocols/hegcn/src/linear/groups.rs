//! Isomorphic groups of a linear map, for lockstep evaluation: the connected components of
//! its input–output graph (AMA temporal convolution: one node each) and the classes of
//! components with the same terms up to renumbering (every node: the kernel is shared).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};

use super::{LinearMap, Term};

/// The sorted inputs and outputs of one group.
pub(super) type Group = (Vec<usize>, Vec<usize>);

impl LinearMap {
    /// Groups of `(inputs, outputs)` (sorted) such that every term of a group's outputs reads
    /// only the group's inputs: the connected components of the input–output graph of the
    /// terms. Outputs without terms belong to no group.
    pub(super) fn components(&self) -> Vec<Group> {
        // Union-find over inputs 0..n_in and outputs n_in..n_in + n_out.
        let mut parent: Vec<usize> = (0..self.n_in + self.n_out).collect();
        fn root(p: &mut [usize], mut x: usize) -> usize {
            while p[x] != x {
                p[x] = p[p[x]];
                x = p[x];
            }
            x
        }
        for t in &self.terms {
            let a = root(&mut parent, t.j as usize);
            let b = root(&mut parent, self.n_in + t.q as usize);
            if a != b {
                parent[a] = b;
            }
        }
        let mut used = vec![false; self.n_in + self.n_out];
        for t in &self.terms {
            used[t.j as usize] = true;
            used[self.n_in + t.q as usize] = true;
        }
        let mut groups: BTreeMap<usize, Group> = BTreeMap::new();
        for (x, _) in used.iter().enumerate().filter(|u| *u.1) {
            let r = root(&mut parent, x);
            let g = groups.entry(r).or_default();
            if x < self.n_in {
                g.0.push(x);
            } else {
                g.1.push(x - self.n_in);
            }
        }
        groups.into_values().collect()
    }
}

/// Classes of isomorphic groups: groups (indices into `comps`) whose outputs have the same
/// terms once inputs and outputs are numbered by their rank within the group (same blocks,
/// shifts, weights and masks), in order of first appearance.
pub(super) fn isomorphic_classes(comps: &[Group], by_q: &[Vec<&Term>]) -> Vec<Vec<usize>> {
    type Sig = Vec<(u32, u32, u32, u32, i32, u64, u16)>;
    let mut classes: Vec<(Sig, Vec<usize>)> = Vec::new();
    let mut index: HashMap<u64, Vec<usize>> = HashMap::new();
    for (c, (ins, qs)) in comps.iter().enumerate() {
        let mut sig: Sig = Vec::new();
        for (r, &q) in qs.iter().enumerate() {
            for t in &by_q[q] {
                let jr = ins
                    .binary_search(&(t.j as usize))
                    .expect("input of the group");
                sig.push((
                    r as u32,
                    jr as u32,
                    t.in_block,
                    t.out_block,
                    t.delta,
                    t.weight.to_bits(),
                    t.mask,
                ));
            }
        }
        let mut h = DefaultHasher::new();
        (ins.len(), &sig).hash(&mut h);
        let bucket = index.entry(h.finish()).or_default();
        match bucket
            .iter()
            .find(|&&k| classes[k].0 == sig && comps[classes[k].1[0]].0.len() == ins.len())
        {
            Some(&k) => classes[k].1.push(c),
            None => {
                bucket.push(classes.len());
                classes.push((sig, vec![c]));
            }
        }
    }
    classes.into_iter().map(|(_, members)| members).collect()
}
