//! Encrypted ST-GCN inference with CKKS: the CryptoGCN AMA packing (Ran et al., "CryptoGCN:
//! Fast and Scalable Homomorphically Encrypted Graph Convolutional Network Inference",
//! NeurIPS 2022, §3), a channel-major baseline packing, level planning and per-stage HE
//! operation counts.
//!
//! Modules: [`layout`] (slot layouts of both packings, stride by dilation), [`packing_plan`]
//! (the packing of every stage boundary: uniform or mixed, conversions fused into the linear
//! maps that cross them, no extra level), [`planner`] (every per-stage packing plan priced with
//! this machine's probed operation costs from [`ckks::cost`], the cheapest chosen and
//! explained in a table; [`HeStgcn::compile_plan`] runs any plan), [`plan`] (depth of
//! a folded model, choice of a 128-bit preset), [`params`] (parameters tailored to a model:
//! the smallest ring, exactly its depth, the smallest keys), [`model`] ([`HeStgcn`] and the packed tensors
//! it exchanges; inside it, one job per submodule: `compile` and `maps` (lowering of every
//! stage to linear maps), `fold` (AMA coefficient folding), `activation` (polynomial sites),
//! `forward` (server evaluation stage by stage), `head` (pooling, dense layer, logit mask),
//! `client` (encryption and decryption), `counts` (measured and planned op counts, the
//! rotation-count formulas) and `keys` (rotation steps for Galois keys)),
//! [`reference`](mod@reference) (the plaintext twin of every stage), [`sanitize`](mod@sanitize)
//! (the flood of the returned logits), [`dense`] (the dense single-pose layout: a model of one
//! frame and one person as one replicated ciphertext, one BSGS matrix–vector product per
//! linear stage, Galois keys for three steps only: [`DenseStgcn`]), [`error`]. The internal `linear` module implements
//! block-diagonal linear maps (diagonal method with hoisted rotations or baby-step/giant-step):
//! the plan in `linear` itself, evaluation in `linear::hoisted`, `linear::bsgs` and
//! `linear::lockstep` (isomorphic groups from `linear::groups`), generic over the two
//! representations of `linear::lane` (ModDown per rotation, or kept over `Q·P` and divided
//! once per output), costs in `linear::counts` and the bounded plaintext cache in
//! `linear::cache`. Tests live in `tests` (one submodule
//! per topic), besides the ignored benchmarks `ntu_bench`, `ntu_planner` (the planner's counts
//! and estimates for STGCN-3-128, 3-256 and 6-256 on the NTU shape) and `bodypose_flood`.
//!
//! Design choices (see the module docs for details): the graph convolution is one fused
//! level (`Σ_k A_k[v,w]·W_k` folded into the weight plaintexts, rotations hoisted per source
//! ciphertext and shared by all partitions and outputs); every linear map picks hoisted or
//! baby-step/giant-step evaluation by its rotation count, and keeps its rotations and sums
//! over `Q·P` with one ModDown per output (double hoisting, `ckks::lazy`) when its cost model
//! says that is cheaper (every map with rotations, in practice); zero padding and invalid slots are
//! zeros of the weight plaintexts; stride 2 keeps a dilated layout instead of compacting;
//! weight plaintexts are encoded on the fly by default (memory stays bounded, encoding time
//! is part of the latency) or memoised by content, level and scale in a plaintext cache
//! under a memory bound ([`HeStgcn::set_plaintext_cache_budget`]; the first forward pass
//! fills it, later passes reuse it). Under AMA every node's ciphertexts see the same
//! temporal kernel, so the temporal maps evaluate the nodes in lockstep: each weight diagonal
//! is encoded once and multiplied into a chunk of nodes whose baby-step rotations fit a
//! working-memory bound ([`HeStgcn::set_lockstep_budget`], default 3 GiB: 10–13 nodes at the
//! NTU shape), instead of once per node; the operation counts do not change. Galois keys are needed only for
//! [`HeStgcn::rotation_steps`] (per stage: [`HeStgcn::block_rotation_steps`],
//! [`HeStgcn::head_rotation_steps`]). [`HeStgcn::planned_op_counts`] gives every evaluator
//! operation of a forward pass from the compiled program, without running it. The head masks
//! its output to the logit slots and [`HeStgcn::sanitize_logits`] re-randomizes and floods it
//! with the client's public key before it is returned ([`sanitize`](mod@sanitize)).
//!
//! Tests (`cargo test -p hegcn --release`, insecure small-N parameters) compare every stage
//! with [`reference`](mod@reference) and the logits with `FoldedModel::forward`; the ignored tests in
//! `ntu_bench` print the planned op counts of STGCN-3-128 on the NTU graph and time one
//! graph-convolution stage at the 128-bit preset `N15_L17_S40_128BIT`.
//!
//! ```no_run
//! use ckks::{presets, Evaluator, KeyGenerator};
//! use hegcn::{choose_preset, HeStgcn, Packing};
//! # fn run(model: &stgcn::FoldedModel, x: ndarray::ArrayView4<'_, f64>) -> hegcn::Result<()> {
//! let (preset, plan) = choose_preset(model, Packing::Ama)?;
//! let params = preset.build()?;
//! let he = HeStgcn::compile(model, Packing::Ama, &params)?;
//! // client
//! let mut kg = KeyGenerator::new(&params);
//! let sk = kg.secret_key();
//! let pk = kg.public_key(&sk)?;
//! let eval = Evaluator::new(&params)
//!     .with_relin_key(kg.relin_key(&sk)?)
//!     .with_galois_keys(kg.galois_keys(&sk, &he.rotation_steps(), false)?);
//! let ct = he.encrypt_input(&pk, x)?;
//! // server
//! let (logits, stages) = he.forward(&eval, &ct)?;
//! let pk_out = pk.at_level(he.output_level())?; // sent by the client with its keys
//! let logits = he.sanitize_logits(&eval, &logits, &pk_out, &hegcn::FloodConfig::default())?;
//! // client
//! let scores = he.decrypt_logits(&sk, &logits)?;
//! # let _ = (plan, stages, scores); Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod dense;
pub mod error;
pub mod layout;
mod linear;
pub mod model;
pub mod packing_plan;
pub mod params;
pub mod plan;
pub mod planner;
pub mod reference;
pub mod sanitize;

#[cfg(test)]
mod bodypose_flood;
#[cfg(test)]
mod ntu_bench;
#[cfg(test)]
mod ntu_planner;
#[cfg(test)]
mod tests;

pub use dense::{DenseLayout, DenseStgcn};
pub use error::{HeGcnError, Result};
pub use layout::{Layout, Packing};
pub use linear::{PlaintextCacheStats, Strategy, DEFAULT_LOCKSTEP_BYTES};
pub use model::{
    counts_diff, counts_sum, he_ops, BlockOption, EncryptedLogits, HeStgcn, HeadOption,
    PackedTensor, PlannedCounts, PlannedStage, StageOptions, StageReport, ACT_COEFF_SCALE_BITS,
};
pub use packing_plan::{BlockPacking, PackingPlan};
pub use params::{choose_params, smallest_params, ParamChoice, ParamSpec};
pub use plan::{
    check_params, choose_preset, level_plan, level_plan_unfused, open_maps, slots_needed,
    LevelPlan, StagePlan, HEAD_MASK_LEVELS,
};
pub use planner::{PlanEstimate, Planner};
pub use sanitize::{FloodConfig, DEFAULT_EVAL_ERROR_BOUND, DEFAULT_FLOOD_BITS};
