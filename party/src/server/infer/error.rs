//! The error type of the encrypted-inference endpoint: a model that cannot be loaded, compiled
//! or evaluated, a configuration it cannot serve, and a client connection that cannot continue.

use std::path::PathBuf;

/// Why the inference endpoint could not start, or a connection cannot continue.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferenceError {
    /// A model file could not be read.
    #[error("reading {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A model could not be loaded, planned or compiled (`what` names the model and step).
    #[error("{what}")]
    Model {
        /// What was attempted.
        what: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Planning or compiling a model for CKKS failed.
    #[error(transparent)]
    He(#[from] hegcn::HeGcnError),
    /// Compiling or evaluating a CNN failed.
    #[error(transparent)]
    Cnn(#[from] hecnn::HeCnnError),
    /// CKKS parameters could not be built.
    #[error(transparent)]
    Ckks(#[from] ckks::CkksError),
    /// The configuration cannot be served.
    #[error("{0}")]
    Config(String),
    /// The client stopped sending in the middle of an upload.
    #[error("{0}")]
    Stalled(String),
    /// The client's channel failed or broke the framing.
    #[error(transparent)]
    Channel(#[from] mpc::MpcError),
    /// A blocking task panicked or the service is shutting down.
    #[error("inference task: {0}")]
    Task(String),
}

/// Result of the inference endpoint.
pub type Result<T, E = InferenceError> = std::result::Result<T, E>;

impl InferenceError {
    /// A failure of step `what` of loading or compiling a model.
    pub fn model(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Model {
            what: what.into(),
            source: source.into(),
        }
    }
}

impl From<tokio::task::JoinError> for InferenceError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Task(e.to_string())
    }
}

impl From<tokio::sync::AcquireError> for InferenceError {
    fn from(e: tokio::sync::AcquireError) -> Self {
        Self::Task(e.to_string())
    }
}
