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
//! * [`msb_millionaire`]: the same MSB by a **millionaires' comparison** over random
//!   1-out-of-2^m OT ([`TripleRequest::LeafOt`]) and a tree of AND gates: one round fewer and
//!   about a third of the adder's correlated bytes (module `millionaire`). Every comparison
//!   below ([`drelu`], [`less_than`], [`relu`], [`piecewise_sigmoid`], [`clamp`], [`row_max`])
//!   uses it with [`LEAF_BITS`]-bit leaves; [`msb`] stays as the reference.
//! * [`and`] (one round of GMW gates; XOR and NOT are local on [`BitShare`]) and [`b2a`] (one
//!   product per bit).
//! * [`select`] (`b·x` for a shared bit and a shared ring element): the **OT multiplexer**
//!   (CrypTFlow2) over one random 1-out-of-2 OT per direction ([`TripleRequest::Rot`]), two
//!   rounds, exact (module `mux`). Every shared-bit product below uses it; [`select_beaver`]
//!   (two Beaver products, one round — the cross terms grouped so no B2A round precedes the
//!   product) stays as the reference.
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
//! | operation | rounds | preprocessing / value | bytes sent / value |
//! |---|---|---|---|
//! | [`msb`] (adder) | 7 | 181 AND (63, 61, 31, 15, 7, 3, 1) | 45.25 |
//! | [`msb_millionaire`] (m = 4), [`drelu`], [`less_than`] | 6 | 8 + 8 leaf OTs (1-of-16), 26 AND (15, 7, 3, 1) | 42.5 |
//! | [`a2b`] (all 64 bits) | 7 | 373 AND (63, 61, 60, 58, 54, 46, 31) | 93.25 |
//! | [`b2a`] | 1 | 1 product | 16 |
//! | [`select`] (OT multiplexer) | 2 | 1 random OT per direction | 8.125 |
//! | [`select_beaver`] | 1 | 2 products | 32 |
//! | [`relu`], [`relu_with_derivative`] | 8 | 1 comparison, 1 multiplexer | 50.6 |
//! | [`piecewise_sigmoid`] | 8 | 2 comparisons, 2 multiplexers | 101.25 |
//! | [`clamp`] | 8 | 2 comparisons, 2 multiplexers | 101.25 |
//! | [`reciprocal`] (3 iterations; [`divide`]: +1 round, +1 product) | 22 | 373 + 162 AND (suffix-AND), then 40 B2A + 8 products | 901.75 |
//! | [`exp`] (8 squarings) | 16 | [`clamp`], then 8 squarings | 229.25 |
//! | [`ln`] (degree 7) | 18 | 373 + 162 AND (suffix-AND), then 40 B2A + 7 products | 885.75 |
//! | [`row_max`] (k columns) | 8⌈log2 k⌉ | 1 comparison per pair | 50.6 per pair |
//!
//! Each AND gate sends 2 bits per party, each Beaver product 2 words and each multiplexer a bit
//! and a word; the figures add one
//! 4-byte frame header per flight, negligible at n = 6400 where they were measured. The MSB (both),
//! A2B, ReLU, sigmoid, B2A and both select rows are asserted exactly in this module's tests
//! (`cost_matches_the_documented_table`, `cost_matches_the_module_docs`); the benchmark
//! `benches/nonlinear.rs` reports time. The offline cost of a comparison (bytes of IKNP columns
//! per value: adder 2,896, millionaires' 928) is in module `millionaire`'s docs; the
//! multiplexer's is 16 bytes of IKNP columns per entry (the Beaver select's two Gilboa products:
//! 2,576), in module `mux`'s.
//! Sending is symmetric: P1 sends as many bytes as P0.
//!
//! Time (`cargo bench -p mpc --bench nonlinear`, online phase only, both parties in one process
//! on the in-memory pair, dealer triples made beforehand; 2 cores shared with other builds, load
//! average ≈ 12, so upper bounds): 10^5 comparisons in 48 ms median (≈ 2.1·10^6 comparisons/s),
//! a 128 × 128 ReLU layer in 8.4 ms (both with the GMW adder, before the millionaires' comparison
//! replaced it; the `relu-bench` experiment times both side by side).
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
mod millionaire;
mod mux;
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
pub use convert::{and, and_requests, b2a, b2a_requests, select_beaver, select_beaver_requests};
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
pub use millionaire::{msb_millionaire, msb_millionaire_requests, LEAF_BITS};
pub use mux::{select, select_requests};
pub use normalize::TOP;
pub use recip::{
    divide, divide_requests, divide_truncations, reciprocal, reciprocal_requests,
    reciprocal_truncations, DEFAULT_NEWTON_ITERATIONS,
};

#[cfg(doc)]
use crate::triples::TripleRequest;
