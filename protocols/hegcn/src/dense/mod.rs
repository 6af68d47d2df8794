//! The dense single-sample layout: for one pose (`T·M = 1`), the whole state of a stage — `V`
//! nodes × at most `P` channels, `P` the next power of two of the widest stage and of the class
//! count — sits in one period of `n = next_pow2(V·P)` slots (entry `(c, v)` at slot
//! `pos(v)·P + c`, with node positions from [`node_order`]; the client's input also at every
//! `input_repeat`-th slot after it, [`DenseLayout::pack`]),
//! and the ciphertext holds that period replicated over all `N/2` slots. Every linear stage
//! (graph convolution with the folded BN, the temporal convolution — with one frame only its
//! centre tap survives —, the residual, pooling + dense head) is one `n × n` matrix–vector
//! product (module `diag`); activations are slot-wise `a⊙x² + b⊙x + c` as in the other layouts.
//!
//! **When.** [`DenseLayout::applies`]: the model is configured for one frame and one person
//! (`T·M = 1`). The AMA and channel-major packings spend a block of `next_pow2(M·T)` slots per
//! (channel, node), so at `T·M = 1` they leave most slots empty and need thousands of products.
//!
//! **Cost and keys.** A stage costs one product per non-zero diagonal of its matrix (graph
//! convolution: the classes `P·δ + (c − o)` over its node offsets `δ`, channel mixing: at
//! most `2P − 1`) and, with `B` baby steps, `max b` baby and `g_max − g_min` giant rotations.
//! Each map picks its own `B` among [`DenseLayout::baby_candidates`] (`P`, `P/2`, `P/4`) for
//! the fewest key switches (the products do not depend on it): channel mixing over offsets
//! `−31..31` takes `B = 8` (7 baby + 7 giant steps instead of 31 + 1 at `B = 32`), a graph
//! convolution whatever its node offsets favour. A temporal convolution and its residual sum
//! their inner products before one set of giant steps, the residual reuses the baby steps the
//! block's graph convolution took of the block input (dropped to its level), and the head's
//! node sum is a log-depth sum over the `n/P` node positions (rotations by `P`, `2P`, …:
//! `log2(n/P)` key switches, 5 on BodyPose, where a Horner chain over the occupied positions
//! took `V − 1 = 24`; the unoccupied positions hold zeros).
//! (Keeping the giant steps' Horner sums over `Q·P` — lazy ModDown, one ModDown per giant step
//! instead of two — measured within 2 % on one thread, so it is not done.)
//! *Key rule*: only the steps `1`, `2` and `±B` of the chosen `B`s and the node sum's `P·2^i`
//! ([`DenseStgcn::rotation_steps`], those the plan uses) get Galois keys, all other
//! rotations are composed from them (one key switch per baby or giant step), and each key is
//! made at the highest level the pass rotates by it at ([`DenseStgcn::rotation_levels`],
//! announced to clients; `ckks::KeyGenerator::galois_keys_at_level`): at `N = 2^15` a whole
//! Galois key is ~15.7 MB and a key for level 1 ~1.8 MB, so BodyPose's session uploads
//! 138.2 MB for 12 keys (steps 1, 2, ±8, ±16, ±32 and the node sum's 64–512 at level 1) where
//! one whole key per distinct step (~60 steps) would be ~1 GB. The baby steps come two at a time, `rot(·, 1)` and
//! `rot(·, 2)` of the last one sharing one decomposition (hoisting; `diag::baby_steps`): the
//! key of step 2 (+15.7 MB) saves one ModUp per two baby steps — 26 of the 59 baby steps'
//! decompositions on BodyPose, 3.7 % of the one-thread CPU seconds of a pose (A/B medians,
//! `dense_bodypose` bench) — and the giant steps' two Horner chains (`+B` and `−B`) run side
//! by side on the server's two cores.
//!
//! *What sets the count.* The node order ([`node_order`], module `order`) has the least
//! bandwidth the search finds — on BODY25 node offsets `−3..3` — since a graph convolution's
//! giant steps span its class range `±(P·bandwidth + P − 1)`, and with `P = 32` neighbouring
//! offsets' channel ranges overlap, so the range also bounds its diagonals. The client repeats
//! its input channels every [`DenseLayout::input_repeat`] slots of a node, so the first graph
//! convolution reads each input channel within one repeat of its output slot: 2 diagonals per
//! node offset on BodyPose (2 input channels) instead of 17, one baby step instead of 15. On
//! the committed BodyPose model this is 141 key switches (plus 6 relinearizations) and 765
//! products per pose, where the depth-first order of fewest distinct offsets (offsets up to
//! ±7), the plain input and per-input baby steps took 217 and 1,286. At `N = 2^15` the key
//! switches dominate: `cargo bench -p hegcn --bench dense_bodypose` (with `DENSE_PROBE=1`)
//! prices one pose on one thread of a loaded 2-core Xeon at ~2.8 s of key switches, ~0.8 s of
//! products and ~0.5 s of the rest (plus ~1.2 s of encodings when the plaintext cache misses;
//! 3.8 s measured with every weight cached), the two inner graph convolutions (29 and 30 key
//! switches at levels 10 and 6) half of the key switches. Every plaintext a pass reads —
//! diagonals, biases, activation coefficients, the logit mask — is compiled once and looked
//! up in the plaintext cache by its identity (`PlaintextId`), so a warm request neither
//! encodes nor hashes slot vectors: on a quiet machine this took a pose from 2.05 to 1.95
//! server seconds (medians of six alternated runs, `cryptogcn-single-bodypose.toml`).
//!
//! *Not done: staggered replicas.* Replicating the period is what makes rotations cyclic mod
//! `n` without masks. Carrying *different* diagonals in the 16 replicas would cut the products
//! 16×: with the state placed at least 15 slots into the period, an input whose replica `r`
//! holds the state rotated by `r` reads class `16k + r` in replica `r` after one rotation by
//! `16k`, without wrap-around. But the replicas' partial sums then need a replica sum (4
//! rotations by `n·2^i`: 4 more keys, which the 150 MB budget only holds if the channel-mixing
//! maps give up `B = 8`, +4 key switches each) and the next stage a staggered input again (15
//! rotations by 1 per stage, their masks folded into the preceding activation's coefficients:
//! `Σ_r rot(a_r⊙R + b_r⊙y + c_r, r)` with one relinearized square `R`). A graph convolution
//! would take ~34 key switches instead of ~30 while saving ~240 products: priced as above, at
//! level 10 that is +0.12 s against −0.29 s, at level 6 +0.06 s against −0.19 s, which the
//! ~18 extra key switches of the channel-mixing maps at `B = 16` (~0.4 s; or of the first graph
//! convolution and the node sum without `±P`) cancel. Not built.
//!
//! *Keys at their levels and the log-depth node sum* (built): every key but `±16` is used at
//! level ≥ 12 (step 1 and `±32` by the first graph convolution at 14, 2 and `±8` by the first
//! temporal convolution at 12), so trimming saves little by itself (`±16` at level 10: 12.6 MB
//! instead of 15.7), but it makes the node sum's four extra keys cost ~1.8 MB each: keys
//! 141.8 → 138.2 MB, and a pose 1.97 → 1.91 server seconds (medians of six alternated pairs on
//! a quiet machine, `cryptogcn-single-bodypose.toml`).
//! *Priced, not built:* **client-supplied rotations of the first map**: the first graph
//! convolution's 7 key switches at level 14 (the dearest, ~9 % of a pose on one thread) vanish
//! if the client sends its packed input rotated by each of the map's 14 classes (14
//! ciphertexts, ~55 MB per request instead of ~4 MB, a new `DenseLayout` field and link
//! version): its products then read the rotations directly.
//!
//! **Levels.** Those of [`crate::level_plan_unfused`]: one per linear stage, one per non-pruned
//! activation site, the head's dense layer and its 0/1 logit mask.
//!
//! **Security model.** As the rest of the crate: semi-honest server holding the weights,
//! client holding the secret key; the head masks every slot but the logits, and
//! [`DenseStgcn::sanitize_logits`] re-randomizes and floods them before they are returned.
//! The announced layout's node order and input repeat are functions of the public graph and
//! input width; the repeated input is the client's own data in one ciphertext, as before.

