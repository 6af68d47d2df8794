//! Block-diagonal linear maps on packed ciphertexts: the diagonal method (Halevi–Shoup,
//! CRYPTO 2014) generalised to maps between groups of ciphertexts whose slots are cut into
//! equal blocks, with hoisted rotations or baby-step/giant-step (BSGS) evaluation.
//!
//! A map is a list of *terms* `(input ct j, input block p', output ct q, output block p,
//! shift δ, weight w, block mask)`: output slot `p·bs + u` receives
//! `w · mask[u] · in_j[p'·bs + u + δ]`. With `g = ((p' − p) mod B)·bs` and `s = g + δ` every
//! term is a product of `rot(in_j, s)` by a plaintext diagonal that is zero outside the output
//! block, so
//!
//! * **hoisted**: `out_q = Σ_{j,s} rot(in_j, s) ⊙ P_{q,j,s}`; the rotations of `in_j` over its
//!   step set `S_j` share one key-switching decomposition; rotations = `Σ_j |S_j \ {0}|`;
//! * **BSGS** with `n1` baby blocks: a step `s = r·bs + δ` (block distance `r`) is split into
//!   a baby step `b = (r mod n1)·bs + δ` and a giant step `g = (r − r mod n1)·bs`;
//!   `out_q = Σ_g rot(Σ_{j,b} rot(in_j, b) ⊙ rot(P_{q,j,g+b}, −g), g)`; baby steps are
//!   hoisted per input, giant steps applied once per output; rotations =
//!   `Σ_j |Δ_j \ {0}| + Σ_q |G_q \ {0}|`. With `n1 = 1` the taps of a temporal convolution
//!   are the baby steps and the channel-block distances the giant steps.
//!
//! The plan evaluates the hoisted cost and the BSGS cost for every power of two `n1 ≤ B`
//! and keeps the cheapest (hoisted on ties, then the smallest `n1`). Both spend one level:
//! plaintexts are encoded at scale `q_ℓ · target / scale_in`, so one rescale returns exactly the
//! requested output scale. Zero weights and all-zero masks produce no term, so zero padding of
//! a convolution costs nothing and the step sets are the ones the formulas in the crate docs
//! count.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ckks::{Ciphertext, Encoder, Evaluator, OpCounts, Plaintext};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{HeGcnError, Result};

/// Statistics of the plaintext cache of a compiled model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaintextCacheStats {
    /// Memory bound in bytes (0: the cache is off).
    pub budget_bytes: usize,
    /// Bytes held (encoded plaintexts plus the slot values used to check a hit).
    pub bytes: usize,
    /// Plaintexts held.
    pub entries: usize,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to encode (the plaintext was stored if it fitted the budget); with
    /// the cache off, every weight plaintext encoded.
    pub misses: u64,
    /// Thread-time (summed over threads) spent encoding weight plaintexts of the linear maps
    /// since the last reset, cache on or off, in nanoseconds.
    pub encode_ns: u64,
}

struct CacheEntry {
    values: Box<[u64]>,
    pt: Arc<Plaintext>,
}

/// Encoded weight plaintexts, memoised by content, level and scale under a memory bound.
///
/// A diagonal is looked up by `(level, scale, values)`: identical diagonals (the temporal
/// kernel of every node under AMA, the identity residual) share one entry across nodes and
/// stages. Entries are added until `budget` bytes are held, then lookups that miss encode
/// on the fly without storing (no eviction: the first forward pass decides what stays, and
/// the same diagonals recur in the same order on every sample). With a budget of 0 nothing is
/// memoised: each plaintext lives only for its product. The bound covers the cache only;
/// besides it a linear map holds at most one diagonal being encoded per worker thread.
#[derive(Default)]
pub(crate) struct PlaintextCache {
    budget: AtomicUsize,
    used: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
    encode_ns: AtomicU64,
    /// Bound on the baby-step rotations held at once by a lockstep BSGS evaluation (bytes;
    /// 0: [`DEFAULT_LOCKSTEP_BYTES`]).
    lockstep_bytes: AtomicUsize,
    map: Mutex<HashMap<(usize, u64, u64), Vec<CacheEntry>>>,
}

