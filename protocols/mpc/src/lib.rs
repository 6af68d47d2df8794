//! # mpc — two-party computation over Z_2^64
//!
//! The 2PC half of Dyad, following SecureML (Mohassel & Zhang, IEEE S&P 2017):
//!
//! * [`ring`]: the ring Z_2^64 as wrapping `u64`, with ndarray tensors and a wrapping matrix product;
//! * [`fixed`]: fixed-point encoding with `f` fractional bits (SecureML §IV-A);
//! * [`share`]: additive secret shares, the two [`Role`]s, sharing from a 32-byte ChaCha20 seed;
//! * [`session`]: the [`Session`] a party runs protocols with (channel, role, encoding, pool);
//! * [`net`]: the async [`net::Channel`] trait with typed, size-limited messages, an in-memory pair
//!   and the [`net::Metered`] wrapper that counts bytes and rounds;
//! * [`triples`]: correlated randomness (Beaver triples, matrix triples with reusable masks) behind
//!   the [`triples::TripleSource`] trait, and every source of it: the trusted
//!   [`triples::dealer`], the client-aided dealer, the two-server OT and HE sources;
//! * [`online`]: the online protocols — `open`, elementwise Beaver multiplication, matrix products
//!   with the masked data matrix opened once (SecureML §IV, Fig. 4);
//! * [`trunc`]: SecureML's asymmetric local truncation (§IV-A, Theorem 1) and an exact
//!   interactive truncation (one private-bit product per value, no failure event);
//! * [`nonlinear`]: comparison (the millionaires' protocol over 1-out-of-16 OT, with the
//!   bit-sliced GMW parallel-prefix adder kept as the reference), ReLU, piecewise sigmoid,
//!   reciprocal/division, exp, natural logarithm and both softmax variants;
//! * [`offline`]: the engines of the two-server offline phase — Chou–Orlandi base OT, IKNP/ALSZ
//!   extension, Gilboa and matrix triples with SecureML's column reuse, AND triples, the RLWE
//!   scheme and its noise flooding — that the sources in [`triples`] run.
//!
//! ## Security model
//!
//! Semi-honest, non-colluding parties P0 and P1. With the [`triples::dealer`] triple source a third
//! party is trusted to generate correlated randomness honestly and not to collude with either party
//! (the "trusted dealer" / client-aided model of SecureML §V); every report that uses it says so.
//! Local truncation is exact except with probability 2^(l_x + 1 − 64) per value, where 2^l_x bounds
//! the magnitude of the encoded product, so a run of n truncations fails with probability at most
//! n · 2^(l_x + 1 − 64); [`trunc::Truncation::Exact`] removes the failure event at one round and one
//! elementwise triple per truncation (see [`trunc`]).
//!
//! The crate never opens a socket or a file: transports implement [`net::Channel`] elsewhere
//! (the `party` crate provides QUIC and TLS-over-TCP).

pub mod compute;
mod dry_run;
pub mod error;
pub mod fixed;
pub mod net;
pub mod nonlinear;
pub mod offline;
pub mod online;
pub mod ring;
pub mod session;
pub mod share;
pub mod triples;
pub mod trunc;

pub use error::MpcError;
pub use fixed::{FixedPoint, FracBits};
pub use session::Session;
pub use share::{Role, Seed, Share};