mod diag;
mod forward;
mod order;

pub use forward::{Stage, PRE_ACT_SCALE_DROP};
pub use order::node_order;
#[cfg(test)]
pub(crate) use order::{bandwidth, graph_edges, order_cost};

use ckks::{CkksParams, Encoder, Evaluator, Flood, PublicKey};
use serde::{Deserialize, Serialize};
use stgcn::{FoldedActivation, FoldedModel, FoldedResidual};

use crate::error::{HeGcnError, Result};
use crate::linear::{PlaintextCache, PlaintextCacheStats, PlaintextId};
use crate::model::EncryptedLogits;
use crate::plan::{level_plan_unfused, site_levels, LevelPlan};
use crate::sanitize::FloodConfig;

use diag::DiagMap;

/// How many baby-step counts (`P`, `P/2`, …) the linear maps choose from: each adds the keys
/// of `±B`, so three keep the maps at most 8 Galois keys with those of the baby steps 1 and 2
/// (~15.7 MB each at `N = 2^15` when used at the top levels; the node sum's keys, at level 1,
/// add ~1.8 MB each: the BodyPose session's whole upload, relinearization and public key
/// included, is ~138 MB).
pub const BABY_CHOICES: usize = 3;

/// Where entry `(c, v)` of a dense single-sample state lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenseLayout {
    /// Input channels `C`.
    pub channels: usize,
    /// Nodes `V`.
    pub nodes: usize,
    /// Slots per node `P` (a power of two ≥ every stage's channels and the class count).
    pub node_stride: usize,
    /// The period `n = next_pow2(V·P)`.
    pub period: usize,
    /// Slots per ciphertext (`N/2`; a multiple of the period).
    pub slots: usize,
    /// Position of every node inside a period (a permutation of `0..V`, see
    /// [`node_order`]): node `v`'s channels sit at `node_order[v]·P + c`.
    pub node_order: Vec<usize>,
    /// The input's channels repeat every `input_repeat` slots of a node (the next power of
    /// two ≥ `C`, dividing `P`): the client's slot `node_order[v]·P + j` holds channel
    /// `j mod input_repeat` (zero when that is `≥ C`), see [`Self::pack`].
    pub input_repeat: usize,
}