/// Default bound on the baby-step rotations a BSGS map holds at once when it evaluates
/// isomorphic groups (AMA temporal convolution: nodes) in lockstep: 3 GiB. At the NTU shape
/// (N = 2^15, 4 input ciphertexts per node, 17 baby steps) one node's baby steps take
/// 0.2–0.3 GB, so 10–13 nodes share each encoded diagonal.
pub const DEFAULT_LOCKSTEP_BYTES: usize = 3 << 30;

impl std::fmt::Debug for PlaintextCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaintextCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl PlaintextCache {
    /// Sets the memory bound; `0` turns the cache off and frees it.
    pub(crate) fn set_budget(&self, bytes: usize) {
        self.budget.store(bytes, Ordering::Relaxed);
        if bytes == 0 {
            self.clear();
        }
    }

    /// Sets the bound on baby-step rotations held by lockstep evaluation (0: the default).
    pub(crate) fn set_lockstep_budget(&self, bytes: usize) {
        self.lockstep_bytes.store(bytes, Ordering::Relaxed);
    }

    fn lockstep_budget(&self) -> usize {
        match self.lockstep_bytes.load(Ordering::Relaxed) {
            0 => DEFAULT_LOCKSTEP_BYTES,
            b => b,
        }
    }

    pub(crate) fn clear(&self) {
        self.map.lock().expect("no poisoned lock").clear();
        self.used.store(0, Ordering::Relaxed);
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
        self.encode_ns.store(0, Ordering::Relaxed);
    }

    /// Encodes and adds the time to the encode counter.
    fn timed_encode(
        &self,
        encoder: &Encoder,
        values: &[f64],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext> {
        let t0 = std::time::Instant::now();
        let pt = encoder.encode(values, level, scale)?;
        self.encode_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(pt)
    }

    pub(crate) fn stats(&self) -> PlaintextCacheStats {
        let entries = self
            .map
            .lock()
            .map(|m| m.values().map(Vec::len).sum())
            .unwrap_or(0);
        PlaintextCacheStats {
            budget_bytes: self.budget.load(Ordering::Relaxed),
            bytes: self.used.load(Ordering::Relaxed),
            entries,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            encode_ns: self.encode_ns.load(Ordering::Relaxed),
        }
    }

    /// The plaintext of `values` at `level` and `scale`, from the cache or freshly encoded.
    fn get_or_encode(
        &self,
        encoder: &Encoder,
        values: &[f64],
        level: usize,
        scale: f64,
    ) -> Result<Arc<Plaintext>> {
        let budget = self.budget.load(Ordering::Relaxed);
        if budget == 0 {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(Arc::new(self.timed_encode(encoder, values, level, scale)?));
        }
        let bits: Vec<u64> = values.iter().map(|x| x.to_bits()).collect();
        let mut h = DefaultHasher::new();
        bits.hash(&mut h);
        let key = (level, scale.to_bits(), h.finish());
        if let Some(bucket) = self.map.lock().expect("no poisoned lock").get(&key) {
            if let Some(e) = bucket.iter().find(|e| *e.values == bits[..]) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(e.pt.clone());
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let pt = Arc::new(self.timed_encode(encoder, values, level, scale)?);
        // Residues of every limb (N = 2·slots coefficients) plus the values kept to check hits.
        let size = pt.poly().limbs() * 2 * encoder.slots() * 8 + bits.len() * 8;
        let mut map = self.map.lock().expect("no poisoned lock");
        let bucket = map.entry(key).or_default();
        if bucket.iter().any(|e| *e.values == bits[..]) {
            // Another thread stored it meanwhile.
            return Ok(pt);
        }
        let used = self.used.load(Ordering::Relaxed);
        if used + size <= budget {
            self.used.store(used + size, Ordering::Relaxed);
            bucket.push(CacheEntry {
                values: bits.into_boxed_slice(),
                pt: pt.clone(),
            });
        }
        Ok(pt)
    }
}

/// One contribution of a block-diagonal linear map.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Term {
    pub q: u32,
    pub j: u32,
    pub in_block: u32,
    pub out_block: u32,
    pub delta: i32,
    pub weight: f64,
    pub mask: u16,
}

/// How the rotations of a map are organised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// All rotations on the inputs, hoisted per input ciphertext.
    Hoisted,
    /// Baby steps hoisted on the inputs, giant steps on per-output partial sums. A term at
    /// block distance `r` and in-block shift `δ` uses baby step `(r mod n1)·bs + δ` and giant
    /// step `(r − r mod n1)·bs`, `n1 = baby_blocks`.
    Bsgs {
        /// Block distances covered by the baby steps (a power of two).
        baby_blocks: usize,
    },
}

