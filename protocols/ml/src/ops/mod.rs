//! Building blocks several models share, written once over [`crate::Backend`] (so each runs in
//! plaintext, on shares and on shapes): Newton's inverse square root ([`newton`]), column
//! statistics and standardization of a table ([`stats`]), a standardization folded into a
//! model's first layer ([`fold`]), and evaluation metrics of a trained linear model or MLP
//! ([`metrics`]).
//!
//! Security model: that of the backend. On [`crate::Shared`] (two semi-honest, non-colluding
//! parties) every function here opens nothing but Beaver-masked differences and the masked
//! values of secure comparisons; results stay shared until a caller opens them.

pub mod fold;
pub mod metrics;
pub mod newton;
pub mod stats;
#[cfg(test)]
mod testing;

pub use newton::{inverse_sqrt, inverse_sqrt_from, NEWTON_ITERATIONS, NEWTON_START};