impl DenseLayout {
    /// Whether the dense layout serves `model`: configured for one frame and one person.
    pub fn applies(model: &FoldedModel) -> bool {
        model.num_frames * model.num_persons == 1
    }

    /// The slots one period needs for `model` (what the ring must hold at least).
    pub fn period_for(model: &FoldedModel) -> usize {
        (model.num_nodes * Self::node_stride_for(model)).next_power_of_two()
    }

    fn node_stride_for(model: &FoldedModel) -> usize {
        let widest = model
            .blocks
            .iter()
            .map(|b| b.gcn_weights.dim().1)
            .chain([model.in_channels, model.num_classes])
            .max()
            .unwrap_or(1);
        widest.next_power_of_two()
    }

    /// The layout of `model` in ciphertexts of `slots` slots.
    ///
    /// # Errors
    /// [`HeGcnError::Shape`] for a model with `T·M ≠ 1`; [`HeGcnError::LayoutTooLarge`] when
    /// a period does not fit the slots.
    pub fn new(model: &FoldedModel, slots: usize) -> Result<Self> {
        if !Self::applies(model) {
            return Err(HeGcnError::Shape {
                what: "frames × persons of a dense single-sample model",
                expected: 1,
                found: model.num_frames * model.num_persons,
            });
        }
        let period = Self::period_for(model);
        if period > slots || !slots.is_multiple_of(period) {
            return Err(HeGcnError::LayoutTooLarge {
                packing: "dense",
                needed: period,
                available: slots,
            });
        }
        Ok(Self {
            channels: model.in_channels,
            nodes: model.num_nodes,
            node_stride: Self::node_stride_for(model),
            period,
            slots,
            node_order: node_order(model),
            input_repeat: model.in_channels.next_power_of_two(),
        })
    }

