//! Relative costs of the parts of a key-switched linear map, in hoisted key-switching inner
//! products (one rotation of an already decomposed input): the one set of weights the
//! encrypted-model planners (`hegcn`'s linear maps, `hecnn`'s dense layers) price their
//! baby-step/giant-step and ModDown choices with.
//!
//! Measured at N = 2^15, level 8 of the quickstart's parameters (14 levels, 5 special primes,
//! dnum 3) with one thread (`cargo bench -p ckks --bench hoisted_sum`, 2026-12-07, with the
//! IFMA base-conversion kernels of `lattice`): inner product 4.67 ms (eight hoisted rotations
//! over `Q·P` 39.6 ms against one 6.9 ms), decomposition 2.22 ms, ModDown of one polynomial
//! 2.16 ms (4.32 ms for a ciphertext), plaintext product with its addition 0.87 ms over `Q` and
//! 0.75 ms fused over `Q·P`. Before those kernels: inner product 5.4 ms, decomposition 7.6 ms,
//! ModDown 5.1 ms; key switching's base conversions then cost more than its NTTs. The parts
//! scale alike with the level (all are linear in the number of limbs), except the products
//! over `Q·P`, which carry the special limbs at every level; the weights are those of the
//! middle of that model.
//!
//! Encoding a diagonal takes 1.18 ms over `Q` and 1.62 ms over `Q·P` ([`ENCODE`],
//! [`encode_ext`]; same bench and day, after the encoder's rounding and inverse FFT were made
//! cheaper: 1.9 and 2.3 ms before, so the NTTs are now most of an encoding);
//! how often a diagonal is encoded depends on the caller's cache and evaluation order, so a
//! planner weighs it only where it can count the encodings (`hegcn`'s maps at their level).
//!
//! The bench's products reuse one ciphertext and plaintext and so run partly from cache; the
//! products of a large map stream through memory, where a product over `Q·P` costs its extra
//! limbs' share ([`product_ext`]). At the NTU shape (STGCN-3-128, N = 2^15, levels 4–14, three
//! special primes; one sample, two cores, quiet, 2026-12-07) choosing the representation with
//! [`PRODUCT_QP`] kept every map lazy: 377.1 s; every map per-rotation: 313.5 s; weighing the
//! special limbs and the encodings at each map's level (`hegcn`): 300.7 s, the per-rotation
//! ModDown for the maps with many products per rotation, the lazy one for the others (logits
//! within 1.1e-4 of the plaintext model's in all three). The Mocap-15 x² model (three clips
//! per pass) gets the same representations under either rule (44.9–46.7 s per pass; every map
//! per-rotation: 47.5 s).
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
pub const DECOMPOSE: f64 = 0.48;
/// ModDown of one polynomial from `Q·P` to `Q`.
pub const MOD_DOWN: f64 = 0.46;
/// A plaintext product with its addition over `Q`.
pub const PRODUCT_Q: f64 = 0.19;
/// A plaintext product with its addition fused over `Q·P` (lazy ModDown), as the bench measures
/// it: one accumulator, ciphertext and plaintext used over and over, so partly from cache. In
/// a map whose products stream through memory (every product reads a different ciphertext
/// and plaintext) a product over `Q·P` costs its limbs' share more than one over `Q`: see
/// [`product_ext`].
pub const PRODUCT_QP: f64 = 0.16;
/// Encoding one weight diagonal over `Q` (1.18 ms).
pub const ENCODE: f64 = 0.25;
/// The share of an encoding that grows with its limbs (the NTTs; the rest is the slot
/// transform and rounding): over `Q·P` with the quickstart's five special primes an encoding
/// takes 1.62 ms, i.e. `(1.62/1.18 − 1)/(14/9 − 1) ≈ 0.68` of the per-limb share.
pub const ENCODE_LIMB_SHARE: f64 = 0.68;

/// Limbs of a polynomial over `Q_l ∪ P` per limb over `Q_l`: `(l + 1 + k)/(l + 1)` at level
/// `l` with `k` special primes.
pub fn ext_ratio(level: usize, special: usize) -> f64 {
    (level + 1 + special) as f64 / (level + 1) as f64
}

/// A plaintext product with its addition over `Q_l ∪ P` at level `l` when products stream
/// through memory: [`PRODUCT_Q`] times the limbs' ratio. (The per-element work is the same
/// kernel over `Q` and over `Q·P`; measured 1.3–1.5 ns per residue either way once the
/// operands no longer fit the caches, against 0.3–0.4 ns from cache, N = 2^15, one thread.)
pub fn product_ext(level: usize, special: usize) -> f64 {
    PRODUCT_Q * ext_ratio(level, special)
}

/// Encoding one weight diagonal over `Q_l ∪ P` at level `l`: [`ENCODE`] with its per-limb
/// share scaled by the limbs' ratio.
pub fn encode_ext(level: usize, special: usize) -> f64 {
    ENCODE * (1.0 + ENCODE_LIMB_SHARE * (ext_ratio(level, special) - 1.0))
}

/// A rotation of a sum kept over `Q·P` (a BSGS giant step under lazy ModDown): decomposition,
/// inner product, ModDown of `c1` only.
pub const GIANT_STEP: f64 = INNER_PRODUCT + DECOMPOSE + MOD_DOWN;
/// A full rotation of a ciphertext over `Q`: decomposition, inner product, ModDown of both
/// components.
pub const FULL_ROTATION: f64 = INNER_PRODUCT + DECOMPOSE + 2.0 * MOD_DOWN;
