//! The crate's error type.

use thiserror::Error;

/// Errors of encrypted ST-GCN inference.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HeGcnError {
    /// An error of the CKKS layer.
    #[error("CKKS: {0}")]
    Ckks(#[from] ckks::CkksError),
    /// An error of the plaintext model.
    #[error("model: {0}")]
    Model(#[from] stgcn::ModelError),
    /// The model needs more levels than the largest available parameter set provides.
    #[error("model needs multiplicative depth {needed}, the largest 128-bit preset has {available} levels")]
    DepthExceeded {
        /// Levels the model consumes.
        needed: usize,
        /// Levels of the largest preset (or of the given parameters).
        available: usize,
    },
    /// One packing block (persons × padded frames, or nodes × that for the channel-major
    /// packing) does not fit into the ciphertext slots.
    #[error("{packing} layout needs {needed} slots per ciphertext, parameters have {available}")]
    LayoutTooLarge {
        /// Packing name.
        packing: &'static str,
        /// Slots one ciphertext must hold.
        needed: usize,
        /// Slots available.
        available: usize,
    },
    /// A shape does not match what the model or layout expects.
    #[error("shape mismatch in {what}: expected {expected}, found {found}")]
    Shape {
        /// Which dimension.
        what: &'static str,
        /// Expected size.
        expected: usize,
        /// Actual size.
        found: usize,
    },
    /// An activation site that CKKS cannot evaluate (ReLU on a kept node).
    #[error("block {block} activation site {site}: {reason}")]
    UnsupportedActivation {
        /// Block index.
        block: usize,
        /// Activation site (0 or 1).
        site: usize,
        /// Why.
        reason: &'static str,
    },
    /// Ciphertexts handed to one layer are not at one level and scale.
    #[error("layer input ciphertext {index}: level {level} / scale 2^{log_scale:.3} differs from the first ({first_level}, 2^{first_log_scale:.3})")]
    Misaligned {
        /// Index of the offending ciphertext.
        index: usize,
        /// Its level.
        level: usize,
        /// Its log2 scale.
        log_scale: f64,
        /// Level of the first.
        first_level: usize,
        /// log2 scale of the first.
        first_log_scale: f64,
    },
    /// A ciphertext is at too low a level for the remaining layers.
    #[error("{stage}: ciphertext level {level} but the stage needs at least {needed}")]
    LevelTooLow {
        /// Stage name.
        stage: String,
        /// Level found.
        level: usize,
        /// Level needed.
        needed: usize,
    },
}

/// Result type of this crate.
pub type Result<T, E = HeGcnError> = std::result::Result<T, E>;
