//! Non-linear functions on shares of Z_2^64: comparison, boolean/arithmetic conversion, ReLU,
//! piecewise sigmoid, reciprocal and division, exp, natural logarithm, softmax (SecureML, Mohassel–Zhang S&P 2017,
//! §IV-C; conversions after ABY, Demmler–Schneider–Zohner NDSS 2015).
//!
//! ## Building blocks
//!
//! * [`msb`] / [`a2b`]: arithmetic-to-boolean conversion by a **Sklansky parallel-prefix adder**
//!   evaluated with GMW on XOR shares, **bit-sliced** (64 instances per `u64` word per bit
//!   position), AND gates from boolean Beaver triples ([`TripleRequest::And`]). The MSB uses a
//!   pruned network that keeps only the chain to the carry into bit 63. Exact for every ring
//!   element (two's complement, no range assumption).
//! * [`and`] (one round of GMW gates; XOR and NOT are local on [`BitShare`]), [`b2a`] (one
//!   product per bit) and [`select`] (`b·x`, two products per entry, **one round** — the cross
//!   terms are grouped so no B2A round precedes the product).
//! * On top: [`relu`], [`drelu`], [`relu_with_derivative`], [`piecewise_sigmoid`], [`less_than`],
//!   [`clamp`], [`row_max`], [`reciprocal`], [`divide`], [`exp`], [`ln`], [`softmax`],
//!   [`stable_softmax`] (row maximum subtracted first), [`relu_softmax`].
//!
//! ## Planning the offline phase
//!
//! Every protocol comes with a `*_requests` planner listing exactly the preprocessing it consumes,
//! in order, so a trainer concatenates the plans of a whole step and calls
//! [`crate::triples::TripleSource::generate`] once before going online. A planner is not a
//! second description of the protocol: it dry-runs the protocol itself (as P0, on zero shares of
//! the planned shape, against a channel that echoes and a pool that logs every triple asked of
//! it and hands out zeros), so plan and consumption agree by construction — the protocols are
//! oblivious, what they consume depends on shapes and parameters only. Each distinct call is
//! dry-run once and remembered. All parallel work of a
//! call shares its rounds: a 128×128 ReLU layer costs the same 8 rounds as a single ReLU.
//!
//! ## Cost (measured with [`crate::net::Metered`] over the in-memory pair; per party)
//!
//! | operation | rounds | AND gates / value (per round) | bytes sent / value |
//! |---|---|---|---|
//! | [`msb`], [`drelu`], [`less_than`] | 7 | 181 (63, 61, 31, 15, 7, 3, 1) | 45.25 |
//! | [`a2b`] (all 64 bits) | 7 | 373 (63, 61, 60, 58, 54, 46, 31) | 93.25 |
//! | [`b2a`] | 1 | — (1 product) | 16 |
//! | [`select`] | 1 | — (2 products) | 32 |
//! | [`relu`], [`relu_with_derivative`] | 8 | 181 | 77.25 |
//! | [`piecewise_sigmoid`] | 8 | 362 | 138.5 |
//! | [`clamp`] | 8 | 362 | 154.5 |
//! | [`reciprocal`] (3 iterations; [`divide`]: +1 round, +1 product) | 22 | 373 + 162 (suffix-AND), then 40 B2A + 8 products | 901.75 |
//! | [`exp`] (8 squarings) | 16 | 362 | 282.5 |
//! | [`ln`] (degree 7) | 18 | 373 + 162 (suffix-AND), then 40 B2A + 7 products | 885.75 |
//! | [`row_max`] (k columns) | 8⌈log2 k⌉ | 181 per pair | 77.25 per pair |
//!
//! Each AND gate sends 2 bits per party and each Beaver product 2 words; the figures add one
//! 4-byte frame header per flight, negligible at n = 6400 where they were measured. The MSB, A2B,
//! ReLU, sigmoid, B2A and select rows are asserted exactly in this module's tests
//! (`cost_matches_the_documented_table`); the benchmark `benches/nonlinear.rs` reports time.
//! Sending is symmetric: P1 sends as many bytes as P0.
//!
//! Time (`cargo bench -p mpc --bench nonlinear`, online phase only, both parties in one process
//! on the in-memory pair, dealer triples made beforehand; 2 cores shared with other builds, load
//! average ≈ 12, so upper bounds): 10^5 comparisons in 48 ms median (≈ 2.1·10^6 comparisons/s),
//! a 128 × 128 ReLU layer in 8.4 ms.
//!
//! ## Security
//!
//! Semi-honest, non-colluding parties; each round opens only values masked by fresh triples (GMW
//! and Beaver), so nothing about the inputs is revealed — in particular [`relu_softmax`] decides
//! the uniform fallback of an all-non-positive row without opening anything. Products of
//! fixed-point values use SecureML's local truncation ([`crate::trunc`]); each function states
//! the magnitude its products reach and hence its truncation failure probability, and the
//! `*_truncations` counters say how many values a call truncates, for whole-run bounds.

mod activation;
mod adder;
mod bits;
mod convert;
mod exp;
mod log;
mod normalize;
mod recip;
#[cfg(test)]
mod tests;

pub use activation::{
    clamp, clamp_requests, drelu, drelu_requests, less_than, less_than_requests, piecewise_sigmoid,
    piecewise_sigmoid_requests, relu, relu_requests, relu_with_derivative,
};
pub use adder::{
    a2b, a2b_and_gates, a2b_requests, msb, msb_and_gates, msb_flat_requests, msb_requests,
};
pub use bits::{reconstruct_bits, BitShare};
pub use convert::{and, and_requests, b2a, b2a_requests, select, select_requests};
pub use exp::{
    exp, exp_requests, exp_requests_with, exp_truncations, exp_with, relu_softmax,
    relu_softmax_requests, relu_softmax_requests_with, relu_softmax_truncations, relu_softmax_with,
    row_max, row_max_requests, softmax, softmax_requests, softmax_truncations, stable_softmax,
    stable_softmax_requests, stable_softmax_requests_with, stable_softmax_truncations,
    stable_softmax_with, ExpParams,
};
pub use log::{
    ln, ln_polynomial, ln_requests, ln_requests_with, ln_truncations, ln_with, LN_DEGREE,
};
pub use normalize::TOP;
pub use recip::{
    divide, divide_requests, divide_truncations, reciprocal, reciprocal_requests,
    reciprocal_truncations, DEFAULT_NEWTON_ITERATIONS,
};

#[cfg(doc)]
use crate::triples::TripleRequest;
