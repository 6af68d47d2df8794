//! The error type of the `mpc` crate.

use thiserror::Error;

/// Everything that can go wrong in a two-party protocol.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MpcError {
    /// A real number cannot be encoded in fixed point.
    #[error("value {value:?} is outside the fixed-point range: |x| must be below {bound:?} (with {frac_bits} fractional bits)")]
    OutOfRange {
        /// The offending value.
        value: f64,
        /// The exclusive bound on its magnitude.
        bound: f64,
        /// Fractional bits of the encoding.
        frac_bits: u32,
    },
    /// NaN or infinity handed to the fixed-point encoder.
    #[error("value {value} is not finite and cannot be encoded in fixed point")]
    NonFinite {
        /// The offending value.
        value: f64,
    },
    /// Invalid fixed-point parameters.
    #[error("invalid number of fractional bits {frac_bits}: must be between 1 and {max}")]
    InvalidFracBits {
        /// Requested fractional bits.
        frac_bits: u32,
        /// Largest allowed.
        max: u32,
    },
    /// Two operands of an operation disagree in shape.
    #[error("shape mismatch in {op}: {left:?} vs {right:?}")]
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// Shape of the left operand.
        left: (usize, usize),
        /// Shape of the right operand.
        right: (usize, usize),
    },
    /// A frame larger than the receiver allows.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Announced or received length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A message could not be decoded.
    #[error("malformed message: {reason}")]
    Malformed {
        /// What the decoder reported.
        reason: String,
    },
    /// The peer closed the channel or the transport failed.
    #[error("channel closed or failed: {reason}")]
    ChannelClosed {
        /// What the transport reported.
        reason: String,
    },
    /// Preprocessing ran out or does not match the request of the online phase.
    #[error("preprocessing mismatch: expected {expected}, found {found}")]
    Preprocessing {
        /// What the online phase needed.
        expected: String,
        /// What the pool had.
        found: String,
    },
    /// The two parties asked a triple source for different things.
    #[error("triple requests of P0 and P1 differ at request #{index}")]
    RequestMismatch {
        /// Position of the first differing request.
        index: u64,
    },
    /// The triple source refused a request list.
    #[error("triple source refused the requests: {reason}")]
    Refused {
        /// Why.
        reason: String,
    },
    /// A homomorphic-encryption parameter or size is out of range.
    #[error("invalid HE parameter: {what} = {value} (limit {max})")]
    InvalidHeParams {
        /// Which parameter.
        what: &'static str,
        /// The offending value.
        value: u64,
        /// The limit.
        max: u64,
    },
    /// A reusable mask was asked to mask a second matrix: opening two matrices under one mask
    /// would reveal their difference.
    #[error("mask #{id} has already masked an opened matrix; a mask may be opened once")]
    MaskReused {
        /// The mask.
        id: u32,
    },
    /// A truncation or scaling parameter is out of range.
    #[error("invalid truncation by {bits} bits (must be below {max})")]
    InvalidShift {
        /// Requested shift.
        bits: u32,
        /// Exclusive bound.
        max: u32,
    },
}

/// Result alias of the crate.
pub type Result<T, E = MpcError> = std::result::Result<T, E>;
