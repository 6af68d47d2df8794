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
//! and keeps the one with the fewest rotations (hoisted on ties, then the smallest `n1`).
//!
//! **Lazy ModDown.** Every rotation ends with a division by the special modulus `P`
//! (ModDown of both components), which at the quickstart's parameters costs about as much as
//! a hoisted key-switching inner product (`ckks::cost`). A map whose rotations feed only products and sums can keep them over
//! `Q·P` and divide each output once (`ckks::lazy`, double hoisting): baby steps and hoisted
//! rotations need no ModDown, a giant step divides only the `c1` of its inner sum, each output
//! ends with one ModDown of both components, and the products are taken with plaintexts
//! extended to the special primes. The plan takes the lazy representation when its cost
//! ([`plan_cost`]: `2·rotations + giants > 2·outputs` in ModDowns, products weighed too) is
//! lower: a map whose outputs outnumber its rotations (a rotation-free identity) keeps the
//! per-rotation one. A model re-plans each map at its level
//! ([`LinearMap::plan_representation`]), where the products over `Q·P` carry their special
//! limbs and the encodings are counted: a map with many products per rotation at a low level
//! (the NTU shape's convolutions) keeps the per-rotation ModDown. Both spend one level:
//! plaintexts are encoded at scale `q_ℓ · target / scale_in`, so one rescale returns exactly the
//! requested output scale. An *open* map ([`LinearMap::opened`], [`LinearMap::apply_open`])
//! spends none: its plaintexts are encoded at a given scale (`ρ·√q_ℓ`) and its outputs are not
//! rescaled, so the next map, whose plaintexts the rule above puts at about `√q_ℓ/ρ`, closes
//! both with one rescale (used across pruned activation sites, [`crate::plan::open_maps`]).
//! Zero weights and all-zero masks produce no term, so zero padding of a convolution costs
//! nothing and the step sets are the ones the formulas in the crate docs give.
//!
//! Modules: `cache` (the bounded plaintext cache and its statistics), `counts` (rotations,
//! products and every evaluator operation of a map, from its plan), `hoisted` (hoisted
//! evaluation), `bsgs` (BSGS evaluation in chunks of isomorphic groups), `groups` (the
//! isomorphic groups of a map), `lockstep` (one output rank of a chunk, each diagonal
//! encoded once for all members) and `lane` (the per-rotation and the lazy-ModDown
//! representations the evaluations are generic over). This module holds the terms, the plan (strategy and step
//! sets) and the entry point [`LinearMap::apply`].

mod bsgs;
mod cache;
mod counts;
mod groups;
mod hoisted;
mod lane;
mod lockstep;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;

use ckks::{Ciphertext, Encoder, Evaluator, ExtCiphertext, Plaintext};

use crate::error::{HeGcnError, Result};

pub(crate) use cache::{PlaintextCache, PlaintextId};
pub use cache::{PlaintextCacheStats, DEFAULT_LOCKSTEP_BYTES};

