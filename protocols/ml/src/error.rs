//! The error type of the `ml` crate.

use thiserror::Error;

/// Errors of model code and backends.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MlError {
    /// A protocol step failed.
    #[error(transparent)]
    Mpc(#[from] mpc::MpcError),
    /// Operand shapes disagree.
    #[error("shape mismatch in {op}: {left:?} vs {right:?}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// Left shape.
        left: (usize, usize),
        /// Right shape.
        right: (usize, usize),
    },
    /// A hyper-parameter is invalid.
    #[error("invalid hyper-parameter {name} = {value}: {reason}")]
    InvalidHyper {
        /// Name.
        name: &'static str,
        /// Value as given.
        value: String,
        /// Constraint violated.
        reason: &'static str,
    },
    /// The plaintext ST-GCN crate refused a model or tensor.
    #[error(transparent)]
    Model(#[from] stgcn::ModelError),
    /// A model or setting that the 2PC trainer does not support.
    #[error("unsupported {what} = {value}: {reason}")]
    Unsupported {
        /// What is unsupported.
        what: &'static str,
        /// Value as given.
        value: String,
        /// Why, and what is supported.
        reason: &'static str,
    },
    /// An index or size outside its bound.
    #[error("{what}: index {index} has value {value}, limit {limit}")]
    OutOfRange {
        /// What was indexed (e.g. "batch row").
        what: &'static str,
        /// Position of the offending entry in its list.
        index: usize,
        /// The offending value.
        value: usize,
        /// The exclusive bound (or the expected value).
        limit: usize,
    },
}

/// Result alias of the crate.
pub type Result<T, E = MlError> = std::result::Result<T, E>;