    /// The baby-step counts a linear map may choose from: `P`, `P/2` and `P/4` (at least 1),
    /// so the Galois keys of all maps together are at most `1, ±P, ±P/2, ±P/4` (the key
    /// budget, see the module docs).
    pub fn baby_candidates(&self) -> Vec<usize> {
        let p = self.node_stride;
        let mut c: Vec<usize> = (0..BABY_CHOICES).map(|i| (p >> i).max(1)).collect();
        c.dedup();
        c
    }

    /// Slot of entry `(c, v)` inside a period.
    pub fn slot(&self, c: usize, v: usize) -> usize {
        self.node_order[v] * self.node_stride + c
    }

    /// The input slot the first stage reads channel `c` of node `v` from for output channel
    /// `o`: of the copies of `c` in `v`'s node (every `input_repeat` slots), the first at or
    /// after slot `o` of the node, else the last before it — so the channel offset of every
    /// term lies in `0..input_repeat` (or just below 0 near the node's end).
    pub fn input_slot(&self, c: usize, v: usize, o: usize) -> usize {
        let (p, r) = (self.node_stride, self.input_repeat);
        let mut j = o + (c + p - o % r) % r;
        if j >= p {
            j -= r;
        }
        self.node_order[v] * p + j
    }

    /// The client's slot vector of an input `x[(c, v)]` (`channels × nodes` row-major),
    /// replicated over the slots, each node's channels repeated every `input_repeat` slots
    /// ([`Self::input_slot`]).
    ///
    /// # Errors
    /// [`HeGcnError::Shape`] for a wrong length.
    pub fn pack(&self, x: &[f64]) -> Result<Vec<f64>> {
        if x.len() != self.channels * self.nodes {
            return Err(HeGcnError::Shape {
                what: "dense input entries C·V",
                expected: self.channels * self.nodes,
                found: x.len(),
            });
        }
        let mut period = vec![0.0; self.period];
        for c in 0..self.channels {
            for v in 0..self.nodes {
                for j in (c..self.node_stride).step_by(self.input_repeat) {
                    period[self.slot(j, v)] = x[c * self.nodes + v];
                }
            }
        }
        Ok((0..self.slots).map(|i| period[i % self.period]).collect())
    }
}

/// A compiled vector of slot values (one period, replicated over the slots when encoded)
/// with the identity its plaintexts are cached under: read on every request, encoded once
/// per level and scale while the plaintext cache has room.
#[derive(Debug)]
struct SlotVector {
    id: PlaintextId,
    values: Vec<f64>,
}

impl SlotVector {
    fn new(values: Vec<f64>) -> Self {
        Self {
            id: PlaintextId::fresh(),
            values,
        }
    }

    fn is_zero(&self) -> bool {
        self.values.iter().all(|&v| v == 0.0)
    }
}

/// A slot-wise activation site: per-slot `a`, `b`, `c` over one period.
#[derive(Debug)]
struct DenseAct {
    a: SlotVector,
    b: SlotVector,
    c: SlotVector,
}

/// One block: graph conv, activation, temporal conv (+ residual), activation.
#[derive(Debug)]
struct DenseBlock {
    gcn: DiagMap,
    gcn_bias: SlotVector,
    act1: Option<DenseAct>,
    tcn: DiagMap,
    residual: Option<DiagMap>,
    tcn_bias: SlotVector,
    act2: Option<DenseAct>,
}

/// A folded single-pose ST-GCN compiled for the dense layout under one parameter set.
#[derive(Debug)]
pub struct DenseStgcn {
    params: CkksParams,
    encoder: Encoder,
    layout: DenseLayout,
    plan: LevelPlan,
    input_affine: Option<(Vec<f64>, Vec<f64>)>,
    blocks: Vec<DenseBlock>,
    head: DiagMap,
    head_bias: SlotVector,
    /// The 0/1 mask over all slots that keeps the logits of the first period.
    logit_mask: SlotVector,
    classes: usize,
    cache: PlaintextCache,
}

