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
}

/// Result alias of the crate.
pub type Result<T, E = MlError> = std::result::Result<T, E>;
