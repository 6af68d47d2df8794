//! Learned structural linearisation of an ST-GCN (LinGCN, Peng et al., NeurIPS 2023): which
//! `(block, site, node)` keeps its `x²` (or polynomial) activation and which becomes the
//! identity, learned under a budget of `k` non-linear nodes, then hardened into the model's
//! activation mask and fine-tuned. Plaintext training by the model owner (the [`stgcn`] crate's
//! trainer, f64); the result is an ordinary pruned [`stgcn::StGcn`] that folds into HE.
//!
//! # Method
//! 1. **Relaxation** ([`relax`]): every gate is `g = σ(θ)` with a trainable logit `θ`; a kept
//!    node computes `x + g·(act(x) − x)` ([`stgcn::StGcn::set_soft_gates`]). The logits are
//!    trained jointly with the weights (SGD with momentum on the weights, as the model's own
//!    trainer; plain momentum SGD on the logits) on cross-entropy plus the penalty
//!    `λ_b·(max(0, Σg − k)/V)² + λ_s·Σ_sites (1 − Π_v (1 − g_v))`: the first term pulls the
//!    expected number of non-linear nodes down to the budget `k`, the second is the expected
//!    number of sites that still spend a multiplicative level (a site costs a level unless all
//!    its nodes are linear), which rewards emptying whole sites.
//! 2. **Structure** ([`structure`]): the soft gates are projected onto the hard masks that the
//!    encrypted evaluation turns into savings. In the AMA packing of `hegcn` a node's channels
//!    live in its own ciphertexts, so a linear node skips its squaring and relinearisation
//!    (one key switch per ciphertext), but a site gives back its *level* only when every node
//!    is linear, and the level count sets the CKKS preset and the cost of every later
//!    operation. The projection therefore keeps the fewest sites that hold `k` nodes,
//!    `⌈k / V⌉`, choosing the sites with the largest gate mass, and within them the `k` nodes
//!    with the largest gates. (LinGCN aligns levels per node across the two sites of a layer
//!    with a per-node level schedule; `hegcn` evaluates all nodes of a stage at one level, so
//!    here the structure is the whole site.)
//! 3. **Fine-tuning** ([`train`]): gates removed, the mask applied
//!    ([`stgcn::StGcn::prune_activations`]), the weights fine-tuned with momentum SGD.
//!
//! # Security model
//! Nothing here is secret-shared or encrypted: the model owner trains on its own plaintext
//! data. What the result exposes is what activation pruning already exposes to the HE server:
//! the mask is part of the public model structure (which ciphertexts are squared and which
//! levels exist), as the architecture is. Shuffling uses a seeded ChaCha20 stream (a public
//! training schedule, not a secret).

pub mod relax;
pub mod structure;
pub mod train;

pub use relax::{GateLogits, GatePenalty};
pub use structure::{project, GateMask};
pub use train::{learn_gates, GateConfig, GateOutcome};
