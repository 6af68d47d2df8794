//! Compiled encrypted ST-GCN: every stage of a `FoldedModel` as block-diagonal linear maps
//! (the `linear` module) and per-node polynomial activations, for either packing.
//!
//! Stages (CryptoGCN, Ran et al. 2022, §3; LinGCN, Peng et al. 2023, §3.3 for the node-wise
//! polynomial):
//!
//! 1. **Graph convolution** — `out_w = Σ_v Σ_k A_k[v,w]·(W_k x_v) + b_w` fused into one map with
//!    plaintext weights `Σ_k A_k[v,w]·W_k`: the rotations of each source ciphertext are hoisted
//!    once and shared by all `K` partitions and all output nodes; aggregation itself is pure
//!    plaintext products and additions under AMA (one level).
//! 2. **Activation** — `a_v·x² + b_v·x + c_v` with node constants as slot plaintexts (one
//!    level; pruned nodes are `b = 1`). Pure `x²` sites square directly. Under AMA (one node
//!    per ciphertext) the magnitudes `√|a_v|` are folded into the preceding graph-conv
//!    columns, residual and biases at compile time (`fold_quadratic_coefficients`), so every
//!    site is `±y² + b'⊙y + c'` at full scale; the intermediate tensors then differ from the
//!    plaintext stages by known per-node factors ([`HeStgcn::stage_node_scales`]). Otherwise
//!    (channel-major, nodes of mixed sign in one ciphertext) a general `a_v` is evaluated as
//!    `x·(a⊙x) + (b⊙x)` with `a` encoded at scale `2^20`: `a` is quantised to ~6 decimal
//!    digits and the next layer's weights, which absorb the larger output scale, to ~2^-20.
//!    Fully pruned sites cost nothing, and the maps on either side of one share a level: the
//!    first is *open* (no rescale, diagonals at `√q_ℓ`) and the second closes it
//!    ([`crate::plan::open_maps`]; the residual beside an open temporal map is open too).
//! 3. **Temporal convolution** — 9 taps × channel mixing as one map; tap `j` is a shift by
//!    `d·(j−4)` inside the block, zero padding lives in the masked plaintext diagonals, and the
//!    map is evaluated by BSGS (taps = baby steps, channel-block distances = giant steps) when
//!    that needs fewer rotations. Stride 2 dilates the layout ([`crate::layout`]).
//! 4. **Residual** — a 1×1 strided convolution, or the identity as the identity matrix (one
//!    plaintext product per ciphertext, no rotation, which also re-targets the input's scale
//!    to the output's), evaluated on the block input dropped to the temporal conv's input
//!    level: it costs no extra level.
//! 5. **Head** — node sum (AMA: ciphertext additions), dense layer with the `1/(T·V·M)` pooling
//!    factor and the frame mask folded into its diagonals, then a log-step rotate-and-sum inside
//!    each block; logits land at the first slot of their class block. A 0/1 plaintext mask
//!    (one more level) then zeroes every other slot, which held partial sums of the dense
//!    layer; [`HeStgcn::sanitize_logits`] re-randomizes and floods the result before it is
//!    returned (see [`crate::sanitize`]).
//!
//!
//! # Modules
//! This module holds [`HeStgcn`] (the compiled program and its accessors) and the packed
//! tensors it exchanges; the work is split by job:
//!
//! * `compile` — [`HeStgcn::compile`] / [`HeStgcn::compile_batched`]: the program of every
//!   block;
//! * `replicas` — where the copies of independent samples sit (AMA batching);
//! * `maps` — lowering of the graph, temporal and pointwise convolutions to linear maps, and
//!   bias slot vectors;
//! * `fold` — the AMA coefficient folding ([`HeStgcn::stage_node_scales`]);
//! * `activation` — the polynomial activation sites and [`ACT_COEFF_SCALE_BITS`];
//! * `forward` — the encrypted forward pass stage by stage ([`HeStgcn::forward`]);
//! * `head` — pooling, dense layer and logit mask ([`HeStgcn::head`]);
//! * `client` — encryption of inputs and decryption of tensors and logits;
//! * `counts` — measured and planned operation counts, with the rotation-count formulas;
//! * `options` — every packing option of every stage with its planned operations
//!   ([`HeStgcn::stage_options`], what [`crate::planner`] prices);
//! * `keys` — the rotation steps that need Galois keys ([`HeStgcn::rotation_steps`]).

mod activation;
mod client;
mod compile;
mod counts;
mod fold;
mod forward;
mod head;
mod keys;
mod maps;
mod options;
mod replicas;

use ckks::{Ciphertext, CkksParams, Encoder};
use ndarray::Array2;

use crate::layout::{Layout, Packing};
use crate::linear::{PlaintextCache, PlaintextCacheStats, Strategy};
use crate::packing_plan::PackingPlan;
use crate::plan::LevelPlan;

pub use activation::ACT_COEFF_SCALE_BITS;
pub use counts::{counts_diff, counts_sum, he_ops, PlannedCounts, PlannedStage, StageReport};
pub use options::{BlockOption, HeadOption, StageOptions, PACKINGS};

use compile::BlockProgram;
use head::HeadProgram;

