//! Convolutional networks for encrypted inference: CryptoNets (Dowlin et al., ICML 2016) and
//! wider LoLa-style variants (Brutzkus et al., ICML 2019) on MNIST — one convolution with
//! stride, `x²`, a dense layer, `x²`, a dense output layer.
//!
//! [`spec`] holds the architecture ([`CnnSpec`]), the parameters ([`CnnModel`]) and their files
//! (JSON + safetensors); [`reference`](mod@reference) the plaintext forward pass in `f64` that encrypted
//! inference (the `hecnn` crate) is compared against; [`augment`] the random translations of
//! training images (`CnnHyper::max_shift`); [`train`] the training code written
//! against [`Backend`](crate::Backend) (the convolution as a public unfolding and a product,
//! exactly as the ST-GCN model's temporal convolution) and [`train_plain`], its driver on the
//! plaintext backend.
//!
//! # Security model
//! None of its own: training here runs in plaintext on data the trainer holds. The backend
//! code is the same that would run on shares (semi-honest two-server 2PC, see
//! [`crate::backend`]); only [`train_plain`] is wired up.

pub mod augment;
pub mod reference;
pub mod spec;
pub mod train;

#[cfg(test)]
mod augment_tests;
#[cfg(test)]
mod tests;

pub use spec::{CnnActivation, CnnModel, CnnSpec};
pub use train::{
    backend_logits, fine_tune_plain, from_tensors, one_hot, plain_logits, sgd_step, to_tensors,
    train_plain, CnnBatchMaps, CnnHyper, CnnTensors, EpochReport, SgdState,
};
