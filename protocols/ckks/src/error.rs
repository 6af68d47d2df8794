//! The crate's single error type.
//!
//! Every fallible public function returns [`CkksError`]; variants carry the offending value and
//! the limit it broke so that a caller can report it without parsing strings.

use thiserror::Error;

/// Errors returned by the CKKS library.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CkksError {
    /// `log2(N)` outside the supported range.
    #[error("log2(N) = {log_n} is outside the supported range {min}..={max}")]
    InvalidLogN {
        /// Requested value.
        log_n: u32,
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// A prime bit size outside the supported range.
    #[error("{what} = {bits} bits is outside the supported range {min}..={max}")]
    InvalidPrimeBits {
        /// Which prime family (`scale`, `first`, `special`).
        what: &'static str,
        /// Requested bit size.
        bits: u32,
        /// Smallest accepted value.
        min: u32,
        /// Largest accepted value.
        max: u32,
    },
    /// A count parameter (levels, special primes, dnum) outside its valid range.
    #[error("{what} = {value} is outside the valid range {min}..={max}")]
    InvalidCount {
        /// Which parameter.
        what: &'static str,
        /// Requested value.
        value: usize,
        /// Smallest accepted value.
        min: usize,
        /// Largest accepted value.
        max: usize,
    },
    /// Not enough NTT-friendly primes of the requested size exist.
    #[error("not enough {bits}-bit primes congruent to 1 mod {modulus_2n} (needed {needed})")]
    NotEnoughPrimes {
        /// Bit size searched.
        bits: u32,
        /// 2N.
        modulus_2n: u64,
        /// How many were needed.
        needed: usize,
    },
    /// The modulus chain exceeds the security bound for this ring dimension.
    #[error(
        "log2(QP) = {log_qp:.2} bits exceeds the 128-bit security bound of {bound} bits for N = 2^{log_n}"
    )]
    InsecureParameters {
        /// Total modulus size in bits.
        log_qp: f64,
        /// Maximal allowed size.
        bound: u32,
        /// log2 of the ring dimension.
        log_n: u32,
    },
    /// The special modulus P is too small compared with one decomposition digit.
    #[error(
        "special modulus P has {log_p:.1} bits but a key-switching digit has {log_digit:.1} bits; \
         raise special_primes or dnum"
    )]
    KeySwitchBasisTooSmall {
        /// log2(P).
        log_p: f64,
        /// log2 of the largest digit modulus.
        log_digit: f64,
    },
    /// A level outside the chain.
    #[error("level {level} is invalid (maximum {max})")]
    InvalidLevel {
        /// Requested level.
        level: usize,
        /// Highest level available.
        max: usize,
    },
    /// Two operands live at different levels.
    #[error("level mismatch: left operand at level {left}, right operand at level {right}")]
    LevelMismatch {
        /// Level of the left operand.
        left: usize,
        /// Level of the right operand.
        right: usize,
    },
    /// Two operands have different scales (relative difference above the tolerance).
    #[error(
        "scale mismatch: left scale 2^{:.6}, right scale 2^{:.6} (relative tolerance {tolerance:e})",
        left.log2(),
        right.log2()
    )]
    ScaleMismatch {
        /// Scale of the left operand.
        left: f64,
        /// Scale of the right operand.
        right: f64,
        /// Relative tolerance that was exceeded.
        tolerance: f64,
    },
    /// An invalid scale (non-finite, non-positive, or too large for the modulus).
    #[error("invalid scale {scale:e}: {reason}")]
    InvalidScale {
        /// The scale.
        scale: f64,
        /// Why it was refused.
        reason: &'static str,
    },
    /// Too many input values for the slot count.
    #[error("{len} values do not fit into {slots} slots")]
    TooManyValues {
        /// Number of values given.
        len: usize,
        /// Number of slots available.
        slots: usize,
    },
    /// An input value is not finite or its scaled magnitude is too large to encode.
    #[error("value at index {index} ({value:e}) cannot be encoded: scaled magnitude must be finite and below 2^{limit_bits}")]
    ValueOutOfRange {
        /// Index of the value (slot or coefficient).
        index: usize,
        /// The value.
        value: f64,
        /// log2 of the magnitude limit.
        limit_bits: u32,
    },
    /// The ciphertext is already at level 0 and cannot be rescaled or dropped further.
    #[error("cannot {op} a ciphertext at level {level}")]
    LevelExhausted {
        /// The refused operation.
        op: &'static str,
        /// The ciphertext level.
        level: usize,
    },
    /// A relinearization key is needed but the evaluator has none.
    #[error("the evaluator has no relinearization key")]
    MissingRelinKey,
    /// A Galois key for the requested rotation was not generated.
    #[error("no Galois key for rotation step {step} (galois element {galois_element})")]
    MissingGaloisKey {
        /// The rotation step (slots, left rotation positive); `0` for conjugation.
        step: i64,
        /// The Galois element `5^step mod 2N` (or `2N-1` for conjugation).
        galois_element: u64,
    },
    /// A serialized object does not match the parameters it is loaded under.
    #[error("serialized {object} does not match the parameters: {field} is {found}, expected {expected}")]
    ParamsMismatch {
        /// The object being loaded.
        object: &'static str,
        /// The mismatching field.
        field: &'static str,
        /// Value expected from the parameters.
        expected: u64,
        /// Value found in the data.
        found: u64,
    },
    /// An object made under one parameter set was used with another.
    #[error(
        "{object} belongs to parameter set `{found}`, not `{expected}` (different prime chain)"
    )]
    WrongParams {
        /// The object.
        object: &'static str,
        /// Name of the expected parameter set.
        expected: &'static str,
        /// Name of the object's parameter set.
        found: &'static str,
    },
    /// A ciphertext or plaintext made under other parameters (fingerprints differ).
    #[error("{object} was made under parameters with fingerprint {found:#018x}, expected {expected:#018x}")]
    ForeignObject {
        /// The object.
        object: &'static str,
        /// Fingerprint of the parameters in use.
        expected: u64,
        /// Fingerprint stamped on the object.
        found: u64,
    },
    /// A serialized coefficient is not reduced modulo its prime.
    #[error("serialized {object}: coefficient {index} of limb {limb} is {value}, not below modulus {modulus}")]
    CoefficientOutOfRange {
        /// The object being loaded.
        object: &'static str,
        /// RNS limb index.
        limb: usize,
        /// Coefficient index.
        index: usize,
        /// The value found.
        value: u64,
        /// Its modulus.
        modulus: u64,
    },
    /// The serialized data is larger than the allowed limit.
    #[error("serialized data of {len} bytes exceeds the limit of {limit} bytes")]
    SizeLimit {
        /// Data size.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// A flooding noise (see [`crate::sanitize`]) does not fit the ciphertext modulus: the flood
    /// width `W` plus the message `Δ·max|m|` and the noise must stay below `Q_level / 2`, and
    /// `W` below `2^62`.
    #[error(
        "flood of width 2^{flood_bits:.2} plus message and noise of 2^{message_bits:.2} exceed the room of 2^{room_bits:.2} at level {level}"
    )]
    FloodTooWide {
        /// `log2` of the flood width `W`.
        flood_bits: f64,
        /// `log2(Δ·max|m| + noise bound)`.
        message_bits: f64,
        /// `log2` of the limit (`Q_level / 2`, or `2^62` for the width alone).
        room_bits: f64,
        /// The ciphertext level.
        level: usize,
    },
    /// An entry of an operation-cost table that is negative or not finite
    /// ([`crate::cost::probe::OpCosts::from_table`]).
    #[error("cost of {kind} at level {level} = {value} s: must be finite and non-negative")]
    InvalidCost {
        /// The operation kind.
        kind: String,
        /// The level.
        level: usize,
        /// The value given.
        value: f64,
    },
    /// bincode could not decode or encode the data.
    #[error("bincode (de)serialization failed: {0}")]
    Bincode(#[from] bincode::Error),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, CkksError>;
