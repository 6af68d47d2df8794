//! An ST-GCN trained on secret shares: the model of the `stgcn` crate written once against
//! [`Backend`](crate::backend::Backend), so the same code trains in plaintext ([`crate::Plain`], the twin), on 2PC
//! shares ([`crate::Shared`], SecureML-style, semi-honest two servers, preprocessing from any
//! triple source) and on shapes ([`crate::Plan`], the offline phase's request list).
//!
//! # Layout
//! Activations are matrices with one row per (clip, frame, node) — clip-major, then `t`, then
//! `v` — and one column per channel: `(n·T·V) × C`. The dataset is `N × (C·T·V·M)`, one row per
//! clip flattened in `(c, t, v, m)` order (how the party store keeps skeleton datasets); labels
//! are one-hot `N × Q`. Only one person per clip (M = 1) is supported; `M > 1` is refused.
//!
//! # Block
//! 1×1 conv (`X·W + b`, Beaver matrix product), graph aggregation `Σ_k (I ⊗ A_kᵀ)·U_k` as a
//! public linear map, BN affine, activation, 9-tap temporal conv as a public unfolding (zero
//! padding 4, stride) and a Beaver product, BN affine, residual (none / identity / strided 1×1
//! conv + BN affine), activation. Then global average pooling (public linear map), the dense
//! head, the exp softmax and the cross-entropy gradient `P − Y`. Backward by hand, SGD with
//! momentum and weight decay (on weights only, as the plaintext trainer does):
//! `v ← μ·v + g/|B| + wd·w`, `w ← w − lr·v`.
//!
//! Each BN scale is folded into the convolution before it, `s ⊙ (X·W + b) + t =
//! X·(W ⊙ s) + b ⊙ s + t` (the aggregation acts on rows and commutes with a column scale), so
//! the Beaver products of the BN are on the small weights, not on the `(n·T·V) × C`
//! activations; the parameters (and their gradients) are still `W, b, s, t`.
//!
//! # Preprocessing
//! Measured with `examples/stgcn_step.rs` (Mocap-15 STGCN-3-128/4 poly, batch 16): one step
//! truncates about 9.5 M values and asks for about 238 MB of triples per party with local
//! truncation (132 MB matrix, 105 MB elementwise), 464 MB with exact truncation (one
//! elementwise triple per truncated value), so a job runs the offline phase in chunks of steps
//! ([`plan_steps`] per chunk). The largest items are the temporal convolutions' unfolded
//! inputs (`(n·T·V) × 9C`, fresh matrix triples in the forward product and the weight
//! gradient). The BN re-calibration ([`calibrate`]) is one forward pass over its clips plus
//! a square per activation: 2.25 GB per party for 128 clips with exact truncation (the same
//! example with batch 128), made once.
//!
//! # What is frozen, and why
//! * **Edge importance** `E_k` is frozen at the starting model's values: the aggregation's
//!   coefficients `A_k ⊙ E_k` are public, so it is a local linear map plus one truncation.
//!   Learning `E` would need a Beaver product per (edge, channel, frame) per step.
//! * **BN statistics** are fixed during SGD; the BN *affine* is learned. Each BN is
//!   `y = s ⊙ x + t` with `s = γ/√(var+eps)`, `t = β − mean·s`, and `(s, t)` are trained on
//!   shares. The statistics come from the starting model's running statistics (public) or,
//!   better for a model trained on other data, from [`calibrate`]: one 2PC forward pass over
//!   public-chosen private clips ([`calibration_rows`]) computing each BN's per-channel batch
//!   mean and variance on shares, layer by layer, with a Newton inverse square root, and
//!   setting `(s, t)` from them and the starting `γ, β` (AdaBN; the new statistics stay
//!   secret, folded into the shared affine). Batch statistics at every step would need a
//!   secure inverse square root per channel per step; fine-tuning freezes BN statistics
//!   anyway. On export `γ, β` are solved back (`γ = s·√(var+eps)`, `β = t + mean·s`) with the
//!   starting model's running statistics, so the exported [`stgcn::StGcn`] evaluates exactly
//!   as trained and folds into HE like any other model.
//!
//! # Activations
//! `x²` or the node-wise polynomial `a_v·x² + b_v·x + c_v` (coefficients trainable, broadcast
//! per node by a public gather and multiplied by Beaver products), honouring the
//! `ActivationMask`: a pruned node is the identity, `x + keep ⊙ (act(x) − x)` with public
//! `keep`. ReLU models are refused (2PC training is for HE-friendly models).
//!
//! # Security model
//! Semi-honest two-server 2PC (SecureML). Public: the model structure, the starting model's
//! frozen parts (graph, BN statistics, input normalisation), the hyper-parameters, the batch
//! schedule and the calibration clips' indices (not their statistics). Secret: data, labels, every trainable parameter and every intermediate value; each
//! product opens only Beaver-masked differences, every other step is local.

mod backward;
mod calibrate;
mod convert;
mod forward;
mod layers;
mod optim;
mod plan;
mod shape;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_calibrate;
#[cfg(test)]
mod tests_secure;

pub use calibrate::{calibrate, calibration_rows, NEWTON_ITERATIONS};
pub use convert::{export_tensors, initial_params, to_model};
pub use optim::{prepare_inputs, step, train};
pub use plan::{
    plan_calibrate_with, plan_export, plan_export_with, plan_prepare, plan_prepare_with,
    plan_steps, plan_steps_with,
};
pub use shape::StgcnShape;

/// Hyper-parameters of 2PC SGD (public).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StgcnHyper {
    /// Learning rate `lr` (encoded at the backend's fractional bits on shares).
    pub learning_rate: f64,
    /// Momentum `μ` (0 for plain SGD).
    pub momentum: f64,
    /// Weight decay `wd` on convolution and dense weights.
    pub weight_decay: f64,
    /// Clips per step `|B|` (every batch must have this many rows).
    pub batch_size: usize,
}

/// Trainable parameters and momentum buffers on a backend, in
/// [`StgcnShape::param_dims`] order.
#[derive(Debug, Clone)]
pub struct StgcnState<T> {
    /// The trainable tensors.
    pub params: Vec<T>,
    /// Momentum buffers, one per parameter, same shapes.
    pub velocity: Vec<T>,
}

/// Per-step outputs (for differential traces and the owner's loss report).
#[derive(Debug, Clone)]
pub struct StepOutputs<T> {
    /// The batch's logits, `|B| × Q`.
    pub logits: T,
    /// `|B| × 1`: the softmax probability of the true class (the loss is `−mean ln p_true`).
    pub p_true: T,
}