/// A packed, encrypted activation tensor.
#[derive(Clone, Debug)]
pub struct PackedTensor {
    /// Ciphertexts in layout order.
    pub cts: Vec<Ciphertext>,
    /// Where every entry lives.
    pub layout: Layout,
}

/// Encrypted class scores.
#[derive(Clone, Debug)]
pub struct EncryptedLogits {
    /// Ciphertexts holding the scores.
    pub cts: Vec<Ciphertext>,
    /// `(ciphertext, slot)` of each class.
    pub positions: Vec<(usize, usize)>,
}

/// A folded ST-GCN compiled for CKKS evaluation under one packing and parameter set.
#[derive(Debug)]
pub struct HeStgcn {
    params: CkksParams,
    encoder: Encoder,
    packing: Packing,
    packings: PackingPlan,
    plan: LevelPlan,
    input_layout: Layout,
    input_affine: Option<(Array2<f64>, Array2<f64>)>,
    blocks: Vec<BlockProgram>,
    head: HeadProgram,
    cache: PlaintextCache,
    /// Samples per pass ([`HeStgcn::compile_batched`]) and the slot distance between them.
    clips: usize,
    clip_stride: usize,
}

impl HeStgcn {
    /// The packing of the input (of every stage unless compiled with a mixed
    /// [`PackingPlan`], see [`Self::packing_plan`]).
    pub fn packing(&self) -> Packing {
        self.packing
    }

    /// The packing of every stage boundary ([`HeStgcn::compile_plan`]).
    pub fn packing_plan(&self) -> &PackingPlan {
        &self.packings
    }

    /// The parameters the model was compiled for.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    /// The level plan (the input is encrypted at level `plan().depth`).
    pub fn plan(&self) -> &LevelPlan {
        &self.plan
    }

    /// Layout of the encrypted input.
    pub fn input_layout(&self) -> &Layout {
        &self.input_layout
    }

    /// Layout after block `i` (its output).
    pub fn block_output_layout(&self, i: usize) -> Option<&Layout> {
        self.blocks.get(i).map(|b| &b.out_layout)
    }

    /// Number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Layout of the graph-convolution output (activation and temporal input) of block `i`.
    pub fn block_mid_layout(&self, i: usize) -> Option<&Layout> {
        self.blocks.get(i).map(|b| &b.mid_layout)
    }

    /// Layout of the input of block `i`.
    pub fn block_input_layout(&self, i: usize) -> Option<&Layout> {
        self.blocks.get(i).map(|b| &b.in_layout)
    }

    /// Samples evaluated per forward pass.
    pub fn clips(&self) -> usize {
        self.clips
    }

    /// Sets the memory bound of the plaintext cache (bytes; default 0 = off). With a bound,
    /// every weight plaintext a linear map encodes is memoised by content, level and scale
    /// until the bound is reached (the first forward pass fills it, later ones reuse it);
    /// beyond the bound plaintexts are encoded on the fly. `0` frees the cache.
    pub fn set_plaintext_cache_budget(&self, bytes: usize) {
        self.cache.set_budget(bytes);
    }

    /// Frees every plaintext the cache holds, keeping its bound and statistics: a stage-major
    /// run calls it after each stage, since weights are encoded at the stage's own level and
    /// scale and no other stage of the pass can hit them; each stage then has the whole bound
    /// (and the repeats within a stage, or across the inputs of a stage-major batch, hit).
    pub fn release_plaintext_cache(&self) {
        self.cache.release();
    }

    /// Bounds the baby-step rotations a BSGS linear map holds at once while it evaluates
    /// isomorphic groups in lockstep (AMA temporal convolution: the nodes share the kernel,
    /// so each weight diagonal is encoded once per chunk of nodes instead of once per node);
    /// bytes, `0` = [`DEFAULT_LOCKSTEP_BYTES`](crate::DEFAULT_LOCKSTEP_BYTES). At least one group per worker
    /// thread runs at once whatever the bound.
    pub fn set_lockstep_budget(&self, bytes: usize) {
        self.cache.set_lockstep_budget(bytes);
    }

    /// The bound set by [`Self::set_lockstep_budget`] (bytes; the default when unset).
    pub fn lockstep_budget(&self) -> usize {
        self.cache.lockstep_budget()
    }

    /// Size, bound and hit counts of the plaintext cache.
    pub fn plaintext_cache_stats(&self) -> PlaintextCacheStats {
        self.cache.stats()
    }

    /// Per-node factors `(g, f)` by which the encrypted intermediate tensors of block `i` differ
    /// from the plaintext stages of [`crate::reference`]: the graph-conv output is `g_v` times
    /// the plaintext one, the activation-1 and temporal-conv outputs are `f_v` times theirs, the
    /// block output is exact. All ones except under AMA with quadratic coefficients other than
    /// 0 and ±1, whose magnitudes are folded into the weights (`√|a|` per node) so that every
    /// activation is a plain (possibly negated) square at full scale.
    pub fn stage_node_scales(&self, i: usize) -> Option<(&[f64], &[f64])> {
        self.blocks
            .get(i)
            .map(|b| (b.mid_scale.as_slice(), b.out_scale.as_slice()))
    }

    /// The strategy chosen for the temporal convolution of block `i` (`None` if no such block).
    pub fn temporal_strategy(&self, i: usize) -> Option<Strategy> {
        self.blocks.get(i).map(|b| b.tcn.strategy())
    }
}
