//! The crate's error type.

use thiserror::Error;

/// Errors of encrypted CNN inference.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HeCnnError {
    /// An error of the CKKS layer.
    #[error("CKKS: {0}")]
    Ckks(#[from] ckks::CkksError),
    /// An error of the plaintext model.
    #[error("model: {0}")]
    Model(#[from] ml::MlError),
    /// The layout needs more levels than the parameters (or the largest 128-bit preset) give.
    #[error(
        "{layout} layout needs multiplicative depth {needed}, parameters have {available} levels"
    )]
    DepthExceeded {
        /// Layout name.
        layout: &'static str,
        /// Levels the network consumes.
        needed: usize,
        /// Levels available.
        available: usize,
    },
    /// More images than slots in one batch.
    #[error("batch of {images} images does not fit {slots} slots")]
    BatchTooLarge {
        /// Images given.
        images: usize,
        /// Slots per ciphertext.
        slots: usize,
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
    /// A layer the single-image layout cannot pack into one ciphertext.
    #[error("{layer}: {what} = {value} does not fit the single-image layout (limit {limit})")]
    Packing {
        /// The layer (`fc1`, `fc2`).
        layer: &'static str,
        /// What does not fit.
        what: &'static str,
        /// The value.
        value: usize,
        /// The limit it breaks.
        limit: usize,
    },
    /// The planner could not price or choose: what is missing, and for what.
    #[error("planner: {what}: {value}")]
    Planner {
        /// What is missing or wrong.
        what: &'static str,
        /// The preset, setting or value concerned.
        value: String,
    },
    /// A pixel outside the range the layout was sized for.
    #[error("image {image} pixel {pixel}: value {value} outside [{min}, {max}]")]
    PixelOutOfRange {
        /// Image index in the batch.
        image: usize,
        /// Pixel index.
        pixel: usize,
        /// The value.
        value: f64,
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
}

/// Result type of this crate.
pub type Result<T, E = HeCnnError> = std::result::Result<T, E>;