/// A compiled block-diagonal linear map (terms, rotation sets, strategy).
#[derive(Debug)]
pub(crate) struct LinearMap {
    slots: usize,
    block: usize,
    n_in: usize,
    n_out: usize,
    masks: Vec<Vec<f64>>,
    /// Terms sorted by `(j, q)`.
    terms: Vec<Term>,
    strategy: Strategy,
    /// Hoisted: full steps per input; BSGS: baby steps per input (sorted, may contain 0).
    in_steps: Vec<Vec<usize>>,
    /// BSGS: giant steps per output.
    giants: Vec<Vec<usize>>,
    /// Copies of the map side by side in every ciphertext (independent samples), and the slot
    /// distance between copies: every diagonal repeats with this period, so rotations and
    /// products are those of one copy.
    replicas: usize,
    replica_stride: usize,
}

impl LinearMap {
    pub(crate) fn new(
        slots: usize,
        block: usize,
        n_in: usize,
        n_out: usize,
        masks: Vec<Vec<f64>>,
        mut terms: Vec<Term>,
    ) -> Self {
        terms.retain(|t| t.weight != 0.0 && masks[t.mask as usize].iter().any(|&m| m != 0.0));
        terms.sort_by_key(|t| (t.j, t.q));
        let nb = slots / block;
        let nonzero = |s: &Vec<BTreeSet<usize>>| -> usize {
            s.iter()
                .map(|x| x.iter().filter(|&&v| v != 0).count())
                .sum()
        };
        let mut full = vec![BTreeSet::new(); n_in];
        for t in &terms {
            let (g, b) = split(slots, block, nb, 1, t);
            full[t.j as usize].insert((g + b) % slots);
        }
        let mut best_cost = nonzero(&full);
        let mut strategy = Strategy::Hoisted;
        let mut in_steps = full;
        let mut giants = vec![BTreeSet::new(); n_out];
        let mut n1 = 1;
        while n1 <= nb {
            let mut baby = vec![BTreeSet::new(); n_in];
            let mut giant = vec![BTreeSet::new(); n_out];
            for t in &terms {
                let (g, b) = split(slots, block, nb, n1, t);
                baby[t.j as usize].insert(b);
                giant[t.q as usize].insert(g);
            }
            let cost = nonzero(&baby) + nonzero(&giant);
            if cost < best_cost {
                best_cost = cost;
                strategy = Strategy::Bsgs { baby_blocks: n1 };
                in_steps = baby;
                giants = giant;
            }
            n1 *= 2;
        }
        Self {
            slots,
            block,
            n_in,
            n_out,
            masks,
            terms,
            strategy,
            in_steps: in_steps
                .into_iter()
                .map(|s| s.into_iter().collect())
                .collect(),
            giants: giants
                .into_iter()
                .map(|s| s.into_iter().collect())
                .collect(),
            replicas: 1,
            replica_stride: 0,
        }
    }

    /// Repeats the map `replicas` times, copy `r` acting on the slots shifted by
    /// `r·stride` (the caller keeps all copies inside the ciphertext and apart from each
    /// other's blocks). Steps, rotations and products do not change.
    pub(crate) fn with_replicas(mut self, replicas: usize, stride: usize) -> Self {
        self.replicas = replicas.max(1);
        self.replica_stride = stride;
        self
    }