impl DenseStgcn {
    /// Compiles `model` for `params`.
    ///
    /// # Errors
    /// The layout's refusals ([`DenseLayout::new`]); [`HeGcnError::UnsupportedActivation`] for
    /// a kept ReLU; [`HeGcnError::LevelTooLow`] when the parameters lack the model's depth.
    pub fn compile(model: &FoldedModel, params: &CkksParams) -> Result<Self> {
        let layout = DenseLayout::new(model, params.slots())?;
        let plan = level_plan_unfused(model)?;
        if plan.depth > params.max_level() {
            return Err(HeGcnError::LevelTooLow {
                stage: "dense model input".into(),
                level: params.max_level(),
                needed: plan.depth,
            });
        }
        let blocks = model
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| compile_block(&layout, b, i))
            .collect::<Result<_>>()?;
        let (head, head_bias) = compile_head(&layout, model);
        let input_affine = model.input_affine.as_ref().map(|(s, t)| {
            let (c, v) = s.dim();
            let flat = |a: &ndarray::Array2<f64>| -> Vec<f64> {
                (0..c)
                    .flat_map(|ci| (0..v).map(move |vi| (ci, vi)))
                    .map(|p| a[p])
                    .collect()
            };
            (flat(s), flat(t))
        });
        Ok(Self {
            params: params.clone(),
            encoder: Encoder::new(params),
            layout,
            plan,
            input_affine,
            blocks,
            head,
            head_bias,
            logit_mask: SlotVector::new(
                (0..params.slots())
                    .map(|i| f64::from(u8::from(i < model.num_classes)))
                    .collect(),
            ),
            classes: model.num_classes,
            cache: PlaintextCache::default(),
        })
    }

    /// The layout of the encrypted input.
    pub fn layout(&self) -> &DenseLayout {
        &self.layout
    }

    /// The parameters.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    /// The level plan (the input is encrypted at level `plan().depth`).
    pub fn plan(&self) -> &LevelPlan {
        &self.plan
    }

    /// The client's input map `x ↦ scale⊙x + shift`, `(C, V)` row-major.
    pub fn input_affine(&self) -> Option<&(Vec<f64>, Vec<f64>)> {
        self.input_affine.as_ref()
    }

    /// The rotation steps that need Galois keys: those the compiled maps use (a subset of
    /// `{1, 2} ∪ {±B}` for `B` in [`DenseLayout::baby_candidates`]) and the head's node sum
    /// (`P·2^i` below the period).
    pub fn rotation_steps(&self) -> Vec<i64> {
        self.rotation_levels().into_iter().map(|(s, _)| s).collect()
    }

    /// Every rotation step of [`Self::rotation_steps`] with the highest level the forward pass
    /// rotates by it at: a Galois key restricted to that level
    /// (`ckks::KeyGenerator::galois_keys_at_level`) serves the pass, so the node sum's keys,
    /// used at level 1 only, cost a fraction of a whole key.
    pub fn rotation_levels(&self) -> Vec<(i64, usize)> {
        let mut best = std::collections::BTreeMap::new();
        let mut note = |step: i64, level: usize| {
            let e = best.entry(step).or_insert(level);
            *e = (*e).max(level);
        };
        let maps = self.map_levels();
        for &(m, level) in &maps {
            for step in m.rotation_steps() {
                note(step, level);
            }
        }
        // The node sum runs on the head's output, one level below the head's input.
        let sum_level = maps.last().map_or(0, |&(_, l)| l.saturating_sub(1));
        for step in self.node_sum_steps() {
            note(step, sum_level);
        }
        best.into_iter().collect()
    }

    /// Every linear map with the level of its input, in evaluation order (a map's baby and
    /// giant steps are all taken at that level; the head last).
    fn map_levels(&self) -> Vec<(&DiagMap, usize)> {
        let mut level = self.plan.depth;
        let mut out = Vec::new();
        for b in &self.blocks {
            out.push((&b.gcn, level));
            level -= 1 + usize::from(b.act1.is_some());
            out.push((&b.tcn, level));
            if let Some(r) = &b.residual {
                out.push((r, level));
            }
            level -= 1 + usize::from(b.act2.is_some());
        }
        out.push((&self.head, level));
        out
    }

    /// The head's node sum: rotations by `P`, `2P`, … below the period, each added to the
    /// running sum, so slot `q` of node position 0 gathers all `n/P` positions (the unoccupied
    /// ones hold zeros): `log2(n/P)` key switches instead of `V − 1` in a chain.
    pub(crate) fn node_sum_steps(&self) -> Vec<i64> {
        let l = &self.layout;
        std::iter::successors(Some(l.node_stride), |&s| Some(2 * s))
            .take_while(|&s| s < l.period)
            .map(|s| s as i64)
            .collect()
    }

    /// Plaintext products and key switches of the linear stages of one forward pass (the head's
    /// node sum included; activations not counted). A temporal convolution and its residual
    /// share their giant steps, and the residual reuses the graph convolution's baby steps of
    /// the block input.
    pub fn planned_linear_ops(&self) -> (usize, usize) {
        let products = self.maps().map(|m| m.products()).sum::<usize>() + 1;
        let nodesum = self.node_sum_steps().len();
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| {
                let tcn: Vec<&DiagMap> = [Some(&b.tcn), b.residual.as_ref()]
                    .into_iter()
                    .flatten()
                    .collect();
                // The residual reuses the graph convolution's baby steps of the block input.
                let reused = b
                    .residual
                    .as_ref()
                    .map_or(0, |r| r.max_baby().min(b.gcn.max_baby()));
                DiagMap::sum_key_switches(&[&b.gcn]) + DiagMap::sum_key_switches(&tcn) - reused
            })
            .sum();
        let switches = blocks + DiagMap::sum_key_switches(&[&self.head]) + nodesum;
        (products, switches)
    }

    fn maps(&self) -> impl Iterator<Item = &DiagMap> {
        self.blocks
            .iter()
            .flat_map(|b| [Some(&b.gcn), Some(&b.tcn), b.residual.as_ref()])
            .flatten()
            .chain([&self.head])
    }

    /// Sets the memory bound of the plaintext cache (bytes; 0 = off), as
    /// [`crate::HeStgcn::set_plaintext_cache_budget`].
    pub fn set_plaintext_cache_budget(&self, bytes: usize) {
        self.cache.set_budget(bytes);
    }

    /// Size, bound and hit counts of the plaintext cache.
    pub fn plaintext_cache_stats(&self) -> PlaintextCacheStats {
        self.cache.stats()
    }

    /// The flood of the logit ciphertexts (as [`crate::HeStgcn::logit_flood`]).
    pub fn logit_flood(&self, cfg: &FloodConfig) -> Flood {
        cfg.flood(self.params.default_scale())
    }

    /// Re-randomizes and floods the logits with the client's public key (see
    /// [`crate::sanitize`]).
    ///
    /// # Errors
    /// CKKS errors.
    pub fn sanitize_logits(
        &self,
        eval: &Evaluator,
        logits: &EncryptedLogits,
        pk: &PublicKey,
        cfg: &FloodConfig,
    ) -> Result<EncryptedLogits> {
        crate::sanitize::sanitize_all(eval, logits, pk, &self.logit_flood(cfg))
    }

    /// The level of the logit ciphertexts.
    pub fn output_level(&self) -> usize {
        0
    }
}

