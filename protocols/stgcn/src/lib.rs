//! # stgcn — plaintext ST-GCN for skeleton action recognition
//!
//! An `f64` ST-GCN with backward passes, training, batch-norm folding and a model file format
//! shared with the encrypted-inference crate (`hegcn`). It depends on no 2PC code: neither the
//! `mpc` crate nor the backends of `ml`.
//!
//! Implements the spatial-temporal graph convolutional network of Yan, Xiong and Lin
//! (ST-GCN, AAAI 2018): spatial partitioning with K = 3 subsets (§3.4, "spatial configuration
//! partitioning"), learnable edge-importance weighting (§3.5), 9-frame temporal convolutions and
//! residual blocks, and the HE-friendly variants used by CryptoGCN (Ran et al., NeurIPS 2022:
//! `x²` activations, activation pruning) and LinGCN (Peng et al., NeurIPS 2023: node-wise
//! trainable second-order polynomial activations, node-wise structural linearization).
//!
//! # Example
//! ```no_run
//! use stgcn::*;
//! use ndarray::Array5;
//!
//! # fn main() -> Result<(), ModelError> {
//! let a = spatial_partition(5, &[(0, 1), (1, 2), (2, 3), (1, 4)], 1)?; // (3, 5, 5)
//! let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 8, 3, 16, &a, 2);
//! cfg.activation = ActivationKind::Poly;
//! let x = Array5::<f64>::zeros((8, 3, 16, 5, 1)); // (N, C, T, V, M)
//! let labels = [0, 1, 0, 1, 0, 1, 0, 1];
//! cfg.input_norm = Some(InputNorm::fit(x.view()));
//! let mut model = StGcn::new(cfg, 42)?;
//! let tc = TrainConfig { epochs: 2, batch_size: 4, ..TrainConfig::default() };
//! train(&mut model, x.view(), &labels, &tc, |s| println!("{s:?}"))?;
//! let eval = evaluate(&model, x.view(), &labels)?;
//! let (json, weights) = (model.config_json()?, model.to_safetensors_bytes()?);
//! let folded = model.fold(); // BN-folded weights for the HE crate
//! assert_eq!(folded.blocks.len(), 3);
//! # let _ = (eval, StGcn::from_json_and_safetensors(&json, &weights)?);
//! # Ok(()) }
//! ```
//!
//! # Data layout
//! Inputs are `(N, C, T, V, M)` arrays as in the PyTorch ST-GCN: N clips, C coordinates, T frames,
//! V graph nodes (joints) and M persons. The M persons are folded into the batch (`N·M` sequences
//! of shape `(C, T, V)`), pooled features are averaged over M, and because the classifier is
//! affine this equals averaging the logits over M.
//!
//! # One block
//! `GCN (1×1 conv to K·C_out channels, then y_w = Σ_k Σ_v x_k,v (A_k ⊙ E_k)[v, w]) → BN → act →
//! TCN (9×1 temporal conv, zero padding 4, stride 1 or 2) → BN → (+ residual) → act`.
//! The residual is absent in the first block, the identity when channels and stride are
//! unchanged, and a strided 1×1 convolution followed by BN otherwise. After the blocks: global
//! average pooling over (T, V, M) and a dense layer. Dropout is not implemented.
//!
//! # Activations
//! [`ActivationKind::Relu`], [`ActivationKind::Square`] (`x²`) or [`ActivationKind::Poly`]
//! (`a_v·x² + b_v·x + c_v`, one trainable triple per graph node v and activation site, as in
//! LinGCN). The default polynomial initialisation is `a = 0.2, b = 0.5, c = 0.2`: the least-squares
//! fit of ReLU for a standard-normal input (Hermite coefficients of ReLU: `1/√(2π)`, `1/2`,
//! `1/(2√(2π))`), which is what a unit-variance batch-normalised input sees at initialisation.
//! An [`ActivationMask`] per block and site says which nodes keep their non-linearity; the
//! others are the identity (activation pruning, CryptoGCN §4 / LinGCN §3).
//!
//! # Input normalisation
//! ST-GCN starts with a `BatchNorm1d` over `M·V·C` channels. Here the input is normalised by a
//! fixed per-(c, v) affine map (`(x − mean[c,v]) / std[c,v]`, see [`InputNorm`], fitted on the
//! training set by [`InputNorm::fit`]) shared by all persons. It is stored in the JSON config, not
//! learned, and in the [`FoldedModel`] it is kept as a separate affine map which the client applies
//! to its own plaintext before encryption: a per-node scale cannot be folded into a 1×1
//! convolution that is shared by all nodes.
//!
//! # Tensor names (safetensors)
//! All tensors are stored as F64 (F32 is accepted on load). Shapes use `K` partitions, block
//! input/output channels `Ci`/`Co`, kernel length `Kt` (9), `V` nodes, `Q` classes, `Cl` channels
//! of the last block:
//!
//! | name | shape | PyTorch ST-GCN (`net/st_gcn.py`) |
//! |---|---|---|
//! | `blocks.{i}.gcn.conv.weight` | `(K·Co, Ci)` | `st_gcn_networks.{i}.gcn.conv.weight` `(K·Co, Ci, 1, 1)` |
//! | `blocks.{i}.gcn.conv.bias` | `(K·Co)` | `st_gcn_networks.{i}.gcn.conv.bias` |
//! | `blocks.{i}.gcn.edge_importance` | `(K, V, V)` | `edge_importance.{i}` |
//! | `blocks.{i}.bn1.{weight,bias,running_mean,running_var}` | `(Co)` | `st_gcn_networks.{i}.tcn.0.*` |
//! | `blocks.{i}.act1.{a,b,c}` | `(V)` | — (poly activations only) |
//! | `blocks.{i}.tcn.conv.weight` | `(Co, Co, Kt)` | `st_gcn_networks.{i}.tcn.2.weight` `(Co, Co, Kt, 1)` |
//! | `blocks.{i}.tcn.conv.bias` | `(Co)` | `st_gcn_networks.{i}.tcn.2.bias` |
//! | `blocks.{i}.bn2.{weight,bias,running_mean,running_var}` | `(Co)` | `st_gcn_networks.{i}.tcn.3.*` |
//! | `blocks.{i}.residual.conv.weight` | `(Co, Ci)` | `st_gcn_networks.{i}.residual.0.weight` `(Co, Ci, 1, 1)` |
//! | `blocks.{i}.residual.conv.bias` | `(Co)` | `st_gcn_networks.{i}.residual.0.bias` |
//! | `blocks.{i}.residual.bn.{weight,bias,running_mean,running_var}` | `(Co)` | `st_gcn_networks.{i}.residual.1.*` |
//! | `blocks.{i}.act2.{a,b,c}` | `(V)` | — |
//! | `fc.weight` | `(Q, Cl)` | `fcn.weight` `(Q, Cl, 1, 1)` |
//! | `fc.bias` | `(Q)` | `fcn.bias` |
//!
//! Loading accepts a stored shape that equals the expected one followed by trailing singleton
//! dimensions (PyTorch's `(…, 1, 1)` convolution kernels) and ignores `*.num_batches_tracked`;
//! any other unknown name is an error, so an exporter renames the tensors above and moves the
//! state dict's `A` buffer and `data_bn.*` into the JSON config.
//! Residual tensors exist only for blocks with a convolutional residual, `act*` tensors only for
//! polynomial activations. PyTorch's `data_bn` maps to [`InputNorm`] (`mean = running_mean`,
//! `std = sqrt(running_var + eps)`, with `weight = 1`, `bias = 0`; its per-person channels must be
//! equal). The adjacency `A` itself is part of the JSON config, not a tensor.

mod config;
mod convert;
mod error;
mod folded;
mod graph;
mod model;
mod ops;
mod params;
mod train;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gates;

pub use config::{
    ActivationKind, ActivationMask, Architecture, BlockSpec, GraphSpec, InputNorm, StGcnConfig,
};
pub use convert::{relu_to_square, SiteCalibration, SquareCalibration, MIN_CURVATURE};
pub use error::ModelError;
pub use folded::{FoldedActivation, FoldedBlock, FoldedModel, FoldedResidual};
pub use graph::spatial_partition;
pub use model::{ActivationInputStats, Gradients, SoftGates, StGcn};
pub use params::{NamedTensor, TensorRole};
pub use train::{
    evaluate, train, AfterBatch, Distillation, EpochStats, Evaluation, LrSchedule, Sgd,
    TrainConfig, Trainer,
};

/// Result type of this crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