    pub(crate) fn strategy(&self) -> Strategy {
        self.strategy
    }

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
    /// additions that sum them, giant-step rotations, one rescale per output.
    pub(crate) fn planned_ops(&self) -> OpCounts {
        let mut c = OpCounts::default();
        let nb = self.slots / self.block;
        for steps in &self.in_steps {
            let k = steps.iter().filter(|&&v| v != 0).count() as u64;
            c.rotate += k;
            c.key_switch += k;
            c.decompose += u64::from(k > 0);
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
            }
            if let Strategy::Bsgs { .. } = self.strategy {
                let giants: BTreeSet<usize> = d.iter().map(|k| k.0).filter(|&g| g != 0).collect();
                let k = giants.len() as u64;
                c.rotate += k;
                c.key_switch += k;
                c.decompose += k;
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

    fn diagonal(&self, vals: &mut [f64], t: &Term, pre_rotate: usize) {
        let mask = &self.masks[t.mask as usize];
        for r in 0..self.replicas {
            let base = t.out_block as usize * self.block + r * self.replica_stride + pre_rotate;
            for (u, &m) in mask.iter().enumerate() {
                if m != 0.0 {
                    vals[(base + u) % self.slots] += t.weight * m;
                }
            }
        }
    }

    /// Evaluates the map; the outputs are rescaled once and carry scale `target`.
    pub(crate) fn apply(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        store: &PlaintextCache,
        inputs: &[Ciphertext],
        target: f64,
    ) -> Result<Vec<Ciphertext>> {
        if inputs.len() != self.n_in {
            return Err(HeGcnError::Shape {
                what: "linear map input ciphertexts",
                expected: self.n_in,
                found: inputs.len(),
            });
        }
        check_aligned(inputs)?;
        let level = inputs[0].level();
        let q = eval.params().q_prime(level)? as f64;
        let pt_scale = q * target / inputs[0].scale();
        let nb = self.slots / self.block;
        // Every diagonal is encoded when its product is formed and dropped right after (at
        // most one per worker thread is alive), unless the bounded cache holds it: nothing
        // here keeps all the plaintexts of a map, whose sum can exceed the server's memory
        // (thousands of diagonals of several MB at N = 2^15).
        let encode = |d: &[f64]| store.get_or_encode(encoder, d, level, pt_scale);
        match self.strategy {
            Strategy::Hoisted => {
                let acc: Vec<Mutex<Option<Ciphertext>>> =
                    (0..self.n_out).map(|_| Mutex::new(None)).collect();
                let mut start = 0;
                while start < self.terms.len() {
                    let j = self.terms[start].j;
                    let end = start + self.terms[start..].partition_point(|t| t.j == j);
                    let steps = &self.in_steps[j as usize];
                    let nonzero: Vec<i64> = steps
                        .iter()
                        .filter(|&&s| s != 0)
                        .map(|&s| s as i64)
                        .collect();
                    let rotated = eval.rotate_hoisted(&inputs[j as usize], &nonzero)?;
                    let rot_of = |s: usize| -> &Ciphertext {
                        if s == 0 {
                            &inputs[j as usize]
                        } else {
                            let i = nonzero.binary_search(&(s as i64)).expect("step planned");
                            &rotated[i]
                        }
                    };
                    // Group this input's terms by output ciphertext.
                    let group = &self.terms[start..end];
                    let mut bounds = vec![0];
                    for i in 1..group.len() {
                        if group[i].q != group[i - 1].q {
                            bounds.push(i);
                        }
                    }
                    bounds.push(group.len());
                    bounds.par_windows(2).try_for_each(|w| -> Result<()> {
                        let terms = &group[w[0]..w[1]];
                        let qo = terms[0].q as usize;
                        let mut diags: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
                        for t in terms {
                            let (g, b) = split(self.slots, self.block, nb, self.n1(), t);
                            let d = diags
                                .entry((g + b) % self.slots)
                                .or_insert_with(|| vec![0.0; self.slots]);
                            self.diagonal(d, t, 0);
                        }
                        let mut part: Option<Ciphertext> = None;
                        for (s, d) in diags {
                            let pt = encode(&d)?;
                            let prod = eval.mul_plain(rot_of(s), &pt)?;
                            accumulate(eval, &mut part, prod)?;
                        }
                        if let Some(p) = part {
                            let mut slot = acc[qo].lock().expect("no poisoned lock");
                            accumulate(eval, &mut slot, p)?;
                        }
                        Ok(())
                    })?;
                    start = end;
                }
                acc.into_iter()
                    .map(|m| {
                        let ct = m.into_inner().expect("no poisoned lock");
                        finish(eval, encoder, ct, &inputs[0], pt_scale)
                    })
                    .collect()
            }
            Strategy::Bsgs { .. } => {
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
                let ct_bytes = 2 * (level + 1) * 2 * self.slots * 8;
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
                        let groups: Vec<&(Vec<usize>, Vec<usize>)> =
                            members.iter().map(|&m| &comps[m]).collect();
                        let mut babies: Vec<(usize, Vec<Ciphertext>)> = groups
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
                                eval.rotate_hoisted(&inputs[j], &nonzero).map(|r| (j, r))
                            })
                            .collect::<ckks::Result<_>>()?;
                        babies.sort_by_key(|x| x.0);
                        let baby_of = |j: usize, b: usize| -> &Ciphertext {
                            if b == 0 {
                                &inputs[j]
                            } else {
                                let k = babies
                                    .binary_search_by_key(&j, |x| x.0)
                                    .expect("input of this chunk");
                                let pos = self.in_steps[j]
                                    .iter()
                                    .filter(|&&s| s != 0)
                                    .position(|&s| s == b)
                                    .expect("baby step planned");
                                &babies[k].1[pos]
                            }
                        };
                        let (ins0, qs0) = groups[0];
                        if groups.len() < threads {
                            // Fewer members than threads: spread over the outputs instead, each
                            // group's outputs evaluated on their own (a lockstep of one).
                            let done = groups
                                .par_iter()
                                .map(|(ins, qs)| -> Result<Vec<(usize, Ciphertext)>> {
                                    qs.par_iter()
                                        .map(|&q| {
                                            let mut c = self.bsgs_outputs_lockstep(
                                                eval,
                                                &by_q[q],
                                                ins,
                                                &[&ins[..]],
                                                &baby_of,
                                                &encode,
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
                            continue;
                        }
                        for (r, &q0) in qs0.iter().enumerate() {
                            // Member m's output of rank r reads its inputs of the same ranks.
                            let ins: Vec<&[usize]> =
                                groups.iter().map(|(ins, _)| &ins[..]).collect();
                            let res = self.bsgs_outputs_lockstep(
                                eval, &by_q[q0], ins0, &ins, &baby_of, &encode, nb,
                            )?;
                            for ((_, qs), c) in groups.iter().zip(res) {
                                outs[qs[r]] = Some(c);
                            }
                        }
                    }
                }
                outs.into_par_iter()
                    .map(|acc| finish(eval, encoder, acc, &inputs[0], pt_scale))
                    .collect()
            }
        }
    }

    /// Groups of `(inputs, outputs)` (sorted) such that every term of a group's outputs reads
    /// only the group's inputs: the connected components of the input–output graph of the
    /// terms. Outputs without terms belong to no group.
    fn components(&self) -> Vec<(Vec<usize>, Vec<usize>)> {
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
        let mut groups: BTreeMap<usize, (Vec<usize>, Vec<usize>)> = BTreeMap::new();
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

    /// The outputs of one rank of several isomorphic groups, in lockstep: the diagonals come
    /// from `terms` (the terms of the first group's output, whose inputs are `ins0`); member
    /// `m` multiplies them into its own input of the same rank (`members[m]`). Each diagonal
    /// is encoded once, the next one while the current one is multiplied into every member.
    /// Per member: `Σ_g rot(Σ_{j,b} baby(j, b) ⊙ P_{q,j,g+b}, g)`, not yet rescaled; with one
    /// member, one group's output evaluated alone.
    #[allow(clippy::too_many_arguments)]
    fn bsgs_outputs_lockstep<'a>(
        &self,
        eval: &Evaluator,
        terms: &[&Term],
        ins0: &[usize],
        members: &[&[usize]],
        baby_of: &(dyn Fn(usize, usize) -> &'a Ciphertext + Sync),
        encode: &(dyn Fn(&[f64]) -> Result<Arc<Plaintext>> + Sync),
        nb: usize,
    ) -> Result<Vec<Ciphertext>> {
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
        let diags: Vec<((usize, usize, usize), Vec<f64>)> = diags.into_iter().collect();
        #[derive(Default)]
        struct Acc {
            inner: Option<Ciphertext>,
            out: Option<Ciphertext>,
        }
        let mut acc: Vec<Acc> = members.iter().map(|_| Acc::default()).collect();
        let flush = |g: usize, acc: &mut [Acc]| -> Result<()> {
            acc.par_iter_mut().try_for_each(|a| -> Result<()> {
                if let Some(ct) = a.inner.take() {
                    let r = if g == 0 {
                        ct
                    } else {
                        eval.rotate(&ct, g as i64)?
                    };
                    accumulate(eval, &mut a.out, r)?;
                }
                Ok(())
            })
        };
        let mut next = diags.first().map(|(_, d)| encode(d));
        for (i, &((g, rank, b), _)) in diags.iter().enumerate() {
            if i > 0 && diags[i - 1].0 .0 != g {
                flush(diags[i - 1].0 .0, &mut acc)?;
            }
            let pt = next.take().expect("encoded one step ahead")?;
            let (ahead, done) = rayon::join(
                || diags.get(i + 1).map(|(_, d)| encode(d)),
                || {
                    acc.par_iter_mut().zip(members.par_iter()).try_for_each(
                        |(a, ins)| -> Result<()> {
                            let prod = eval.mul_plain(baby_of(ins[rank], b), &pt)?;
                            accumulate(eval, &mut a.inner, prod)
                        },
                    )
                },
            );
            done?;
            next = ahead;
        }
        if let Some(&((g, _, _), _)) = diags.last() {
            flush(g, &mut acc)?;
        }
        acc.into_iter()
            .map(|a| {
                a.out.ok_or(HeGcnError::Shape {
                    what: "terms of a BSGS output (at least one)",
                    expected: 1,
                    found: 0,
                })
            })
            .collect()
    }
}

/// Classes of isomorphic groups: groups (indices into `comps`) whose outputs have the same
/// terms once inputs and outputs are numbered by their rank within the group (same blocks,
/// shifts, weights and masks), in order of first appearance.
fn isomorphic_classes(comps: &[(Vec<usize>, Vec<usize>)], by_q: &[Vec<&Term>]) -> Vec<Vec<usize>> {
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

/// `(giant, baby)` steps of a term for `n1` baby blocks: with block distance `r`, giant =
/// `(r − r mod n1)·bs`, baby = `(r mod n1)·bs + δ`, both mod slots (`n1 = 1`: baby = δ).
fn split(slots: usize, block: usize, nb: usize, n1: usize, t: &Term) -> (usize, usize) {
    let r = (t.in_block as i64 - t.out_block as i64).rem_euclid(nb as i64) as usize;
    let rb = r % n1;
    let g = (r - rb) * block;
    let b = ((rb * block) as i64 + t.delta as i64).rem_euclid(slots as i64) as usize;
    (g, b)
}

impl LinearMap {
    fn n1(&self) -> usize {
        match self.strategy {
            Strategy::Hoisted => 1,
            Strategy::Bsgs { baby_blocks } => baby_blocks,
        }
    }
}

fn accumulate(eval: &Evaluator, acc: &mut Option<Ciphertext>, x: Ciphertext) -> Result<()> {
    match acc {
        None => *acc = Some(x),
        Some(a) => eval.add_assign(a, &x)?,
    }
    Ok(())
}

/// Rescales an accumulated output; an output with no term becomes an encryption-free zero
/// (a zero plaintext product of the first input) so that every output has the same shape.
fn finish(
    eval: &Evaluator,
    encoder: &Encoder,
    acc: Option<Ciphertext>,
    like: &Ciphertext,
    pt_scale: f64,
) -> Result<Ciphertext> {
    let ct = match acc {
        Some(ct) => ct,
        None => {
            let zero = encoder.encode(&[], like.level(), pt_scale)?;
            eval.mul_plain(like, &zero)?
        }
    };
    Ok(eval.rescale(&ct)?)
}

/// Checks that all ciphertexts share one level and scale.
pub(crate) fn check_aligned(cts: &[Ciphertext]) -> Result<()> {
    let Some(first) = cts.first() else {
        return Err(HeGcnError::Shape {
            what: "ciphertexts (at least one)",
            expected: 1,
            found: 0,
        });
    };
    for (index, ct) in cts.iter().enumerate() {
        if ct.level() != first.level()
            || ((ct.scale() - first.scale()) / first.scale()).abs() > ckks::SCALE_TOLERANCE
        {
            return Err(HeGcnError::Misaligned {
                index,
                level: ct.level(),
                log_scale: ct.scale().log2(),
                first_level: first.level(),
                first_log_scale: first.scale().log2(),
            });
        }
    }
    Ok(())
}