/// A per-slot vector over one period with `f(c, v)` on channels `< channels` of every node.
fn per_slot(l: &DenseLayout, channels: usize, f: impl Fn(usize, usize) -> f64) -> Vec<f64> {
    let mut out = vec![0.0; l.period];
    for v in 0..l.nodes {
        for c in 0..channels {
            out[l.slot(c, v)] = f(c, v);
        }
    }
    out
}

fn compile_act(
    l: &DenseLayout,
    act: &FoldedActivation,
    channels: usize,
    block: usize,
    site: usize,
) -> Result<Option<DenseAct>> {
    if site_levels(act, block, site)? == 0 {
        return Ok(None);
    }
    let FoldedActivation::Poly { a, b, c } = act else {
        unreachable!("site_levels refuses kept ReLU nodes")
    };
    Ok(Some(DenseAct {
        a: SlotVector::new(per_slot(l, channels, |_, v| a[v])),
        b: SlotVector::new(per_slot(l, channels, |_, v| b[v])),
        c: SlotVector::new(per_slot(l, channels, |_, v| c[v])),
    }))
}

fn compile_block(l: &DenseLayout, b: &stgcn::FoldedBlock, i: usize) -> Result<DenseBlock> {
    let (k, co, ci) = b.gcn_weights.dim();
    let n = l.period;
    // The block's input slot of channel `c` of node `u` for output channel `o`: the client's
    // repeated channels for the first block, the plain layout after.
    let col = |c: usize, u: usize, o: usize| match i {
        0 => l.input_slot(c, u, o),
        _ => l.slot(c, u),
    };
    let mut gcn = Vec::new();
    for ki in 0..k {
        for u in 0..l.nodes {
            for w in 0..l.nodes {
                let a = b.aggregation[[ki, u, w]];
                if a == 0.0 {
                    continue;
                }
                for o in 0..co {
                    for c in 0..ci {
                        gcn.push((l.slot(o, w), col(c, u, o), a * b.gcn_weights[[ki, o, c]]));
                    }
                }
            }
        }
    }
    let gcn = DiagMap::planned(n, &l.baby_candidates(), gcn);
    let gcn_bias = SlotVector::new(per_slot(l, co, |o, w| b.gcn_bias[[o, w]]));
    let (tco, tci, ks) = b.tcn_weight.dim();
    let centre = (ks - 1) / 2;
    let node_diag = |co: usize, ci: usize, babies: &[usize], f: &dyn Fn(usize, usize) -> f64| {
        let mut e = Vec::new();
        for v in 0..l.nodes {
            for o in 0..co {
                for c in 0..ci {
                    e.push((l.slot(o, v), l.slot(c, v), f(o, c)));
                }
            }
        }
        DiagMap::planned(n, babies, e)
    };
    // The residual reads the block's input.
    let res_diag = |co: usize, ci: usize, babies: &[usize], f: &dyn Fn(usize, usize) -> f64| {
        let mut e = Vec::new();
        for v in 0..l.nodes {
            for o in 0..co {
                for c in 0..ci {
                    e.push((l.slot(o, v), col(c, v, o), f(o, c)));
                }
            }
        }
        DiagMap::planned(n, babies, e)
    };
    let tcn = node_diag(tco, tci, &l.baby_candidates(), &|o, c| {
        b.tcn_weight[[o, c, centre]]
    });
    // The residual shares the temporal convolution's giant steps, hence its baby steps.
    let same = [tcn.baby()];
    let (residual, res_bias) = match &b.residual {
        FoldedResidual::None => (None, vec![0.0; tco]),
        FoldedResidual::Identity => (
            Some(res_diag(tco, tco, &same, &|o, c| {
                f64::from(u8::from(o == c))
            })),
            vec![0.0; tco],
        ),
        FoldedResidual::Conv { weight, bias } => (
            Some(res_diag(tco, weight.dim().1, &same, &|o, c| weight[[o, c]])),
            bias.to_vec(),
        ),
    };
    let tcn_bias = SlotVector::new(per_slot(l, tco, |o, _| b.tcn_bias[o] + res_bias[o]));
    Ok(DenseBlock {
        gcn,
        gcn_bias,
        act1: compile_act(l, &b.act1, co, i, 0)?,
        tcn,
        residual,
        tcn_bias,
        act2: compile_act(l, &b.act2, tco, i, 1)?,
    })
}

/// The head: `z[v, q] = Σ_c W[q, c]·x[c, v] / V` (summed over nodes by rotations afterwards)
/// and the bias at the logit slots `q` (node position 0).
fn compile_head(l: &DenseLayout, model: &FoldedModel) -> (DiagMap, SlotVector) {
    let (classes, c_last) = model.fc_weight.dim();
    let norm = 1.0 / l.nodes as f64;
    let mut e = Vec::new();
    for v in 0..l.nodes {
        for q in 0..classes {
            for c in 0..c_last {
                e.push((l.slot(q, v), l.slot(c, v), model.fc_weight[[q, c]] * norm));
            }
        }
    }
    let mut bias = vec![0.0; l.period];
    for (b, &f) in bias.iter_mut().zip(model.fc_bias.iter()) {
        *b = f;
    }
    (
        DiagMap::planned(l.period, &l.baby_candidates(), e),
        SlotVector::new(bias),
    )
}