/// Encodes a weight diagonal at the level and scale of the map's products (cached or not).
type Encode<'a> = dyn Fn(&[f64]) -> Result<Arc<Plaintext>> + Sync + 'a;

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
    /// Whether rotations and sums stay over `Q·P` until one ModDown per output.
    lazy: bool,
    /// Copies of the map side by side in every ciphertext (independent samples), and the slot
    /// distance between copies: every diagonal repeats with this period, so rotations and
    /// products are those of one copy.
    replicas: usize,
    replica_stride: usize,
    /// `Some(ρ)` when the outputs are left unrescaled ([`LinearMap::opened`]): the diagonals
    /// are encoded at `ρ·√q_ℓ` ([`LinearMap::open_split`]).
    open: Option<f64>,
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
        let (strategy, in_steps, giants) = plan_steps(slots, block, n_in, n_out, &terms);
        let lazy = plan_cost(&in_steps, &giants, &terms, true)
            < plan_cost(&in_steps, &giants, &terms, false);
        Self {
            slots,
            block,
            n_in,
            n_out,
            masks,
            terms,
            strategy,
            in_steps,
            giants,
            lazy,
            replicas: 1,
            replica_stride: 0,
            open: None,
        }
    }

    /// Marks the map *open*: evaluated by [`Self::apply_open`], its outputs are not rescaled
    /// and keep the level of its inputs, at the input scale times the plaintext scale. A map
    /// followed by another linear map (an activation site between them pruned on every node)
    /// is open and the next one closes it: the two spend one level together.
    pub(crate) fn opened(mut self) -> Self {
        self.open = Some(1.0);
        self
    }

    /// Whether the map is open ([`Self::opened`]).
    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// The split `ρ` of an open map (1 for a closed one): its diagonals are encoded at
    /// `ρ·√q_ℓ` and those of the map that closes it at about `√q_ℓ / ρ`.
    pub(crate) fn open_split(&self) -> f64 {
        self.open.unwrap_or(1.0)
    }

    /// Sets the split of an open map to `ρ = √(rms(next) / rms(self))`, the root-mean-square
    /// weights of this map and of the map `next` that closes it: each map's encoding error
    /// (absolute, about `√(N/12)` over its plaintext scale) is then the same fraction of its
    /// typical weight, which minimises their sum under the product of the two scales `q_ℓ`.
    /// A closed map is left as it is.
    pub(crate) fn balance_with(&mut self, next: &LinearMap) {
        if self.open.is_some() {
            let (a, b) = (self.weight_rms(), next.weight_rms());
            if a > 0.0 && b > 0.0 {
                self.open = Some((b / a).sqrt());
            }
        }
    }

    /// Sets the split of an open map to `rho` (a residual beside an open temporal map takes
    /// the temporal map's).
    pub(crate) fn set_split(&mut self, rho: f64) {
        if self.open.is_some() {
            self.open = Some(rho);
        }
    }

    /// Root-mean-square of the term weights (0 without terms).
    fn weight_rms(&self) -> f64 {
        if self.terms.is_empty() {
            return 0.0;
        }
        let s: f64 = self.terms.iter().map(|t| t.weight * t.weight).sum();
        (s / self.terms.len() as f64).sqrt()
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

    fn n1(&self) -> usize {
        match self.strategy {
            Strategy::Hoisted => 1,
            Strategy::Bsgs { baby_blocks } => baby_blocks,
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
    ///
    /// # Errors
    /// An open map ([`Self::opened`]); misaligned or miscounted inputs; CKKS errors.
    pub(crate) fn apply(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        store: &PlaintextCache,
        inputs: &[Ciphertext],
        target: f64,
    ) -> Result<Vec<Ciphertext>> {
        self.check_inputs(inputs, false)?;
        let q = eval.params().q_prime(inputs[0].level())? as f64;
        let pt_scale = q * target / inputs[0].scale();
        let out = Finish {
            pt_scale,
            rescale: true,
        };
        self.evaluate(eval, encoder, store, inputs, out)
    }

    /// Evaluates an open map ([`Self::opened`]) with its diagonals at `pt_scale`: the outputs
    /// are not rescaled (level of the inputs, scale `input scale · pt_scale`).
    ///
    /// # Errors
    /// A map that is not open; misaligned or miscounted inputs; CKKS errors.
    pub(crate) fn apply_open(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        store: &PlaintextCache,
        inputs: &[Ciphertext],
        pt_scale: f64,
    ) -> Result<Vec<Ciphertext>> {
        self.check_inputs(inputs, true)?;
        let out = Finish {
            pt_scale,
            rescale: false,
        };
        self.evaluate(eval, encoder, store, inputs, out)
    }

    fn check_inputs(&self, inputs: &[Ciphertext], open: bool) -> Result<()> {
        if open != self.is_open() {
            return Err(HeGcnError::Shape {
                what: "open linear map (1: evaluated without a rescale)",
                expected: usize::from(self.is_open()),
                found: usize::from(open),
            });
        }
        if inputs.len() != self.n_in {
            return Err(HeGcnError::Shape {
                what: "linear map input ciphertexts",
                expected: self.n_in,
                found: inputs.len(),
            });
        }
        check_aligned(inputs)
    }

    fn evaluate(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        store: &PlaintextCache,
        inputs: &[Ciphertext],
        out: Finish,
    ) -> Result<Vec<Ciphertext>> {
        let (level, pt_scale) = (inputs[0].level(), out.pt_scale);
        // Every diagonal is encoded when its product is formed and dropped right after (at
        // most one per worker thread is alive), unless the bounded cache holds it: nothing
        // here keeps all the plaintexts of a map, whose sum can exceed the server's memory
        // (thousands of diagonals of several MB at N = 2^15).
        let lazy = self.lazy;
        let encode = |d: &[f64]| store.get_or_encode(encoder, d, level, pt_scale, lazy);
        match (self.strategy, lazy) {
            (Strategy::Hoisted, false) => {
                self.apply_hoisted::<Ciphertext>(eval, encoder, inputs, &encode, out)
            }
            (Strategy::Hoisted, true) => {
                self.apply_hoisted::<ExtCiphertext>(eval, encoder, inputs, &encode, out)
            }
            (Strategy::Bsgs { .. }, false) => {
                self.apply_bsgs::<Ciphertext>(eval, encoder, store, inputs, &encode, out)
            }
            (Strategy::Bsgs { .. }, true) => {
                self.apply_bsgs::<ExtCiphertext>(eval, encoder, store, inputs, &encode, out)
            }
        }
    }
}

/// How the outputs of an evaluation end: the diagonals' scale (for an output without terms)
/// and whether they are rescaled.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Finish {
    pt_scale: f64,
    rescale: bool,
}

/// The plaintext scale of an open map at `level` (`√q_ℓ`): the map that closes it encodes
/// its diagonals at about the same scale, so the two share the precision the prime allows.
///
/// # Errors
/// A level beyond the chain.
pub(crate) fn open_scale(params: &ckks::CkksParams, level: usize) -> Result<f64> {
    Ok((params.q_prime(level)? as f64).sqrt())
}

/// The cheapest organisation of the rotations of `terms` (sorted by `(j, q)`): the hoisted
/// cost against BSGS for every power of two `n1 ≤ B` (hoisted on ties, then the smallest
/// `n1`). Returns the strategy, the (hoisted or baby) steps per input and the giant steps
/// per output, each sorted.
fn plan_steps(
    slots: usize,
    block: usize,
    n_in: usize,
    n_out: usize,
    terms: &[Term],
) -> (Strategy, Vec<Vec<usize>>, Vec<Vec<usize>>) {
    let nb = slots / block;
    let nonzero = |s: &Vec<BTreeSet<usize>>| -> usize {
        s.iter()
            .map(|x| x.iter().filter(|&&v| v != 0).count())
            .sum()
    };
    let mut full = vec![BTreeSet::new(); n_in];
    for t in terms {
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
        for t in terms {
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
    let sorted = |s: Vec<BTreeSet<usize>>| -> Vec<Vec<usize>> {
        s.into_iter().map(|x| x.into_iter().collect()).collect()
    };
    (strategy, sorted(in_steps), sorted(giants))
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

/// The cost of evaluating a plan (in inner products, see [`ckks::cost`]) with ModDowns per
/// rotation or, `lazy`, per output: one decomposition per input with a non-zero step, one
/// inner product per rotation, a full rotation per giant step (whose ModDown divides only
/// `c1` when lazy), the products, and, lazy, one ModDown of both components per output.
///
/// The relative costs of a map's parts are [`ckks::cost`]'s (hoisted key-switching inner
/// products, measured at the quickstart's parameters).
///
/// This is the level-free plan of [`LinearMap::new`]. Not weighed: encoding the diagonals
/// (weighing it once per product turned the temporal maps back to the per-rotation ModDown,
/// which measured 14 % slower on the quickstart: lockstep evaluation encodes each diagonal
/// once for a chunk of nodes) and the special limbs of the products over `Q·P`. A model's
/// maps are re-planned at their level with both, counted as evaluated
/// ([`LinearMap::plan_representation`]).
fn plan_cost(in_steps: &[Vec<usize>], giants: &[Vec<usize>], terms: &[Term], lazy: bool) -> f64 {
    // Terms stand in for products (several terms may share a diagonal).
    let s = StepCounts::of(in_steps, giants, terms);
    let products = terms.len() as f64;
    use ckks::cost::{MOD_DOWN, PRODUCT_Q, PRODUCT_QP};
    if lazy {
        s.base() + s.lazy_mod_downs() * MOD_DOWN + products * PRODUCT_QP
    } else {
        s.base() + s.eager_mod_downs() * MOD_DOWN + products * PRODUCT_Q
    }
}

impl LinearMap {
    /// Re-plans the representation for evaluation at input level `level` with `special` special
    /// primes, lockstep chunks of `lockstep_budget` bytes and `threads` threads
    /// ([`Self::planned_encodes`]). [`Self::new`] plans without the level, with the bench's
    /// weights ([`plan_cost`]); here the products over `Q·P` carry their extra limbs
    /// ([`ckks::cost::product_ext`]: at a low level with many products per rotation they cost
    /// more than the ModDowns the lazy form saves) and the diagonals' encodings are weighed,
    /// counted as the lockstep evaluation encodes them (once per chunk; over `Q·P` the baby
    /// steps are larger, so chunks hold fewer members and there are more of them). A model
    /// calls this for each map at its stage's level before it counts or evaluates it.
    pub(crate) fn plan_representation(
        &mut self,
        level: usize,
        special: usize,
        lockstep_budget: usize,
        threads: usize,
    ) {
        let s = StepCounts::of(&self.in_steps, &self.giants, &self.terms);
        let products = self.products() as f64;
        let shape = self.encode_shape();
        let cost = |lazy: bool| {
            let baby = self.baby_bytes(lazy, level, special);
            let encodes = shape.encodes(baby, lockstep_budget, threads) as f64;
            use ckks::cost::{encode_ext, product_ext, ENCODE, MOD_DOWN, PRODUCT_Q};
            if lazy {
                s.base()
                    + s.lazy_mod_downs() * MOD_DOWN
                    + products * product_ext(level, special)
                    + encodes * encode_ext(level, special)
            } else {
                s.base() + s.eager_mod_downs() * MOD_DOWN + products * PRODUCT_Q + encodes * ENCODE
            }
        };
        self.lazy = cost(true) < cost(false);
    }
}

/// The rotation-side counts both cost rules read: rotations, decomposed inputs, giant steps
/// and outputs with terms.
struct StepCounts {
    rot: usize,
    dec: usize,
    giant: usize,
    outs: usize,
}

impl StepCounts {
    fn of(in_steps: &[Vec<usize>], giants: &[Vec<usize>], terms: &[Term]) -> Self {
        let nonzero = |s: &Vec<usize>| s.iter().filter(|&&v| v != 0).count();
        let mut outs: Vec<u32> = terms.iter().map(|t| t.q).collect();
        outs.sort_unstable();
        outs.dedup();
        Self {
            rot: in_steps.iter().map(nonzero).sum(),
            dec: in_steps.iter().filter(|s| nonzero(s) > 0).count(),
            giant: giants.iter().map(nonzero).sum(),
            outs: outs.len(),
        }
    }

    /// Decompositions, inner products and giant-step rotations (either representation).
    fn base(&self) -> f64 {
        use ckks::cost::DECOMPOSE;
        self.dec as f64 * DECOMPOSE + self.rot as f64 + self.giant as f64 * (DECOMPOSE + 1.0)
    }

    /// ModDowns of the lazy form: `c1` of each giant step, both components of each output.
    fn lazy_mod_downs(&self) -> f64 {
        (self.giant + 2 * self.outs) as f64
    }

    /// ModDowns of the per-rotation form: both components of every rotation.
    fn eager_mod_downs(&self) -> f64 {
        2.0 * (self.rot + self.giant) as f64
    }
}

/// Rescales an accumulated output (unless the map is open); an output with no term becomes an
/// encryption-free zero (a zero plaintext product of the first input) so that every output
/// has the same shape.
fn finish(
    eval: &Evaluator,
    encoder: &Encoder,
    acc: Option<Ciphertext>,
    like: &Ciphertext,
    out: Finish,
) -> Result<Ciphertext> {
    let ct = match acc {
        Some(ct) => ct,
        None => {
            let zero = encoder.encode(&[], like.level(), out.pt_scale)?;
            eval.mul_plain(like, &zero)?
        }
    };
    if out.rescale {
        Ok(eval.rescale(&ct)?)
    } else {
        Ok(ct)
    }
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
