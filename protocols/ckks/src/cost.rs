//! Relative costs of the parts of a key-switched linear map, in hoisted key-switching inner
//! products (one rotation of an already decomposed input): the one set of weights the
//! encrypted-model planners (`hegcn`'s linear maps, `hecnn`'s dense layers) price their
//! baby-step/giant-step and ModDown choices with.
//!
//! Measured at N = 2^15, level 8 of the quickstart's parameters (14 levels, 5 special primes,
//! dnum 3) with one thread (`cargo bench -p ckks --bench hoisted_sum`): inner product 5.4 ms,
//! decomposition 7.6 ms, ModDown of one polynomial 5.1 ms, plaintext product with its addition
//! 0.9 ms over `Q` and 0.8 ms fused over `Q·P`. The parts scale alike with the level (all are
//! linear in the number of limbs), except the products over `Q·P`, which carry the special
//! limbs at every level; the weights are those of the middle of that model.
//!
//! Not weighed: encoding a diagonal, 1.9 ms over `Q` and 2.3 ms over `Q·P`, because how often
//! a diagonal is encoded depends on the caller's cache and evaluation order.
//!
//! These fixed weights choose between forms of one linear map. To price whole plans in
//! seconds on the machine at hand, [`probe`] measures each operation kind per level and
//! [`probe::OpCosts::price`] prices a block of evaluator operations with the result;
//! [`stage::Stage`] is such a block at one level, the unit both planners count and price.

pub mod probe;
pub mod stage;

pub use probe::{OpCosts, OpKind};
pub use stage::{price_stages, sum_counts, sum_stages, Stage};

/// One hoisted key-switching inner product (the unit).
pub const INNER_PRODUCT: f64 = 1.0;
/// Decomposing one input for key switching (ModUp).
pub const DECOMPOSE: f64 = 1.4;
/// ModDown of one polynomial from `Q·P` to `Q`.
pub const MOD_DOWN: f64 = 0.93;
/// A plaintext product with its addition over `Q`.
pub const PRODUCT_Q: f64 = 0.16;
/// A plaintext product with its addition fused over `Q·P` (lazy ModDown).
pub const PRODUCT_QP: f64 = 0.14;

/// A rotation of a sum kept over `Q·P` (a BSGS giant step under lazy ModDown): decomposition,
/// inner product, ModDown of `c1` only.
pub const GIANT_STEP: f64 = INNER_PRODUCT + DECOMPOSE + MOD_DOWN;
/// A full rotation of a ciphertext over `Q`: decomposition, inner product, ModDown of both
/// components.
pub const FULL_ROTATION: f64 = INNER_PRODUCT + DECOMPOSE + 2.0 * MOD_DOWN;
